"""Wan text-to-video on a tiny random-weight pipeline saved like the real repo.

Clips are 32×32, 9 frames (3 latent frames through the real 4x temporal VAE), 2 steps: each
pipeline call is a fraction of a second on the CPU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from mediagen.engines.base import InputError
from mediagen.engines.local.family import Cancelled, Device, LocalRequest, WeightsError
from mediagen.engines.local.wan import WanFamily, decode, denoise, frames_for
from tests.engines.local.tiny_wan import save_tiny_wan

CPU = Device("cpu", "float32")
SMALL = {
    "width": 32,
    "height": 32,
    "num_frames": 9,
    "fps": 16,
    "num_inference_steps": 2,
    "guidance_scale": 5.0,
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_wan(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pipe(weights: Path) -> Any:
    return WanFamily().load(weights, CPU)


def request(tmp_path: Path, name: str, seed: int = 7, **inputs: Any) -> LocalRequest:
    workdir = tmp_path / name
    workdir.mkdir()
    return LocalRequest(
        generation_id=1,
        inputs={"prompt": "calm ambient piano", "negative_prompt": "blurry", **SMALL, **inputs},
        workdir=workdir,
        seed=seed,
    )


def no_progress(done: int, total: int) -> None:
    pass


def probe(path: Path) -> tuple[int, tuple[int, int], Fraction, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        size = (stream.codec_context.width, stream.codec_context.height)
        assert stream.average_rate is not None and stream.duration is not None and stream.time_base
        return count, size, Fraction(stream.average_rate), float(stream.duration * stream.time_base)


def latents_for(pipe: Any, prompts: list[str], seeds: list[int]) -> Any:
    return denoise(
        pipe,
        prompts=prompts,
        negative_prompts=["blurry"] * len(prompts),
        seeds=seeds,
        width=32,
        height=32,
        num_frames=9,
        steps=2,
        guidance_scale=5.0,
        on_step=lambda done: None,
    )


def test_text_to_video_decodes_to_the_asked_frames_size_and_rate(pipe: Any, tmp_path: Path) -> None:
    req = request(tmp_path, "one", width=48, height=32, num_frames=9, fps=12)
    [out] = WanFamily().run(pipe, [req], CPU, no_progress)
    assert out.path == req.workdir / "video.mp4" and out.content_type == "video/mp4"
    count, size, rate, duration = probe(out.path)
    assert (count, size, rate) == (9, (48, 32), Fraction(12))
    assert duration == pytest.approx(9 / 12, abs=1e-6)
    assert out.metadata == {
        "width": 48,
        "height": 32,
        "fps": 12,
        "num_frames": 9,
        "duration": 0.75,
        "steps": 2,
        "guidance_scale": 5.0,
    }


def test_a_batch_of_two_writes_one_clip_each(pipe: Any, tmp_path: Path) -> None:
    reqs = [request(tmp_path, "a", seed=1), request(tmp_path, "b", seed=2, prompt="blue waves", fps=8)]
    outs = WanFamily().run(pipe, reqs, CPU, no_progress)
    assert [o.path for o in outs] == [r.workdir / "video.mp4" for r in reqs]
    assert probe(outs[0].path)[:3] == (9, (32, 32), Fraction(16))
    assert probe(outs[1].path)[:3] == (9, (32, 32), Fraction(8))  # fps is the request's own
    assert outs[0].path.read_bytes() != outs[1].path.read_bytes()


def test_a_request_gives_the_same_latents_alone_and_inside_a_batch(pipe: Any) -> None:
    alone = latents_for(pipe, ["calm ambient piano"], [7])
    second = latents_for(pipe, ["blue waves", "calm ambient piano"], [3, 7])
    first = latents_for(pipe, ["calm ambient piano", "sad epic strings"], [7, 3])
    # Batched float32 matmuls block their sums differently from single ones, so bits may move:
    # measured ≤ 3e-6 on latents of magnitude ~1, while another seed moves them by ~5. 1e-4 keeps
    # 30x room over the measured jitter and is still far below any real difference.
    for batched in (second[1], first[0]):
        np.testing.assert_allclose(batched.numpy(), alone[0].numpy(), rtol=0, atol=1e-4)
    assert np.abs(second[0].numpy() - alone[0].numpy()).max() > 0.1  # another seed: another clip


def test_our_per_clip_decode_matches_the_pipelines_own(pipe: Any) -> None:
    import torch

    ours = decode(pipe, latents_for(pipe, ["calm ambient piano"], [7]))
    theirs = pipe(
        prompt=["calm ambient piano"],
        negative_prompt=["blurry"],
        width=32,
        height=32,
        num_frames=9,
        num_inference_steps=2,
        guidance_scale=5.0,
        generator=[torch.Generator("cpu").manual_seed(7)],
        output_type="np",
    ).frames[0]
    assert ours.shape == (9, 32, 32, 3) and ours.dtype == np.uint8
    assert np.abs(ours.astype(np.int16) - np.rint(theirs * 255)).max() <= 1


def test_progress_is_monotone_and_counts_steps_and_decodes(pipe: Any, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    reqs = [request(tmp_path, "a", num_inference_steps=3), request(tmp_path, "b", num_inference_steps=3)]
    WanFamily().run(pipe, reqs, CPU, lambda done, total: calls.append((done, total)))
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]  # 3 steps, then 2 decodes


def test_cancel_stops_between_steps(pipe: Any, tmp_path: Path) -> None:
    calls: list[int] = []

    def cancel_after_first(done: int, total: int) -> None:
        calls.append(done)
        raise Cancelled()

    req = request(tmp_path, "c", num_inference_steps=4)
    with pytest.raises(Cancelled):
        WanFamily().run(pipe, [req], CPU, cancel_after_first)
    assert calls == [1]
    assert not (req.workdir / "video.mp4").exists()


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"num_frames": 8}, "num_frames"),
        ({"num_frames": 85}, "num_frames"),
        ({"duration": 6.0, "fps": 16}, "duration"),  # 97 frames: more than the model's 81
        ({"width": 40}, "width"),
    ],
)
def test_inputs_the_model_cannot_take(pipe: Any, tmp_path: Path, inputs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        WanFamily().run(pipe, [request(tmp_path, "x", **inputs)], CPU, no_progress)
    assert err.value.field == field


def test_duration_picks_the_nearest_4k_plus_1_frames(pipe: Any, tmp_path: Path) -> None:
    assert frames_for({"num_frames": 33}) == 33
    assert frames_for({"duration": 5, "fps": 16, "num_frames": 33}) == 81  # duration wins
    assert frames_for({"duration": 2, "fps": 8}) == 17
    assert frames_for({"duration": 0.25, "fps": 8}) == 5  # never under one latent step
    assert frames_for({"duration": 10, "fps": 8}) == 81
    [out] = WanFamily().run(pipe, [request(tmp_path, "d", duration=0.5, fps=10)], CPU, no_progress)
    assert out.metadata["num_frames"] == 5 and probe(out.path)[0] == 5


def test_batch_key_keeps_apart_only_what_one_call_must_share() -> None:
    key = WanFamily().batch_key
    base = {"prompt": "a", **SMALL}
    assert key(base) == key({**base, "prompt": "b", "negative_prompt": "c", "fps": 8})
    assert key(base) == key({**base, "duration": 0.5})  # 8 frames at 16 fps → 9, as num_frames
    for change in ({"width": 48}, {"height": 48}, {"num_frames": 13}, {"num_inference_steps": 3}):
        assert key(base) != key({**base, **change})
    assert key(base) != key({**base, "guidance_scale": 1.0})  # no negative pass at all


def corrupted(weights: Path, tmp_path: Path, damage: Callable[[Path], None]) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(weights, copy)
    damage(copy)
    return copy


def truncate_transformer(path: Path) -> None:
    file = next((path / "transformer").glob("*.safetensors"))
    file.write_bytes(file.read_bytes()[:100])


def other_model(path: Path) -> None:
    index = json.loads((path / "model_index.json").read_text())
    (path / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionPipeline"}))


@pytest.mark.parametrize(
    "damage",
    [
        truncate_transformer,
        lambda p: shutil.rmtree(p / "transformer"),
        lambda p: shutil.rmtree(p / "vae"),
        lambda p: (p / "model_index.json").unlink(),
        lambda p: (p / "text_encoder" / "config.json").write_text("{not json"),
        other_model,
    ],
    ids=["truncated", "no-transformer", "no-vae", "no-index", "bad-config", "other-model"],
)
def test_broken_weights_raise_weights_error(
    weights: Path, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    with pytest.raises(WeightsError):
        WanFamily().load(corrupted(weights, tmp_path, damage), CPU)


def test_importing_the_family_loads_no_ml_library() -> None:
    code = (
        "import sys, mediagen.engines.local.wan as w; "
        "assert w.WanFamily.name == 'wan'; "
        "assert not {'torch', 'diffusers', 'transformers'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
