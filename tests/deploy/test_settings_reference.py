"""docs/operations.md's settings table and .env.example's MGS_* block match core.config.Settings."""

from __future__ import annotations

from scripts.settings_reference import (
    ENV_EXAMPLE,
    OPERATIONS,
    env_block,
    markdown_table,
    replace_between,
)


def test_operations_settings_table_is_current() -> None:
    text = OPERATIONS.read_text()
    assert replace_between(text, markdown_table()) == text, (
        "Settings changed: run `python scripts/settings_reference.py` and commit the docs"
    )


def test_env_example_is_current() -> None:
    text = ENV_EXAMPLE.read_text()
    assert replace_between(text, env_block()) == text, (
        "Settings changed: run `python scripts/settings_reference.py` and commit .env.example"
    )


def test_every_setting_is_in_the_reference() -> None:
    from core.config import Settings

    table = markdown_table()
    for name in Settings.model_fields:
        assert f"`MGS_{name.upper()}`" in table
