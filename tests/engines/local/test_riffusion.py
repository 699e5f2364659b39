"""The Riffusion family on a tiny random-weight SD 1.5-layout model.

The toy model runs at 64×64 (a real UNet at 512×512 would take minutes per step here), so the
family's clip is 64 columns (0.64 s) and the converter's mel bands 64 with a 100 ms FFT: a
narrower image is a shorter clip, every other parameter (44.1 kHz, 10 ms per column, 0–10 kHz,
Griffin-Lim) is Riffusion's.
"""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from jsonschema import Draft202012Validator  # noqa: E402
from PIL import Image  # noqa: E402

from mediagen.engines.audio_io import write_audio  # noqa: E402
from mediagen.engines.base import InputError  # noqa: E402
from mediagen.engines.local.family import Cancelled, Device, LocalRequest, WeightsError  # noqa: E402
from mediagen.engines.local.riffusion import RiffusionFamily, RiffusionPipelines  # noqa: E402
from mediagen.engines.local.spectrogram import SpectrogramParams, mel_filterbank  # noqa: E402
from tests.engines.local.tiny_sd import save_tiny_riffusion  # noqa: E402

CPU = Device("cpu", "float32")
SR = 44_100
CATALOG = Path(__file__).parents[3] / "mediagen" / "catalog" / "models" / "local__riffusion.json"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_riffusion(tmp_path_factory.mktemp("models"))


@pytest.fixture
def family() -> RiffusionFamily:
    family = RiffusionFamily()
    family.params = SpectrogramParams(n_mels=64, n_fft=4_410)
    family.clip_px = 64
    return family


@pytest.fixture(scope="module")
def pipes(model_dir: Path) -> RiffusionPipelines:
    return RiffusionFamily().load(model_dir, CPU)


def request(tmp_path: Path, n: int = 0, *, seed: int = 11, **inputs: Any) -> LocalRequest:
    workdir = tmp_path / f"gen{n}"
    workdir.mkdir(exist_ok=True)
    base = {
        "prompt": "calm ambient piano",
        "duration": 0.64,
        "num_inference_steps": 4,
        "guidance_scale": 7.0,
        "output_format": "wav",
    }
    return LocalRequest(generation_id=n, inputs={**base, **inputs}, workdir=workdir, seed=seed)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as f:
        assert f.getframerate() == SR and f.getnchannels() == 1
        return np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def no_progress(done: int, total: int) -> None:
    pass


def gaps(x: np.ndarray, regions: list[tuple[int, int]]) -> list[int]:
    """10 ms windows inside `regions` at least 14 dB below the file's median level."""
    win = 441
    rms = np.sqrt((x[: len(x) // win * win].reshape(-1, win) ** 2).mean(axis=1))
    floor = 0.2 * float(np.median(rms))
    return [i for a, b in regions for i in range(a // win, min(b // win + 1, len(rms))) if rms[i] < floor]


def clicks(x: np.ndarray, regions: list[tuple[int, int]]) -> bool:
    """Is any sample-to-sample jump inside `regions` sharper than every jump elsewhere?"""
    jump = np.abs(np.diff(x))
    inside = np.zeros(len(jump), dtype=bool)
    for a, b in regions:
        inside[a:b] = True
    return bool(jump[inside].max() > jump[~inside].max())


def write_clip(path: Path, seconds: float) -> Path:
    t = np.arange(round(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 660 * t) * (t % 0.25 < 0.1)
    write_audio(tone[None, :].astype(np.float32), path, "wav", rate=SR)
    return path


def test_one_clip(family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path) -> None:
    [out] = family.run(pipes, [request(tmp_path)], CPU, no_progress)
    assert out.content_type == "audio/wav" and out.path.parent == tmp_path / "gen0"
    samples = read_wav(out.path)
    assert len(samples) == round(0.64 * SR)
    peak = float(np.max(np.abs(samples)))
    assert 10 ** (-1.1 / 20) < peak <= 10 ** (-1 / 20) + 1e-4  # normalised to -1 dBFS
    picture_path, mime = out.extra["spectrogram"]
    assert mime == "image/png"
    with Image.open(picture_path) as picture:
        assert picture.size == (64, 64)  # one column per 10 ms, one row per mel band
    assert out.metadata["clips"] == 1 and out.metadata["crossfade_seconds"] == 0.0
    assert out.metadata["sample_rate"] == SR and out.metadata["duration"] == 0.64
    assert "seed" not in out.metadata


def test_riffusions_own_converter(pipes: RiffusionPipelines, tmp_path: Path) -> None:
    """The real spectrogram parameters (512 mel bands = the image height, 400 ms FFT); only the
    clip is narrow, so the toy UNet sees a 512×64 image."""
    family = RiffusionFamily()
    family.clip_px = 64
    [out] = family.run(pipes, [request(tmp_path, num_inference_steps=2)], CPU, no_progress)
    with Image.open(out.extra["spectrogram"][0]) as picture:
        assert picture.size == (64, 512)
    assert out.metadata["spectrogram_height"] == 512
    assert len(read_wav(out.path)) == round(0.64 * SR)


def test_long_duration_joins_clips_without_gaps_or_clicks(
    family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path
) -> None:
    [out] = family.run(pipes, [request(tmp_path, duration=2.5)], CPU, no_progress)
    samples = read_wav(out.path)
    assert len(samples) == round(2.5 * SR)  # trimmed to the exact duration
    stride = family.clip_px - family.overlap_px
    clips = out.metadata["clips"]
    assert clips == 1 + -(-(250 - 64) // stride) == 5
    with Image.open(out.extra["spectrogram"][0]) as picture:
        assert picture.size == (250, 64)
    # Each join: its crossfade plus 50 ms either side, in samples.
    joins = [
        (max(0, (k * stride - 5) * 441), (k * stride + family.overlap_px + 5) * 441) for k in range(1, clips)
    ]
    assert gaps(samples, joins) == []
    assert gaps(samples, [(0, len(samples) - 1)]) == []  # nor anywhere else
    assert not clicks(samples, joins)
    # The checks do catch what riffusion-hobby#116 heard: 20 ms of silence at a join, a step.
    a, _ = joins[1]
    gapped = samples.copy()
    gapped[a + 2000 : a + 2000 + 882] = 0.0
    assert gaps(gapped, joins)
    stepped = samples.copy()
    stepped[a + 2000 :] += 0.5
    assert clicks(stepped, joins)


def test_neighbouring_clips_start_from_related_noise(
    family: RiffusionFamily, pipes: RiffusionPipelines
) -> None:
    walk = family._noise_walk(5, 3, (4, 8, 8))
    assert torch.equal(walk[0], family._noise_walk(5, 1, (4, 8, 8))[0])  # a longer piece starts the same
    cos = torch.nn.functional.cosine_similarity
    assert float(cos(walk[0].flatten(), walk[1].flatten(), dim=0)) > 0.5
    assert abs(float(cos(walk[0].flatten(), walk[2].flatten(), dim=0))) < 0.2  # keyframes are independent
    norms = [float(w.norm()) for w in walk]
    assert max(norms) / min(norms) < 1.1  # slerp keeps Gaussian noise's scale


def test_mp3_output(family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path) -> None:
    import av

    [out] = family.run(pipes, [request(tmp_path, output_format="mp3")], CPU, no_progress)
    assert out.content_type == "audio/mpeg" and out.path.suffix == ".mp3"
    with av.open(str(out.path)) as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded == round(0.64 * SR)


def test_audio_to_audio(family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.wav", 1.5)
    [out] = family.run(
        pipes, [request(tmp_path, audio=str(clip), duration=1.0, strength=0.5)], CPU, no_progress
    )
    assert len(read_wav(out.path)) == SR  # the first `duration` seconds of the clip
    assert out.metadata["strength"] == 0.5 and out.metadata["clips"] == 2
    # A clip shorter than the duration gives music as long as the clip.
    [short] = family.run(
        pipes, [request(tmp_path, 1, audio=str(clip), duration=5.0, strength=0.5)], CPU, no_progress
    )
    assert len(read_wav(short.path)) == round(1.5 * SR)
    assert short.metadata["duration"] == 1.5


def test_audio_to_audio_paints_over_the_clips_spectrogram(
    family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.wav", 1.5)
    job = family._prepare(pipes, request(tmp_path, audio=str(clip), duration=1.5))
    assert job.images is not None and len(job.images) == job.clips == 3
    first = np.asarray(job.images[0])[:, :, 0]
    assert job.images[0].size == (64, 64)
    # The loudest row is the mel band of the 220 Hz tone (low bands at the bottom of the image).
    bands = mel_filterbank(np.array([220.0]), 64, 0.0, 10_000.0)[0]
    assert int(np.argmin(first.mean(axis=1))) == 63 - int(np.argmax(bands))
    # The last window runs past the clip's end: silence (white) there, not a stretched clip.
    last = np.asarray(job.images[-1])[:, :, 0]
    assert (last[:, 150 - 2 * (64 - 8) :] == 255).all()
    # With random weights the model ignores most of it, but the input does change the result.
    silent = tmp_path / "silent.wav"
    write_audio(np.zeros((1, SR), dtype=np.float32), silent, "wav", rate=SR)
    outs = family.run(
        pipes,
        [
            request(tmp_path, 0, audio=str(clip), strength=0.25),
            request(tmp_path, 1, audio=str(silent), strength=0.25),
        ],
        CPU,
        no_progress,
    )
    pictures = [np.asarray(Image.open(o.extra["spectrogram"][0]), dtype=np.float32) for o in outs]
    assert np.abs(pictures[0] - pictures[1]).mean() > 1.0


def test_unreadable_or_short_audio(
    family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path
) -> None:
    garbage = tmp_path / "clip.mp3"
    garbage.write_bytes(b"not audio at all" * 100)
    with pytest.raises(InputError) as err:
        family.run(pipes, [request(tmp_path, audio=str(garbage))], CPU, no_progress)
    assert err.value.field == "audio"
    short = write_clip(tmp_path / "short.wav", 0.3)
    with pytest.raises(InputError, match="at least") as err:
        family.run(pipes, [request(tmp_path, audio=str(short))], CPU, no_progress)
    assert err.value.field == "audio"
    with pytest.raises(InputError) as err:
        family.run(pipes, [request(tmp_path, audio=str(tmp_path / "missing.wav"))], CPU, no_progress)
    assert err.value.field == "audio"


def test_strength_too_low_for_the_steps(
    family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.wav", 1.0)
    with pytest.raises(InputError) as err:
        family.run(
            pipes, [request(tmp_path, audio=str(clip), num_inference_steps=2, strength=0.3)], CPU, no_progress
        )
    assert err.value.field == "strength"


def test_same_seed_same_music_alone_or_batched(
    family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path
) -> None:
    """Bit-identical when run the same way; alone versus in a batch, equal to float rounding:
    the toy UNet's output for one latent differs by 1.2e-6 between batches of 1 and 4 (the CPU
    kernels sum in another order), which reaches the 16-bit samples as a few LSB."""
    alone = family.run(pipes, [request(tmp_path, 0, seed=3, duration=1.5)], CPU, no_progress)[0]
    first = read_wav(alone.path)
    again = family.run(pipes, [request(tmp_path, 3, seed=3, duration=1.5)], CPU, no_progress)[0]
    assert np.array_equal(first, read_wav(again.path))
    family.max_images_per_call = 4  # the batch's 6 clips split across two calls, mid-request
    other = request(tmp_path, 1, seed=4, duration=1.5, prompt="epic drums", negative_prompt="guitar")
    batch = family.run(pipes, [other, request(tmp_path, 2, seed=3, duration=1.5)], CPU, no_progress)
    batched = read_wav(batch[1].path)
    # Griffin-Lim carries the rounding on, to ~17 LSB at worst: far below hearing (-66 dBFS).
    assert np.linalg.norm(first - batched) / np.linalg.norm(first) < 1e-3
    assert np.abs(first - batched).max() < 2e-3
    assert np.abs(read_wav(batch[0].path) - batched).max() > 0.1
    assert batch[0].path.parent.name == "gen1" and batch[1].path.parent.name == "gen2"


def test_progress_is_monotone_with_the_real_total(
    family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path
) -> None:
    family.max_images_per_call = 2
    calls: list[tuple[int, int]] = []
    family.run(pipes, [request(tmp_path, duration=1.5)], CPU, lambda d, t: calls.append((d, t)))
    # 3 clips in 2 calls; PNDM (PLMS only) runs steps + 1 iterations per call.
    assert calls == [(d, 10) for d in range(1, 11)]


def test_cancel_stops_the_loop(family: RiffusionFamily, pipes: RiffusionPipelines, tmp_path: Path) -> None:
    calls: list[int] = []

    def step(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        family.run(pipes, [request(tmp_path, duration=1.5, num_inference_steps=20)], CPU, step)
    assert calls == [1, 2]
    assert not list((tmp_path / "gen0").iterdir())  # nothing written


def test_batch_key(family: RiffusionFamily) -> None:
    base = {"prompt": "a", "duration": 5.12, "num_inference_steps": 50, "guidance_scale": 7.0}
    assert family.batch_key(base) == family.batch_key({**base, "prompt": "b", "negative_prompt": "c"})
    assert family.batch_key(base) == family.batch_key({**base, "strength": 0.9})  # unused without audio
    for change in (
        {"duration": 10.0},
        {"num_inference_steps": 20},
        {"guidance_scale": 3.0},
        {"audio": "/x.wav"},
    ):
        assert family.batch_key(base) != family.batch_key({**base, **change})
    with_audio = {**base, "audio": "/x.wav", "strength": 0.6}
    assert family.batch_key(with_audio) != family.batch_key({**with_audio, "strength": 0.7})
    assert family.batch_key(with_audio) == family.batch_key({**with_audio, "audio": "/y.wav"})


def test_load_shares_modules(pipes: RiffusionPipelines) -> None:
    assert pipes.img2img.unet is pipes.text2img.unet
    assert (
        pipes.img2img.vae is pipes.text2img.vae and pipes.img2img.text_encoder is pipes.text2img.text_encoder
    )
    assert type(pipes.text2img.scheduler).__name__ == "PNDMScheduler"
    assert pipes.text2img.safety_checker is None


def test_corrupt_or_missing_weights(model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    weights = next((broken / "unet").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="corrupt"):
        RiffusionFamily().load(broken, CPU)
    shutil.rmtree(broken / "unet")
    with pytest.raises(WeightsError):
        RiffusionFamily().load(broken, CPU)
    with pytest.raises(WeightsError):
        RiffusionFamily().load(tmp_path / "nothing-here", CPU)


def test_catalog_entry() -> None:
    entry = json.loads(CATALOG.read_text())
    assert entry["id"] == "local/riffusion" and entry["kind"] == "audio" and entry["engine"] == "local"
    assert (
        entry["local"]["repo_id"] == "riffusion/riffusion-model-v1"
        and entry["local"]["family"] == "riffusion"
    )
    schema = entry["input_schema"]
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert not list(validator.iter_errors({"prompt": "x", **entry["defaults"]}))
    for name, prop in schema["properties"].items():
        if name != "prompt":
            assert entry["defaults"][name] == prop["default"]
    assert list(validator.iter_errors({"prompt": "x", "duration": 61}))
    assert list(validator.iter_errors({"prompt": "x", "num_inference_steps": 101}))
    assert entry["request_map"] == {"audio_id": "audio", "classifier_free_guidance": "guidance_scale"}
    assert entry["media_inputs"] == {"audio": "audio"}
