"""Run a child process under resource limits (address space, CPU seconds, no core dumps).

One helper for every sandboxed child (sample validation and analysis in core/jobs/sandbox.py,
the HDF5 check of an upload in core/jobs/uploads.py). The limits are set *in the child*: the
command is prefixed with ``python -m core.rlimits --as-mb N --cpu-s N --``, a small process that
calls :func:`resource.setrlimit` and then :func:`os.execv`'s the real command (same pid, so
killing and exit codes behave as if the command had been started directly). No
``preexec_fn``: Python's documentation calls it unsafe in a process with threads, and the API
starts these children from worker threads.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Limits for one child.

    Parameters
    ----------
    memory_mb
        Address space (``RLIMIT_AS``) in MiB; ``None``: unlimited.
    cpu_s
        CPU seconds (``RLIMIT_CPU``): SIGXCPU at ``cpu_s``, SIGKILL 5 s later; ``None``: unlimited.

    Core dumps are always off (``RLIMIT_CORE`` 0).
    """

    memory_mb: int | None = None
    cpu_s: int | None = None

    def argv(self) -> list[str]:
        """The wrapper's own arguments (before ``--``)."""
        out = []
        if self.memory_mb is not None:
            out += ["--as-mb", str(int(self.memory_mb))]
        if self.cpu_s is not None:
            out += ["--cpu-s", str(int(self.cpu_s))]
        return out


def limited(argv: list[str], limits: Limits) -> list[str]:
    """``argv`` prefixed so that it runs under ``limits``.

    Parameters
    ----------
    argv
        The command to run; ``argv[0]`` is an executable path (e.g. ``sys.executable``).
    limits
        What to limit.

    Returns
    -------
    list of str
        A command line for :mod:`subprocess` (``[python, "-m", "core.rlimits", ..., "--", *argv]``).
    """
    return [sys.executable, "-m", "core.rlimits", *limits.argv(), "--", *argv]


def apply(limits: Limits) -> None:
    """Set ``limits`` on the calling process (irreversibly: soft and hard limits)."""
    import resource

    if limits.memory_mb is not None:
        n = int(limits.memory_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (n, n))
    if limits.cpu_s is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (int(limits.cpu_s), int(limits.cpu_s) + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> None:
    """``python -m core.rlimits [--as-mb N] [--cpu-s N] -- COMMAND...``: limit, then exec."""
    if "--" not in argv:
        raise SystemExit("usage: python -m core.rlimits [--as-mb N] [--cpu-s N] -- COMMAND...")
    sep = argv.index("--")
    opts, command = argv[:sep], argv[sep + 1 :]
    values = dict(zip(opts[::2], opts[1::2], strict=True))
    unknown = set(values) - {"--as-mb", "--cpu-s"}
    if unknown or not command:
        raise SystemExit(f"core.rlimits: bad arguments {sorted(unknown) or 'no command'}")
    mem, cpu = values.get("--as-mb"), values.get("--cpu-s")
    apply(Limits(memory_mb=int(mem) if mem else None, cpu_s=int(cpu) if cpu else None))
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
