"""Our melody chroma against known notes and against transformers' own extractor.

transformers' `MusicgenMelodyFeatureExtractor` only needs torchaudio for its spectrogram (and for
resampling, unused at 32 kHz). Given a stand-in `torchaudio` whose Spectrogram is an independent
numpy STFT, its real code runs: truncation, padding, the filter bank, the normalisation and the
one-hot. Our torch.stft version must give the same frames.
"""

from __future__ import annotations

import importlib
import json
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from mediagen.engines.local.chroma import (  # noqa: E402
    PITCH_CLASSES,
    ChromaSettings,
    chroma_window,
    melody_chroma,
)

SR = 32_000
SETTINGS = ChromaSettings()


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def pitch_names(chroma: np.ndarray) -> list[str]:
    assert np.all(chroma.sum(axis=1) == 1.0), "one-hot per frame"
    return [PITCH_CLASSES[i] for i in chroma.argmax(axis=1)]


def test_a4_is_pitch_class_a() -> None:
    chroma = melody_chroma(tone(440.0, 3.0), SETTINGS)
    assert chroma.shape == (1 + 3 * SR // 4096, 12)
    assert set(pitch_names(chroma)) == {"A"}


def test_c_major_arpeggio_gives_c_e_g() -> None:
    notes = {"C": 261.63, "E": 329.63, "G": 392.00}
    wave = np.concatenate([tone(f, 2.0) for f in notes.values()])
    names = pitch_names(melody_chroma(wave, SETTINGS))
    per_note = 2.0 * SR / 4096  # frames per note
    # Frames whose window (n_fft = 0.5 s) lies inside one note.
    for i, name in enumerate(notes):
        middle = names[int(i * per_note + 3) : int((i + 1) * per_note - 3)]
        assert middle and set(middle) == {name}, (name, middle)


def test_settings_read_from_either_config_file(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "preprocessor_config.json").write_text(json.dumps({"hop_length": 2048, "sampling_rate": 32000}))
    assert ChromaSettings.from_repo(hub).hop_length == 2048
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "processor_config.json").write_text(json.dumps({"feature_extractor": {"n_fft": 8192}}))
    assert ChromaSettings.from_repo(saved).n_fft == 8192
    assert ChromaSettings.from_repo(tmp_path) == ChromaSettings()


def test_window_loops_a_short_melody() -> None:
    chroma = np.eye(12, dtype=np.float32)[[0, 4, 7]]
    assert chroma_window(chroma, 2, 5).argmax(axis=1).tolist() == [7, 0, 4, 7, 0]


class NumpySpectrogram:
    """torchaudio.transforms.Spectrogram(power=2, normalized=True, center=True) in plain numpy."""

    def __init__(self, *, n_fft: int, win_length: int, hop_length: int, **_: Any) -> None:
        assert win_length == n_fft
        self.n_fft, self.hop = n_fft, hop_length
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann

    def __call__(self, waveform: Any) -> Any:
        import torch

        wave = waveform.numpy().astype(np.float64)
        half = self.n_fft // 2
        padded = np.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(half, half)], mode="reflect")
        count = 1 + wave.shape[-1] // self.hop
        frames = np.stack(
            [padded[..., i * self.hop : i * self.hop + self.n_fft] for i in range(count)], axis=-2
        )
        spec = np.abs(np.fft.rfft(frames * self.window, axis=-1)) ** 2 / np.sum(self.window**2)
        return torch.from_numpy(np.swapaxes(spec, -1, -2).astype(np.float32))


@pytest.fixture
def extractor(monkeypatch: pytest.MonkeyPatch) -> Any:
    # The module itself, not transformers' lazy attribute (a placeholder that raises without torchaudio).
    module = importlib.import_module("transformers.models.musicgen_melody.feature_extraction_musicgen_melody")
    fake = types.SimpleNamespace(transforms=types.SimpleNamespace(Spectrogram=NumpySpectrogram))
    monkeypatch.setattr(module, "torchaudio", fake, raising=False)
    return module.MusicgenMelodyFeatureExtractor()


@pytest.mark.parametrize(
    "seconds",
    [0.2, 4.0, 31.0],  # shorter than one FFT (padded), ordinary, longer than the 30 s the extractor keeps
)
def test_matches_transformers_extractor(extractor: Any, seconds: float) -> None:
    rng = np.random.default_rng(7)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    melody = np.sin(2 * np.pi * (220 + 200 * np.floor(t * 2) % 600) * t)  # a note change every 0.5 s
    wave = (0.4 * melody + 0.05 * rng.standard_normal(n)).astype(np.float32)
    theirs = extractor(wave, sampling_rate=SR, return_tensors="np")["input_features"][0]
    ours = melody_chroma(wave, SETTINGS)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)
