"""Service subcommands of ``medgemma-spatial``: serve, worker, relay, db upgrade, keys create/revoke.

``cli.main`` calls :func:`register` lazily, so the base CLI works without the
service extra. ``python -m cli.service ...`` runs them on their own.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the service subcommands to an argparse ``subparsers`` object."""
    p = subparsers.add_parser("serve", help="run the REST API (uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=cmd_serve)

    p = subparsers.add_parser("worker", help="run a Celery worker")
    p.add_argument(
        "--queues", default="analysis", help="analysis (CPU) or report (GPU), comma-separated"
    )
    p.add_argument(
        "--concurrency", type=int, default=None, help="default: 1 for report, else CPU count"
    )
    p.add_argument("--pool", default=None, help="prefork (default) | solo | threads")
    p.add_argument("--loglevel", default="info")
    p.add_argument(
        "--with-relay", action="store_true", help="also run the outbox relay in this process group"
    )
    p.set_defaults(handler=cmd_worker)

    p = subparsers.add_parser("relay", help="run the outbox relay and reconciler")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.set_defaults(handler=cmd_relay)

    db = subparsers.add_parser("db", help="database migrations")
    dbs = db.add_subparsers(dest="db_command", required=True)
    p = dbs.add_parser("upgrade", help="apply Alembic migrations")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(handler=cmd_db_upgrade)
    p = dbs.add_parser("downgrade", help="revert Alembic migrations")
    p.add_argument("revision")
    p.set_defaults(handler=cmd_db_downgrade)

    keys = subparsers.add_parser("keys", help="API keys")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    p = ks.add_parser("create", help="create a key for a tenant (printed once)")
    p.add_argument("--tenant", required=True)
    p.add_argument(
        "--role",
        default="submitter",
        help="submitter (upload, submit, read; the default) or reviewer (also sign reports)",
    )
    p.set_defaults(handler=cmd_keys_create)
    p = ks.add_parser("revoke", help="revoke a key (the key itself or its 8-hex prefix)")
    p.add_argument("key")
    p.set_defaults(handler=cmd_keys_revoke)


def _preflight(database: bool = True, broker: bool = False) -> None:
    """Refuse to start (exit 3, one line) when the database or the broker is not there."""
    from core.config import get_settings
    from core.jobs.preflight import check_broker, check_database

    settings = get_settings()
    if database:
        check_database(settings.database_url)
    if broker:
        check_broker(settings.broker_url)


def cmd_serve(args: argparse.Namespace) -> int:
    from core.config import get_settings

    _preflight(database=True, broker=True)
    # an idle kept-alive connection is closed after this long (no shorter than uvicorn's 5 s)
    keep_alive = max(1, min(5, int(get_settings().header_timeout_s)))
    argv = [sys.executable, "-m", "api.serve", "--host", args.host, "--port", str(args.port)]
    argv += ["--workers", str(args.workers), "--log-level", args.log_level]
    argv += ["--keep-alive", str(keep_alive)]
    sys.stdout.flush()
    sys.stderr.flush()
    # the drivers the checks imported stay behind: uvicorn supervises from a lean process
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover (execv does not return)


def cmd_worker(args: argparse.Namespace) -> int:
    _preflight(database=True, broker=True)
    from worker.celery_app import app

    queues = args.queues
    os.environ["MGS_WORKER_QUEUES"] = queues  # read by worker.resources (model preload)
    concurrency = args.concurrency or (1 if "report" in queues.split(",") else os.cpu_count() or 1)
    argv = [
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "--loglevel",
        args.loglevel,
        "-n",
        f"{queues.replace(',', '+')}@%h",
    ]
    if args.pool:
        argv += ["--pool", args.pool]
    relay = None
    if args.with_relay:
        import subprocess

        relay = subprocess.Popen([sys.executable, "-m", "cli", "relay"])
    try:
        app.worker_main(argv)
    finally:
        if relay is not None:
            relay.terminate()
            relay.wait(10)
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    import logging

    from core.config import get_settings
    from worker.relay import run_relay

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _preflight(database=True, broker=True)
    run_relay(get_settings(), once=args.once)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from core.config import get_settings
    from core.db.migrate import upgrade

    _preflight()
    upgrade(get_settings().database_url, args.revision)
    print(f"database at {args.revision}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from core.config import get_settings
    from core.db.migrate import downgrade

    _preflight()
    downgrade(get_settings().database_url, args.revision)
    return 0


def _sessions() -> sessionmaker[Session]:
    from core.config import get_settings
    from core.db.session import make_sync_engine, make_sync_sessionmaker

    return make_sync_sessionmaker(make_sync_engine(get_settings().database_url))


def cmd_keys_create(args: argparse.Namespace) -> int:
    from core.jobs.keys import create_key

    _preflight()
    with _sessions()() as s, s.begin():
        key, tenant = create_key(s, args.tenant, args.role)
        secret = tenant.webhook_secret
    print(f"api_key: {key}")
    print(f"tenant: {args.tenant}")
    print(f"role: {args.role}")
    print(f"webhook_secret: {secret}")
    print("Store the key now: it is not shown again.", file=sys.stderr)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from core.jobs.keys import revoke_key

    _preflight()
    with _sessions()() as s, s.begin():
        revoke_key(s, args.key)
    print("revoked")
    return 0


def main(argv: list[str] | None = None) -> int:
    from core.errors import MGSError
    from core.jobs.errors import CONFIG_EXIT_CODE, ConfigurationError

    parser = argparse.ArgumentParser(prog="medgemma-spatial")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigurationError as e:  # the settings name a database or broker that is not there
        print(f"error [{e.code}]: {e.detail}", file=sys.stderr)
        return CONFIG_EXIT_CODE
    except MGSError as e:
        print(f"error [{e.code}]: {e.detail}", file=sys.stderr)
        return 2 if e.http_status < 500 else 1


if __name__ == "__main__":
    sys.exit(main())
