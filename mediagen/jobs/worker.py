"""Runs huey workers plus the reconcile heartbeat, inside `serve` or as `mediagen worker`.

The heartbeat also moves running kit plans on (`kits.runner`): a deliverable whose inputs are
done is asked for on the next tick, whichever process made them.
"""

from __future__ import annotations

import logging
import threading
import time

from huey.consumer import Consumer

from mediagen.generations.pipeline import Pipeline
from mediagen.generations.ports import Lane
from mediagen.jobs.queue import HueyJobQueue
from mediagen.kits.runner import KitRunner

log = logging.getLogger("mediagen.jobs")
GC_INTERVAL_SECONDS = 600


class _EmbeddedConsumer(Consumer):
    """huey's consumer minus its signal handlers: the host process (uvicorn, our CLI) owns those."""

    def _set_signal_handlers(self) -> None:
        return None


class WorkerHost:
    """Consumes the lanes it is given: `io` with `workers` threads; `local` (the device lane)
    with `device_workers` threads, which wait together in the local engine's batcher so that
    concurrent requests for one model run as one batch, one batch at a time on the device."""

    def __init__(
        self,
        queue: HueyJobQueue,
        pipeline: Pipeline,
        *,
        plans: KitRunner,
        workers: int,
        interval: float,
        lanes: frozenset[Lane] = frozenset(Lane),
        device_workers: int = 8,
    ) -> None:
        queue.consume_with(pipeline)
        threads = {Lane.IO: workers, Lane.DEVICE: device_workers}
        seen: set[int] = set()
        self.consumers: list[Consumer] = []
        for lane in sorted(lanes):
            huey = queue.hueys[lane]
            if id(huey) in seen:
                continue
            seen.add(id(huey))
            self.consumers.append(
                _EmbeddedConsumer(
                    huey,
                    workers=threads[lane],
                    worker_type="thread",
                    periodic=False,
                    initial_delay=0.05,
                    max_delay=0.5,
                    backoff=1.5,
                    scheduler_interval=1,
                    check_worker_health=True,
                )
            )
        self.lanes = lanes
        self.pipeline = pipeline
        self.plans = plans
        self.interval = interval
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="mediagen-reconcile", daemon=True)

    def start(self) -> None:
        # At start-up, before workers take anything: whatever a crash left half-done is re-dispatched
        # (a dead predecessor's leases at once: see generations/workers.py).
        self.pipeline.worker_started()
        self._safe_reconcile()
        for consumer in self.consumers:
            consumer.start()
        self._ticker.start()
        if Lane.DEVICE in self.lanes:
            # Beside the consumers, not before them: io jobs need not wait for a model to load;
            # device jobs that arrive meanwhile wait on the device lock as they would anyway.
            threading.Thread(target=self._warm_up, name="mediagen-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        started = time.monotonic()
        try:
            done = self.pipeline.warm_up_devices()
        except Exception:
            log.exception("warming up the local models failed; the first requests will do it")
            return
        if done:
            figures = ", ".join(f"{model} {seconds:.1f} s" for model, seconds in done.items())
            log.info("local models warmed up in %.1f s (%s)", time.monotonic() - started, figures)

    def _safe_reconcile(self) -> None:
        try:
            self.pipeline.reconcile()
        except Exception:
            log.exception("reconcile failed; will try again")

    def _advance_plans(self) -> None:
        try:
            self.plans.advance_running()
        except Exception:
            log.exception("advancing kit plans failed; will try again")

    def _tick(self) -> None:
        last_gc = time.monotonic()
        while not self._stop.wait(self.interval):
            try:
                self.pipeline.worker_alive()
            except Exception:
                log.exception("worker heartbeat failed; will try again")
            # One process of the deployment reconciles and collects garbage at a time; if it
            # dies, another takes the duty over once its hold lapses (a few ticks).
            if self._duty("reconcile", self.interval * 3):
                self._safe_reconcile()
                self._advance_plans()
            if time.monotonic() - last_gc > GC_INTERVAL_SECONDS:
                last_gc = time.monotonic()
                if self._duty("blob-gc", GC_INTERVAL_SECONDS * 0.9):
                    try:
                        self.pipeline.collect_garbage()
                    except Exception:
                        log.exception("blob gc failed; will try again")

    def _duty(self, name: str, seconds: float) -> bool:
        try:
            return self.pipeline.claim_duty(name, seconds)
        except Exception:
            log.exception("could not claim the %s duty; will try again", name)
            return False

    def stop(self) -> None:
        self._stop.set()
        for consumer in self.consumers:
            consumer.stop(graceful=True)
        try:
            self.pipeline.worker_stopped()
        except Exception:
            log.exception("could not unregister this worker")
