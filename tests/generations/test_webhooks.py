"""WebhookIntake with the webhooks the fake Replicate really sends.

The services are given a public URL, so the Replicate engine asks for signed webhooks; a small
receiver stands at that URL and records each delivery, and the test hands its headers and body to
`services.webhooks.signed(...)` exactly as the API route does (with the `gen` marker of its URL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.orm import Session

from mediagen.auth.service import Principal
from mediagen.engines.base import State
from mediagen.errors import Unauthenticated, Unavailable
from mediagen.generations.ports import Step
from mediagen.generations.provider import Also
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import WebhookDelivery
from mediagen.jobs.memory import Dispatched
from mediagen.services import Services
from mediagen.vocabulary import ProviderStatus, Status
from tests.fakes.replicate_server import ReceivedWebhook, Script, WebhookReceiver
from tests.generations.conftest import Hosted, reread, set_row

MUSICGEN = "meta/musicgen"
# Seconds on the fake's clock a prediction waits, then runs. Its webhooks are stamped with that clock,
# so all the advancing stays well inside the 300 s a signature's timestamp may be off by.
QUEUED_FOR = 30.0
RUNS_FOR = 60.0


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as rx:
        yield rx


@pytest.fixture
def hooked(hosted_factory: Callable[..., Hosted], receiver: WebhookReceiver) -> Hosted:
    public = receiver.url.split("/hooks/")[0]  # the receiver answers on any path
    return hosted_factory(public_url=public)


def marker(hook: ReceivedWebhook) -> str | None:
    return parse_qs(urlsplit(hook.path).query).get("gen", [None])[0]


def deliveries(receiver: WebhookReceiver, ref: str, *statuses: str) -> list[ReceivedWebhook]:
    """Wait for the webhooks of `ref` that carry `statuses` (in that order of arrival)."""

    def arrived(hooks: list[ReceivedWebhook]) -> bool:
        seen = [h.payload["status"] for h in hooks if h.payload.get("id") == ref]
        return all(s in seen for s in statuses)

    receiver.wait_for(arrived, timeout=10)
    hooks = receiver.for_prediction(ref)
    return [next(h for h in hooks if h.payload["status"] == s) for s in statuses]


def deliver(services: Services, hook: ReceivedWebhook, body: bytes | None = None) -> str:
    return services.webhooks.signed(
        "replicate", hook.headers, hook.body if body is None else body, marker(hook)
    )


def start(hooked: Hosted, *, finish: bool = True) -> tuple[int, str]:
    """A hosted generation, still "starting" when created; then the fake's clock moves on until it
    runs (the provider sends "start") and, with `finish`, past its end (it sends "completed")."""
    hooked.fake.scripts[MUSICGEN] = Script(start_after=QUEUED_FOR, run_for=RUNS_FOR)
    req = GenerateRequest(prompt="x", model=MUSICGEN)
    row, _ = hooked.services.generations.create(hooked.admin, "audio", req)
    assert row.provider_ref is not None and row.provider_status == ProviderStatus.STARTING
    hooked.fake.advance(QUEUED_FOR + 1)
    if finish:
        hooked.fake.advance(RUNS_FOR + 1)
    return row.id, row.provider_ref


@pytest.mark.timeout(60)
def test_signed_webhooks_drive_the_job_and_a_redelivery_is_a_duplicate(
    hooked: Hosted, receiver: WebhookReceiver
) -> None:
    services, queue = hooked.services, hooked.queue
    gen_id, ref = start(hooked)
    sent = hooked.fake.create_requests[0].json
    assert sent["webhook"].startswith(f"{services.settings.public_url}/api/webhooks/replicate?")
    assert sent["webhook_events_filter"] == ["start", "completed"]

    began, finished = deliveries(receiver, ref, "processing", "succeeded")
    assert marker(began) == marker(finished) == str(gen_id)
    assert deliver(services, began) == "applied"
    assert reread(services, gen_id).provider_status == ProviderStatus.PROCESSING
    assert deliver(services, finished) == "applied"
    assert queue.history == [Dispatched(Step.INGEST, gen_id, 0.0)]

    assert deliver(services, finished) == "duplicate"  # the same webhook-id again
    assert deliver(services, began) == "duplicate"
    assert queue.history == [Dispatched(Step.INGEST, gen_id, 0.0)]
    with services.db.read() as s:
        for hook in (began, finished):
            assert s.get(WebhookDelivery, hook.headers["webhook-id"]) is not None

    queue.drain(services.pipeline)
    assert reread(services, gen_id).status == Status.COMPLETED


@pytest.mark.timeout(60)
def test_a_late_start_webhook_after_completed_is_ignored(hooked: Hosted, receiver: WebhookReceiver) -> None:
    services, queue = hooked.services, hooked.queue
    gen_id, ref = start(hooked)
    began, finished = deliveries(receiver, ref, "processing", "succeeded")
    assert deliver(services, finished) == "applied"
    assert deliver(services, began) == "ignored"  # genuine and new, but older news
    row = reread(services, gen_id)
    assert (row.status, row.provider_status) == (Status.PROCESSING, ProviderStatus.SUCCEEDED)
    assert queue.history == [Dispatched(Step.INGEST, gen_id, 0.0)]


@pytest.mark.timeout(60)
def test_a_webhook_is_applied_and_recorded_in_one_write(
    hooked: Hosted, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = hooked.services
    gen_id, ref = start(hooked)
    began, finished = deliveries(receiver, ref, "processing", "succeeded")
    writes: list[int] = []
    real = services.db.write

    def counted() -> AbstractContextManager[Session]:
        writes.append(1)
        return real()

    monkeypatch.setattr(services.db, "write", counted)
    for hook, writes_before in ((began, 0), (finished, 1)):
        assert len(writes) == writes_before
        assert deliver(services, hook) == "applied"
    assert len(writes) == 2  # one each: the news and its delivery id together
    assert deliver(services, began) == "duplicate" and len(writes) == 2
    with services.db.read() as s:
        assert all(s.get(WebhookDelivery, h.headers["webhook-id"]) for h in (began, finished))
    assert reread(services, gen_id).provider_status == ProviderStatus.SUCCEEDED


@pytest.mark.timeout(60)
def test_the_delivery_id_commits_with_the_news_or_not_at_all(
    hooked: Hosted, receiver: WebhookReceiver
) -> None:
    services = hooked.services
    gen_id, ref = start(hooked)
    (finished,) = deliveries(receiver, ref, "succeeded")
    state = hooked.engine.read_webhook(finished.headers, finished.body)

    def broken(s: Session) -> None:
        raise RuntimeError("the delivery could not be written")

    with pytest.raises(RuntimeError):
        services.pipeline.provider.apply_state(gen_id, state, also=broken)
    row = reread(services, gen_id)  # the news was rolled back with it: a redelivery applies it
    assert row.provider_status != ProviderStatus.SUCCEEDED and hooked.queue.history == []
    assert deliver(services, finished) == "applied"
    assert hooked.queue.history == [Dispatched(Step.INGEST, gen_id, 0.0)]


@pytest.mark.timeout(60)
def test_twin_deliveries_at_the_same_moment_apply_once(
    hooked: Hosted, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = hooked.services
    gen_id, ref = start(hooked)
    (finished,) = deliveries(receiver, ref, "succeeded")
    provider = services.pipeline.provider
    real = provider.apply_state

    def twin_first(gen: int, state: State, *, also: Also | None = None) -> bool:
        # Both passed the duplicate check; the twin's transaction commits first.
        assert real(gen, state, also=also) is True
        return real(gen, state, also=also)

    monkeypatch.setattr(provider, "apply_state", twin_first)
    assert deliver(services, finished) == "duplicate"
    assert hooked.queue.history == [Dispatched(Step.INGEST, gen_id, 0.0)]
    assert reread(services, gen_id).provider_status == ProviderStatus.SUCCEEDED


@pytest.mark.timeout(60)
def test_a_tampered_body_is_unauthenticated_and_changes_nothing(
    hooked: Hosted, receiver: WebhookReceiver
) -> None:
    services = hooked.services
    gen_id, ref = start(hooked)
    (finished,) = deliveries(receiver, ref, "succeeded")
    forged = finished.body.replace(b'"succeeded"', b'"failed"', 1)
    assert forged != finished.body
    with pytest.raises(Unauthenticated, match="signature"):
        deliver(services, finished, forged)
    row = reread(services, gen_id)
    assert row.status == Status.PROCESSING and row.provider_status != ProviderStatus.FAILED
    assert hooked.queue.history == []
    assert deliver(services, finished) == "applied"  # the genuine one still counts afterwards


@pytest.mark.timeout(60)
def test_a_prediction_we_do_not_know_is_acknowledged(hooked: Hosted, receiver: WebhookReceiver) -> None:
    services = hooked.services
    gen_id, ref = start(hooked)
    (finished,) = deliveries(receiver, ref, "succeeded")
    services.generations.delete(hooked.admin, "audio", gen_id)  # deleted while it ran
    assert deliver(services, finished) == "unknown prediction"
    # Acknowledged, not recorded: nothing was applied (and without a marker it is no stray either).
    assert (
        services.webhooks.signed("replicate", finished.headers, finished.body, None) == "unknown prediction"
    )
    assert hooked.queue.history == []


@pytest.mark.timeout(60)
def test_a_webhook_that_beats_our_commit_asks_for_a_redelivery(
    hooked: Hosted, receiver: WebhookReceiver
) -> None:
    services = hooked.services
    gen_id, ref = start(hooked, finish=False)
    (began,) = deliveries(receiver, ref, "processing")
    # As it was between the provider's answer and our commit of its id.
    set_row(services, gen_id, status=Status.PENDING, provider_ref=None, provider_status=None)
    with pytest.raises(Unavailable) as exc:
        deliver(services, began)
    assert exc.value.retry_after == 1
    with services.db.read() as s:  # not recorded: the redelivery must be applied
        assert s.get(WebhookDelivery, began.headers["webhook-id"]) is None
    set_row(services, gen_id, status=Status.PROCESSING, provider_ref=ref)
    assert deliver(services, began) == "applied"


@pytest.mark.timeout(60)
def test_a_stray_duplicate_prediction_is_canceled_at_the_provider(
    hooked: Hosted, receiver: WebhookReceiver
) -> None:
    services, fake = hooked.services, hooked.fake
    gen_id, ref = start(hooked, finish=False)
    (began,) = deliveries(receiver, ref, "processing")
    set_row(services, gen_id, provider_ref="the-one-we-kept")  # ours, but a second create slipped through
    assert deliver(services, began) == "stray prediction canceled"
    assert fake.prediction_json(ref)["status"] == "canceled"
    assert len(fake.requests_to("POST", f"/v1/predictions/{ref}/cancel")) == 1
    row = reread(services, gen_id)
    assert row.status == Status.PROCESSING and row.provider_ref == "the-one-we-kept"


@pytest.mark.timeout(60)
def test_an_unfetchable_signing_secret_asks_for_a_redelivery(
    hooked: Hosted, receiver: WebhookReceiver
) -> None:
    services, fake = hooked.services, hooked.fake
    gen_id, ref = start(hooked)
    (finished,) = deliveries(receiver, ref, "succeeded")
    token = fake.token
    fake.token = "r8_rotated_" + "0" * 16  # the secret endpoint now answers 401
    with pytest.raises(Unavailable) as exc:
        deliver(services, finished)
    assert exc.value.retry_after == 5
    fake.token = token
    assert deliver(services, finished) == "applied"
    assert reread(services, gen_id).provider_status == ProviderStatus.SUCCEEDED


# -- without a signing engine, and token callbacks ------------------------------------------------


def test_signed_webhooks_for_an_engine_that_is_not_configured_are_refused(services: Services) -> None:
    with pytest.raises(Unauthenticated, match="Replicate is not configured"):
        services.webhooks.signed("replicate", {"webhook-id": "msg_1"}, b"{}", None)
    with pytest.raises(Unauthenticated):
        services.webhooks.signed("synth", {"webhook-id": "msg_1"}, b"{}", None)  # it does not sign


def test_token_callbacks_need_the_generations_own_token(services: Services, admin: Principal) -> None:
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="x", duration=1))
    assert row.webhook_token
    body = b'{"id": "p1", "status": "succeeded"}'
    with pytest.raises(Unauthenticated, match="wrong token"):
        services.webhooks.with_token("synth", row.id, "not-the-token", {}, body)
    with pytest.raises(Unauthenticated, match="wrong token"):
        services.webhooks.with_token("synth", row.id, "", {}, body)
    with pytest.raises(Unauthenticated):
        services.webhooks.with_token("synth", row.id + 1000, row.webhook_token, {}, body)  # no such row
    with pytest.raises(Unauthenticated):
        # The right token, but the callback claims to come from an engine this row does not run on.
        services.webhooks.with_token("cog", row.id, row.webhook_token, {}, body)
    assert reread(services, row.id).status == Status.PENDING
