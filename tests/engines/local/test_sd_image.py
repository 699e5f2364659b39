"""The SD-Turbo family ("sd-image") on a tiny random-weight SD 2.1-layout model at 64×64."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from jsonschema import Draft202012Validator  # noqa: E402
from PIL import Image  # noqa: E402

from mediagen.engines.base import InputError  # noqa: E402
from mediagen.engines.local.family import Cancelled, Device, LocalRequest, WeightsError  # noqa: E402
from mediagen.engines.local.sd_image import ImagePipelines, TextToImageFamily, schedule_length  # noqa: E402
from tests.engines.local.tiny_sd import save_tiny_sd_turbo  # noqa: E402

CPU = Device("cpu", "float32")
CATALOG = Path(__file__).parents[3] / "mediagen" / "catalog" / "models" / "local__sd-turbo.json"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sd_turbo(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pipes(model_dir: Path) -> ImagePipelines:
    return TextToImageFamily().load(model_dir, CPU)


@pytest.fixture
def family() -> TextToImageFamily:
    return TextToImageFamily()


def request(tmp_path: Path, n: int = 0, *, seed: int = 5, **inputs: Any) -> LocalRequest:
    workdir = tmp_path / f"gen{n}"
    workdir.mkdir(exist_ok=True)
    base = {"prompt": "blue waves at sunset", "width": 64, "height": 64, "num_inference_steps": 1}
    return LocalRequest(generation_id=n, inputs={**base, **inputs}, workdir=workdir, seed=seed)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def no_progress(done: int, total: int) -> None:
    pass


def test_text_to_image_size_and_formats(
    family: TextToImageFamily, pipes: ImagePipelines, tmp_path: Path
) -> None:
    reqs = [
        request(tmp_path, 0, width=96, height=64),
        request(tmp_path, 1, width=96, height=64, output_format="jpg"),
        request(tmp_path, 2, width=96, height=64, output_format="webp"),
    ]
    outs = family.run(pipes, reqs, CPU, no_progress)
    assert [o.content_type for o in outs] == ["image/png", "image/jpeg", "image/webp"]
    expected_format = ["PNG", "JPEG", "WEBP"]
    for out, fmt in zip(outs, expected_format, strict=True):
        with Image.open(out.path) as image:
            assert image.size == (96, 64) and image.format == fmt
        assert out.metadata == {"width": 96, "height": 64, "steps": 1, "guidance_scale": 0.0}


def test_image_to_image(family: TextToImageFamily, pipes: ImagePipelines, tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.new("RGB", (200, 100), (200, 30, 30)).save(source)  # another size and aspect: cropped, resized
    calls: list[tuple[int, int]] = []
    [out] = family.run(
        pipes, [request(tmp_path, image=str(source), strength=0.5)], CPU, lambda d, t: calls.append((d, t))
    )
    with Image.open(out.path) as image:
        assert image.size == (64, 64)
    assert out.metadata["strength"] == 0.5 and out.metadata["steps"] == 1
    assert calls == [(1, 1)]  # one denoising step at Turbo's defaults, not zero
    # The input matters: another picture, same seed, another result.
    other = tmp_path / "other.png"
    Image.new("RGB", (64, 64), (20, 20, 220)).save(other)
    [out2] = family.run(pipes, [request(tmp_path, 1, image=str(other), strength=0.5)], CPU, no_progress)
    assert np.abs(pixels(out.path) - pixels(out2.path)).mean() > 0.2  # a random VAE keeps little of it


def test_schedule_length() -> None:
    assert schedule_length(1, 0.5) == 2  # SD-Turbo's model card: 2 steps at strength 0.5
    assert schedule_length(3, 0.3) == 10
    assert schedule_length(4, 1.0) == 4
    for steps in range(1, 5):
        for strength in (0.05, 0.1, 0.3, 0.33, 0.7, 0.99):
            n = schedule_length(steps, strength)
            assert int(n * strength) >= steps and int((n - 1) * strength) < steps


def test_same_seed_same_image_alone_or_batched(
    family: TextToImageFamily, pipes: ImagePipelines, tmp_path: Path
) -> None:
    """Bit-identical the same way twice; alone versus in a batch, equal to float rounding (the
    CPU kernels sum a batch in another order), at most one 8-bit level here and there."""
    alone = pixels(family.run(pipes, [request(tmp_path, 0, seed=9)], CPU, no_progress)[0].path)
    again = pixels(family.run(pipes, [request(tmp_path, 1, seed=9)], CPU, no_progress)[0].path)
    assert np.array_equal(alone, again)
    batch = family.run(
        pipes,
        [request(tmp_path, 2, seed=1, prompt="orange palette"), request(tmp_path, 3, seed=9)],
        CPU,
        no_progress,
    )
    assert np.abs(alone - pixels(batch[1].path)).max() <= 1
    assert np.abs(pixels(batch[0].path) - pixels(batch[1].path)).mean() > 1.0
    assert batch[1].path.parent.name == "gen3"


def test_progress_and_guidance(family: TextToImageFamily, pipes: ImagePipelines, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    [out] = family.run(
        pipes,
        [request(tmp_path, num_inference_steps=4, guidance_scale=3.0, negative_prompt="sad")],
        CPU,
        lambda d, t: calls.append((d, t)),
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert out.metadata["guidance_scale"] == 3.0 and out.metadata["steps"] == 4


def test_cancel_stops_the_loop(family: TextToImageFamily, pipes: ImagePipelines, tmp_path: Path) -> None:
    calls: list[int] = []

    def step(done: int, total: int) -> None:
        calls.append(done)
        raise Cancelled()

    with pytest.raises(Cancelled):
        family.run(pipes, [request(tmp_path, num_inference_steps=4)], CPU, step)
    assert calls == [1]
    assert not list((tmp_path / "gen0").iterdir())


def test_unreadable_image(family: TextToImageFamily, pipes: ImagePipelines, tmp_path: Path) -> None:
    garbage = tmp_path / "in.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 50)
    for path in (garbage, tmp_path / "missing.png"):
        with pytest.raises(InputError) as err:
            family.run(pipes, [request(tmp_path, image=str(path))], CPU, no_progress)
        assert err.value.field == "image"


def test_size_must_be_a_multiple_of_8(
    family: TextToImageFamily, pipes: ImagePipelines, tmp_path: Path
) -> None:
    with pytest.raises(InputError) as err:
        family.run(pipes, [request(tmp_path, width=60)], CPU, no_progress)
    assert err.value.field == "width"


def test_batch_key(family: TextToImageFamily) -> None:
    base = {"prompt": "a", "width": 512, "height": 512, "num_inference_steps": 1, "guidance_scale": 0.0}
    assert family.batch_key(base) == family.batch_key({**base, "prompt": "b", "output_format": "jpg"})
    for change in ({"width": 768}, {"height": 256}, {"num_inference_steps": 2}, {"guidance_scale": 2.0}):
        assert family.batch_key(base) != family.batch_key({**base, **change})
    with_image = {**base, "image": "/a.png", "strength": 0.5}
    assert family.batch_key(with_image) != family.batch_key(base)
    assert family.batch_key(with_image) != family.batch_key({**with_image, "strength": 0.7})
    assert family.batch_key(with_image) == family.batch_key({**with_image, "image": "/b.png"})


def test_load_shares_modules(pipes: ImagePipelines) -> None:
    assert pipes.img2img.unet is pipes.text2img.unet and pipes.img2img.vae is pipes.text2img.vae
    assert type(pipes.text2img).__name__ == "StableDiffusionPipeline"
    assert type(pipes.img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    scheduler = pipes.text2img.scheduler
    assert (
        type(scheduler).__name__ == "EulerDiscreteScheduler"
        and scheduler.config.timestep_spacing == "trailing"
    )
    assert pipes.text2img.vae_scale_factor == 8


def test_corrupt_or_missing_weights(model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    weights = next((broken / "vae").glob("*.safetensors"))
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="corrupt"):
        TextToImageFamily().load(broken, CPU)
    (broken / "model_index.json").unlink()
    with pytest.raises(WeightsError):
        TextToImageFamily().load(broken, CPU)


def test_catalog_entry() -> None:
    entry = json.loads(CATALOG.read_text())
    assert entry["id"] == "local/sd-turbo" and entry["kind"] == "image" and entry["engine"] == "local"
    assert entry["local"]["repo_id"] == "stabilityai/sd-turbo" and entry["local"]["family"] == "sd-image"
    schema = entry["input_schema"]
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert not list(validator.iter_errors({"prompt": "x", **entry["defaults"]}))
    for name, prop in schema["properties"].items():
        if name != "prompt":
            assert entry["defaults"][name] == prop["default"]
    assert list(validator.iter_errors({"prompt": "x", "width": 500}))  # not a multiple of 8
    assert list(validator.iter_errors({"prompt": "x", "num_inference_steps": 5}))
    assert entry["request_map"] == {"image_id": "image", "classifier_free_guidance": "guidance_scale"}
    assert entry["media_inputs"] == {"image": "image"}
