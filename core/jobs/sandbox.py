"""Validation of an uploaded sample in a subprocess with memory and time limits
(set in the child by :mod:`core.rlimits`).

A hostile or broken file (decompression bomb, huge declared shapes, a crash in
a C library) kills only the child; the worker reports a clear error code.
Run as ``python -m core.jobs.sandbox PATH``: prints one JSON line.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings, analysis_budget
from core.errors import InputError, MGSError
from core.jsonable import JSONObject
from core.rlimits import Limits, limited

if TYPE_CHECKING:
    from core.options import AnalysisOptions

log = logging.getLogger(__name__)


def _error_name(stderr_tail: str) -> str:
    """The exception class a crashed child's traceback ends with (never its message or paths)."""
    import re

    names = re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))\b", stderr_tail, re.M)
    return names[-1].rsplit(".", 1)[-1] if names else "an error"


def validate_in_subprocess(
    path: Path, settings: Settings, unpack_dir: Path | None = None
) -> JSONObject:
    """Read and check ``path`` in a limited child; returns its summary or raises an InputError.

    An archive is unpacked (inside the child, under its limits) into ``unpack_dir`` when given,
    where the analysis finds it again: one unpack per job attempt.
    """
    memory_mb = settings.validation_memory_mb or settings.memory_budget_mb + 2048
    timeout = settings.validation_timeout_s
    import os

    env_overrides = {
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # the child checks against the analysis budget (the analysis worker's memory
        # limit), so that a Visium HD sample is validated at the bin size the analysis picks
        "MGS_MEMORY_BUDGET_MB": str(analysis_budget(settings).memory_budget_mb),
    }

    try:
        proc = subprocess.run(
            limited(
                [
                    sys.executable,
                    "-m",
                    "core.jobs.sandbox",
                    str(path),
                    *([str(unpack_dir)] if unpack_dir is not None else []),
                ],
                Limits(memory_mb=memory_mb, cpu_s=timeout),
            ),
            capture_output=True,
            timeout=timeout,
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
        log.warning("validator exited with %s on %s: %s", proc.returncode, path.name, tail)
        raise InputError(
            f"the sample could not be read: the validator stopped with {_error_name(tail)} "
            f"(exit code {proc.returncode})",
            code="validation_crashed",
        )
    out = json.loads(lines[-1])
    if not out.get("ok"):
        raise InputError(out.get("detail", "invalid sample"), code=out.get("code", "invalid_input"))
    return dict(out["summary"])


def analyse_in_subprocess(
    sample: Path,
    out: Path,
    options: AnalysisOptions,
    settings: Settings,
    progress: Callable[[str | None, float | None], None],
    unpack_dir: Path | None = None,
) -> JSONObject:
    """Run :func:`core.runner.run_analysis_stage` in a child limited to
    ``settings.analysis_memory_mb`` of address space; a sample that needs more fails the job
    with ``over_memory_budget`` instead of taking the worker down (the OOM killer) and
    being retried until its attempts run out. ``progress(stage, fraction)`` is called in
    this process (heartbeat and ownership check); if it raises, the child is killed.
    """
    import os
    import time

    memory_mb = settings.analysis_memory_mb
    work = out.parent
    progress_file = work / "progress.jsonl"
    spec = {
        "sample": str(sample),
        "out": str(out),
        "options": options.as_dict(),
        "progress": str(progress_file),
        "unpack_dir": str(unpack_dir) if unpack_dir is not None else None,
    }
    env = {**os.environ, "OMP_NUM_THREADS": str(settings.blas_threads or 1)}

    with open(work / "analysis.out", "wb") as so, open(work / "analysis.err", "wb") as se:
        proc = subprocess.Popen(
            limited(
                [sys.executable, "-m", "core.jobs.sandbox", "--analyse", json.dumps(spec)],
                Limits(memory_mb=memory_mb),
            ),
            stdout=so,
            stderr=se,
            env=env,
        )
        try:
            seen = 0
            while proc.poll() is None:
                time.sleep(0.5)
                seen = _relay_progress(progress_file, seen, progress)
            _relay_progress(progress_file, seen, progress)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = (work / "analysis.out").read_text(errors="replace").strip().splitlines()
    tail = (work / "analysis.err").read_text(errors="replace")[-800:]
    if proc.returncode != 0 or not lines:
        if "MemoryError" in tail or proc.returncode in (-9, 137):
            raise InputError(
                f"the analysis needed more than {memory_mb} MiB (MGS_ANALYSIS_MEMORY_MB); refused",
                code="over_memory_budget",
            )
        raise RuntimeError(f"the analysis process exited with {proc.returncode}: {tail}")
    result = json.loads(lines[-1])
    if not result.get("ok"):
        raise InputError(
            result.get("detail", "analysis failed"), code=result.get("code", "invalid_input")
        )
    return dict(result["summary"])


def _relay_progress(
    path: Path, seen: int, progress: Callable[[str | None, float | None], None]
) -> int:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        lines = []
    complete = [ln for ln in lines if ln.endswith("}")]
    if len(complete) > seen:
        stage, frac = json.loads(complete[-1])["p"]
        progress(stage, frac)
    else:
        progress(None, None)  # no news: still renew the lease and check ownership
    return max(seen, len(complete))


def _analyse_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    try:
        from core.config import get_settings
        from core.options import AnalysisOptions
        from core.runner import run_analysis_stage

        fh = open(spec["progress"], "a", buffering=1)  # noqa: SIM115 (lives as long as the child)

        def progress(stage: str, frac: float) -> None:
            fh.write(json.dumps({"p": [stage, frac]}) + "\n")

        summary = run_analysis_stage(
            spec["sample"],
            spec["out"],
            AnalysisOptions.parse(spec["options"]),
            get_settings(),
            progress,
            unpack_dir=spec.get("unpack_dir"),
        )
        print(json.dumps({"ok": True, "summary": summary}, default=str))
    except MGSError as e:
        print(json.dumps({"ok": False, "code": e.code, "detail": e.detail}))
    except MemoryError:
        print(
            json.dumps(
                {
                    "ok": False,
                    "code": "over_memory_budget",
                    "detail": "the analysis ran out of memory (MGS_ANALYSIS_MEMORY_MB)",
                }
            )
        )


def _main(path: str, unpack_dir: str | None = None) -> None:
    try:
        from core.config import get_settings
        from core.io.readers import read_sample

        sample = read_sample(path, get_settings(), unpack_dir=unpack_dir)
        summary = {
            "n_obs": int(sample.adata.n_obs),
            "n_vars": int(sample.adata.n_vars),
            "layout": sample.layout,
            "source_format": sample.source_format,
            "sha256": sample.sha256,
            "has_image": sample.image is not None,
            "bin_size_um": sample.bin_size_um,
            "unit": sample.unit,
            "n_cells": sample.cells["n"] if sample.cells else None,
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
    if sys.argv[1] == "--analyse":
        _analyse_main(sys.argv[2])
    else:
        _main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
