"""The submit step: claim a pending row with a lease, run or start it on its engine.

Inline engines finish here and their files go straight to ingest; remote engines answer with a
prediction reference that the provider step follows from then on.
"""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta

from mediagen.db.base import utcnow
from mediagen.engines.base import Engine, EngineError, Finished, InputError, Job, Submitted, WebhookAuth
from mediagen.generations.context import CoreContext
from mediagen.generations.ingest import IngestError, Ingestor
from mediagen.generations.inputs import InputMaterializer
from mediagen.generations.ports import Step
from mediagen.generations.provider import ProviderSync
from mediagen.generations.running import LeaseKeeper, RowControl
from mediagen.generations.tables import Generation
from mediagen.vocabulary import PROVIDER_TERMINAL, UPLOAD_ENGINE, Kind, ProviderStatus, Status

log = logging.getLogger("mediagen.pipeline")


class Submitter:
    def __init__(
        self, ctx: CoreContext, *, inputs: InputMaterializer, ingestor: Ingestor, provider: ProviderSync
    ) -> None:
        self.ctx = ctx
        self.inputs, self.ingestor, self.provider = inputs, ingestor, provider
        self.settings, self.db, self.rows, self.queue = ctx.settings, ctx.db, ctx.rows, ctx.queue

    def webhook_url(self, row: Generation, engine: Engine) -> str | None:
        """Where the provider should call back: signed callbacks need our public URL; token ones
        (a Cog server on our own network) fall back to the address we listen on."""
        style = engine.capabilities.webhooks
        if style is WebhookAuth.SIGNED:
            public = self.settings.public_url
            return f"{public.rstrip('/')}/api/webhooks/{engine.name}" if public else None
        if style is WebhookAuth.TOKEN:
            base = (self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}").rstrip(
                "/"
            )
            return f"{base}/api/webhooks/{engine.name}/{row.id}?token={row.webhook_token}"
        return None

    def _claim(self, gen_id: int) -> Generation | None:
        with self.db.write() as s:
            claimed = self.rows.claim(gen_id, self.ctx.workers.process_id, session=s)
            return s.get(Generation, gen_id) if claimed else None

    def submit(self, gen_id: int, *, inline: bool = False) -> None:
        """Claim and run one submission. `inline` (the API's request thread, for remote engines)
        re-raises what the caller must answer with: the provider's input errors and hard refusals."""
        row = self._claim(gen_id)
        if row is None:
            return  # someone else has it, or it already moved on
        if row.attempts > self.settings.max_attempts:
            self.rows.fail(gen_id, f"gave up after {row.attempts - 1} attempts: {row.error or 'no result'}")
            return
        engine = self.ctx.router.engine(row.engine)
        if engine is None:
            reason = (
                "the upload was interrupted before its bytes were stored; upload the file again"
                if row.engine == UPLOAD_ENGINE
                else f"engine {row.engine!r} is not configured on this server"
            )
            self.rows.fail(gen_id, reason)
            return
        workdir = self.ingestor.workdir(f"gen{gen_id}-")
        try:
            job = Job(
                generation_id=row.id,
                kind=Kind(row.kind),
                model_id=row.model_id,
                inputs=self.inputs.materialize(row, engine, workdir),
                workdir=workdir,
                webhook_url=self.webhook_url(row, engine),
                attempt=row.attempts,
                control=RowControl(self.rows, row.id),
            )
            if engine.capabilities.inline:
                with LeaseKeeper(self.rows, row.id, self.settings.lease_seconds):
                    result = engine.submit(job)
            else:
                result = self._recover(engine, job, row) or engine.submit(job)
            if isinstance(result, Finished):
                files = {o.role: (o.path, o.content_type) for o in result.outputs if o.path is not None}
                self.ingestor.complete(row, files, metadata=result.metadata, cost=result.cost_usd)
            else:
                self._started(row, result)
        except InputError as exc:
            if inline:
                raise
            self.rows.fail(gen_id, f"the model rejected an input: {exc}")
        except EngineError as exc:
            if exc.retryable and row.attempts < self.settings.max_attempts:
                self._retry_later(row, str(exc))
            else:
                self.rows.fail(gen_id, str(exc))
                if inline:
                    raise
        except IngestError as exc:  # a storage failure is worth another try; bad output is not
            if not exc.final and row.attempts < self.settings.max_attempts:
                self._retry_later(row, str(exc))
            else:
                self.rows.fail(gen_id, str(exc), download_error=str(exc))
        except Exception as exc:  # a bug in an engine must not leave the row stuck
            log.exception("generation %s: engine %s crashed", gen_id, row.engine)
            self.rows.fail(gen_id, f"{row.engine} engine error: {exc}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _retry_later(self, row: Generation, reason: str) -> None:
        """Back to pending with the reason shown, and submitted again after a growing delay."""
        self.rows.cas(
            row.id, (Status.PROCESSING,), status=Status.PENDING, error=reason, lease_until=self.rows.lease()
        )
        self.queue.dispatch(
            Step.SUBMIT, row.id, min(60.0, 2.0**row.attempts), lane=self.ctx.lane_for(row.engine)
        )

    def _started(self, row: Generation, result: Submitted) -> None:
        # A create can answer with a finished prediction (sync mode, or one adopted after an
        # ambiguous create). Its outputs are not in a Submitted, so record it as running and
        # poll at once: apply_state then sees the terminal state with its outputs.
        finished = result.provider_status in PROVIDER_TERMINAL
        self.rows.cas(
            row.id,
            (Status.PROCESSING,),
            provider_ref=result.ref,
            provider_status=ProviderStatus.PROCESSING if finished else result.provider_status,
            provider_input=result.provider_input,
            lease_until=self.rows.lease(),
            next_poll_at=utcnow() + timedelta(seconds=self.provider.poll_delay(row)),
        )
        if finished:
            self.queue.dispatch(Step.REFRESH, row.id)

    @staticmethod
    def _recover(engine: Engine, job: Job, row: Generation) -> Submitted | None:
        """After a crash between a provider's create and our commit, adopt the prediction that was
        made rather than start a second one (engines that can look it up say so)."""
        if row.attempts <= 1 or not engine.capabilities.recovers or not job.webhook_url:
            return None
        found = engine.find_existing(job, since=row.created_at)
        if found is not None:
            log.info("generation %s: adopting existing prediction %s", row.id, found.ref)
        return found
