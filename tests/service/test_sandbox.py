"""The validation subprocess: broken or hostile files end in a clear code, never a dead worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from core.errors import InputError
from core.jobs.sandbox import validate_in_subprocess
from tests.service.helpers import BRAIN_H5AD, VISIUM_DIR, spaceranger_targz


def test_truncated_h5ad_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "s.h5ad"
    bad.write_bytes(BRAIN_H5AD.read_bytes()[:5000])
    with pytest.raises(InputError) as e:
        validate_in_subprocess(bad, Settings())
    assert e.value.code in {"corrupt_file", "unsupported_format", "validation_crashed"}


def test_memory_limit_stops_the_child_not_the_worker(tmp_path: Path) -> None:
    p = tmp_path / "s.tar.gz"
    p.write_bytes(spaceranger_targz())
    with pytest.raises(InputError) as e:
        validate_in_subprocess(p, Settings(validation_memory_mb=64))
    assert e.value.code in {"over_memory_budget", "validation_crashed"}


@pytest.mark.skipif(not VISIUM_DIR.is_dir(), reason="../shared/data is absent")
def test_real_visium_archive_validates(tmp_path: Path) -> None:
    p = tmp_path / "s.tar.gz"
    p.write_bytes(spaceranger_targz())
    summary = validate_in_subprocess(p, Settings())
    assert summary["n_obs"] > 0 and summary["n_vars"] > 0
