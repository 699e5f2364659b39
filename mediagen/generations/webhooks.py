"""Provider callbacks, as a use case: verify, de-duplicate, apply, and stop strays.

Signed callbacks (Replicate's Standard Webhooks) are verified by the engine, which owns the
signing secret and its rotation; token callbacks (a Cog server, which cannot sign) carry an
unguessable per-generation token that is checked here. Both end in `ProviderSync.apply_state`,
which is idempotent and order-safe, so a redelivery is harmless even past the de-duplication.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mediagen.db.session import Database
from mediagen.engines.base import Engine, EngineError, WebhookAuth
from mediagen.engines.webhook_signing import WebhookVerificationError
from mediagen.errors import Unauthenticated, Unavailable
from mediagen.generations.pipeline import Pipeline
from mediagen.generations.routing import EngineRouter
from mediagen.generations.tables import Generation, WebhookDelivery
from mediagen.vocabulary import ACTIVE, ProviderStatus

log = logging.getLogger("mediagen.webhooks")


class WebhookIntake:
    def __init__(self, *, database: Database, router: EngineRouter, pipeline: Pipeline) -> None:
        self.db = database
        self.router = router
        self.pipeline = pipeline

    def _engine(self, name: str, auth: WebhookAuth) -> Engine:
        engine = self.router.engine(name)
        if engine is None or engine.capabilities.webhooks is not auth:
            raise Unauthenticated(f"{name.capitalize()} is not configured on this server")
        return engine

    def signed(self, engine_name: str, headers: Mapping[str, str], body: bytes, marker: str | None) -> str:
        """A signed prediction event; returns what was done with it (for the response body)."""
        engine = self._engine(engine_name, WebhookAuth.SIGNED)
        try:
            state = engine.read_webhook(headers, body)
        except WebhookVerificationError as exc:
            raise Unauthenticated(f"webhook signature rejected: {exc}") from exc
        except EngineError as exc:  # the signing secret could not be fetched: ask for a redelivery
            raise Unavailable(f"could not fetch the webhook signing secret: {exc}", retry_after=5) from exc
        webhook_id = headers.get("webhook-id", "")
        with self.db.read() as s:
            if s.get(WebhookDelivery, webhook_id) is not None:
                return "duplicate"
            gen_id = s.scalar(
                select(Generation.id).where(
                    Generation.provider_ref == state.ref, Generation.engine == engine_name
                )
            )
            marked = int(marker) if marker and marker.isdigit() else None
            ours = s.get(Generation, marked) if marked is not None and gen_id is None else None
        if ours is not None and ours.provider_ref is None and ours.status in ACTIVE:
            # The webhook beat our own commit of the prediction id; ask the provider to deliver again.
            raise Unavailable("prediction not recorded yet; retry", retry_after=1)
        if gen_id is None:
            if marked is not None and state.status in (ProviderStatus.STARTING, ProviderStatus.PROCESSING):
                return self._cancel_stray(engine, state.ref)
            return "unknown prediction"  # acknowledged so it is not retried: not ours, or deleted

        def delivered(s: Session) -> None:
            s.add(WebhookDelivery(webhook_id=webhook_id))

        # The delivery id is written in the transaction that applies it: a crash cannot record one
        # without the other, and the webhook costs one write instead of two.
        try:
            applied = self.pipeline.provider.apply_state(gen_id, state, also=delivered)
        except IntegrityError:
            with self.db.read() as s:
                if s.get(WebhookDelivery, webhook_id) is None:
                    raise  # not the delivery id: a real error
            return "duplicate"  # its twin, delivered at the same moment, was applied just now
        return "applied" if applied else "ignored"

    def _cancel_stray(self, engine: Engine, ref: str) -> str:
        """Ours (the marker says which generation) but not the prediction that generation kept: a
        duplicate create that slipped through. Stop paying for it."""
        if not engine.capabilities.cancels:
            return "unknown prediction"
        try:
            engine.cancel(ref)
        except Exception as exc:  # best effort; it will finish and be ignored anyway
            log.warning("could not cancel stray prediction %s: %s", ref, exc)
        return "stray prediction canceled"

    def with_token(
        self, engine_name: str, gen_id: int, token: str, headers: Mapping[str, str], body: bytes
    ) -> str:
        """A callback that proves itself with the generation's own token in its URL."""
        with self.db.read() as s:
            row = s.get(Generation, gen_id)
        expected = (row.webhook_token if row else None) or ""
        # A row without a token (an upload) takes no callbacks at all: an empty token never passes.
        if row is None or not expected or not hmac.compare_digest(expected.encode(), token.encode()):
            raise Unauthenticated("unknown generation or wrong token")
        engine = self.router.engine(row.engine)
        if engine is None or engine.name != engine_name:
            raise Unauthenticated("unknown generation or wrong token")
        state = engine.read_webhook(headers, body)
        if row.provider_ref and state.ref and state.ref != row.provider_ref:
            return "stale prediction"
        return "applied" if self.pipeline.apply_state(gen_id, state) else "ignored"
