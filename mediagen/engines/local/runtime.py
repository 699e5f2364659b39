"""The device local models run on, and the pipelines kept loaded on it between jobs.

Loading a pipeline costs seconds to minutes, so loaded ones stay resident; a memory budget
(`MEDIAGEN_LOCAL_MEMORY_GB`, default most of the device's memory) unloads the least recently
used when a new one would not fit.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mediagen.engines.base import EngineError
from mediagen.engines.local.family import Device

log = logging.getLogger("mediagen.local")
GIB = 1024**3


def choose_device(preferred: str | None) -> Device:
    """CUDA, then Apple MPS, then the CPU; half precision on a GPU, float32 on the CPU (CPU half
    precision is slower and some kernels lack it)."""
    import torch

    available = {
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "cpu": True,
    }
    if preferred is not None:
        if not available.get(preferred, False):
            raise EngineError(f"MEDIAGEN_LOCAL_DEVICE={preferred}, but torch sees no {preferred} device here")
        chosen = preferred
    else:
        chosen = next(name for name in ("cuda", "mps", "cpu") if available[name])
    return Device(chosen, "float32" if chosen == "cpu" else "float16")


def quiet_libraries() -> None:
    """The libraries draw tqdm bars while loading and sampling; in a server those are log noise
    (progress goes onto the row instead)."""
    import importlib

    for name in ("transformers.utils.logging", "diffusers.utils.logging", "huggingface_hub.utils"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        disable = getattr(module, "disable_progress_bar", None) or getattr(
            module, "disable_progress_bars", None
        )
        if disable is not None:
            disable()


def device_memory_bytes(device: Device) -> int:
    """Total memory of the device (the machine's RAM for the CPU and Apple's unified memory)."""
    if device.type == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def loaded_bytes(obj: Any, _seen: set[int] | None = None) -> int:
    """Parameter and buffer bytes of every torch module reachable from a loaded pipeline (a
    diffusers pipeline, a transformers model, or a family's tuple/dict/dataclass of them)."""
    import torch

    seen = _seen if _seen is not None else set()
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module):
        tensors = [*obj.parameters(), *obj.buffers()]
        unique = {t.data_ptr(): t.numel() * t.element_size() for t in tensors}
        return sum(unique.values())
    if isinstance(obj, dict):
        return sum(loaded_bytes(v, seen) for v in obj.values())
    if isinstance(obj, list | tuple | set):
        return sum(loaded_bytes(v, seen) for v in obj)
    components = getattr(obj, "components", None)  # diffusers pipelines
    if isinstance(components, dict):
        return loaded_bytes(components, seen)
    if dataclasses.is_dataclass(obj) or type(obj).__module__.startswith("mediagen."):
        fields = getattr(obj, "__dict__", None)
        if isinstance(fields, dict):
            return loaded_bytes(fields, seen)
    return 0


@dataclass
class Resident:
    model_id: str
    loaded: Any
    bytes: int
    load_seconds: float


class Residency:
    """Loaded pipelines by model id, least recently used first. Callers hold the device lock."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._models: OrderedDict[str, Resident] = OrderedDict()
        self._lock = threading.Lock()

    def resident(self) -> list[Resident]:
        with self._lock:
            return list(self._models.values())

    def get(self, model_id: str) -> Resident | None:
        with self._lock:
            found = self._models.get(model_id)
            if found is not None:
                self._models.move_to_end(model_id)
            return found

    def make_room(self, needed_bytes: int) -> list[str]:
        """Unload least recently used models until `needed_bytes` more would fit; their ids."""
        evicted: list[str] = []
        with self._lock:
            while (
                self._models
                and sum(r.bytes for r in self._models.values()) + needed_bytes > self.budget_bytes
            ):
                model_id, _ = self._models.popitem(last=False)
                evicted.append(model_id)
        if evicted:
            log.info("unloaded %s to stay within the local memory budget", ", ".join(evicted))
            release_memory()
        return evicted

    def add(self, resident: Resident) -> None:
        with self._lock:
            self._models[resident.model_id] = resident

    def load(
        self, model_id: str, estimate_bytes: int, loader: Callable[[], Any], clock: Callable[[], float]
    ) -> Resident:
        found = self.get(model_id)
        if found is not None:
            return found
        self.make_room(estimate_bytes)
        started = clock()
        loaded = loader()
        resident = Resident(model_id, loaded, loaded_bytes(loaded), clock() - started)
        self.add(resident)
        if resident.bytes > self.budget_bytes:
            log.warning(
                "%s takes %.1f GiB, more than the local memory budget of %.1f GiB",
                model_id,
                resident.bytes / GIB,
                self.budget_bytes / GIB,
            )
        return resident

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
        release_memory()


def release_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # nothing was loaded without torch
        pass
