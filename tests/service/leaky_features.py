"""TEST ONLY: plants an organ name in the tissue-blind features of every analysis this worker
runs (loaded by naming this module in MGS_WORKER_IMPORTS), so the report worker's leakage gate
refuses the prompt on a real job. The same plant as the CLI's exit-4 test
(tests/integration/report/test_report_cli.py); not part of the package."""

from __future__ import annotations

from typing import Any

import core.analysis.features as features

PLANTED = ", from the colon"
_real = features.tissue_blind_features


def _leaky(*args: Any, **kwargs: Any) -> dict[str, Any]:
    f = _real(*args, **kwargs)
    f["platform"]["unit_description"] += PLANTED
    return f


features.tissue_blind_features = _leaky  # type: ignore[assignment]
