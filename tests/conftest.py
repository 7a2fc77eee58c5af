"""Options shared by every test folder (registered once, whichever conftest loads first)."""

from __future__ import annotations

from typing import Any


def pytest_addoption(parser: Any) -> None:
    try:  # noqa: SIM105  (the other conftest may have registered it)
        parser.addoption(
            "--long",
            action="store_true",
            default=False,
            help="run the bigger counts (security fuzzing, reliability loops)",
        )
    except ValueError:  # already registered by another conftest
        pass
