"""The job steps every generation goes through, whatever its kind or engine, behind one facade.

submit → (inline engines) ingest → completed
submit → (remote engines) provider ref → webhook or poll → apply_state → ingest → completed

Each step lives in its own module (`submit`, `inputs`, `provider`, `ingest`, `reconcile`) and
changes rows only by compare-and-set (`leases`), so a task that runs twice, late, or after a
crash does no harm. The pipeline is also the queue's `StepRunner`: a task is a step and an id.
"""

from __future__ import annotations

from pathlib import Path

from mediagen.engines.base import State
from mediagen.generations.context import CoreContext
from mediagen.generations.ingest import Ingestor
from mediagen.generations.inputs import InputMaterializer
from mediagen.generations.ports import Step
from mediagen.generations.provider import ProviderSync
from mediagen.generations.reconcile import Reconciler
from mediagen.generations.submit import Submitter
from mediagen.generations.tables import Generation


class Pipeline:
    def __init__(self, ctx: CoreContext) -> None:
        self.ctx = ctx
        self.rows = ctx.rows
        self.ingestor = Ingestor(ctx)
        self.provider = ProviderSync(ctx, self.ingestor)
        self.submitter = Submitter(
            ctx, inputs=InputMaterializer(ctx), ingestor=self.ingestor, provider=self.provider
        )
        self.reconciler = Reconciler(ctx)

    def run(self, step: Step, gen_id: int) -> None:
        """What a worker does with one task."""
        if step is Step.SUBMIT:
            self.submit(gen_id)
        elif step is Step.REFRESH:
            self.refresh(gen_id)
        else:
            self.ingest(gen_id)

    def submit(self, gen_id: int, *, inline: bool = False) -> None:
        self.submitter.submit(gen_id, inline=inline)

    def refresh(self, gen_id: int) -> None:
        self.provider.refresh(gen_id)

    def apply_state(self, gen_id: int, state: State) -> bool:
        return self.provider.apply_state(gen_id, state)

    def ingest(self, gen_id: int) -> None:
        self.ingestor.ingest(gen_id)

    def add_completed(self, row: Generation, path: Path) -> Generation:
        return self.ingestor.add_completed(row, path)

    def fail(self, gen_id: int, error: str) -> bool:
        return self.rows.fail(gen_id, error)

    def reconcile(self, *, limit: int = 500) -> int:
        return self.reconciler.reconcile(limit=limit)

    def worker_started(self) -> None:
        """This process runs jobs from now on: register it, so its death can be noticed."""
        self.ctx.workers.register()

    def worker_alive(self) -> None:
        self.ctx.workers.heartbeat()

    def warm_up_devices(self) -> dict[str, float]:
        """Let device engines prepare now what the first request would otherwise wait for (load
        and capture MusicGen's decoding step); seconds per model, for the log."""
        seconds: dict[str, float] = {}
        for engine in self.ctx.router.engines.values():
            warm_up = getattr(engine, "warm_up", None)
            if engine.capabilities.device and warm_up is not None:
                seconds.update(warm_up())
        return seconds

    def claim_duty(self, name: str, seconds: float) -> bool:
        """Whether this process does the chore `name` now (one process of the deployment does)."""
        return self.ctx.workers.claim_duty(name, seconds)

    def worker_stopped(self) -> None:
        self.ctx.workers.unregister()

    def collect_garbage(self) -> None:
        self.reconciler.collect_garbage()
