"""The heartbeat: re-dispatch whatever lost its worker or is due a poll; fail what ran out of
chances; collect blobs nothing references; prune old events."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import select

from mediagen.db.base import utcnow
from mediagen.generations.context import CoreContext
from mediagen.generations.event_stream import EventStream
from mediagen.generations.ports import Step
from mediagen.generations.tables import Generation
from mediagen.vocabulary import ACTIVE, ProviderStatus, Status

log = logging.getLogger("mediagen.pipeline")
GC_GRACE_SECONDS = 3600
PRUNE_EVENTS_EVERY_S = 300.0  # one bounded DELETE per process every few minutes is plenty


class Reconciler:
    def __init__(self, ctx: CoreContext) -> None:
        self.ctx = ctx
        self.workers = ctx.workers
        self.settings, self.db, self.rows, self.store, self.queue = (
            ctx.settings,
            ctx.db,
            ctx.rows,
            ctx.store,
            ctx.queue,
        )
        self.events = EventStream(ctx.db)
        self._events_pruned_at = float("-inf")

    def collect_garbage(self) -> None:
        """Bytes nobody references (a lost race, a crash between put and commit) go after a grace
        period; done here, on the heartbeat, never inline with a delete."""
        report = self.store.gc(grace_seconds=GC_GRACE_SECONDS)
        log.debug("blob gc: %s", report)
        pages = self.db.reclaim_space()
        if pages:
            log.info("gave %s free database pages back to the disk", pages)

    def reconcile(self, *, limit: int = 500) -> int:
        now = utcnow()
        count = 0
        max_age = timedelta(seconds=self.settings.max_run_seconds)
        released = self.workers.release_dead(now)
        if released:
            log.info("reconcile: took back %s job(s) from workers that died", released)
        with self.db.read() as s:
            expired = s.scalars(
                select(Generation)
                .where(Generation.status.in_(ACTIVE), Generation.lease_until < now)
                .limit(limit)
            ).all()
            due = s.scalars(
                select(Generation.id)
                .where(Generation.status == Status.PROCESSING, Generation.next_poll_at <= now)
                .limit(limit)
            ).all()
        for r in expired:
            count += 1
            if now - r.created_at > max_age:
                self.rows.fail(r.id, f"no result within {self.settings.max_run_seconds} s; giving up")
            elif r.provider_ref is None:
                self._requeue(r, now)
            elif r.provider_status == ProviderStatus.SUCCEEDED:
                self.rows.cas(r.id, (Status.PROCESSING,), lease_until=self.rows.lease())
                self.queue.dispatch(Step.INGEST, r.id)
            else:
                self.rows.cas(r.id, (Status.PROCESSING,), lease_until=self.rows.lease())
                self.queue.dispatch(Step.REFRESH, r.id)
        polled = {r.id for r in expired}
        for gid in due:
            if gid in polled:
                continue  # handled above, as an expired lease
            if self.rows.cas(gid, (Status.PROCESSING,), next_poll_at=now + timedelta(seconds=30)):
                count += 1
                self.queue.dispatch(Step.REFRESH, gid)
        self.prune_events()
        return count

    def prune_events(self, *, force: bool = False) -> int:
        """Events older than `events_keep_days` go (streams resume only within that window);
        at most one batch every `PRUNE_EVENTS_EVERY_S`, so the heartbeat stays cheap."""
        now = time.monotonic()
        if not force and now - self._events_pruned_at < PRUNE_EVENTS_EVERY_S:
            return 0
        self._events_pruned_at = now
        pruned = self.events.prune(self.settings.events_keep_days)
        if pruned:
            log.info("pruned %s events older than %s days", pruned, self.settings.events_keep_days)
        return pruned

    def _requeue(self, row: Generation, now: datetime) -> None:
        gen_id, status, attempts = row.id, row.status, row.attempts
        if attempts >= self.settings.max_attempts and status == Status.PROCESSING:
            self.rows.fail(gen_id, f"gave up after {attempts} attempts: the worker stopped (lease expired)")
            return
        # Its worker is gone: back in the queue, with a fresh lease for the next claimant.
        requeued = self.rows.cas(
            gen_id,
            ACTIVE,
            Generation.provider_ref.is_(None),
            Generation.lease_until < now,
            status=Status.PENDING,
            lease_until=self.rows.lease(),
        )
        if requeued:
            self.queue.dispatch(Step.SUBMIT, gen_id, lane=self.ctx.lane_for(row.engine))
