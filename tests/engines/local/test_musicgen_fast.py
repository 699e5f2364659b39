"""MusicGen's fast decoding path on the tiny random-weight checkpoint, on the CPU.

The fast path must make the plain path's tokens for the same seeds and settings: in `exact` mode
(attention over exactly the live positions, what the CPU would run) and in `masked` mode (the fixed,
padded shapes a CUDA graph captures, run eagerly). Also: batches padded to their bucket leave each
request's tokens as they are alone, batches beyond the largest bucket are split, and the engine
falls back to the plain path when the setting is off or the fast path fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mediagen.engines.base import Job  # noqa: E402
from mediagen.engines.local.engine import LocalEngine, LocalSpec  # noqa: E402
from mediagen.engines.local.family import Cancelled, Device, LocalRequest  # noqa: E402
from mediagen.engines.local.musicgen import (  # noqa: E402
    LoadedMusicgen,
    MusicgenFamily,
    MusicgenMelodyFamily,
    _Job,
)
from mediagen.engines.local.musicgen_fast import (  # noqa: E402
    FastBatch,
    FastMusicgen,
    bucket,
    kv_buckets,
)
from mediagen.engines.local.musicgen_fast_step import sample_rows  # noqa: E402
from mediagen.engines.local.musicgen_windows import (  # noqa: E402
    Progress,
    Sampling,
    _draw,
    decoding_steps,
    plan_windows,
)
from mediagen.vocabulary import Kind  # noqa: E402
from tests.engines.local.tiny_musicgen import save_tiny_musicgen  # noqa: E402

CPU = Device("cpu", "float32")
K = 4
MODEL = "local/musicgen-small"
REPO = "facebook/musicgen-small"
PROMPTS = ["calm ambient piano", "upbeat electronic dance music with heavy bass", "fast drums", "sad"]
SAMPLED = [Sampling(1.0, 250, 0.0), Sampling(0.7, 20, 0.0), Sampling(1.3, 0, 0.9), Sampling(1.0, 5000, 0.0)]
GREEDY = [Sampling(0.0, 250, 0.0)] * 4


class FastOnCpu(MusicgenFamily):
    """The real family with its fast path allowed on the CPU (as on CUDA)."""

    fast_on_cpu = True


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    save_tiny_musicgen(root)
    return root


@pytest.fixture(scope="module")
def small(models_dir: Path) -> LoadedMusicgen:
    return MusicgenFamily().load(models_dir / REPO, CPU)


@pytest.fixture
def fresh(models_dir: Path) -> Iterator[LoadedMusicgen]:
    """A loaded model of its own, for tests that warm it up (and so change what it holds)."""
    yield MusicgenFamily().load(models_dir / REPO, CPU)


def jobs_for(
    samplings: list[Sampling],
    seeds: list[int],
    frames: int,
    guidance: float = 3.0,
    prompts: list[str] = PROMPTS,
) -> list[_Job]:
    jobs = []
    for i, (sampling, seed) in enumerate(zip(samplings, seeds, strict=True)):
        prompt = prompts[i % len(prompts)]
        request = LocalRequest(i, {"prompt": prompt, "guidance_scale": guidance}, Path("."), seed)
        jobs.append(_Job(request, prompt, sampling, frames))
    return jobs


def decode(
    loaded: LoadedMusicgen,
    jobs: list[_Job],
    mode: str,
    *,
    prompt_frames: int = 0,
    window: int = 1500,
    context: int = 500,
    max_batch: int = 32,
) -> tuple[Any, Progress]:
    """Codes of `jobs` from the plain path or a fast decoder in `mode`, and the progress made."""
    family = MusicgenFamily()
    plan = plan_windows(prompt_frames, jobs[0].new_frames, window, context)
    progress = Progress(lambda done, total: None, sum(decoding_steps(w, K) for w in plan))
    if prompt_frames:
        for job in jobs:
            generator = torch.Generator().manual_seed(job.request.seed)
            job.prompt_codes = torch.randint(0, 2048, (K, prompt_frames), generator=generator)
    if mode == "plain":
        codes = family._generate_plain(loaded, jobs, plan, CPU, progress)
    else:
        fast = FastMusicgen(loaded.model, "cpu", max_positions=window + K, max_batch=max_batch, mode=mode)
        made = family._generate_fast(fast, loaded, jobs, plan, CPU, progress)
        assert made is not None
        codes = made
    return torch.stack(codes), progress


# --- the same tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["exact", "masked"])
@pytest.mark.parametrize("samplings", [SAMPLED, GREEDY], ids=["sampled", "greedy"])
def test_fast_tokens_equal_the_plain_paths(
    small: LoadedMusicgen, mode: str, samplings: list[Sampling]
) -> None:
    plain, plain_progress = decode(small, jobs_for(samplings, [1, 2, 3, 4], 50), "plain")
    fast, fast_progress = decode(small, jobs_for(samplings, [1, 2, 3, 4], 50), mode)
    assert fast.shape == (4, K, 50)
    assert torch.equal(fast, plain)
    assert fast_progress.done == plain_progress.done == 53


@pytest.mark.parametrize(
    "case",
    [
        {"prompt_frames": 12},
        {"window": 30, "context": 10, "frames": 75},
        {"prompt_frames": 8, "window": 30, "context": 10, "frames": 40},
        {"guidance": 1.0},
    ],
    ids=["continuation", "windows", "continued-windows", "no-guidance"],
)
def test_continuations_windows_and_unguided_batches_match_too(
    small: LoadedMusicgen, case: dict[str, Any]
) -> None:
    case = dict(case)
    frames, guidance = case.pop("frames", 30), case.pop("guidance", 3.0)
    plain, _ = decode(small, jobs_for(SAMPLED[:2], [5, 6], frames, guidance), "plain", **case)
    for mode in ("exact", "masked"):
        fast, _ = decode(small, jobs_for(SAMPLED[:2], [5, 6], frames, guidance), mode, **case)
        assert torch.equal(fast, plain), mode


def test_exact_mode_gives_the_plain_logits_bit_for_bit(
    small: LoadedMusicgen, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mediagen.engines.local.musicgen_fast as fast_module
    import mediagen.engines.local.musicgen_windows as windows

    seen: dict[str, list[Any]] = {"plain": [], "fast": []}
    plain_call, fast_call = windows.SeededSampler.__call__, fast_module.sample_next

    def plain_spy(self: Any, ids: Any, scores: Any) -> Any:
        seen["plain"].append(scores.clone())
        return plain_call(self, ids, scores)

    def fast_spy(state: Any, logits: Any) -> None:
        seen["fast"].append(logits.clone())
        fast_call(state, logits)

    monkeypatch.setattr(windows.SeededSampler, "__call__", plain_spy)
    monkeypatch.setattr(fast_module, "sample_next", fast_spy)
    decode(small, jobs_for(SAMPLED[:2], [1, 2], 20), "plain")
    decode(small, jobs_for(SAMPLED[:2], [1, 2], 20), "exact")
    assert len(seen["plain"]) == len(seen["fast"]) == 23
    assert all(torch.equal(a, b) for a, b in zip(seen["plain"], seen["fast"], strict=True))


def test_vectorised_sampling_draws_what_the_per_request_sampler_draws() -> None:
    logits = torch.randn((len(SAMPLED) * K, 2048), generator=torch.Generator().manual_seed(0)) * 3
    uniforms, expected = [], []
    for i, sampling in enumerate(SAMPLED + GREEDY[:1]):
        rows = logits[(i % len(SAMPLED)) * K :][:K]
        expected.append(_draw(rows, sampling, torch.Generator().manual_seed(i)))
        uniforms.append(torch.rand((K, 1), generator=torch.Generator().manual_seed(i)))
    everything = SAMPLED + GREEDY[:1]
    repeated = torch.cat([logits, logits[:K]])

    def column(values: list[Any], dtype: Any) -> Any:
        return torch.tensor(values, dtype=dtype).repeat_interleave(K)[:, None]

    got = sample_rows(
        repeated,
        column([s.temperature if s.temperature > 0 else 1.0 for s in everything], torch.float32),
        column([min(max(s.top_k, 1), 2048) for s in everything], torch.long),
        column([s.top_p for s in everything], torch.float32),
        column([s.top_p > 0 for s in everything], torch.bool),
        column([s.top_p <= 0 and 0 < s.top_k < 2048 for s in everything], torch.bool),
        column([s.temperature <= 0 for s in everything], torch.bool).squeeze(1),
        torch.cat(uniforms),
    )
    assert torch.equal(got, torch.cat(expected))


# --- shape buckets -----------------------------------------------------------------------------


def test_buckets() -> None:
    assert [bucket(n, (1, 2, 4, 8, 16, 32)) for n in (1, 2, 3, 5, 9, 17, 32)] == [1, 2, 4, 8, 16, 32, 32]
    with pytest.raises(ValueError):
        bucket(33, (1, 2, 4, 8, 16, 32))
    assert kv_buckets(1504) == (128, 256, 512, 1024, 1536)
    assert kv_buckets(34) == (128,)


def test_a_batch_of_three_is_padded_to_four_and_each_request_decodes_as_alone(
    small: LoadedMusicgen, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    start = FastBatch.__init__

    def spy(self: FastBatch, *args: Any) -> None:
        start(self, *args)
        sizes.append(self.size)

    monkeypatch.setattr(FastBatch, "__init__", spy)
    together, _ = decode(small, jobs_for(SAMPLED[:3], [11, 12, 13], 30), "masked")
    alone = [
        decode(small, jobs_for([s], [seed], 30, prompts=[prompt]), "masked")[0][0]
        for s, seed, prompt in zip(SAMPLED[:3], [11, 12, 13], PROMPTS, strict=False)
    ]
    assert sizes == [4, 1, 1, 1]
    assert all(torch.equal(a, b) for a, b in zip(alone, together, strict=True))


def test_a_batch_beyond_the_largest_bucket_runs_in_parts_with_one_progress(small: LoadedMusicgen) -> None:
    plain, plain_progress = decode(small, jobs_for(SAMPLED[:3], [1, 2, 3], 20), "plain")
    fast, fast_progress = decode(small, jobs_for(SAMPLED[:3], [1, 2, 3], 20), "masked", max_batch=2)
    assert torch.equal(fast, plain)
    assert fast_progress.done == plain_progress.done == 23


# --- the family and the engine -----------------------------------------------------------------


def run_family(
    family: MusicgenFamily, loaded: LoadedMusicgen, tmp_path: Path, name: str, *, restarts: bool = False
) -> list[np.ndarray]:
    """Two 0.6 s requests through `run`, their samples. Progress counts every step once, or, when
    the fast path fails part-way (`restarts`), starts again and still ends at the total."""
    from tests.engines.local.test_musicgen import Steps, read_audio

    requests = []
    for i, seed in enumerate((3, 4)):
        workdir = tmp_path / f"{name}{i}"
        workdir.mkdir()
        inputs = {"prompt": PROMPTS[i], "duration": 0.6, "output_format": "wav", "top_k": 50}
        requests.append(LocalRequest(i, inputs, workdir, seed))
    steps = Steps()
    outputs = family.run(loaded, requests, CPU, steps)
    if restarts:
        assert steps.calls[-1] == (33, 33) and [d for d, _ in steps.calls].count(1) == 2
    else:
        steps.assert_complete(30 + 3)
    return [read_audio(out.path)[0] for out in outputs]


def spy_generate(loaded: LoadedMusicgen, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    generate = loaded.model.generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return generate(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "generate", spy)
    return calls


def test_warm_up_switches_the_family_to_the_fast_path_with_the_same_files(
    small: LoadedMusicgen, fresh: LoadedMusicgen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = run_family(MusicgenFamily(), small, tmp_path, "plain")
    assert MusicgenFamily().warm_up(fresh, CPU, max_batch=8) is None  # the CPU keeps the plain path
    assert MusicgenFamily().warms_up(Device("cuda", "float16"))
    assert not MusicgenMelodyFamily().warms_up(Device("cuda", "float16"))
    prepared = FastOnCpu().warm_up(fresh, CPU, max_batch=8)
    assert prepared is not None and "exact" in prepared and "decoder" in fresh.fast
    calls = spy_generate(fresh, monkeypatch)
    fast = run_family(FastOnCpu(), fresh, tmp_path, "fast")
    assert calls == []
    assert all(np.array_equal(a, b) for a, b in zip(plain, fast, strict=True))


def test_a_failing_fast_path_falls_back_to_plain_with_a_warning(
    small: LoadedMusicgen,
    fresh: LoadedMusicgen,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain = run_family(MusicgenFamily(), small, tmp_path, "plain")
    FastOnCpu().warm_up(fresh, CPU, max_batch=8)
    window = FastBatch.window

    def broken(self: FastBatch, prompt: Any, steps: int, progress: Progress) -> Any:
        window(self, prompt, 3, progress)  # some steps done, then it breaks
        raise RuntimeError("captured step failed")

    monkeypatch.setattr(FastBatch, "window", broken)
    calls = spy_generate(fresh, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="mediagen.local"):
        fast = run_family(FastOnCpu(), fresh, tmp_path, "fallback", restarts=True)
    assert calls == [1]
    assert "fast decoding failed" in caplog.text and "captured step failed" in caplog.text
    assert "decoder" not in fresh.fast  # the plain path from now on
    assert all(np.array_equal(a, b) for a, b in zip(plain, fast, strict=True))


def test_a_failing_warm_up_leaves_the_plain_path(
    fresh: LoadedMusicgen, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: FastMusicgen) -> float:
        raise RuntimeError("capture failed")

    monkeypatch.setattr(FastMusicgen, "warm_up", broken)
    with caplog.at_level(logging.WARNING, logger="mediagen.local"):
        assert FastOnCpu().warm_up(fresh, CPU, max_batch=8) is None
    assert "capture failed" in caplog.text and fresh.fast == {}


def test_cancel_is_not_a_failure(
    fresh: LoadedMusicgen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FastOnCpu().warm_up(fresh, CPU, max_batch=8)
    calls = spy_generate(fresh, monkeypatch)
    workdir = tmp_path / "job"
    workdir.mkdir()
    request = LocalRequest(1, {"prompt": "sad", "duration": 0.6, "output_format": "wav"}, workdir, 1)

    def cancel(done: int, total: int) -> None:
        if done == 5:
            raise Cancelled()

    with pytest.raises(Cancelled):
        FastOnCpu().run(fresh, [request], CPU, cancel)
    assert calls == [] and "decoder" in fresh.fast


def engine_for(models_dir: Path, fast_decode: bool) -> LocalEngine:
    return LocalEngine(
        {MODEL: LocalSpec(MODEL, REPO, "musicgen", memory_gb=0.1)},
        models_dir=models_dir,
        device="cpu",
        batch_window_s=0.0,
        hf_cache=models_dir / "no-cache",
        fast_decode=fast_decode,
    )


@pytest.mark.parametrize("fast_decode", [True, False])
def test_the_engine_warms_up_at_start_and_honours_the_setting(
    models_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fast_decode: bool,
) -> None:
    monkeypatch.setattr(MusicgenFamily, "fast_on_cpu", True)
    engine = engine_for(models_dir, fast_decode)
    with caplog.at_level(logging.INFO, logger="mediagen.local"):
        seconds = engine.warm_up()
    assert list(seconds) == ([MODEL] if fast_decode else [])  # off: nothing to prepare, nothing loaded
    assert (f"{MODEL} warmed up in" in caplog.text) is fast_decode
    if not fast_decode:
        engine.warm_up([MODEL])  # asked for by name, the model is loaded all the same
    loaded = engine.residency.resident()[0].loaded
    assert ("decoder" in loaded.fast) is fast_decode
    calls = spy_generate(loaded, monkeypatch)
    inputs = {"prompt": "sad", "duration": 0.6, "seed": 3, "output_format": "wav"}
    workdir = tmp_path / "job"
    workdir.mkdir()
    finished = engine.submit(Job(1, Kind.AUDIO, MODEL, inputs, workdir))
    written = finished.outputs[0].path
    assert written is not None and written.exists()
    assert calls == ([] if fast_decode else [1])
    engine.unload_all()
