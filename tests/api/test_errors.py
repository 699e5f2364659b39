"""The one map from the domain's errors to HTTP (`error_map.status_for`) and the bodies and headers
the API answers them with (`api.errors.error_response`, `install_error_handlers`)."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from mediagen import errors
from mediagen.api.errors import error_response, install_error_handlers
from mediagen.engines.base import EngineError, InputError
from mediagen.engines.downloads import DownloadError
from mediagen.engines.webhook_signing import WebhookVerificationError
from mediagen.error_map import STATUS_FOR, status_for
from mediagen.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MalformedRequest,
    MediagenError,
    NotFound,
    PayloadTooLarge,
    ProviderRefused,
    RateLimited,
    Unauthenticated,
    Unavailable,
)

INTERNAL = {"detail": "Internal server error; the server log has the details"}

DOCUMENTED: list[tuple[MediagenError, int]] = [
    (MalformedRequest("body is not JSON"), 400),
    (Unauthenticated("missing X-API-Key"), 401),
    (Forbidden("admins only"), 403),
    (NotFound("audio 3 not found"), 404),
    (Conflict("already completed"), 409),
    (PayloadTooLarge("body over 100 MB"), 413),
    (InvalidInput("duration", "must be at most 30"), 422),
    (RateLimited("slow down", retry_after=12), 429),
    (ProviderRefused("bad token", kind="audio", generation_id=5), 502),
    (ProviderRefused("no credit", kind="audio", generation_id=5, payment=True), 503),
    (Unavailable("database is starting", retry_after=3), 503),
    (Unavailable("queue unreachable"), 503),
]


def body(response: JSONResponse) -> dict[str, Any]:
    data = json.loads(bytes(response.body))
    assert isinstance(data, dict)
    return data


def domain_classes() -> list[type[MediagenError]]:
    """Every error class `mediagen.errors` defines (the family's members, not the base)."""
    return [
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj)
        and issubclass(obj, MediagenError)
        and obj is not MediagenError
        and obj.__module__ == errors.__name__
    ]


# -- status_for --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status"), DOCUMENTED, ids=lambda v: type(v).__name__ if not isinstance(v, int) else str(v)
)
def test_every_domain_error_has_its_documented_status(exc: MediagenError, status: int) -> None:
    assert status_for(exc) == status
    assert error_response(exc).status_code == status


def test_every_error_class_in_the_domain_module_is_mapped() -> None:
    classes = domain_classes()
    assert len(classes) >= 10  # the list really was read
    mapped = {cls for cls, _ in STATUS_FOR}
    assert [c.__name__ for c in classes if c not in mapped] == []
    assert {type(exc) for exc, _ in DOCUMENTED} == set(classes)  # and each is tested above


def test_the_map_lists_the_most_specific_class_first() -> None:
    for i, (cls, _) in enumerate(STATUS_FOR):
        earlier = [other.__name__ for other, _ in STATUS_FOR[:i] if issubclass(cls, other)]
        assert earlier == [], f"{cls.__name__} is shadowed by {earlier}"


@pytest.mark.parametrize(
    "exc",
    [
        EngineError("httpx.ReadTimeout at /v1/predictions token=r8_secret", retryable=True),
        InputError("prompt: too long", field="prompt"),
        DownloadError("connect to 10.0.0.5 refused"),
        WebhookVerificationError("signature mismatch"),
        MediagenError("an error nobody mapped"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_unmapped_error_is_a_500_without_internals(exc: MediagenError) -> None:
    assert status_for(exc) == 500
    response = error_response(exc)
    assert response.status_code == 500
    assert body(response) == INTERNAL
    assert exc.message not in bytes(response.body).decode()
    assert "www-authenticate" not in response.headers and "retry-after" not in response.headers


# -- bodies and headers ------------------------------------------------------------------------------


def test_a_plain_error_is_a_detail() -> None:
    response = error_response(NotFound("audio 3 not found"))
    assert body(response) == {"detail": "audio 3 not found"}
    assert "retry-after" not in response.headers and "location" not in response.headers


def test_invalid_input_names_the_field() -> None:
    response = error_response(InvalidInput("parameters.duration", "must be at most 30"))
    assert response.status_code == 422
    assert body(response) == {
        "detail": "parameters.duration: must be at most 30",
        "errors": [{"field": "parameters.duration", "message": "must be at most 30"}],
    }


def test_any_error_with_a_field_lists_it() -> None:
    data = body(error_response(Conflict("already exists", field="id")))
    assert data == {"detail": "already exists", "errors": [{"field": "id", "message": "already exists"}]}


def test_rate_limited_and_unavailable_say_when_to_retry() -> None:
    limited = error_response(RateLimited("Rate limit: 10 per minute", retry_after=12))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "12"
    assert body(limited) == {"detail": "Rate limit: 10 per minute"}
    unavailable = error_response(Unavailable("prediction not recorded yet; retry", retry_after=1))
    assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "1"
    unknown = error_response(Unavailable("queue unreachable"))
    assert unknown.status_code == 503 and "retry-after" not in unknown.headers


def test_unauthenticated_asks_for_an_api_key() -> None:
    response = error_response(Unauthenticated("missing X-API-Key"))
    assert response.status_code == 401 and response.headers["www-authenticate"] == "APIKey"
    assert body(response) == {"detail": "missing X-API-Key"}


@pytest.mark.parametrize(
    ("kind", "path", "id_field"),
    [("audio", "audio", "audio_id"), ("image", "images", "image_id"), ("video", "videos", "video_id")],
)
def test_a_provider_refusal_points_at_the_failed_asset(kind: str, path: str, id_field: str) -> None:
    exc = ProviderRefused(
        "replicate refused the job: 401 (generation 42 failed)", kind=kind, generation_id=42
    )
    response = error_response(exc)
    assert response.status_code == 502
    assert response.headers["location"] == f"/api/{path}/42"
    assert body(response) == {
        "detail": "replicate refused the job: 401 (generation 42 failed)",
        "id": 42,
        id_field: 42,
        "status": "failed",
    }


# -- through a real FastAPI app ------------------------------------------------------------------------


class Item(BaseModel):
    duration: float
    prompt: str


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/invalid")
    def _invalid() -> None:
        raise InvalidInput("duration", "must be at most 30")

    @app.get("/refused")
    def _refused() -> None:
        raise ProviderRefused("no credit", kind="video", generation_id=9, payment=True)

    @app.get("/engine")
    def _engine() -> None:
        raise EngineError("Traceback: secret internals")

    @app.get("/bug")
    def _bug() -> None:
        raise ZeroDivisionError("secret internals")

    @app.get("/missing")
    def _missing() -> None:
        raise NotFound("audio 3 not found")

    @app.post("/items")
    def _items(item: Item) -> Item:
        return item

    return TestClient(app, raise_server_exceptions=False)


def test_a_route_raising_invalid_input_answers_422_json(client: TestClient) -> None:
    response = client.get("/invalid")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "detail": "duration: must be at most 30",
        "errors": [{"field": "duration", "message": "must be at most 30"}],
    }


def test_other_domain_errors_through_the_app(client: TestClient) -> None:
    assert client.get("/missing").json() == {"detail": "audio 3 not found"}
    refused = client.get("/refused")
    assert refused.status_code == 503 and refused.headers["location"] == "/api/videos/9"
    assert refused.json()["video_id"] == 9
    for path in ("/engine", "/bug"):
        response = client.get(path)
        assert response.status_code == 500 and response.json() == INTERNAL
        assert "secret" not in response.text


def test_request_validation_errors_share_the_shape(client: TestClient) -> None:
    response = client.post("/items", json={"duration": "long", "extra": 1})
    assert response.status_code == 422
    data = response.json()
    assert [e["field"] for e in data["errors"]] == ["duration", "prompt"]
    assert data["errors"][1]["message"] == "field required"
    assert data["detail"] == "; ".join(f"{e['field']}: {e['message']}" for e in data["errors"])

    malformed = client.post("/items", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["detail"].startswith("Malformed JSON body")
    empty = client.post("/items")
    assert empty.status_code == 400 and empty.json() == {"detail": "A JSON request body is required"}
    unknown = client.get("/nowhere")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}
