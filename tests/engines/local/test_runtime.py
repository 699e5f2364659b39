"""Device choice and the resident-pipeline cache with its memory budget (real torch modules)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from mediagen.engines.base import EngineError  # noqa: E402
from mediagen.engines.local.runtime import Residency, choose_device, loaded_bytes  # noqa: E402


def test_this_machine_runs_local_models_on_the_cpu_in_float32() -> None:
    device = choose_device(None)
    assert (device.type, device.dtype) == ("cpu", "float32")
    assert device.torch_dtype is torch.float32
    assert choose_device("cpu") == device


def test_asking_for_a_gpu_this_machine_lacks_is_an_error_that_names_the_setting() -> None:
    with pytest.raises(EngineError, match="MEDIAGEN_LOCAL_DEVICE=cuda"):
        choose_device("cuda")


@dataclass
class Pipeline:
    """A family's loaded object: modules inside a dataclass of ours, one shared twice."""

    encoder: Any
    decoder: Any
    tied: Any


def test_loaded_bytes_counts_every_parameter_and_buffer_once() -> None:
    encoder = torch.nn.Linear(10, 10)  # 110 floats
    decoder = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.BatchNorm1d(5))  # 55 + 10 + buffers
    # weights and biases (float32), then batch norm's running mean and variance (float32) and
    # its batch counter (one int64)
    expected = (110 + 55 + 10) * 4 + (5 + 5) * 4 + 8
    assert loaded_bytes(Pipeline(encoder, decoder, tied=encoder)) == expected
    assert loaded_bytes({"a": encoder, "b": [encoder]}) == 110 * 4


def test_least_recently_used_models_are_unloaded_to_stay_within_the_budget() -> None:
    ticks = itertools.count()
    clock = lambda: float(next(ticks))  # noqa: E731
    size = 1000 * 4  # a Linear(999, 1) holds 1000 floats
    residency = Residency(budget_bytes=2 * size + 100)
    loads: list[str] = []

    def loader(name: str) -> Any:
        def load() -> Any:
            loads.append(name)
            return torch.nn.Linear(999, 1)

        return load

    a = residency.load("a", size, loader("a"), clock)
    assert a.bytes == size and a.load_seconds == 1.0
    residency.load("b", size, loader("b"), clock)
    assert residency.load("a", size, loader("a"), clock) is a  # still resident: not loaded again
    residency.load("c", size, loader("c"), clock)  # b is the least recently used
    assert [r.model_id for r in residency.resident()] == ["a", "c"]
    assert loads == ["a", "b", "c"]
    residency.load("b", size, loader("b"), clock)
    assert [r.model_id for r in residency.resident()] == ["c", "b"]
    residency.clear()
    assert residency.resident() == []
