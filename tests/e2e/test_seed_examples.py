"""The seed's four curl examples, verbatim, against a fresh live server with no Replicate token."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, LiveServer

SEED = ROOT.parent / "shared" / "seed" / "audio-generation-system.md"
# The same four commands, in case the seed file is not beside the checkout.
EMBEDDED = [
    """curl -X POST http://localhost:8000/api/v2/generate/audio \\
  -H "X-API-Key: YOUR_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{
    "prompt": "upbeat electronic dance music with heavy bass",
    "campaign_id": "campaign_123",
    "duration": 10
  }'""",
    """curl -X POST http://localhost:8000/api/v2/generate/audio \\
  -H "X-API-Key: YOUR_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{
    "prompt": "ambient lo-fi hip hop beats",
    "campaign_id": "campaign_123",
    "model": "riffusion/riffusion"
  }'""",
    """curl http://localhost:8000/api/audio \\
  -H "X-API-Key: YOUR_KEY\"""",
    """curl "http://localhost:8000/api/audio?campaign_id=campaign_123&status=completed" \\
  -H "X-API-Key: YOUR_KEY\"""",
]


def seed_commands() -> list[str]:
    if not SEED.exists():
        return EMBEDDED
    blocks = re.findall(r"```bash\n(.*?)```", SEED.read_text(), flags=re.S)
    cmds = [b.strip() for b in blocks if b.strip().startswith("curl")]
    assert len(cmds) == 4
    return cmds


def run_curl(cmd: str, server: LiveServer) -> dict:
    cmd = cmd.replace("http://localhost:8000", server.url).replace("YOUR_KEY", server.admin_key or "")
    out = subprocess.run(
        ["bash", "-c", cmd + " --silent --show-error --fail-with-body"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, (cmd, out.stdout, out.stderr)
    return json.loads(out.stdout)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_seed_examples_verbatim(live_server: LiveServer) -> None:
    cmds = seed_commands()
    if SEED.exists():
        assert [c.split()[0] for c in cmds] == ["curl"] * 4
    with live_server.client() as c:
        c.post("/api/clients", json={"id": "seed-client", "name": "Seed"})
        assert (
            c.post(
                "/api/campaigns",
                json={"id": "campaign_123", "client_id": "seed-client", "name": "Seed campaign"},
            ).status_code
            == 201
        )

    first = run_curl(cmds[0], live_server)
    assert set(first) >= {"audio_id", "status", "model"}
    assert first["model"] == "synth/music" and first["engine"] == "synth"
    assert first["engine_label"] == "offline procedural"

    second = run_curl(cmds[1], live_server)
    assert second["model"] == "synth/music"
    assert second["requested_model"] == "riffusion/riffusion" and "offline draft" in second["notice"]

    for created in (first, second):
        item = live_server.wait_for("audio", created["audio_id"])
        assert item["status"] == "completed", item
        assert item["campaign_id"] == "campaign_123" and item["client_id"] == "seed-client"
    one = live_server.wait_for("audio", first["audio_id"])
    assert abs(one["duration"] - 10.0) < 0.1 and one["content_type"] == "audio/mpeg"
    assert one["audio_url"] == f"/api/audio/{first['audio_id']}/data"

    listed = run_curl(cmds[2], live_server)
    assert listed["total"] >= 2 and {first["audio_id"], second["audio_id"]} <= {
        a["id"] for a in listed["audio"]
    }
    filtered = run_curl(cmds[3], live_server)
    assert {a["audio_id"] for a in filtered["audio"]} == {first["audio_id"], second["audio_id"]}
    assert all(a["status"] == "completed" and a["campaign_id"] == "campaign_123" for a in filtered["audio"])
    keys = {
        "id",
        "prompt",
        "audio_url",
        "model_id",
        "parameters",
        "status",
        "created_at",
        "collection",
        "metadata",
        "download_attempted",
        "download_retries",
        "download_error",
        "brief_id",
        "client_id",
        "campaign_id",
        "duration",
    }
    assert keys <= set(filtered["audio"][0])


def test_seed_file_matches_embedded_copy() -> None:
    if not SEED.exists():
        pytest.skip("seed not beside the checkout")
    assert [" ".join(c.split()) for c in seed_commands()] == [" ".join(c.split()) for c in EMBEDDED]
