"""Melody chroma for MusicGen-melody, computed the way transformers' feature extractor does.

`MusicgenMelodyFeatureExtractor` needs torchaudio, which has no build for our torch, but its
algorithm is small: a power spectrogram (Hann window of `n_fft`, hop `hop_length`, centred with
reflection, scaled by the window's energy), projected onto 12 pitch classes with the librosa-style
chroma filter bank that transformers ships in `audio_utils` (no torchaudio there), normalised by the
largest bin, and reduced to a one-hot of the loudest pitch class per frame (silence becomes C, as
there). The model only ever sees that one-hot, so matching it exactly matters more than the
spectrogram's fine detail. Clips shorter than one FFT are zero-padded on both sides first, also as
there. Demucs stem separation (audiocraft's default) is not applied: the extractor skips it for raw
audio too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# transformers 5 saves a processor's settings as processor_config.json (the feature extractor's under
# a "feature_extractor" key); the Hub repos have the older preprocessor_config.json.
CONFIG_FILES = ("preprocessor_config.json", "processor_config.json")


@dataclass(frozen=True)
class ChromaSettings:
    """facebook/musicgen-melody's extractor settings (its defaults are these values)."""

    sampling_rate: int = 32_000
    n_fft: int = 16_384
    hop_length: int = 4_096
    num_chroma: int = 12
    chunk_length: int = 30  # seconds the extractor keeps of a clip

    @property
    def frame_rate(self) -> float:
        return self.sampling_rate / self.hop_length

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChromaSettings:
        nested = data.get("feature_extractor")
        if isinstance(nested, dict):
            data = nested
        defaults = cls()
        return cls(
            sampling_rate=int(data.get("sampling_rate", defaults.sampling_rate)),
            n_fft=int(data.get("n_fft", defaults.n_fft)),
            hop_length=int(data.get("hop_length", defaults.hop_length)),
            num_chroma=int(data.get("num_chroma", data.get("feature_size", defaults.num_chroma))),
            chunk_length=int(data.get("chunk_length", defaults.chunk_length)),
        )

    @classmethod
    def from_repo(cls, path: Path) -> ChromaSettings:
        """The settings saved with the model; the defaults when neither file is there."""
        for name in CONFIG_FILES:
            file = path / name
            if file.is_file():
                data = json.loads(file.read_text())
                if not isinstance(data, dict):
                    raise ValueError(f"{name} is not a JSON object")
                return cls.from_dict(data)
        return cls()


def chroma_filters(settings: ChromaSettings) -> np.ndarray:
    """(num_chroma, n_fft // 2 + 1): the extractor's filter bank (tuning 0, C first)."""
    from transformers.audio_utils import chroma_filter_bank

    bank = chroma_filter_bank(
        num_frequency_bins=settings.n_fft,
        num_chroma=settings.num_chroma,
        sampling_rate=settings.sampling_rate,
        tuning=0,
    )
    return np.asarray(bank, dtype=np.float32)


def chroma_energy(wave: np.ndarray, settings: ChromaSettings) -> np.ndarray:
    """(frames, num_chroma) pitch-class energy of a mono clip at `settings.sampling_rate`."""
    import torch

    samples = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    if samples.ndim != 1:
        raise ValueError("chroma_energy takes one mono clip")
    n_fft = settings.n_fft
    if samples.shape[0] < n_fft:
        missing = n_fft - samples.shape[0]
        samples = torch.nn.functional.pad(samples, (missing // 2, missing - missing // 2))
    window = torch.hann_window(n_fft)
    spectrum = torch.stft(
        samples,
        n_fft=n_fft,
        hop_length=settings.hop_length,
        win_length=n_fft,
        window=window,
        center=True,
        pad_mode="reflect",
        onesided=True,
        return_complex=True,
    )
    power = (spectrum / window.pow(2).sum().sqrt()).abs().pow(2)  # (freq, frames)
    filters = torch.from_numpy(chroma_filters(settings))
    energy: np.ndarray = (filters @ power).T.numpy()
    return energy


def melody_chroma(wave: np.ndarray, settings: ChromaSettings, *, truncate: bool = True) -> np.ndarray:
    """(frames, num_chroma) one-hot chroma, float32: what the extractor gives the model for one clip.

    `truncate` keeps the extractor's first `chunk_length` seconds; long outputs that walk along a
    longer melody pass False and pick their frames themselves.
    """
    if truncate:
        wave = wave[: settings.chunk_length * settings.sampling_rate]
    energy = chroma_energy(wave, settings)
    # The extractor divides by the frame's largest bin (at least 1e-6) before its argmax; the division
    # only matters for ties, which it can create in all-but-silent frames.
    peak = np.maximum(np.abs(energy).max(axis=1, keepdims=True), np.float32(1e-6))
    winners = (energy / peak).argmax(axis=1)
    one_hot = np.zeros_like(energy, dtype=np.float32)
    one_hot[np.arange(len(winners)), winners] = 1.0
    return one_hot


def chroma_window(chroma: np.ndarray, start: int, length: int) -> np.ndarray:
    """`length` frames of `chroma` from frame `start`, looping the clip as the model does when a
    melody is shorter than its chroma length (it tiles the frames)."""
    index = (start + np.arange(length)) % len(chroma)
    return chroma[index]


PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
