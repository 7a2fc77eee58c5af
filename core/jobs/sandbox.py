"""Validation of an uploaded sample in a subprocess with memory and time limits.

A hostile or broken file (decompression bomb, huge declared shapes, a crash in
a C library) kills only the child; the worker reports a clear error code.
Run as ``python -m core.jobs.sandbox PATH``: prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.config import Settings
from core.errors import InputError, MGSError


def _limits(memory_mb: int, cpu_s: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def validate_in_subprocess(path: Path, settings: Settings) -> dict[str, Any]:
    """Read and check ``path`` in a limited child; returns its summary or raises an InputError."""
    memory_mb = settings.validation_memory_mb or settings.memory_budget_mb + 2048
    timeout = settings.validation_timeout_s
    env_overrides = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    import os

    try:
        proc = subprocess.run(
            [sys.executable, "-m", "core.jobs.sandbox", str(path)],
            capture_output=True,
            timeout=timeout,
            preexec_fn=_limits(memory_mb, timeout),
            env={**os.environ, **env_overrides},
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise InputError(
            f"validating the sample took longer than {timeout} s (MGS_VALIDATION_TIMEOUT_S)",
            code="validation_timeout",
        ) from e
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.decode(errors="replace")[-500:]
        if "MemoryError" in tail or proc.returncode in (-9, 137):
            raise InputError(
                f"validating the sample needed more than {memory_mb} MiB; refused",
                code="over_memory_budget",
            )
        raise InputError(
            f"the sample could not be read (validator exited with {proc.returncode}): {tail}",
            code="validation_crashed",
        )
    out = json.loads(lines[-1])
    if not out.get("ok"):
        raise InputError(out.get("detail", "invalid sample"), code=out.get("code", "invalid_input"))
    return dict(out["summary"])


def _main(path: str) -> None:
    try:
        from core.config import get_settings
        from core.io.readers import read_sample

        sample = read_sample(path, get_settings())
        summary = {
            "n_obs": int(sample.adata.n_obs),
            "n_vars": int(sample.adata.n_vars),
            "layout": sample.layout,
            "source_format": sample.source_format,
            "sha256": sample.sha256,
            "has_image": sample.image is not None,
        }
        print(json.dumps({"ok": True, "summary": summary}))
    except MGSError as e:
        print(json.dumps({"ok": False, "code": e.code, "detail": e.detail}))
    except MemoryError:
        print(
            json.dumps(
                {"ok": False, "code": "over_memory_budget", "detail": "out of memory while reading"}
            )
        )


if __name__ == "__main__":
    _main(sys.argv[1])
