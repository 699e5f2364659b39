"""The fake Replicate server itself: the protocol details other tests rely on."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fakes.replicate_server import FakeReplicate, Script, default_content, parse_duration

pytestmark = pytest.mark.timeout(60)

MUSICGEN = "meta/musicgen"
FLUX = "black-forest-labs/flux-schnell"


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        server.default_script = Script(start_after=0.02, run_for=0.05)
        yield server


@pytest.fixture
def client(fake: FakeReplicate) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"}) as c:
        yield c


def musicgen_body(fake: FakeReplicate, **inputs: object) -> dict[str, object]:
    return {"version": fake.models[MUSICGEN].versions[0], "input": inputs or {"prompt": "x"}}


def test_auth_bearer_token_or_401(fake: FakeReplicate) -> None:
    assert fake.base_url.endswith("/v1")
    missing = httpx.get(f"{fake.base_url}/predictions")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["title"] == "Unauthenticated"
    wrong = httpx.get(f"{fake.base_url}/predictions", headers={"Authorization": "Bearer r8_nope"})
    assert wrong.status_code == 401
    legacy = httpx.get(f"{fake.base_url}/predictions", headers={"Authorization": f"Token {fake.token}"})
    assert legacy.status_code == 200


def test_create_answers_201_with_location(fake: FakeReplicate, client: httpx.Client) -> None:
    r = client.post("/predictions", json=musicgen_body(fake))
    assert r.status_code == 201
    body = r.json()
    assert r.headers["location"] == f"{fake.base_url}/predictions/{body['id']}"
    assert len(body["id"]) == 26 and body["status"] == "starting" and body["output"] is None
    assert body["urls"]["get"] == r.headers["location"]
    assert body["version"] == fake.models[MUSICGEN].versions[0]


def test_version_forms(fake: FakeReplicate, client: httpx.Client) -> None:
    version = fake.models[MUSICGEN].versions[0]
    assert (
        client.post("/predictions", json={"version": f"{MUSICGEN}:{version}", "input": {}}).status_code == 201
    )
    assert (
        client.post("/predictions", json={"version": FLUX, "input": {"prompt": "x"}}).json()["version"]
        == "hidden"
    )
    refused = client.post("/predictions", json={"version": MUSICGEN, "input": {}})  # not official
    assert refused.status_code == 422 and "Invalid version" in refused.json()["title"]
    missing = client.post("/predictions", json={"input": {}})
    assert missing.status_code == 422 and missing.json()["invalid_fields"][0]["field"] == "version"
    assert client.post(f"/models/{MUSICGEN}/predictions", json={"input": {}}).status_code == 422
    assert client.post("/models/nobody/nothing/predictions", json={"input": {}}).status_code == 404


def test_deployment_route(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.deployments["acme/music"] = MUSICGEN
    r = client.post("/deployments/acme/music/predictions", json={"input": {"prompt": "x"}})
    assert r.status_code == 201 and r.json()["deployment"] == "acme/music"
    assert client.post("/deployments/acme/none/predictions", json={"input": {}}).status_code == 404


def test_prefer_wait_returns_finished_prediction(fake: FakeReplicate, client: httpx.Client) -> None:
    r = client.post("/predictions", json=musicgen_body(fake), headers={"Prefer": "wait=5"})
    assert r.status_code == 201 and r.headers["preference-applied"] == "wait=5"
    assert r.json()["status"] == "succeeded" and r.json()["output"].startswith("http")


def test_prefer_wait_runs_out(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.scripts[MUSICGEN] = Script(start_after=0, run_for=30)
    fake.prefer_wait_max = 1
    r = client.post("/predictions", json=musicgen_body(fake), headers={"Prefer": "wait"})
    assert r.status_code == 201 and r.headers["preference-applied"] == "wait=1"
    assert r.json()["status"] == "processing" and r.json()["output"] is None


def test_prefer_wait_can_inline_data_urls(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.scripts[FLUX] = Script(start_after=0, run_for=0.02, inline_when_waited=True, count=1)
    r = client.post(
        f"/models/{FLUX}/predictions", json={"input": {"prompt": "x"}}, headers={"Prefer": "wait=5"}
    )
    assert r.json()["output"][0].startswith("data:image/png;base64,")


def test_output_early_shows_processing_with_output(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.scripts[MUSICGEN] = Script(start_after=0, run_for=0.6, output_early=True)
    ref = client.post("/predictions", json=musicgen_body(fake)).json()["id"]
    fake.wait_for(lambda: fake.predictions[ref].output is not None)
    body = client.get(f"/predictions/{ref}").json()
    assert body["status"] == "processing" and body["output"] and body["completed_at"] is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1m30s", 90),
        ("1h2m3s", 3723),
        ("", None),
        ("5x", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_cancel_after_validated_and_sets_deadline(fake: FakeReplicate, client: httpx.Client) -> None:
    assert (
        client.post("/predictions", json=musicgen_body(fake), headers={"Cancel-After": "1s"}).status_code
        == 422
    )
    assert (
        client.post("/predictions", json=musicgen_body(fake), headers={"Cancel-After": "soon"}).status_code
        == 422
    )
    r = client.post("/predictions", json=musicgen_body(fake), headers={"Cancel-After": "1m30s"})
    created = datetime.fromisoformat(r.json()["created_at"])
    deadline = datetime.fromisoformat(r.json()["deadline"])
    assert deadline - created == pytest.approx(timedelta(seconds=90), abs=timedelta(seconds=1))


def test_list_is_paginated_newest_first_with_filters(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.page_size = 2
    ids = []
    for _ in range(5):
        ids.append(client.post("/predictions", json=musicgen_body(fake)).json()["id"])
        time.sleep(0.002)
    seen: list[str] = []
    page = client.get("/predictions").json()
    assert page["previous"] is None
    while True:
        seen += [p["id"] for p in page["results"]]
        assert all("logs" not in p for p in page["results"])
        if page["next"] is None:
            break
        page = client.get(page["next"]).json()
    assert seen == ids[::-1]
    cutoff = fake.predictions[ids[3]].created
    after = datetime.fromtimestamp(cutoff, UTC).isoformat()
    filtered = client.get("/predictions", params={"created_after": after}).json()
    assert [p["id"] for p in filtered["results"]] == [ids[4], ids[3]] and filtered["next"] is None


def test_unknown_prediction_is_404_problem(client: httpx.Client) -> None:
    r = client.get("/predictions/nope")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_models_and_versions(fake: FakeReplicate, client: httpx.Client) -> None:
    model = client.get(f"/models/{FLUX}").json()
    assert model["is_official"] is True and model["owner"] == "black-forest-labs"
    schemas = model["latest_version"]["openapi_schema"]["components"]["schemas"]
    assert schemas["Output"]["type"] == "array" and "prompt" in schemas["Input"]["required"]
    versions = client.get(f"/models/{FLUX}/versions").json()["results"]
    assert versions[0]["id"] == model["latest_version"]["id"]
    assert client.get(f"/models/{FLUX}/versions/{'0' * 64}").status_code == 404


def test_files_round_trip(fake: FakeReplicate, client: httpx.Client) -> None:
    r = client.post(
        "/files", files={"content": ("a.txt", b"hello", "text/plain")}, data={"metadata": '{"k": 1}'}
    )
    assert r.status_code == 201
    obj = r.json()
    assert obj["size"] == 5 and obj["metadata"] == {"k": 1} and obj["content_type"] == "text/plain"
    assert client.get(obj["urls"]["get"]).json()["id"] == obj["id"]
    assert client.get(f"/files/{obj['id']}/download").content == b"hello"
    assert [f["id"] for f in client.get("/files").json()["results"]] == [obj["id"]]
    assert client.delete(f"/files/{obj['id']}").status_code == 204
    assert client.get(obj["urls"]["get"]).status_code == 404


def test_failure_knobs_answer_like_replicate(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.fail_next_create(429, ratelimit_reset=12, retry_after="3")
    r = client.post("/predictions", json=musicgen_body(fake))
    assert r.status_code == 429 and r.headers["ratelimit-reset"] == "12" and r.headers["retry-after"] == "3"
    assert "throttled" in r.json()["detail"]
    fake.fail_next_create(422)
    r = client.post("/predictions", json=musicgen_body(fake))
    assert r.json()["invalid_fields"][0]["field"] == "input.output_format"
    assert r.json()["detail"].startswith("- input.output_format: ")
    fake.fail_next_create(503)
    assert client.post("/predictions", json=musicgen_body(fake)).status_code == 503
    assert fake.predictions == {}
    assert len(fake.create_requests) == 3


def test_data_removal_after_ttl(fake: FakeReplicate, client: httpx.Client) -> None:
    fake.data_ttl_s = 0.3
    ref = client.post("/predictions", json=musicgen_body(fake)).json()["id"]
    fake.wait_for(lambda: fake.predictions[ref].status == "succeeded")
    url = client.get(f"/predictions/{ref}").json()["output"]
    assert httpx.get(url).status_code == 200
    fake.wait_for(lambda: fake.predictions[ref].data_removed)
    body = client.get(f"/predictions/{ref}").json()
    assert body["data_removed"] is True and body["output"] is None
    assert httpx.get(url).status_code == 404
    fake.expired_status = 410
    assert httpx.get(url).status_code == 410


def test_default_content_is_valid_media() -> None:
    wav, ctype, ext = default_content("audio")
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() > 0 and (ctype, ext) == ("audio/wav", "wav")
    from PIL import Image

    png, ctype, _ = default_content("image")
    assert Image.open(io.BytesIO(png)).size == (16, 16) and ctype == "image/png"
    import av

    mp4, ctype, _ = default_content("video")
    with av.open(io.BytesIO(mp4)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 4 and ctype == "video/mp4"


def test_requests_are_recorded_with_bodies(fake: FakeReplicate, client: httpx.Client) -> None:
    client.post("/predictions", json=musicgen_body(fake, prompt="recorded"), headers={"X-Trace": "1"})
    [rec] = fake.create_requests
    assert rec.json["input"] == {"prompt": "recorded"} and rec.headers["x-trace"] == "1"
