"""The Redis transport sweeps unacked tasks back on every call, at most every 10 s."""

from __future__ import annotations

import pytest

pytest.importorskip("celery", reason="the service extra is not installed")


def test_transport_options_bound_the_restore_delay() -> None:
    from worker.celery_app import make_celery, transport_options

    assert transport_options(3600) == {
        "visibility_timeout": 3600,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
    assert transport_options(2)["unacked_restore_interval"] == 1
    assert transport_options(8)["unacked_restore_interval"] == 4
    app = make_celery("redis://127.0.0.1:6379/0", visibility_timeout_s=6)
    assert app.conf.broker_transport_options == transport_options(6)
