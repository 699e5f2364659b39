"""The whole service on S3 storage: a generation's bytes land in the bucket, the API streams
them with Range, deleting the asset frees the object, and with MEDIAGEN_S3_PRESIGN the byte
routes answer with a presigned redirect after the same authorization."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mediagen.app import create_app
from mediagen.generations.ports import Step
from mediagen.services import Services
from mediagen.storage.s3 import S3BlobStore
from tests.generations.conftest import make_seeded_services
from tests.utils.s3 import S3Server


def service_on_s3(tmp_path: Path, server: S3Server, **settings: object) -> tuple[Services, TestClient]:
    services, _, admin = make_seeded_services(
        tmp_path / "data",
        storage_backend="s3",
        s3_bucket=f"svc-{secrets.token_hex(4)}",
        s3_endpoint_url=server.endpoint_url,
        s3_region="us-east-1",
        generate_rate_limit_per_minute=0,
        **settings,
    )
    _, token = services.auth.create_key(user_id=admin.user_id, name="t")
    return services, TestClient(
        create_app(services.settings, run_workers=False), headers={"X-API-Key": token}
    )


def make_audio(services: Services, api: TestClient) -> dict[str, object]:
    accepted = api.post("/api/v2/generate/audio", json={"prompt": "upbeat electronic", "duration": 2})
    assert accepted.status_code == 202, accepted.text
    services.pipeline.run(Step.SUBMIT, accepted.json()["id"])
    item = api.get(f"/api/audio/{accepted.json()['id']}").json()
    assert item["status"] == "completed", item
    return item


@pytest.fixture
def on_s3(tmp_path: Path, s3_endpoint: S3Server) -> Iterator[tuple[Services, TestClient]]:
    services, api = service_on_s3(tmp_path, s3_endpoint)
    with api:
        yield services, api
    services.close()


def test_generated_bytes_live_in_the_bucket_and_stream_with_ranges(
    on_s3: tuple[Services, TestClient],
) -> None:
    services, api = on_s3
    store = services.store
    assert isinstance(store, S3BlobStore)
    item = make_audio(services, api)
    whole = api.get(f"/api/audio/{item['id']}/data")
    assert whole.status_code == 200 and len(whole.content) == item["size_bytes"]
    listed = {o["Key"] for o in store.client.list_objects_v2(Bucket=store.bucket)["Contents"]}
    assert store.object_key(whole.headers["etag"].strip('"')) in listed
    part = api.get(f"/api/audio/{item['id']}/data", headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206 and part.content == whole.content[100:1124]
    waveform = api.get(f"/api/audio/{item['id']}/waveform")
    assert waveform.status_code == 200 and waveform.json()

    assert api.delete(f"/api/audio/{item['id']}").status_code == 204
    services.store.gc(grace_seconds=0)
    assert store.client.list_objects_v2(Bucket=store.bucket).get("KeyCount") == 0


def test_presigned_redirects_after_authorization(tmp_path: Path, s3_endpoint: S3Server) -> None:
    services, api = service_on_s3(tmp_path, s3_endpoint, s3_presign=True)
    with api:
        item = make_audio(services, api)
        answer = api.get(f"/api/audio/{item['id']}/data?download=true", follow_redirects=False)
        assert answer.status_code == 307 and answer.headers["cache-control"] == "private, no-store"
        location = answer.headers["location"]
        assert location.startswith(s3_endpoint.endpoint_url) and "X-Amz-Signature" in location
        fetched = httpx.get(location, headers={"Range": "bytes=0-99"})
        assert fetched.status_code == 206 and len(fetched.content) == 100
        assert httpx.get(location).headers["content-disposition"].startswith("attachment")
        # No key, no redirect: authorization comes first.
        anonymous = TestClient(create_app(services.settings, run_workers=False))
        assert anonymous.get(f"/api/audio/{item['id']}/data", follow_redirects=False).status_code == 401
    services.close()
