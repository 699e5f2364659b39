"""Webhooks the fake Replicate actually sends, verified as the API's webhook route would.

A small HTTP receiver on 127.0.0.1 stands in for `POST /api/webhooks/replicate`; every body is
checked with the Standard Webhooks signature against the secret fetched from the API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mediagen.engines.base import Job
from mediagen.engines.replicate import ReplicateEngine
from mediagen.engines.webhook_signing import WebhookVerificationError, verify
from tests.fakes.replicate_server import FakeReplicate, ReceivedWebhook, Script, WebhookReceiver

pytestmark = pytest.mark.timeout(60)

MODEL = "meta/musicgen"


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        server.scripts[MODEL] = Script(start_after=0.02, run_for=0.05)
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as rx:
        yield rx


@pytest.fixture
def engine(fake: FakeReplicate, receiver: WebhookReceiver) -> Iterator[ReplicateEngine]:
    with ReplicateEngine(
        token=fake.token,
        base_url=fake.base_url,
        timeout=httpx.Timeout(5.0, connect=2.0),
        webhook_url=receiver.url,
        version_for=lambda m: fake.models[m].versions[0],
        is_official=lambda m: False,
        sleep=lambda s: None,
    ) as eng:
        yield eng


def submit(engine: ReplicateEngine, tmp_path: Path, generation_id: int = 7) -> str:
    return engine.submit(
        Job(
            generation_id=generation_id,
            kind="audio",
            model_id=MODEL,
            inputs={"prompt": "x"},
            workdir=tmp_path,
        )
    ).ref


def statuses(hooks: list[ReceivedWebhook]) -> list[str]:
    return [h.payload["status"] for h in hooks]


def test_start_and_completed_arrive_signed(
    engine: ReplicateEngine, fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    ref = submit(engine, tmp_path, generation_id=42)
    receiver.wait_for(lambda hooks: "succeeded" in statuses(hooks))
    hooks = receiver.for_prediction(ref)
    assert statuses(hooks) == ["processing", "succeeded"]  # start + completed, as filtered
    secret = engine.fetch_webhook_secret()
    for hook in hooks:
        verify(secret, hook.headers, hook.body)
        assert hook.headers["webhook-id"].startswith("msg_")
        assert "gen=42" in hook.path and "nonce=" in hook.path  # our tag came back on the URL
    state = engine.read_webhook(hooks[-1].headers, hooks[-1].body)
    assert state.ref == ref and state.status == "succeeded" and state.outputs[0].role == "main"
    assert len({h.headers["webhook-id"] for h in hooks}) == 2


def test_forged_signature_is_refused(
    engine: ReplicateEngine, fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    fake.forge_signatures = True
    ref = submit(engine, tmp_path)
    receiver.wait_for(lambda hooks: len(hooks) >= 2)
    for hook in receiver.for_prediction(ref):
        with pytest.raises(WebhookVerificationError, match="signature mismatch"):
            verify(fake.webhook_secret, hook.headers, hook.body)
        with pytest.raises(WebhookVerificationError):
            engine.read_webhook(hook.headers, hook.body)


def test_tampered_body_is_refused(engine: ReplicateEngine, receiver: WebhookReceiver, tmp_path: Path) -> None:
    submit(engine, tmp_path)
    receiver.wait_for(lambda hooks: "succeeded" in statuses(hooks))
    hook = receiver.received[-1]
    tampered = hook.body.replace(b'"succeeded"', b'"failed"   ')
    with pytest.raises(WebhookVerificationError):
        engine.read_webhook(hook.headers, tampered)


def test_stale_timestamp_is_refused(
    engine: ReplicateEngine, fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    fake.webhook_timestamp_offset_s = -900
    submit(engine, tmp_path)
    receiver.wait_for(lambda hooks: len(hooks) >= 2)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        engine.read_webhook(receiver.received[-1].headers, receiver.received[-1].body)


def test_configured_secret_is_used_without_fetching(
    fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    with ReplicateEngine(
        token=fake.token,
        base_url=fake.base_url,
        webhook_url=receiver.url,
        webhook_secret=fake.webhook_secret,
        version_for=lambda m: fake.models[m].versions[0],
        is_official=lambda m: False,
    ) as engine:
        submit(engine, tmp_path)
        receiver.wait_for(lambda hooks: len(hooks) >= 2)
        engine.read_webhook(receiver.received[-1].headers, receiver.received[-1].body)
    assert fake.requests_to("GET", "/v1/webhooks/default/secret") == []


def test_terminal_webhook_is_retried_with_same_id(
    engine: ReplicateEngine, fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    fake.scripts[MODEL] = Script(start_after=0.1, run_for=0.1)
    ref = submit(engine, tmp_path)
    receiver.wait_for(lambda hooks: len(hooks) >= 1)  # start arrived (and was answered 204)
    receiver.fail_next(2)  # the receiver is down for the next two deliveries
    receiver.wait_for(lambda hooks: statuses(hooks).count("succeeded") == 3)
    fake.wait_for(lambda: len(fake.deliveries(ref, "completed")) == 3)
    completed = [h for h in receiver.for_prediction(ref) if h.payload["status"] == "succeeded"]
    assert len({h.headers["webhook-id"] for h in completed}) == 1
    assert [d.status_code for d in fake.deliveries(ref, "completed")] == [500, 500, 204]
    for hook in completed:
        engine.read_webhook(hook.headers, hook.body)


def test_intermediate_webhook_is_not_retried(
    engine: ReplicateEngine, fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    receiver.fail_next(1)  # the `start` delivery fails
    ref = submit(engine, tmp_path)
    receiver.wait_for(lambda hooks: "succeeded" in statuses(hooks))
    time.sleep(0.2)
    assert statuses(receiver.for_prediction(ref)) == ["processing", "succeeded"]
    assert [d.attempt for d in fake.deliveries(ref, "start")] == [1]


def test_duplicates_share_webhook_id(
    engine: ReplicateEngine, fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    fake.duplicate_webhooks = True
    ref = submit(engine, tmp_path)
    receiver.wait_for(lambda hooks: statuses(hooks).count("succeeded") == 2)
    hooks = receiver.for_prediction(ref)
    assert statuses(hooks) == ["processing", "processing", "succeeded", "succeeded"]
    assert hooks[0].headers["webhook-id"] == hooks[1].headers["webhook-id"]
    assert hooks[2].headers["webhook-id"] == hooks[3].headers["webhook-id"]
    assert hooks[0].body == hooks[1].body


def test_out_of_order_delivers_completed_first(
    engine: ReplicateEngine, fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    fake.out_of_order_webhooks = True
    ref = submit(engine, tmp_path)
    receiver.wait_for(lambda hooks: len(hooks) >= 2)
    assert statuses(receiver.for_prediction(ref)) == ["succeeded", "processing"]


def test_lost_webhooks_leave_polling_to_find_the_result(
    engine: ReplicateEngine, fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    fake.drop_webhooks = True
    ref = submit(engine, tmp_path)
    fake.wait_for(lambda: fake.predictions[ref].status == "succeeded")
    time.sleep(0.1)
    assert receiver.received == []
    assert {d.error for d in fake.deliveries(ref)} == {"dropped by the fake"}
    assert engine.refresh(ref).status == "succeeded"


def test_only_some_events_dropped(
    engine: ReplicateEngine, fake: FakeReplicate, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    fake.drop_webhooks = {"completed"}
    ref = submit(engine, tmp_path)
    fake.wait_for(lambda: fake.predictions[ref].status == "succeeded")
    time.sleep(0.1)
    assert statuses(receiver.for_prediction(ref)) == ["processing"]


def test_all_events_when_asked(fake: FakeReplicate, receiver: WebhookReceiver) -> None:
    fake.webhook_throttle_s = 0
    with httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"}) as c:
        body = {
            "version": fake.models[MODEL].versions[0],
            "input": {"prompt": "x"},
            "webhook": receiver.url,
            "webhook_events_filter": ["start", "output", "logs", "completed"],
        }
        ref = c.post("/predictions", json=body).json()["id"]
    fake.wait_for(lambda: bool(fake.deliveries(ref, "completed")))
    events = [d.event for d in fake.deliveries(ref)]
    assert events[0] == "start" and "logs" in events and "output" in events and events[-1] == "completed"
