"""Stable Audio Open on a tiny random-weight pipeline saved like the real repo.

The tiny window is 32 latent frames (about 1.49 s at 44.1 kHz, 2,048 samples a frame), runs take
3–6 steps: each pipeline call is a fraction of a second on the CPU. Outputs are checked by decoding
the files back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from mediagen.catalog.registry import Catalog
from mediagen.engines.audio_io import write_audio
from mediagen.engines.base import InputError
from mediagen.engines.local.family import Cancelled, Device, LocalRequest, WeightsError
from mediagen.engines.local.stable_audio import DEFAULTS, StableAudioFamily, partial_schedule, read_clip
from tests.engines.local.tiny_stable_audio import MAX_SECONDS, save_tiny_stable_audio

pytest.importorskip("torchsde")
# torchsde warns when the schedule touches its interval's ends (every run does); load() silences
# it for the process, but pytest resets warning filters for each test.
pytestmark = pytest.mark.filterwarnings("ignore:Should have:UserWarning")

CPU = Device("cpu", "float32")
SR = 44_100
SMALL = {"duration": 1.0, "num_inference_steps": 4, "guidance_scale": 7.0, "output_format": "wav"}
# One 16-bit step: a batched call sums its float32 matmuls in another order than a lone one
# (measured: at most 2.4e-7 apart on the float waveform), which can flip one rounding in the WAV.
ONE_LSB = 1.0 / 32767 + 1e-7


def decode(path: Path) -> tuple[np.ndarray, int]:
    """(float samples (channels, n), sample rate)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="fltp")
        chunks = [out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)]
    return np.concatenate(chunks, axis=1), rate


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_stable_audio(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pipe(weights: Path) -> Any:
    return StableAudioFamily().load(weights, CPU)


@pytest.fixture
def make(tmp_path: Path) -> Any:
    count = iter(range(1, 1000))

    def build(seed: int = 1, **inputs: Any) -> LocalRequest:
        n = next(count)
        workdir = tmp_path / f"gen{n}"
        workdir.mkdir()
        return LocalRequest(n, {"prompt": "calm ambient piano", **SMALL, **inputs}, workdir, seed)

    return build


def clip(path: Path, seconds: float, *, rate: int = SR, channels: int = 2, kind: str = "sine") -> Path:
    t = np.arange(round(seconds * rate), dtype=np.float32) / rate
    if kind == "sine":
        mono = 0.5 * np.sin(2 * np.pi * 440 * t, dtype=np.float32)
    else:
        mono = np.random.default_rng(3).uniform(-0.5, 0.5, t.shape).astype(np.float32)
    write_audio(np.repeat(mono[None], channels, axis=0), path, "wav", rate=rate)
    return path


def no_progress(done: int, total: int) -> None:
    pass


def test_text_to_audio_is_44k_stereo_of_the_asked_duration(pipe: Any, make: Any) -> None:
    calls: list[tuple[int, int]] = []
    request = make(duration=0.7, output_format="mp3")  # 30,870 samples; int(0.7 * 44100) is 30,869
    [out] = StableAudioFamily().run(pipe, [request], CPU, lambda d, t: calls.append((d, t)))
    assert out.path.parent == request.workdir and out.path.suffix == ".mp3"
    assert out.content_type == "audio/mpeg"
    samples, rate = decode(out.path)
    assert rate == SR and samples.shape == (2, 30_870)
    assert np.abs(samples).max() > 0
    assert out.metadata == {"sample_rate": SR, "channels": 2, "duration": 0.7, "steps": 4, "guidance": 7.0}
    json.dumps(out.metadata)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_batch_gives_each_request_its_own_file_and_the_same_audio_as_alone(pipe: Any, make: Any) -> None:
    family = StableAudioFamily()
    alone = make(seed=11)
    [single] = family.run(pipe, [alone], CPU, no_progress)
    batch = [make(seed=4, prompt="epic drums"), make(seed=11), make(seed=5, output_format="mp3")]
    outs = family.run(pipe, batch, CPU, no_progress)
    assert [o.path.parent for o in outs] == [r.workdir for r in batch]
    assert [o.content_type for o in outs] == ["audio/wav", "audio/wav", "audio/mpeg"]
    decoded = [decode(o.path)[0] for o in outs]
    assert all(d.shape == (2, SR) for d in decoded)
    same = decode(single.path)[0]
    assert np.abs(decoded[1] - same).max() <= ONE_LSB
    assert np.abs(decoded[0] - same).max() > 100 * ONE_LSB  # another seed and prompt: other audio


def test_negative_prompts_may_differ_within_a_batch(pipe: Any, make: Any) -> None:
    family = StableAudioFamily()
    alone = make(seed=2, negative_prompt="drums")
    [single] = family.run(pipe, [alone], CPU, no_progress)
    outs = family.run(
        pipe, [make(seed=2, negative_prompt="sad"), make(seed=2, negative_prompt="drums")], CPU, no_progress
    )
    first, second = (decode(o.path)[0] for o in outs)
    assert np.abs(second - decode(single.path)[0]).max() <= ONE_LSB
    assert np.abs(first - second).max() > 0  # the negative text reaches its own request


def test_audio_to_audio_starts_from_each_noised_clip(pipe: Any, make: Any, tmp_path: Path) -> None:
    import torch

    # Mono at 22.05 kHz and longer than the duration: decoded, upmixed, resampled and cut.
    sine = clip(tmp_path / "sine.wav", 1.2, rate=22_050, channels=1)
    noise = clip(tmp_path / "noise.wav", 0.5, kind="noise")
    calls: list[tuple[int, int]] = []
    seen: list[Any] = []
    hook = pipe.transformer.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    requests = [
        make(seed=3, audio=str(sine), strength=0.5, num_inference_steps=6),
        make(seed=3, audio=str(noise), strength=0.5, num_inference_steps=6),
    ]
    try:
        outs = StableAudioFamily().run(pipe, requests, CPU, lambda d, t: calls.append((d, t)))
    finally:
        hook.remove()
    assert calls == [(1, 3), (2, 3), (3, 3)]  # half of 6 steps: the tail of the schedule
    assert outs[0].metadata["strength"] == 0.5 and outs[0].metadata["steps"] == 3
    assert outs[0].metadata["input_seconds"] == 1.0  # cut to the duration
    assert outs[1].metadata["input_seconds"] == 0.5
    assert all(decode(o.path)[0].shape == (2, SR) for o in outs)

    # The first step sees (clip latent + level × noise) scaled by c_in = 1 / sqrt(level² + 1):
    # taking the seed's noise back out leaves the clip's latent, of unit scale, not the noise's.
    _, _, level = partial_schedule(pipe.scheduler, 6, 0.5)
    guided = seen[0][2:]  # classifier-free guidance: [unconditional, conditional] halves
    start = guided * (level**2 + 1) ** 0.5
    seed_noise = torch.randn(start[:1].shape, generator=torch.Generator().manual_seed(3))
    latents = start - level * seed_noise
    assert level > 5 and latents.abs().max() < 4 and latents.std() < 1.5
    # Same seed, so the same noise in both: what differs comes from the clips alone.
    assert (latents[0] - latents[1]).abs().max() > 0.01


def test_a_clip_is_resampled_cut_padded_and_a_mono_one_copied_at_full_level(tmp_path: Path) -> None:
    mono = clip(tmp_path / "mono.wav", 1.2, rate=22_050, channels=1)
    padded, used = read_clip(mono, rate=SR, channels=2, keep=SR, window=32 * 2048, shortest=2048)
    assert padded.shape == (2, 32 * 2048) and padded.dtype == np.float32 and used == SR
    assert np.abs(padded[:, :used]).max(axis=1) == pytest.approx([0.5, 0.5], abs=0.01)
    assert not padded[:, used:].any()


def test_the_partial_schedule_is_the_tail_of_the_full_one(pipe: Any) -> None:
    import torch

    full = type(pipe.scheduler).from_config(pipe.scheduler.config)
    full.set_timesteps(100)
    scheduler, steps, level = partial_schedule(pipe.scheduler, 100, 0.4)
    scheduler.set_timesteps(steps)
    assert steps == 40 and level == pytest.approx(float(full.sigmas[60]))
    assert torch.allclose(scheduler.sigmas, full.sigmas[60:], rtol=1e-5)
    assert scheduler.init_noise_sigma == pytest.approx((level**2 + 1) ** 0.5)
    assert partial_schedule(pipe.scheduler, 100, 1.0)[1:] == (100, pytest.approx(500.0))
    assert partial_schedule(pipe.scheduler, 10, 0.01)[1] == 2  # never a single step


def test_cancel_stops_the_loop_between_steps(pipe: Any, make: Any) -> None:
    calls: list[tuple[int, int]] = []

    def step(done: int, total: int) -> None:
        calls.append((done, total))
        if done == 2:
            raise Cancelled()

    request = make(num_inference_steps=6)
    with pytest.raises(Cancelled):
        StableAudioFamily().run(pipe, [request], CPU, step)
    assert calls == [(1, 6), (2, 6)]
    assert list(request.workdir.iterdir()) == []


def test_a_duration_beyond_the_window_is_refused(pipe: Any, make: Any) -> None:
    with pytest.raises(InputError) as caught:
        StableAudioFamily().run(pipe, [make(duration=MAX_SECONDS + 0.1)], CPU, no_progress)
    assert caught.value.field == "duration"


@pytest.mark.parametrize("case", ["text", "missing", "too_short", "no_audio_stream"])
def test_an_unusable_clip_is_an_input_error(pipe: Any, make: Any, tmp_path: Path, case: str) -> None:
    path = tmp_path / "clip.wav"
    if case == "text":
        path.write_text("not audio at all")
    elif case == "too_short":
        clip(path, 0.01)  # under one latent frame (2,048 samples)
    elif case == "no_audio_stream":
        path = tmp_path / "still.png"
        from PIL import Image

        Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(InputError) as caught:
        StableAudioFamily().run(pipe, [make(audio=str(path))], CPU, no_progress)
    assert caught.value.field == "audio"


def test_corrupt_missing_or_mismatched_weights_are_a_weights_error(weights: Path, tmp_path: Path) -> None:
    import shutil

    family = StableAudioFamily()
    with pytest.raises(WeightsError, match="model_index.json"):
        family.load(tmp_path / "nowhere", CPU)

    broken = tmp_path / "broken"
    shutil.copytree(weights, broken)
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00garbage" * 64)
    with pytest.raises(WeightsError, match="corrupt"):
        family.load(broken, CPU)

    other = tmp_path / "other"
    shutil.copytree(weights, other)
    config = json.loads((other / "transformer" / "config.json").read_text())
    config["num_layers"] = 2  # the file holds one layer's tensors
    (other / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="transformer"):
        family.load(other, CPU)


def test_batch_key_keeps_apart_only_what_one_call_must_share() -> None:
    key = StableAudioFamily().batch_key
    base = {"prompt": "rain", **DEFAULTS}
    assert key(base) == key({**base, "prompt": "wind", "output_format": "wav"})
    assert key(base) == key({**base, "strength": 0.9})  # strength only matters with a clip
    assert key({**base, "negative_prompt": "hiss"}) == key({**base, "negative_prompt": "hum"})
    assert key(base) == key({**base, "negative_prompt": "  "})
    assert key(base) == key({"prompt": "rain"})  # defaults filled in or not
    for change in (
        {"duration": 5},
        {"num_inference_steps": 50},
        {"guidance_scale": 3.0},
        {"audio": "/clips/a.wav"},
        {"negative_prompt": "hiss"},
    ):
        assert key(base) != key({**base, **change}), change
    with_clip = {**base, "audio": "/clips/a.wav"}
    assert key(with_clip) == key({**with_clip, "audio": "/clips/b.wav"})
    assert key(with_clip) != key({**with_clip, "strength": 0.9})
    # Without guidance the pipeline ignores a negative prompt: no reason to split.
    assert key({**base, "guidance_scale": 1.0}) == key(
        {**base, "guidance_scale": 1.0, "negative_prompt": "x"}
    )


def test_the_catalog_entry_matches_the_family() -> None:
    entry = Catalog.load().get("local/stable-audio-open")
    assert entry is not None and entry.engine == "local" and entry.kind == "audio"
    assert entry.local["family"] == StableAudioFamily.name
    assert entry.local["repo_id"] == "stabilityai/stable-audio-open-1.0"
    assert {k: v for k, v in entry.defaults.items() if k != "seed"} == DEFAULTS
    props = entry.input_schema["properties"]
    assert props["duration"]["maximum"] == 47  # the real window is 1024 × 2048 / 44100 ≈ 47.55 s
    assert set(entry.defaults) == set(props) - {"prompt"}


def test_the_module_imports_without_the_model_libraries() -> None:
    code = (
        "import sys\n"
        "for name in ('torch', 'transformers', 'diffusers', 'torchsde'): sys.modules[name] = None\n"
        "from mediagen.engines.local.stable_audio import StableAudioFamily\n"
        "assert 'torchsde' in StableAudioFamily.requires\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])
