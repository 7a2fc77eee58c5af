"""The API's process supervisor: ``python -m api.serve`` runs uvicorn with nothing else imported.

``medgemma-spatial serve`` checks the database and the broker (which imports their drivers),
then replaces itself with this module (``os.execv``, same PID). The supervising process then
holds only uvicorn, and the worker processes uvicorn spawns import this module as their
``__main__`` rather than the whole CLI: with ``--workers 2`` the supervisor is ~25 MB
instead of ~67 MB. The app itself is imported only in the workers (``api.main:create_app``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Arguments as ``medgemma-spatial serve`` passes them."""
    p = argparse.ArgumentParser(prog="python -m api.serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log-level", default="info")
    p.add_argument("--keep-alive", type=int, default=5, help="idle kept-alive connection (s)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run uvicorn until it is stopped."""
    import uvicorn

    args = parse_args(argv)
    # httptools with the header timeout of api.limits, named so only the workers import it
    has_httptools = importlib.util.find_spec("httptools") is not None
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        proxy_headers=True,
        http="api.limits:HeaderTimeoutProtocol" if has_httptools else "auto",
        timeout_keep_alive=args.keep_alive,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
