"""An in-memory `JobQueue` for in-process tests and tools: dispatches are kept in order and run
on demand, so a test can step a generation through the pipeline and see every dispatch."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from mediagen.generations.ports import Lane, Step, StepRunner


@dataclass(frozen=True)
class Dispatched:
    step: Step
    gen_id: int
    delay: float
    lane: Lane = Lane.IO


class MemoryJobQueue:
    def __init__(self) -> None:
        self.waiting: deque[Dispatched] = deque()
        self.history: list[Dispatched] = []

    def dispatch(self, step: Step, gen_id: int, delay: float = 0.0, *, lane: Lane = Lane.IO) -> None:
        item = Dispatched(step, gen_id, delay, lane)
        self.waiting.append(item)
        self.history.append(item)

    def pending(self) -> int:
        return len(self.waiting)

    def drain(self, runner: StepRunner, *, max_steps: int = 1000) -> int:
        """Run everything dispatched, including what running it dispatches (delays are not
        waited out); returns how many steps ran."""
        ran = 0
        while self.waiting:
            if ran >= max_steps:
                raise RuntimeError(f"more than {max_steps} steps: a dispatch loop?")
            item = self.waiting.popleft()
            runner.run(item.step, item.gen_id)
            ran += 1
        return ran
