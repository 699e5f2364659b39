"""The README's Quick start is the contract with a new user and with CI: keep it true."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.conftest import ROOT, LiveServer


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_exactly_two_setup_commands() -> None:
    run, test = quick_start_commands()
    assert run.endswith("mediagen serve") and "pip install -e ." in run
    assert "pytest" in test and "'.[test,local]'" in test  # CI runs the local models' tests too


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = quick_start_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_the_console_script_is_installed() -> None:
    assert (Path(sys.executable).parent / "mediagen").exists()


def test_serve_defaults_match_the_readme(live_server: LiveServer) -> None:
    """What the first command starts: SQLite in the data dir, the offline engine, no tokens."""
    from mediagen.config import Settings

    defaults = Settings(_env_file=None)
    assert (defaults.host, defaults.port) == ("127.0.0.1", 8000) and str(defaults.data_dir) == "data"
    assert defaults.resolved_database_url.startswith("sqlite:///")
    assert (live_server.data_dir / "mediagen.db").exists()
    with live_server.client() as c:
        health = c.get("/health").json()
        # The local and post-production engines are always there; local models say whether their
        # weights are (none here).
        assert health["engines"] == ["local", "post", "synth"]
        local = [m for m in c.get("/api/models").json()["models"] if m["engine"] == "local"]
        assert local and not any(m["available"] for m in local)
        defaults_by_kind = {m["kind"]: m["id"] for m in c.get("/api/models").json()["models"] if m["default"]}
        assert defaults_by_kind == {"audio": "synth/music", "image": "synth/image", "video": "synth/video"}
        assert c.get("/").status_code in (200, 303, 307)
