"""Finding weights (models dir, then the Hugging Face cache), their size, and a pull that cannot
reach the hub."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from mediagen.engines.local.weights import find_weights, hf_cache_dir, size_on_disk


def save(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def cache_repo(cache: Path, repo_id: str, commit: str, files: dict[str, bytes]) -> Path:
    """The hub cache's layout: blobs by hash, a snapshot of symlinks, refs/main naming it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for i, (name, data) in enumerate(files.items()):
        blob = repo / "blobs" / f"blob{i}"
        save(blob.parent, {blob.name: data})
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).symlink_to(blob)
    save(repo / "refs", {"main": commit.encode()})
    return snapshot


def test_the_models_dir_comes_first_and_its_size_is_every_file(tmp_path: Path) -> None:
    models = tmp_path / "models"
    own = save(models / "facebook/musicgen-small", {"config.json": b"{}", "model.safetensors": b"x" * 1000})
    cache_repo(tmp_path / "hub", "facebook/musicgen-small", "abc", {"config.json": b"{}"})
    found = find_weights("facebook/musicgen-small", models, hf_cache=tmp_path / "hub")
    assert found is not None
    assert (found.path, found.source, found.size_bytes) == (own, "models_dir", 1002)


def test_the_hub_cache_is_searched_next_and_shared_blobs_count_once(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    snapshot = cache_repo(
        hub,
        "stabilityai/sd-turbo",
        "c0ffee",
        {"model_index.json": json.dumps({}).encode(), "unet/weights.safetensors": b"w" * 4096},
    )
    # A second name for the same blob (the cache deduplicates by content) is not counted twice.
    (snapshot / "alias.safetensors").symlink_to((snapshot / "unet/weights.safetensors").resolve())
    found = find_weights("stabilityai/sd-turbo", tmp_path / "models", hf_cache=hub)
    assert found is not None and found.source == "hf_cache"
    assert found.path == snapshot and found.size_bytes == 4096 + 2


def test_a_folder_without_a_config_is_not_weights(tmp_path: Path) -> None:
    save(tmp_path / "models/facebook/musicgen-small", {"model.safetensors.incomplete": b"partial"})
    assert find_weights("facebook/musicgen-small", tmp_path / "models", hf_cache=tmp_path / "hub") is None


def test_the_cache_location_follows_the_hubs_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hf_cache_dir() == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hf_cache_dir() == tmp_path / "elsewhere"


def test_size_skips_the_resume_bookkeeping_of_a_pull(tmp_path: Path) -> None:
    folder = save(tmp_path / "m", {"config.json": b"{}", ".cache/huggingface/download/x.lock": b"z" * 50})
    assert size_on_disk(folder) == 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_pull_without_a_reachable_hub_fails_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real huggingface_hub client against a port nobody listens on (no network here)."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from mediagen.engines.local.weights import pull, PullError\n"
        "try:\n    pull('facebook/musicgen-small', Path(sys.argv[1]))\n"
        "except PullError as e:\n    print('PULLERROR', e)\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "2",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "models")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "PULLERROR" in done.stdout, done.stderr[-2000:]
    assert "could not download facebook/musicgen-small" in done.stdout
    assert "run the same command again to resume" in done.stdout
    assert find_weights("facebook/musicgen-small", tmp_path / "models", hf_cache=tmp_path / "hf/hub") is None
