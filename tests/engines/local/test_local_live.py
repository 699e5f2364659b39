"""A local model through `mediagen serve` as a user runs it: the device queue is a real huey queue
consumed inside the server, and two requests sent together come back as one batch."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import LiveServer
from tests.engines.local.tiny_musicgen import save_tiny_musicgen


def test_local_jobs_run_on_the_servers_device_queue_in_one_batch(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    models = tmp_path / "models"
    save_tiny_musicgen(models)
    server = server_factory(
        MEDIAGEN_MODELS_DIR=str(models), MEDIAGEN_LOCAL_BATCH_WINDOW_MS="1500", MEDIAGEN_LOCAL_DEVICE="cpu"
    )
    body = {"model": "local/musicgen-small", "prompt": "upbeat electronic", "duration": 1}

    def post(seed: int) -> int:
        with server.client() as c:
            res = c.post("/api/v2/generate/audio", json={**body, "seed": seed})
            assert res.status_code == 202, res.text
            return int(res.json()["audio_id"])

    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(post, [1, 2]))
    items = [server.wait_for("audio", i, timeout=120) for i in ids]
    assert [i["status"] for i in items] == ["completed", "completed"], [i["error"] for i in items]
    assert items[0]["metadata"]["batch_id"] == items[1]["metadata"]["batch_id"]
    assert [i["metadata"]["batch_size"] for i in items] == [2, 2]
    assert all(i["duration"] and abs(i["duration"] - 1.0) < 0.05 for i in items)
    with server.client() as c:
        assert c.get(f"/api/audio/{ids[0]}/data").status_code == 200
