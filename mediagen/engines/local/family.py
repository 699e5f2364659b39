"""What one model family (MusicGen, Stable Audio, …) implements so the local engine can run it.

The engine owns everything shared: finding the weights, choosing the device and dtype, keeping
loaded pipelines resident, batching compatible requests, progress, cancel, and turning outputs
into files for ingest. A family only knows its library: how to load a pipeline from a directory,
which requests can share one call (`batch_key`), and how to run a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mediagen.engines.base import EngineError, InputError


class Cancelled(EngineError):
    """Every request of a running batch was canceled: the family's loop stops between steps."""

    def __init__(self) -> None:
        super().__init__("canceled while running", retryable=False)


class WeightsError(EngineError):
    """The weights on disk are corrupt or do not match the model (the asset fails saying so)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


# `step(done, total)`: call between decoding / diffusion steps. It records progress for every
# request in the batch and raises `Cancelled` once all of them are canceled, so the family
# needs no cancel logic of its own; it must let the exception propagate.
StepCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Device:
    """Where and in which precision a pipeline runs (`torch.device` / `torch.dtype` names)."""

    type: str  # "cuda", "mps" or "cpu"
    dtype: str  # "float16" on a GPU, "float32" on the CPU

    @property
    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)


@dataclass(frozen=True)
class LocalRequest:
    """One generation's part of a batch: validated inputs (media inputs are local file paths),
    its scratch directory, and the seed it runs with (always set: stored and shown)."""

    generation_id: int
    inputs: dict[str, Any]
    workdir: Path
    seed: int


@dataclass(frozen=True)
class LocalOutput:
    """What a family made for one request: the main file, any derivations (role -> path), and
    metadata for the asset (sample rate, size, frames…)."""

    path: Path
    content_type: str
    extra: dict[str, tuple[Path, str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


class Family(Protocol):
    """One library's way of running a group of models."""

    name: str
    requires: tuple[str, ...]  # importable module names the family needs (checked without importing)

    def load(self, path: Path, device: Device) -> Any:
        """The pipeline/model from a `save_pretrained` directory, with `local_files_only`; on the
        device, in eval mode. Raise `WeightsError` for files that are missing, corrupt or of
        another model."""
        ...

    def batch_key(self, inputs: dict[str, Any]) -> Hashable:
        """Requests with equal keys may run as one call (same duration, steps, size…)."""
        ...

    def run(
        self, loaded: Any, requests: Sequence[LocalRequest], device: Device, step: StepCallback
    ) -> list[LocalOutput]:
        """Run the batch and write one output per request (same order) into its workdir.
        Deterministic for the requests' seeds on one device. Raise `InputError(field=…)` for
        an input the model cannot take (e.g. an unreadable melody clip)."""
        ...


__all__ = [
    "Cancelled",
    "Device",
    "Family",
    "InputError",
    "LocalOutput",
    "LocalRequest",
    "StepCallback",
    "WeightsError",
]
