"""core.rlimits: the limits are set in the child (no preexec_fn), which then runs the command."""

from __future__ import annotations

import resource
import subprocess
import sys
import threading

import pytest

from core.rlimits import Limits, limited

SHOW = (
    "import resource as r; print(r.getrlimit(r.RLIMIT_AS)[0], r.getrlimit(r.RLIMIT_CPU)[0], "
    "r.getrlimit(r.RLIMIT_CORE)[1])"
)


def test_the_child_runs_under_the_limits_and_the_parent_keeps_its_own() -> None:
    before = resource.getrlimit(resource.RLIMIT_AS)
    r = subprocess.run(
        limited([sys.executable, "-c", SHOW], Limits(memory_mb=1024, cpu_s=7)),
        capture_output=True,
        text=True,
        check=True,
    )
    assert r.stdout.split() == [str(1024 * 2**20), "7", "0"]
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def test_started_from_a_thread_and_exit_codes_pass_through() -> None:
    out: dict[str, subprocess.CompletedProcess[str]] = {}

    def run() -> None:
        out["r"] = subprocess.run(
            limited(
                [sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"], Limits(cpu_s=5)
            ),
            capture_output=True,
            text=True,
            check=False,
        )

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert out["r"].returncode == 3 and out["r"].stdout == "hi\n"


def test_memory_over_the_limit_fails_in_the_child() -> None:
    code = "b = bytearray(400 * 2**20); print('allocated')"
    r = subprocess.run(
        limited([sys.executable, "-c", code], Limits(memory_mb=200)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode != 0 and "MemoryError" in r.stderr and "allocated" not in r.stdout


def test_the_wrapper_refuses_bad_arguments() -> None:
    for args in (["--as-mb", "10"], ["--nice", "5", "--", "true"], ["--"]):
        r = subprocess.run(
            [sys.executable, "-m", "core.rlimits", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode != 0 and ("usage" in r.stderr or "bad arguments" in r.stderr), args


@pytest.mark.parametrize("limits", [Limits(), Limits(memory_mb=512), Limits(cpu_s=3)])
def test_the_command_line_is_python_m_core_rlimits(limits: Limits) -> None:
    argv = limited(["/bin/true"], limits)
    assert argv[:3] == [sys.executable, "-m", "core.rlimits"] and argv[-2:] == ["--", "/bin/true"]


def test_no_preexec_fn_anywhere_in_the_service() -> None:
    """preexec_fn is unsafe in a process with threads (the API, the workers): core.rlimits instead."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    users = [
        str(p.relative_to(root))
        for pkg in ("core", "api", "worker", "cli")
        for p in (root / pkg).rglob("*.py")
        if "preexec_fn=" in p.read_text()
    ]
    assert users == []
