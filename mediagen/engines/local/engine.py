"""`LocalEngine`: open-weight models on this machine, behind the Engine protocol.

It runs inline (the device queue's worker waits for the result) and owns what every family
shares: weights lookup, device and dtype, resident pipelines, batching, progress and cancel. A
request whose weights or libraries are missing never gets here: routing reports the model as
unavailable, with the command that fixes it, and the request is refused before a row exists.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediagen.engines.base import (
    BaseEngine,
    Capabilities,
    EngineError,
    Finished,
    InputError,
    Job,
    JobControl,
    OutputFile,
)
from mediagen.engines.local.batching import Batcher
from mediagen.engines.local.families import FAMILIES, INSTALL_HINT, family, missing_modules
from mediagen.engines.local.family import Cancelled, Device, LocalOutput, LocalRequest
from mediagen.engines.local.runtime import GIB, Residency, choose_device, device_memory_bytes, quiet_libraries
from mediagen.engines.local.weights import Weights, find_weights

log = logging.getLogger("mediagen.local")
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class LocalSpec:
    """A catalog entry's `local` block."""

    model_id: str
    repo_id: str
    family: str
    memory_gb: float = 1.0
    download_gb: float | None = None
    ignore: tuple[str, ...] = ()

    @classmethod
    def from_catalog(cls, model_id: str, block: dict[str, Any]) -> LocalSpec:
        return cls(
            model_id=model_id,
            repo_id=str(block["repo_id"]),
            family=str(block["family"]),
            memory_gb=float(block.get("memory_gb") or 1.0),
            download_gb=float(block["download_gb"]) if block.get("download_gb") else None,
            ignore=tuple(block.get("ignore", ())),
        )


@dataclass(frozen=True)
class _Work:
    request: LocalRequest
    control: JobControl


@dataclass(frozen=True)
class _Done:
    output: LocalOutput
    metadata: dict[str, Any]


class LocalEngine(BaseEngine):
    name = "local"
    capabilities = Capabilities(inline=True, device=True)

    def __init__(
        self,
        specs: dict[str, LocalSpec],
        *,
        models_dir: Path,
        device: str | None = None,
        memory_gb: float | None = None,
        batch_window_s: float = 0.15,
        max_batch: int = 8,
        hf_cache: Path | None = None,
        fast_decode: bool = True,
    ) -> None:
        self.specs = specs
        # MEDIAGEN_LOCAL_FAST_DECODE: whether a family's `warm_up` hook may prepare a fast path.
        self.fast_decode = fast_decode
        self.models_dir = models_dir
        self.hf_cache = hf_cache
        self._preferred_device = device
        self._memory_gb = memory_gb
        self._device: Device | None = None
        self._residency: Residency | None = None
        self._setup_lock = threading.Lock()
        self.batcher: Batcher[_Work, _Done | InputError] = Batcher(
            window_s=batch_window_s, max_batch=max_batch
        )
        self.batches_run = 0  # observable by tests and the benchmark

    # what the model list shows ----------------------------------------------------------
    def weights(self, model_id: str) -> Weights | None:
        spec = self.specs.get(model_id)
        return find_weights(spec.repo_id, self.models_dir, hf_cache=self.hf_cache) if spec else None

    def unavailable_reason(self, model_id: str) -> str | None:
        spec = self.specs.get(model_id)
        if spec is None or spec.family not in FAMILIES:
            return f"{model_id} is not a local model this server knows how to run"
        missing = missing_modules(spec.family)
        if missing:
            return f"{model_id} needs {', '.join(missing)}, not installed here: {INSTALL_HINT}"
        if self.weights(model_id) is None:
            size = f" (about {spec.download_gb:g} GB)" if spec.download_gb else ""
            return (
                f"the weights of {model_id} ({spec.repo_id}) are not on this machine{size}: "
                f"mediagen models pull {model_id}"
            )
        return None

    def model_details(self, model_id: str) -> dict[str, Any]:
        spec = self.specs.get(model_id)
        if spec is None:
            return {}
        found = self.weights(model_id)
        return {
            "repo_id": spec.repo_id,
            "weights": {
                "present": found is not None,
                "path": str(found.path) if found else str(self.models_dir / spec.repo_id),
                "source": found.source if found else None,
                "size_bytes": found.size_bytes if found else None,
                "download_gb": spec.download_gb,
            },
            "pull": f"mediagen models pull {model_id}",
        }

    # the device -------------------------------------------------------------------------
    def device(self) -> Device:
        with self._setup_lock:
            if self._device is None:
                self._device = choose_device(self._preferred_device)
                quiet_libraries()
                budget = (
                    self._memory_gb * GIB
                    if self._memory_gb is not None
                    else device_memory_bytes(self._device) * (0.85 if self._device.type == "cuda" else 0.5)
                )
                self._residency = Residency(int(budget))
                log.info("local models run on %s (%s)", self._device.type, self._device.dtype)
            return self._device

    @property
    def residency(self) -> Residency:
        self.device()
        assert self._residency is not None
        return self._residency

    def unload_all(self) -> None:
        if self._residency is not None:
            self._residency.clear()

    def warm_up(self, model_ids: Sequence[str] | None = None) -> dict[str, float]:
        """Load models and let their families prepare now (at worker start) what the first request
        would otherwise wait for, e.g. MusicGen's captured decoding steps; seconds per model.
        Default: the models whose weights are here and whose family says it has something to
        prepare on this device (`warms_up`); none when fast decoding is off."""
        if model_ids is None:
            # Only models that can run here: checking that (weights on disk, libraries found)
            # imports nothing, so a server without local models never loads torch for this.
            ready = [
                model_id
                for model_id, spec in self.specs.items()
                if self.fast_decode and spec.family in FAMILIES and self.unavailable_reason(model_id) is None
            ]
            if not ready:
                return {}
            device = self.device()
            model_ids = [
                model_id
                for model_id in ready
                if getattr(family(self.specs[model_id].family), "warms_up", lambda _: False)(device)
            ]
        seconds: dict[str, float] = {}
        for model_id in model_ids:
            started = time.perf_counter()
            try:
                with self.batcher.device_lock:
                    self._load(self.specs[model_id], self.device())
            except EngineError as exc:  # the worker still starts; that model's jobs will fail saying so
                log.warning("%s could not be warmed up: %s", model_id, exc)
                continue
            seconds[model_id] = time.perf_counter() - started
        return seconds

    def _load(self, spec: LocalSpec, device: Device) -> tuple[Any, Weights]:
        """The resident pipeline of `spec` (loaded now if it is not, then warmed up once) and the
        weights it came from."""
        fam = family(spec.family)
        weights = self.weights(spec.model_id)
        if weights is None:
            raise EngineError(self.unavailable_reason(spec.model_id) or f"no weights for {spec.model_id}")
        estimate = int(spec.memory_gb * GIB * (2 if device.dtype == "float32" else 1))
        loaded_now: list[bool] = []

        def load() -> Any:
            loaded_now.append(True)
            return fam.load(weights.path, device)

        resident = self.residency.load(spec.model_id, estimate, load, time.perf_counter)
        hook = getattr(fam, "warm_up", None)
        if loaded_now and self.fast_decode and hook is not None:
            started = time.perf_counter()
            prepared = hook(resident.loaded, device, max_batch=self.batcher.max_batch)
            if prepared:
                log.info("%s warmed up in %.2f s: %s", spec.model_id, time.perf_counter() - started, prepared)
        return resident, weights

    # running ----------------------------------------------------------------------------
    def submit(self, job: Job) -> Finished:
        spec = self.specs.get(job.model_id)
        if spec is None:
            raise EngineError(f"{job.model_id} is not a local model")
        reason = self.unavailable_reason(job.model_id)
        if reason is not None:  # weights deleted or extra uninstalled since the request was accepted
            raise EngineError(reason)
        fam = family(spec.family)
        seed = job.inputs.get("seed")
        request = LocalRequest(
            generation_id=job.generation_id,
            inputs=dict(job.inputs),
            workdir=job.workdir,
            seed=int(seed) if seed is not None else secrets.randbelow(MAX_SEED + 1),
        )
        key = (spec.model_id, fam.batch_key(request.inputs))
        done = self.batcher.run(key, _Work(request, job.control), lambda batch: self._run_batch(spec, batch))
        if isinstance(done, InputError):
            raise done
        files = [OutputFile("main", done.output.path, done.output.content_type)]
        files += [OutputFile(role, path, ct) for role, (path, ct) in done.output.extra.items()]
        return Finished(outputs=files, metadata=done.metadata)

    def _run_batch(self, spec: LocalSpec, batch: Sequence[_Work]) -> list[_Done | InputError]:
        """One call for the batch; if one member's input spoils it (an unreadable clip), each
        member runs alone so only that one fails."""
        try:
            return list(self._run_once(spec, batch))
        except InputError:
            if len(batch) == 1:
                raise
        results: list[_Done | InputError] = []
        for work in batch:
            try:
                results.extend(self._run_once(spec, [work]))
            except InputError as exc:
                results.append(exc)
        return results

    def _run_once(self, spec: LocalSpec, batch: Sequence[_Work]) -> list[_Done]:
        device = self.device()
        fam = family(spec.family)
        residency = self.residency
        controls = [w.control for w in batch]
        loaded_before = residency.get(spec.model_id) is not None
        if not loaded_before:
            for c in controls:
                c.progress(0.0, "loading model")
        resident, weights = self._load(spec, device)
        for c in controls:
            c.progress(0.0, "generating")
        step = _step_callback(controls)
        started = time.perf_counter()
        outputs = fam.run(resident.loaded, [w.request for w in batch], device, step)
        run_seconds = time.perf_counter() - started
        self.batches_run += 1
        batch_id = secrets.token_hex(6)
        shared = {
            "local_model": spec.repo_id,
            "weights_source": weights.source,
            "device": device.type,
            "dtype": device.dtype,
            "batch_size": len(batch),
            "batch_id": batch_id,
            "load_seconds": None if loaded_before else round(resident.load_seconds, 3),
            "run_seconds": round(run_seconds, 3),
            "resident_bytes": resident.bytes,
        }
        return [
            _Done(out, {**out.metadata, **shared, "seed": w.request.seed})
            for w, out in zip(batch, outputs, strict=True)
        ]


def _step_callback(controls: Sequence[JobControl], min_interval: float = 0.25) -> Callable[[int, int], None]:
    """Progress for every member of a batch; `Cancelled` once all of them are canceled. Checks
    are throttled: a step can be milliseconds and each check is a database read."""
    last = [0.0]

    def step(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < min_interval and done < total:
            return
        last[0] = now
        fraction = min(1.0, max(0.0, done / total)) if total > 0 else None
        if all(c.cancelled() for c in controls):
            raise Cancelled()
        for c in controls:
            c.progress(fraction, "generating")

    return step
