"""Following a remote prediction: what a provider says (webhook or poll) moves the row forward.

Provider events can arrive twice, late, or out of order ("start" after "completed"); an event
counts only if it is later in the lifecycle than what the row holds (`state.provider_advances`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from mediagen.db.base import utcnow
from mediagen.engines.base import EngineError, State, WebhookAuth
from mediagen.generations.context import CoreContext
from mediagen.generations.costs import hosted_cost
from mediagen.generations.ingest import Ingestor
from mediagen.generations.ports import Step
from mediagen.generations.state import provider_advances, status_for_provider
from mediagen.generations.tables import Generation
from mediagen.vocabulary import ACTIVE, PROVIDER_TERMINAL, ProviderStatus, Status

Also = Callable[[Session], None]
"""A caller's own write, made in the transaction that applies the provider's news."""

_TERMINAL_ERRORS = {
    ProviderStatus.FAILED: "the model failed without an error message",
    ProviderStatus.CANCELED: "canceled at the provider",
    ProviderStatus.ABORTED: "aborted: the provider's deadline passed before the prediction started",
}


class ProviderSync:
    def __init__(self, ctx: CoreContext, ingestor: Ingestor) -> None:
        self.ctx = ctx
        self.ingestor = ingestor
        self.settings, self.db, self.rows, self.queue = ctx.settings, ctx.db, ctx.rows, ctx.queue

    def poll_delay(self, row: Generation) -> float:
        age = (utcnow() - row.created_at).total_seconds()
        base = 2.0 if age < 30 else 5.0 if age < 300 else 15.0
        # With signed webhooks on, polling is only the safety net for a lost delivery.
        engine = self.ctx.router.engine(row.engine)
        signed = engine is not None and engine.capabilities.webhooks is WebhookAuth.SIGNED
        return base * 5 if signed and self.settings.public_url else base

    def refresh(self, gen_id: int) -> None:
        """The refresh step: ask the provider (a late webhook, or no webhooks at all)."""
        row = self.rows.get(gen_id)
        if row is None or row.status != Status.PROCESSING or row.provider_ref is None:
            return
        if row.provider_status == ProviderStatus.SUCCEEDED:
            self.queue.dispatch(Step.INGEST, gen_id)
            return
        engine = self.ctx.router.engine(row.engine)
        if engine is None:
            self.rows.fail(gen_id, f"engine {row.engine!r} is not configured on this server")
            return
        try:
            state = engine.refresh(row.provider_ref)
        except EngineError as exc:
            attempts = row.attempts + 1
            if not exc.retryable or attempts > self.settings.max_attempts:
                self.rows.fail(gen_id, str(exc))
            else:
                self.rows.cas(
                    gen_id,
                    (Status.PROCESSING,),
                    attempts=attempts,
                    error=str(exc),
                    next_poll_at=utcnow() + timedelta(seconds=min(60.0, 2.0**attempts)),
                )
            return
        self.apply_state(gen_id, state)

    def apply_state(self, gen_id: int, state: State, *, also: Also | None = None) -> bool:
        """Apply what a provider says (webhook or poll); returns whether it was news. `also` writes
        the caller's own record of it (a webhook's delivery id) in the same transaction, so the
        news and that record commit together or not at all."""
        row = self.rows.get(gen_id)
        if row is None or row.status not in ACTIVE:
            self._write(also, row, state)
            return False
        if not provider_advances(row.provider_status, state.status):
            if state.status in (ProviderStatus.STARTING, ProviderStatus.PROCESSING):
                with self._applying(also) as s:
                    self.rows.cas(
                        gen_id,
                        (Status.PROCESSING,),
                        session=s,
                        lease_until=self.rows.lease(),
                        next_poll_at=utcnow() + timedelta(seconds=self.poll_delay(row)),
                    )
            else:
                self._write(also, row, state)
            return False
        if state.status == ProviderStatus.SUCCEEDED:
            return self._succeeded(row, state, also)
        if state.status in PROVIDER_TERMINAL:
            with self._applying(also) as s:
                return self.rows.finish(
                    gen_id,
                    status_for_provider(state.status),
                    self.rows.provider_earlier_than(state.status),
                    session=s,
                    error=state.error or _TERMINAL_ERRORS[ProviderStatus(state.status)],
                    provider_status=state.status,
                    # A failed run is billed for the time it ran too.
                    **self._late_cost(row, state),
                )
        with self._applying(also) as s:
            return self.rows.cas_provider(
                gen_id,
                state.status,
                session=s,
                status=Status.PROCESSING,
                provider_status=state.status,
                lease_until=self.rows.lease(),
                next_poll_at=utcnow() + timedelta(seconds=self.poll_delay(row)),
            )

    @contextmanager
    def _applying(self, also: Also | None) -> Iterator[Session]:
        """The write transaction of a move, with the caller's `also` written in it too."""
        with self.db.write() as s:
            yield s
            if also is not None:
                also(s)

    def _write(self, also: Also | None, row: Generation | None = None, state: State | None = None) -> None:
        """`also` alone, when the news moves nothing; with the cost figures it brought, if any
        (a finished prediction's metrics, after the news that it finished)."""
        cost = self._late_cost(row, state) if row is not None and state is not None else {}
        if also is None and not cost:
            return
        with self._applying(also) as s:
            if row is not None and cost:
                s.execute(
                    update(Generation)
                    .where(Generation.id == row.id, Generation.compute_seconds.is_(None))
                    .values(**cost)
                )

    def _late_cost(self, row: Generation | None, state: State) -> dict[str, Any]:
        """The cost figures a finished prediction's news carries, for a row that lacks them."""
        if row is None or state.status not in PROVIDER_TERMINAL or row.compute_seconds is not None:
            return {}
        return hosted_cost(
            self.ctx.catalog, row, state.metrics, succeeded=state.status == ProviderStatus.SUCCEEDED
        )

    def _succeeded(self, row: Generation, state: State, also: Also | None) -> bool:
        if state.data_removed or not state.outputs:
            failed = self.rows.fail(
                row.id,
                "the provider deleted the output before it was downloaded"
                if state.data_removed
                else "the model finished without an output",
                provider_status=ProviderStatus.SUCCEEDED,
                download_error="data_removed" if state.data_removed else None,
                **self._late_cost(row, state),  # billed all the same
            )
            self._write(also)
            return failed
        # Before the transaction: an inline output goes into the blob store (its own writes).
        outputs = [self.ingestor.stash_inline(o) for o in state.outputs]
        meta = dict(row.meta)
        meta["outputs"] = [{"role": o.role, "url": o.url, "content_type": o.content_type} for o in outputs]
        if state.metrics:
            meta["provider_metrics"] = state.metrics
        not_final = or_(
            Generation.provider_status.is_(None), Generation.provider_status.notin_(tuple(PROVIDER_TERMINAL))
        )
        with self._applying(also) as s:
            moved = self.rows.cas(
                row.id,
                ACTIVE,
                not_final,
                session=s,
                status=Status.PROCESSING,
                provider_status=ProviderStatus.SUCCEEDED,
                meta=meta,
                lease_until=self.rows.lease(),
                next_poll_at=None,
                **hosted_cost(self.ctx.catalog, row, state.metrics),
            )
        if moved:  # after the commit, so the ingest task finds the outputs
            self.queue.dispatch(Step.INGEST, row.id)
        return moved
