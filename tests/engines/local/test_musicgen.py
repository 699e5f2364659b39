"""MusicGen and MusicGen-melody families on tiny random-weight checkpoints saved like the Hub's.

Every run decodes its files and measures them: lengths to the sample, the clip at the head of a
continuation, seams at window joins, the melody chroma each window was given, and that a request
makes the same samples alone and inside a batch.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from mediagen.catalog.registry import MODELS_DIR  # noqa: E402
from mediagen.engines.audio_io import write_wav  # noqa: E402
from mediagen.engines.local.chroma import chroma_window, melody_chroma  # noqa: E402
from mediagen.engines.local.families import FAMILIES  # noqa: E402
from mediagen.engines.local.family import (  # noqa: E402
    Cancelled,
    Device,
    InputError,
    LocalRequest,
    WeightsError,
)
from mediagen.engines.local.musicgen import LoadedMusicgen, MusicgenFamily, MusicgenMelodyFamily  # noqa: E402
from mediagen.engines.local.musicgen_windows import (  # noqa: E402
    Progress,
    Sampling,
    SeededSampler,
    codes_from_sequences,
    plan_windows,
)
from tests.engines.local.tiny_musicgen import save_tiny_musicgen, save_tiny_musicgen_melody  # noqa: E402

SR = 32_000
HOP = 640  # samples per codec frame (50 Hz)
CPU = Device("cpu", "float32")
DEFAULTS = {
    "prompt": "calm ambient piano",
    "duration": 1.0,
    "guidance_scale": 3.0,
    "temperature": 1.0,
    "top_k": 250,
    "top_p": 0.0,
    "output_format": "wav",
    "audio": None,
}


class ShortWindows(MusicgenFamily):
    """The real logic with a 0.6 s window (30 frames) and 0.2 s of context (10 frames)."""

    window_seconds = 0.6
    context_seconds = 0.2


class ShortMelodyWindows(MusicgenMelodyFamily):
    window_seconds = 0.6
    context_seconds = 0.2


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    save_tiny_musicgen(root)
    save_tiny_musicgen_melody(root)
    return root


@pytest.fixture(scope="module")
def small(models_dir: Path) -> LoadedMusicgen:
    return MusicgenFamily().load(models_dir / "facebook/musicgen-small", CPU)


@pytest.fixture(scope="module")
def melody(models_dir: Path) -> LoadedMusicgen:
    return MusicgenMelodyFamily().load(models_dir / "facebook/musicgen-melody", CPU)


@pytest.fixture
def make_request(tmp_path: Path) -> Callable[..., LocalRequest]:
    count = [0]

    def make(seed: int = 1, **inputs: Any) -> LocalRequest:
        count[0] += 1
        workdir = tmp_path / f"req{count[0]}"
        workdir.mkdir()
        return LocalRequest(count[0], {**DEFAULTS, **inputs}, workdir, seed)

    return make


class Steps:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def assert_complete(self, total: int) -> None:
        assert [d for d, _ in self.calls] == list(range(1, total + 1))
        assert {t for _, t in self.calls} == {total}


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float samples of an mp3 or wav, as a player decodes them (PyAV), and the rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        parts = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        rate = int(stream.rate)
    data = np.concatenate(parts)
    scale = 1 / 32768 if data.dtype.kind == "i" else 1.0  # 16-bit wav, or float from mp3
    return data.astype(np.float32) * np.float32(scale), rate


def sine_clip(path: Path, seconds: float, freqs: tuple[float, ...] = (440.0,)) -> np.ndarray:
    per = int(seconds * SR / len(freqs))
    t = np.arange(per) / SR
    wave = np.concatenate([0.3 * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)
    write_wav(wave[None, :], path, rate=SR)
    return wave


def jumps_at(wave: np.ndarray, joins: list[int], generated: slice) -> tuple[float, float]:
    """The largest sample-to-sample step at the joins, and the 99.9th percentile of the steps of
    the generated music itself (the tiny model's audio is rough: a seam must stand out of that)."""
    steps = np.abs(np.diff(wave))
    return max(float(steps[j - 1]) for j in joins), float(np.quantile(steps[generated], 0.999))


# --- runs --------------------------------------------------------------------------------------


def test_text_batch_writes_one_file_per_request_at_the_duration(
    small: LoadedMusicgen, make_request: Callable[..., LocalRequest]
) -> None:
    requests = [
        make_request(1, output_format="mp3"),
        make_request(2, prompt="fast drums", output_format="wav"),
    ]
    steps = Steps()
    outputs = MusicgenFamily().run(small, requests, CPU, steps)
    assert [o.path.parent for o in outputs] == [r.workdir for r in requests]
    assert [o.content_type for o in outputs] == ["audio/mpeg", "audio/wav"]
    for out in outputs:
        wave, rate = read_audio(out.path)
        assert rate == SR and abs(len(wave) - SR) <= HOP
        assert np.abs(wave).max() > 0
        assert out.metadata["duration"] == 1.0 and out.metadata["windows"] == 1
        assert out.metadata["sample_rate"] == SR and out.metadata["channels"] == 1
    steps.assert_complete(50 + 3)  # 1 s = 50 frames, plus 3 for the four codebooks' delays


def test_a_request_makes_the_same_music_alone_and_in_a_batch(
    small: LoadedMusicgen, make_request: Callable[..., LocalRequest]
) -> None:
    family = MusicgenFamily()
    alone = family.run(small, [make_request(42, duration=0.6)], CPU, Steps())[0]
    batch = family.run(
        small,
        [
            make_request(
                7, prompt="epic cinematic strings and drums", temperature=0.7, top_k=20, duration=0.6
            ),
            make_request(42, duration=0.6),
            make_request(43, duration=0.6),
        ],
        CPU,
        Steps(),
    )
    a, _ = read_audio(alone.path)
    b, _ = read_audio(batch[1].path)
    other_seed, _ = read_audio(batch[2].path)
    assert np.array_equal(a, b)
    assert not np.allclose(a, other_seed)


def test_continuation_gives_new_music_or_the_clip_then_its_continuation(
    small: LoadedMusicgen, make_request: Callable[..., LocalRequest], tmp_path: Path
) -> None:
    clip = sine_clip(tmp_path / "clip.wav", 1.5)
    new_only = make_request(3, audio=str(tmp_path / "clip.wav"))
    with_clip = make_request(3, audio=str(tmp_path / "clip.wav"), continuation=True, duration=2.5)
    outputs = MusicgenFamily().run(small, [new_only, with_clip], CPU, Steps())

    new, _ = read_audio(outputs[0].path)
    assert len(new) == SR  # 1 s of new music
    assert outputs[0].metadata["prompted_with_seconds"] == 1.5
    assert outputs[0].metadata["includes_clip"] is False

    whole, _ = read_audio(outputs[1].path)
    assert len(whole) == int(2.5 * SR)  # the duration counts the clip
    overlap = int(0.05 * SR)
    head = len(clip) - overlap
    assert np.allclose(whole[:head], clip[:head], atol=1e-4)  # the clip as it was, not re-encoded
    jump, typical = jumps_at(whole, list(range(head, len(clip) + 1)), slice(len(clip), None))
    assert jump <= typical
    # Both continue from the same codes with the same seed: the new music is the same.
    assert np.allclose(whole[len(clip) :], new, atol=1e-4)
    # And it is the clip that made it: without one, the same seed makes other music.
    text_only = MusicgenFamily().run(small, [make_request(3)], CPU, Steps())[0]
    assert not np.allclose(read_audio(text_only.path)[0], new, atol=1e-3)


def test_clips_of_different_lengths_run_as_consecutive_calls_of_one_batch(
    small: LoadedMusicgen,
    make_request: Callable[..., LocalRequest],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sine_clip(tmp_path / "short.wav", 0.3)
    sine_clip(tmp_path / "long.wav", 0.5)
    calls = spy_generate(small, monkeypatch)
    steps = Steps()
    requests = [
        make_request(1, audio=str(tmp_path / "short.wav"), duration=0.4),
        make_request(2, audio=str(tmp_path / "long.wav"), duration=0.4),
        make_request(3, audio=str(tmp_path / "short.wav"), duration=0.4),
    ]
    outputs = MusicgenFamily().run(small, requests, CPU, steps)
    # Prompts of 15 and 25 frames cannot share a call; each call makes 20 frames (+3).
    assert [(c["decoder_input_ids"].shape, c["input_ids"].shape[0]) for c in calls] == [
        ((2 * 4, 15), 2),
        ((4, 25), 1),
    ]
    steps.assert_complete(2 * 23)
    assert [len(read_audio(o.path)[0]) for o in outputs] == [int(0.4 * SR)] * 3
    assert [o.metadata["prompted_with_seconds"] for o in outputs] == [0.3, 0.5, 0.3]


def test_codes_read_back_are_what_transformers_decodes(small: LoadedMusicgen) -> None:
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    from mediagen.engines.local.musicgen_windows import CaptureSequences

    model, k = small.model, small.num_codebooks
    prompt = torch.randint(0, 2048, (k, 12), generator=torch.Generator().manual_seed(0))
    sampler = SeededSampler(
        [torch.Generator().manual_seed(1)], [Sampling(1.0, 250, 0.0)], k, 3.0, Progress(Steps(), 0)
    )
    capture = CaptureSequences()
    text = small.tokenizer(["slow guitar"], return_tensors="pt")
    with torch.inference_mode():
        audio = model.generate(
            **text,
            decoder_input_ids=prompt,
            do_sample=False,
            guidance_scale=3.0,
            max_new_tokens=10 + k - 1,
            logits_processor=LogitsProcessorList([sampler]),
            stopping_criteria=StoppingCriteriaList([capture]),
        )
        new = codes_from_sequences(capture.ids, 1, k, 12, 10)
        ours = model.audio_encoder.decode(
            torch.cat([prompt[None], new], -1)[None], audio_scales=[None]
        ).audio_values
    assert new.shape == (1, k, 10)
    assert audio.shape == ours.shape == (1, 1, 22 * HOP)
    assert torch.allclose(audio, ours, atol=1e-5)


def test_long_music_is_continued_window_by_window_without_seams(
    small: LoadedMusicgen, make_request: Callable[..., LocalRequest], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    calls = spy_generate(small, monkeypatch)
    decoded = spy_decode(small, monkeypatch)
    steps = Steps()
    out = ShortWindows().run(small, [make_request(5, duration=1.5)], CPU, steps)[0]
    wave, _ = read_audio(out.path)
    assert len(wave) == int(1.5 * SR)
    # 75 frames: 30 in the first window, then 20 per window after a 10-frame prompt.
    assert [c.get("decoder_input_ids", torch_empty()).shape[-1] for c in calls] == [0, 10, 10, 10]
    assert [c["max_new_tokens"] for c in calls] == [33, 23, 23, 8]
    assert out.metadata["windows"] == 4 and out.metadata["decoding_steps"] == 87
    steps.assert_complete(87)

    # Each window is prompted with the last 10 frames made before it, and the file is one decode
    # of all 75 frames (after the 4 that `generate` itself makes): no join exists in the audio.
    codes = decoded[-1]
    assert len(decoded) == 5 and codes.shape == (1, 1, 4, 75)
    for call, start in zip(calls[1:], (20, 40, 60), strict=True):
        assert torch.equal(call["decoder_input_ids"], codes[0, 0, :, start : start + 10])
    with torch.inference_mode():
        whole = small.model.audio_encoder.decode(codes, audio_scales=[None]).audio_values[0, 0].numpy()
    assert np.allclose(wave, np.clip(whole, -1, 1), atol=1 / 32767)
    # The random tiny decoder is rough at sample level, so this only catches gross seams.
    jump, typical = jumps_at(wave, [f * HOP for f in (30, 50, 70)], slice(None))
    assert jump <= typical


def test_melody_follows_the_clip_window_by_window(
    melody: LoadedMusicgen,
    make_request: Callable[..., LocalRequest],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = sine_clip(tmp_path / "tune.wav", 1.5, (261.63, 329.63, 392.0))
    calls = spy_generate(melody, monkeypatch)
    requests = [
        make_request(1, audio=str(tmp_path / "tune.wav"), duration=1.0),
        make_request(2, audio=str(tmp_path / "tune.wav"), duration=1.0, prompt="lo-fi hip hop"),
    ]
    outputs = ShortMelodyWindows().run(melody, requests, CPU, Steps())
    for out in outputs:
        assert len(read_audio(out.path)[0]) == SR
        assert out.metadata["melody_seconds"] == 1.5
    chroma = melody_chroma(clip, melody.chroma, truncate=False)  # type: ignore[arg-type]
    assert len(calls) == 2
    # The second window's prompt starts 20 frames (0.4 s) in: chroma frame round(0.4 * 7.8125) = 3.
    for call, start in zip(calls, (0, 3), strict=True):
        given = call["input_features"].numpy()
        assert given.shape == (2, 235, 12)
        assert np.array_equal(given[0], chroma_window(chroma, start, 235))
        assert np.array_equal(given[1], given[0])


def test_melody_without_a_clip_is_text_to_music(
    melody: LoadedMusicgen, make_request: Callable[..., LocalRequest]
) -> None:
    out = MusicgenMelodyFamily().run(melody, [make_request(3, duration=0.4)], CPU, Steps())[0]
    assert len(read_audio(out.path)[0]) == int(0.4 * SR)
    assert "melody_seconds" not in out.metadata


def test_cancel_stops_generation_between_steps(
    small: LoadedMusicgen, make_request: Callable[..., LocalRequest]
) -> None:
    forwards = [0]
    hook = small.model.decoder.register_forward_hook(lambda *_: forwards.__setitem__(0, forwards[0] + 1))
    seen: list[int] = []

    def step(done: int, total: int) -> None:
        seen.append(done)
        if done == 3:
            raise Cancelled()

    try:
        with pytest.raises(Cancelled):
            MusicgenFamily().run(small, [make_request(1), make_request(2)], CPU, step)
    finally:
        hook.remove()
    assert seen == [1, 2, 3]
    assert forwards[0] <= 4  # of the 53 steps the requests needed


# --- failures ----------------------------------------------------------------------------------


def test_corrupt_or_foreign_weights_raise_weights_error(models_dir: Path, tmp_path: Path) -> None:
    source = models_dir / "facebook/musicgen-small"
    truncated = tmp_path / "truncated"
    shutil.copytree(source, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(WeightsError, match="cannot be loaded"):
        MusicgenFamily().load(truncated, CPU)

    garbled = tmp_path / "garbled"
    shutil.copytree(source, garbled)
    data = bytearray((garbled / "model.safetensors").read_bytes())
    data[8:64] = b"\xff" * 56  # inside the JSON header
    (garbled / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError):
        MusicgenFamily().load(garbled, CPU)

    from safetensors.torch import load_file, save_file

    incomplete = tmp_path / "incomplete"
    shutil.copytree(source, incomplete)
    tensors = load_file(incomplete / "model.safetensors")
    del tensors["decoder.lm_heads.0.weight"]  # loads, with that head left random: refused
    save_file(tensors, incomplete / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(WeightsError, match="do not fit"):
        MusicgenFamily().load(incomplete, CPU)

    with pytest.raises(WeightsError, match="musicgen_melody model, not musicgen"):
        MusicgenFamily().load(models_dir / "facebook/musicgen-melody", CPU)
    with pytest.raises(WeightsError):
        MusicgenFamily().load(tmp_path / "missing", CPU)


def test_unusable_clips_are_input_errors(
    small: LoadedMusicgen, melody: LoadedMusicgen, make_request: Callable[..., LocalRequest], tmp_path: Path
) -> None:
    (tmp_path / "noise.wav").write_bytes(b"RIFF not really a wave file" * 10)
    sine_clip(tmp_path / "blip.wav", 0.01)
    sine_clip(tmp_path / "clip.wav", 2.0)
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (small, {"audio": str(tmp_path / "noise.wav")}, "audio"),
        (small, {"audio": str(tmp_path / "absent.wav")}, "audio"),
        (small, {"audio": str(tmp_path / "blip.wav")}, "audio"),
        (small, {"audio": str(tmp_path / "clip.wav"), "continuation": True, "duration": 2.0}, "duration"),
        (melody, {"audio": str(tmp_path / "noise.wav")}, "audio"),
    ]
    for loaded, inputs, field in cases:
        family = MusicgenMelodyFamily() if loaded is melody else MusicgenFamily()
        with pytest.raises(InputError) as caught:
            family.run(loaded, [make_request(1, **inputs)], CPU, Steps())
        assert caught.value.field == field, inputs


# --- pieces without a model --------------------------------------------------------------------


def test_batch_key_separates_only_what_one_call_must_share() -> None:
    key = MusicgenFamily().batch_key
    base = dict(DEFAULTS)
    assert key(base) == key(
        {**base, "prompt": "other", "temperature": 0.5, "top_k": 10, "output_format": "mp3"}
    )
    for change in ({"duration": 2.0}, {"guidance_scale": 1.0}, {"audio": "/x.wav"}, {"continuation": True}):
        assert key(base) != key({**base, **change}), change


def test_window_plans_cover_the_duration() -> None:
    assert [(w.prompt_frames, w.new_frames, w.start_frame) for w in plan_windows(0, 125, 50, 20)] == [
        (0, 50, 0),
        (20, 30, 30),
        (20, 30, 60),
        (20, 15, 90),
    ]
    assert [(w.prompt_frames, w.new_frames) for w in plan_windows(12, 30, 50, 20)] == [(12, 30)]
    real = plan_windows(0, 300 * 50, 1500, 500)
    assert sum(w.new_frames for w in real) == 15000 and len(real) == 15


def test_sampler_guides_samples_per_request_and_returns_a_doubled_one_hot() -> None:
    import torch

    torch.manual_seed(0)
    k, vocab = 4, 2048
    input_ids = torch.zeros((2 * k, 1), dtype=torch.long)
    scores = torch.randn((4 * k, vocab))  # with guidance: conditional rows, then unconditional
    settings = [Sampling(0.0, 250, 0.0), Sampling(1.0, 1, 0.0)]  # greedy; top-1 is greedy too
    steps = Steps()
    sampler = SeededSampler(
        [torch.Generator().manual_seed(s) for s in (1, 2)], settings, k, 3.0, Progress(steps, 10)
    )
    out = sampler(input_ids, scores)
    guided = scores[2 * k :] + (scores[: 2 * k] - scores[2 * k :]) * 3.0
    assert out.shape == scores.shape and torch.equal(out[: 2 * k], out[2 * k :])
    assert torch.equal(out[: 2 * k].argmax(-1), guided.argmax(-1))
    assert torch.equal(out.sum(-1), torch.ones(4 * k))
    assert steps.calls == [(1, 10)]

    # Top-p keeps the likeliest token alone when it holds more than p.
    peaked = torch.full((k, vocab), -10.0)
    peaked[:, 5] = 10.0
    nucleus = SeededSampler(
        [torch.Generator().manual_seed(3)], [Sampling(1.0, 0, 0.5)], k, 1.0, Progress(steps, 10)
    )
    assert torch.equal(nucleus(input_ids[:k], peaked).argmax(-1), torch.full((k,), 5))


def test_catalog_entries_name_the_families() -> None:
    expected = {
        "musicgen-small": ("facebook/musicgen-small", "musicgen"),
        "musicgen-medium": ("facebook/musicgen-medium", "musicgen"),
        "musicgen-large": ("facebook/musicgen-large", "musicgen"),
        "musicgen-melody": ("facebook/musicgen-melody", "musicgen-melody"),
    }
    for name, (repo, family) in expected.items():
        entry = json.loads((MODELS_DIR / f"local__{name}.json").read_text())
        assert entry["id"] == f"local/{name}" and entry["engine"] == "local"
        assert (entry["local"]["repo_id"], entry["local"]["family"]) == (repo, family)
        assert (
            FAMILIES[family][1]
            == {"musicgen": "MusicgenFamily", "musicgen-melody": "MusicgenMelodyFamily"}[family]
        )
        props = entry["input_schema"]["properties"]
        assert props["duration"]["maximum"] >= 120
        assert ("continuation" in props) == (family == "musicgen")
        assert set(entry["defaults"]) <= set(props)


# --- helpers -----------------------------------------------------------------------------------


def torch_empty() -> Any:
    import torch

    return torch.zeros((0, 0))


def spy_decode(loaded: LoadedMusicgen, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record the codes of every EnCodec decode."""
    codec = loaded.model.audio_encoder
    codes: list[Any] = []
    real = codec.decode

    def spy(audio_codes: Any, *args: Any, **kwargs: Any) -> Any:
        codes.append(audio_codes.clone())
        return real(audio_codes, *args, **kwargs)

    monkeypatch.setattr(codec, "decode", spy)
    return codes


def spy_generate(loaded: LoadedMusicgen, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record every `generate` call's keyword arguments (copied), then run it."""
    calls: list[dict[str, Any]] = []
    real = loaded.model.generate

    def spy(**kwargs: Any) -> Any:
        calls.append({k: (v.clone() if hasattr(v, "clone") else v) for k, v in kwargs.items()})
        return real(**kwargs)

    monkeypatch.setattr(loaded.model, "generate", spy)
    return calls
