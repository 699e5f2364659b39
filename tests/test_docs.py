"""README.md keeps up with the code: every setting documented under its real variable, with its real
default, and no pointers to files outside the repository."""

from __future__ import annotations

import re

import pytest
from pydantic import AliasChoices, AliasPath
from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource

from mediagen.config import Settings
from tests.conftest import ROOT

README = ROOT / "README.md"
ENV_PREFIXES = ("MEDIAGEN_", "REPLICATE_")


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables pydantic-settings reads for a field, as the config spells them."""
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)]
    if isinstance(alias, AliasPath):
        return [str(alias.path[0])]
    return [f"{Settings.model_config.get('env_prefix', '')}{name}".upper()]


def settings_env() -> dict[str, list[str]]:
    return {name: env_names(name, field) for name, field in Settings.model_fields.items()}


def configuration_rows() -> dict[str, str]:
    """README's Configuration table: variable name -> its default, as written in that row."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or set(cells[0]) <= set("-"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        if not names:
            continue  # the header
        defaults = [d.strip() for d in cells[1].split(" / ")] if len(names) > 1 else [cells[1]]
        assert len(defaults) == len(names), f"one default per variable in {line!r}"
        rows.update(zip(names, defaults, strict=True))
    assert "MEDIAGEN_DATA_DIR" in rows, "the Configuration table was not found"
    return rows


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for key in list(os.environ):
        if key.upper().startswith(ENV_PREFIXES):
            monkeypatch.delenv(key)
    return monkeypatch


def test_env_names_are_the_ones_pydantic_settings_reads(clean_env: pytest.MonkeyPatch) -> None:
    """Cross-checks `env_names` against the settings source itself, so the next test is not
    checking the README against a wrong idea of the variable names."""
    expected = settings_env()
    for names in expected.values():
        clean_env.setenv(names[0], '"x"')
    found = EnvSettingsSource(Settings)()
    by_key = {
        key: name
        for name, field in Settings.model_fields.items()
        for key in (name, field.validation_alias if isinstance(field.validation_alias, str) else name)
    }
    assert {by_key[k] for k in found} == set(expected)


def test_every_setting_is_in_the_configuration_table() -> None:
    rows = configuration_rows()
    missing = {name: names for name, names in settings_env().items() if not set(names) & set(rows)}
    assert not missing, f"add these settings to README.md's Configuration table: {missing}"
    # And nothing in the table that is not a setting (a renamed or removed one).
    known = {n for names in settings_env().values() for n in names}
    stale = {n for n in rows if n.startswith(ENV_PREFIXES) and n not in known}
    assert not stale, f"README.md documents variables Settings does not read: {sorted(stale)}"


def test_the_documented_defaults_are_the_real_ones(clean_env: pytest.MonkeyPatch) -> None:
    """Setting each variable to the default the table shows gives the setting's real default."""
    rows = configuration_rows()
    defaults = Settings(_env_file=None)
    checked = []
    for name, names in settings_env().items():
        real = getattr(defaults, name)
        if real is None:
            continue  # "unset", or a sentence about what happens instead
        written = next(rows[n] for n in names if n in rows)
        literal = re.match(r"`([^`]*)`", written)
        assert literal, f"{names[0]}: give the default {real!r} in backticks, not {written!r}"
        clean_env.setenv(names[0], literal.group(1))
        assert getattr(Settings(_env_file=None), name) == real, f"{names[0]}: README says {written}"
        clean_env.delenv(names[0])
        checked.append(name)
    assert len(checked) >= 20


def test_readme_cites_only_files_inside_the_repository() -> None:
    text = README.read_text()
    assert "../" not in text, "README.md points outside the repository"
    assert "DESIGN.md" not in text
    assert "shared/" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not re.match(r"[a-z]+:", target):  # a relative link, not http(s):// or mailto:
            assert not target.startswith("/"), target
