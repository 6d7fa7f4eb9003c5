"""The README stays true: every setting is in its table, both commands are shown."""

from __future__ import annotations

from repo_paths import REPO_ROOT

from orchestrator.settings import Settings

README = (REPO_ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [name for name in Settings.model_fields if f"`FRONTDESK_{name.upper()}`" not in README]
    assert missing == []


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README and "make test" in README
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
