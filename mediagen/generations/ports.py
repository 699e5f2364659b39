"""Ports the generation core owns and the layers above implement (the job queue)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class Step(StrEnum):
    """The pipeline steps a queue can run later; a task carries a step and a generation id only."""

    SUBMIT = "submit"
    REFRESH = "refresh"
    INGEST = "ingest"


class Lane(StrEnum):
    """Which queue a task waits in. Jobs that hold this machine's accelerator (local models) wait
    on their own, so a long generation never holds up downloads and ingest behind it."""

    IO = "io"
    DEVICE = "local"


class JobQueue(Protocol):
    def dispatch(self, step: Step, gen_id: int, delay: float = 0.0, *, lane: Lane = Lane.IO) -> None:
        """Run `step` for `gen_id` on a worker of `lane`, after `delay` seconds."""
        ...

    def pending(self) -> int:
        """Tasks waiting to run (raises when the queue's backend is unreachable)."""
        ...


class StepRunner(Protocol):
    def run(self, step: Step, gen_id: int) -> None:
        """Run one step now (what a worker does with a task)."""
        ...
