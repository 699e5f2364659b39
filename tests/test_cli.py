"""The `mediagen` console script as a user runs it: a subprocess, in a folder of its own.

The local commands (keys, users) run against a temporary data dir and never create a database; the
client command (`generate`) runs against a closed port, and against a live server only where the
saved file is the point (those tests are `slow`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from mediagen.auth.tables import ApiKey
from mediagen.services import Services
from tests.conftest import LiveServer, free_port
from tests.generations.conftest import make_seeded_services, make_services

MEDIAGEN = Path(sys.executable).parent / "mediagen"


def mediagen(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAGEN_", "REPLICATE_"))}
    clean.update(env or {})
    return subprocess.run(
        [str(MEDIAGEN), *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120
    )


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


# -- local commands never make a new, empty database ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "list"),
        ("keys", "create", "--name", "ci"),
        ("keys", "revoke", "abc123"),
        ("users", "create", "--email", "a@example.com", "--password", "long-enough-1"),
    ],
)
def test_local_commands_refuse_a_missing_database(tmp_path: Path, args: tuple[str, ...]) -> None:
    line = one_line_error(mediagen(*args, cwd=tmp_path))
    assert str((tmp_path / "data" / "mediagen.db").resolve()) in line
    assert "MEDIAGEN_DATA_DIR" in line and "MEDIAGEN_DATABASE_URL" in line
    assert "mediagen db upgrade" in line
    assert not (tmp_path / "data").exists()


def test_the_message_names_the_configured_place(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    line = one_line_error(mediagen("keys", "list", cwd=tmp_path, env={"MEDIAGEN_DATA_DIR": str(elsewhere)}))
    assert str(elsewhere / "mediagen.db") in line and f"MEDIAGEN_DATA_DIR is {elsewhere}" in line
    assert not elsewhere.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    line = one_line_error(
        mediagen("keys", "list", cwd=tmp_path, env={"MEDIAGEN_DATABASE_URL": f"sqlite:///{empty}"})
    )
    assert "no Mediagen tables" in line and str(empty) in line
    assert empty.stat().st_size == 0


def test_db_upgrade_creates_the_database_the_other_commands_then_use(tmp_path: Path) -> None:
    out = mediagen("db", "upgrade", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "data" / "mediagen.db").is_file()
    out = mediagen("keys", "list", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout == "", out.stderr


# -- keys against a real database --------------------------------------------------------------------


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Services, dict[str, str]]]:
    """The admin user and the acme and globex clients, in a data dir the CLI is pointed at."""
    services, _, _ = make_seeded_services(tmp_path / "data")
    yield services, {"MEDIAGEN_DATA_DIR": str(tmp_path / "data")}
    services.close()


def test_keys_create_checks_clients_and_sets_an_expiry(
    seeded: tuple[Services, dict[str, str]], tmp_path: Path
) -> None:
    services, env = seeded
    line = one_line_error(
        mediagen("keys", "create", "--name", "x", "--client", "nope", cwd=tmp_path, env=env)
    )
    assert "nope" in line and "acme, globex" in line
    assert services.auth.list_keys(user_id=None) == []

    out = mediagen(
        "keys", "create", "--name", "ci", "--client", "acme", "--expires-days", "30", cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    first, token = out.stdout.strip().splitlines()
    assert token.startswith("mg_") and "limited to acme" in first and "expires" in first
    (row,) = services.auth.list_keys(user_id=None)
    assert row.clients == ["acme"] and row.expires_at is not None
    assert abs(row.expires_at - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=2)
    assert f"Created key {row.id} " in first

    out = mediagen("keys", "create", "--name", "bad", "--expires-days", "0", cwd=tmp_path, env=env)
    assert out.returncode == 2 and "--expires-days" in out.stderr

    listed = mediagen("keys", "list", cwd=tmp_path, env=env).stdout
    assert re.search(rf"^{row.id} .* active .* expires=\d{{4}}-\d\d-\d\d \d\d:\d\d UTC$", listed, flags=re.M)
    with services.db.write() as s:
        s.execute(update(ApiKey).values(expires_at=datetime.now(UTC) - timedelta(hours=1)))
    assert re.search(
        rf"^{row.id} .* expired ", mediagen("keys", "list", cwd=tmp_path, env=env).stdout, flags=re.M
    )

    line = one_line_error(mediagen("keys", "revoke", "nope", cwd=tmp_path, env=env))
    assert "no key with id nope" in line
    out = mediagen("keys", "revoke", row.id, cwd=tmp_path, env=env)
    assert out.returncode == 0 and services.auth.list_keys(user_id=None)[0].revoked_at is not None


def test_models_list_refuses_an_unknown_kind(tmp_path: Path) -> None:
    out = mediagen("models", "list", "--kind", "song", cwd=tmp_path)
    assert out.returncode == 2 and "song" in out.stderr and "audio, image, video" in out.stderr
    out = mediagen("models", "list", "--kind", "audio", cwd=tmp_path)
    assert out.returncode == 0
    models = [line for line in out.stdout.strip().splitlines() if not line.startswith(" ")]
    assert models and all(line.split()[1] == "audio" for line in models)


def test_models_list_and_pull_for_local_models(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from tests.engines.local.tiny_musicgen import save_tiny_musicgen

    models = tmp_path / "models"
    save_tiny_musicgen(models)
    env = {"MEDIAGEN_MODELS_DIR": str(models), "HF_HOME": str(tmp_path / "hf")}
    listed = mediagen("models", "list", "--kind", "audio", cwd=tmp_path, env=env).stdout
    block = listed.split("local/musicgen-small", 1)[1].split("\nlocal/", 1)[0]
    assert "ready" in block and f"in {models / 'facebook/musicgen-small'} (models_dir)" in block
    medium = listed.split("local/musicgen-medium", 1)[1].split("\n", 2)
    assert "unavailable" in medium[0] and "mediagen models pull local/musicgen-medium" in medium[1]

    present = mediagen("models", "pull", "local/musicgen-small", cwd=tmp_path, env=env)
    assert present.returncode == 0 and "already present" in present.stdout
    hosted = mediagen("models", "pull", "meta/musicgen", cwd=tmp_path, env=env)
    assert hosted.returncode == 2 and "not a local model" in hosted.stderr
    offline = mediagen(
        "models", "pull", "local/musicgen-medium", cwd=tmp_path,
        env={**env, "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HUB_ETAG_TIMEOUT": "2"},
    )  # fmt: skip
    line = one_line_error(offline)
    assert "could not download facebook/musicgen-medium" in line and "again to resume" in line


# -- generate: checked before anything is sent ---------------------------------------------------------


def closed_server() -> list[str]:
    return ["--url", f"http://127.0.0.1:{free_port()}", "--key", "mg_test"]


def test_an_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    args = closed_server()
    line = one_line_error(mediagen("generate", "audio", "lo-fi", *args, cwd=tmp_path))
    assert args[1] in line and "mediagen serve" in line and "MEDIAGEN_API_URL" in line


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--duration", "3", "--param", "duration=4"], ["--duration", "--param duration=4"]),
        (
            ["--model", "stackadoc/stable-audio-open-1.0", "--duration", "3", "-p", "seconds_total=4"],
            ["--duration", "--param seconds_total=4"],
        ),
        (["--seed", "1", "-p", "seed=2"], ["--seed", "--param seed=2"]),
        (["-p", "bpm=90", "-p", "bpm=100"], ["--param bpm", "twice"]),
    ],
)
def test_generate_refuses_an_option_given_twice(tmp_path: Path, extra: list[str], named: list[str]) -> None:
    out = mediagen("generate", "audio", "lo-fi", *extra, *closed_server(), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    flat = " ".join(out.stderr.replace("│", " ").split())
    for part in named:
        assert part in flat, (part, flat)
    assert "cannot reach" not in flat  # refused before any request


def test_the_output_folder_is_made_ready_before_generating(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line_error(
        mediagen("generate", "audio", "lo-fi", "-o", str(blocker / "x.mp3"), *closed_server(), cwd=tmp_path)
    )
    assert "folder" in line and "cannot reach" not in line
    deeper = tmp_path / "new" / "deeper"
    out = mediagen("generate", "audio", "lo-fi", "-o", str(deeper / "x.mp3"), *closed_server(), cwd=tmp_path)
    assert deeper.is_dir() and f"Created folder {deeper}" in out.stderr
    assert out.returncode == 1 and "cannot reach" in out.stderr  # made before the request


def test_takes_options_are_checked_before_anything_is_sent(tmp_path: Path) -> None:
    none = mediagen("generate", "audio", "lo-fi", "--n", "0", *closed_server(), cwd=tmp_path)
    assert none.returncode == 2 and "cannot reach" not in none.stderr
    into_a_file = mediagen(
        "generate", "audio", "lo-fi", "--n", "3", "-o", "x.mp3", *closed_server(), cwd=tmp_path
    )
    flat = " ".join(into_a_file.stderr.replace("│", " ").split())
    assert into_a_file.returncode == 2 and "-o is a folder" in flat and "cannot reach" not in flat


# -- generate against a live server --------------------------------------------------------------------


def test_generate_n_takes_prints_every_id_and_saves_every_take(
    live_server: LiveServer, tmp_path: Path
) -> None:
    env = {"MEDIAGEN_API_URL": live_server.url, "MEDIAGEN_API_KEY": live_server.admin_key or ""}
    queued = mediagen("generate", "audio", "lo-fi", "--duration", "1", "--n", "2", "--seed", "5", "--no-wait",
                      cwd=tmp_path, env=env)  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    ids = [int(line) for line in queued.stdout.split()]
    assert len(ids) == 2 and "take group tg_" in queued.stderr
    with live_server.client() as api:
        items = [api.get(f"/api/audio/{i}").json() for i in ids]
    assert [i["seed"] for i in items] == [5, 6] and items[0]["take_group"] == items[1]["take_group"]

    folder = tmp_path / "takes"  # made for them
    saved = mediagen("generate", "audio", "lo-fi", "--duration", "1", "-n", "3", "-o", str(folder),
                     cwd=tmp_path, env=env)  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    paths = [Path(line) for line in saved.stdout.split()]
    assert len(paths) == 3 and all(p.parent == folder and p.is_file() for p in paths)
    assert len({p.read_bytes() for p in paths}) == 3  # fresh seeds: three different takes


# -- generate against a live server --------------------------------------------------------------------


def test_generate_saves_under_the_right_extension(live_server: LiveServer, tmp_path: Path) -> None:
    env = {"MEDIAGEN_API_URL": live_server.url, "MEDIAGEN_API_KEY": live_server.admin_key or ""}
    asked = tmp_path / "out" / "new" / "clip.wav"
    out = mediagen("generate", "audio", "lo-fi", "--duration", "1", "-o", str(asked), cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    saved = asked.with_suffix(".mp3")  # the synth makes MP3 unless asked for WAV
    assert out.stdout.strip() == str(saved)
    assert "audio/mpeg" in out.stderr and "saved as" in out.stderr
    assert saved.is_file() and not asked.exists()
    head = saved.read_bytes()[:3]
    assert head == b"ID3" or head[:1] == b"\xff"

    # The corrected name is taken now: nothing is overwritten, and the asset's place is given.
    out = mediagen("generate", "audio", "lo-fi", "--duration", "1", "-o", str(asked), cwd=tmp_path, env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert re.search(rf"{re.escape(live_server.url)}/api/audio/\d+/data", out.stderr), out.stderr
    assert saved.read_bytes()[:3] == head

    # A folder: saved inside it under the asset's own name.
    out = mediagen(
        "generate", "audio", "lo-fi", "--duration", "1", "-o", str(asked.parent), cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    inside = Path(out.stdout.strip())
    assert inside.parent == asked.parent and re.fullmatch(r"audio-\d+\.mp3", inside.name)


# -- maintenance commands -----------------------------------------------------------------------------


def test_backup_restore_and_doctor_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services, queue, admin = make_seeded_services(data)
    from mediagen.generations.schemas import GenerateRequest

    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="calm piano", duration=1))
    queue.drain(services.pipeline)
    services.close()

    made = mediagen("backup", str(tmp_path / "copy"), cwd=tmp_path, env={"MEDIAGEN_DATA_DIR": str(data)})
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "copy" / "manifest.json").is_file()

    fresh = tmp_path / "restored"
    back = mediagen("restore", str(tmp_path / "copy"), cwd=tmp_path, env={"MEDIAGEN_DATA_DIR": str(fresh)})
    assert back.returncode == 0, back.stderr
    again = mediagen("restore", str(tmp_path / "copy"), cwd=tmp_path, env={"MEDIAGEN_DATA_DIR": str(fresh)})
    assert again.returncode == 2 and "error:" in again.stderr  # not over a data dir in use

    checked = mediagen("doctor", "--dry-run", cwd=tmp_path, env={"MEDIAGEN_DATA_DIR": str(fresh)})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    restored, _ = make_services(fresh)
    try:
        assert restored.generations.get(admin, "audio", row.id).status == "completed"
    finally:
        restored.close()


def test_users_reset_password_signs_out_and_prints_a_new_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services, _, _ = make_seeded_services(data)
    services.close()
    env = {"MEDIAGEN_DATA_DIR": str(data)}
    out = mediagen("users", "reset-password", "--email", "admin@example.com", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    new_password = out.stdout.strip().splitlines()[-1]
    services, _ = make_services(data)
    try:
        assert services.auth.authenticate_password("admin@example.com", new_password) is not None
    finally:
        services.close()
    weak = mediagen(
        "users",
        "reset-password",
        "--email",
        "admin@example.com",
        "--password",
        "password",
        cwd=tmp_path,
        env=env,
    )
    assert weak.returncode != 0 and "password" in weak.stderr.lower()
