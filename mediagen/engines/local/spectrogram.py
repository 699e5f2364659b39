"""Audio ↔ spectrogram image, the way Riffusion's model was trained to see sound.

Riffusion is Stable Diffusion fine-tuned on pictures of mel spectrograms, so its output is only
music once an image is turned back into a waveform. Its own converter needs torchaudio, which has
no build for our torch, so this module does the same maths with numpy and `torch.stft`:

- forward: |STFT| (Hann window of 100 ms zero-padded to 400 ms, hop 10 ms) → 512 HTK mel bands
  over 0–10 kHz → amplitude / max → power 0.25 → ×255 → inverted (dark = loud), low notes at the
  bottom. One pixel column is one 10 ms hop, so 512 px are 5.12 s.
- back: pixels → amplitudes (`max_value` 30e6, as Riffusion) → linear-frequency magnitudes by
  the mel filterbank's pseudo-inverse, clamped to ≥ 0 → phase by fast Griffin-Lim (momentum).

Why a pseudo-inverse: torchaudio's InverseMelScale solves by SGD (slow), librosa's NNLS tries to
allocate ~155 GiB at these sizes, and `torch.linalg.lstsq`'s default `gelsy` driver returned an
all-zero solution here. The pseudo-inverse is computed once per parameter set and cached, so
converting a clip costs one matrix product before Griffin-Lim.

Absolute levels do not survive the image (it is normalised by its own maximum); callers that
play the result normalise the waveform afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

Array = np.ndarray


@dataclass(frozen=True)
class SpectrogramParams:
    """Riffusion's defaults (riffusion-hobby `spectrogram_params.py`); tests shrink `n_mels`."""

    sample_rate: int = 44_100
    hop_length: int = 441  # 10 ms: one image column
    win_length: int = 4_410  # 100 ms Hann window
    n_fft: int = 17_640  # the window zero-padded to 400 ms: 2.5 Hz bins
    n_mels: int = 512  # the image height
    f_min: float = 0.0
    f_max: float = 10_000.0
    image_power: float = 0.25  # brings quiet partials up into the 8-bit range
    max_value: float = 30e6  # the amplitude that pixel 0 (black) stands for on the way back
    griffin_lim_iters: int = 32
    momentum: float = 0.99

    @property
    def n_stft(self) -> int:
        return self.n_fft // 2 + 1

    def frames(self, seconds: float) -> int:
        """Image columns that cover `seconds` (rounded up)."""
        return max(1, math.ceil(round(seconds * self.sample_rate) / self.hop_length))

    def seconds(self, frames: int) -> float:
        return frames * self.hop_length / self.sample_rate


def hz_to_mel(hz: Array | float) -> Array:
    """HTK mel scale: 2595·log10(1 + f/700) (1000 Hz ≈ 1000 mel)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: Array | float) -> Array:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(freqs: Array, n_mels: int, f_min: float, f_max: float) -> Array:
    """Triangular filters without area normalisation, shape (len(freqs), n_mels).

    Filter m rises from corner m to its peak at corner m+1 and falls to corner m+2, the corners
    equally spaced in mel between f_min and f_max (torchaudio's `melscale_fbanks` with
    `norm=None, mel_scale="htk"`). A filter is exactly 1 at its centre frequency; on a discrete
    grid its largest value is where the nearest bin falls on the triangle.
    """
    corners = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    f = np.asarray(freqs, dtype=np.float64)[:, None]
    lower, centre, upper = corners[:-2], corners[1:-1], corners[2:]
    rising = (f - lower) / (centre - lower)
    falling = (upper - f) / (upper - centre)
    return np.asarray(np.maximum(0.0, np.minimum(rising, falling)))


def stft_freqs(params: SpectrogramParams) -> Array:
    return np.linspace(0.0, params.sample_rate / 2, params.n_stft)


@lru_cache(maxsize=4)
def _filterbank(params: SpectrogramParams) -> tuple[Array, Array]:
    """(filterbank (n_stft, n_mels), its pseudo-inverse for mel → linear (n_stft, n_mels))."""
    fb = mel_filterbank(stft_freqs(params), params.n_mels, params.f_min, params.f_max)
    # mel = fbᵀ · linear; its minimum-norm solution is pinv(fbᵀ) = fb·(fbᵀfb)⁻¹ when no filter is
    # empty (true from 2.5 Hz bins up; the Gram matrix's condition number is ~43). Solving the
    # 512×512 system is 3× faster than numpy's SVD-based pinv and equal to 1e-14.
    gram = fb.T @ fb
    if np.any(np.diag(gram) == 0):
        raise ValueError("a mel filter covers no STFT bin: raise n_fft or lower n_mels")
    inverse = np.linalg.solve(gram, fb.T).T
    return fb.astype(np.float32), inverse.astype(np.float32)


def _window(params: SpectrogramParams, device: Any) -> Any:
    import torch

    return torch.hann_window(params.win_length, dtype=torch.float32, device=device)


def _stft(samples: Any, params: SpectrogramParams) -> Any:
    """Complex STFT, centred frames (reflect padding), `len // hop + 1` columns."""
    import torch

    return torch.stft(
        samples,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.win_length,
        window=_window(params, samples.device),
        center=True,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )


def _istft(spec: Any, params: SpectrogramParams, length: int) -> Any:
    import torch

    return torch.istft(
        spec,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.win_length,
        window=_window(params, spec.device),
        center=True,
        normalized=False,
        onesided=True,
        length=length,
    )


def magnitude(samples: Array, params: SpectrogramParams, *, device: str = "cpu") -> Array:
    """|STFT| of mono samples, (n_stft, len // hop): one column per whole hop, as in the image."""
    import torch

    x = torch.as_tensor(np.ascontiguousarray(samples, dtype=np.float32), device=device)
    frames = len(samples) // params.hop_length
    return np.asarray(_stft(x, params).abs()[:, :frames].cpu().numpy())


def mel_from_audio(samples: Array, params: SpectrogramParams, *, device: str = "cpu") -> Array:
    """Mel amplitudes (n_mels, len // hop) of mono float samples at `params.sample_rate`."""
    if len(samples) < params.hop_length:
        raise ValueError(f"{len(samples)} samples: shorter than one {params.hop_length}-sample hop")
    fb, _ = _filterbank(params)
    return np.asarray(fb.T @ magnitude(samples, params, device=device))


def image_from_mel(mel: Array, params: SpectrogramParams, *, max_value: float | None = None) -> Image.Image:
    """An RGB image (n_mels high, one column per frame), dark = loud, low frequencies at the bottom.

    `max_value` is the amplitude that maps to black; by default the spectrogram's own maximum.
    Several windows of one clip share the clip's maximum so they keep their relative levels.
    """
    from PIL import Image

    peak = float(np.max(mel)) if max_value is None else max_value
    scaled = np.clip(mel / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(mel)
    pixels = 255.0 - np.power(scaled, params.image_power) * 255.0
    grey = np.round(pixels[::-1]).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def mel_from_image(image: Image.Image, params: SpectrogramParams, *, max_value: float | None = None) -> Array:
    """Mel amplitudes (image height, image width) back from a spectrogram image.

    The model paints three nearly equal channels; their mean is less noisy than Riffusion's
    first channel alone.
    """
    return mel_from_pixels(np.asarray(image.convert("RGB"), dtype=np.float32), params, max_value=max_value)


def mel_from_pixels(pixels: Array, params: SpectrogramParams, *, max_value: float | None = None) -> Array:
    """`mel_from_image` for an (height, width[, channels]) array of 0–255 values, e.g. a
    pipeline's float output before it is rounded to 8 bits."""
    data = pixels.mean(axis=2) if pixels.ndim == 3 else pixels
    if data.shape[0] != params.n_mels:
        raise ValueError(f"spectrogram image is {data.shape[0]} px high, expected {params.n_mels}")
    level = np.clip((255.0 - data[::-1]) / 255.0, 0.0, 1.0)
    peak = params.max_value if max_value is None else max_value
    return np.asarray(np.power(level, 1.0 / params.image_power) * peak, dtype=np.float32)


def griffin_lim(magnitudes: Any, params: SpectrogramParams, *, length: int, seed: int = 0) -> Any:
    """A waveform whose |STFT| approaches `magnitudes` (n_stft, frames): fast Griffin-Lim.

    Each round keeps the phase of the re-analysed signal and pushes it past the previous round's
    (momentum/(1+momentum), Perraudin et al. 2013), which converges in far fewer rounds than
    plain Griffin-Lim. The initial phases are uniform random from a CPU generator seeded with
    `seed`, so a seed gives the same waveform on every device.
    """
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(magnitudes.shape, generator=generator, dtype=torch.float32) * (2 * math.pi)
    angles = torch.polar(torch.ones_like(phase), phase).to(magnitudes.device)
    # istft needs one column more than whole hops to cover `length` samples. A copy of the last
    # column (not silence, which fades the final 10 ms out).
    mags = torch.cat([magnitudes, magnitudes[:, -1:]], dim=1)
    angles = torch.nn.functional.pad(angles, (0, 1), value=1.0)
    previous = torch.zeros_like(angles)
    push = params.momentum / (1 + params.momentum)
    for _ in range(params.griffin_lim_iters):
        rebuilt = _stft(_istft(mags * angles, params, length), params)
        # sgn(z) = z/|z| (0 at 0): four times faster here than dividing by abs() + eps.
        angles = torch.sgn(rebuilt.sub(previous, alpha=push))
        previous = rebuilt
    return _istft(mags * angles, params, length)


def audio_from_mel(mel: Array, params: SpectrogramParams, *, device: str = "cpu", seed: int = 0) -> Array:
    """Mono float32 samples (frames × hop long) from mel amplitudes (n_mels, frames).

    Not normalised: the level follows the amplitudes (with `max_value` 30e6 that is far above
    full scale); callers scale the result.
    """
    import torch

    _, inverse = _filterbank(params)
    mel_t = torch.as_tensor(np.ascontiguousarray(mel, dtype=np.float32), device=device)
    linear = torch.clamp(torch.as_tensor(inverse, device=device) @ mel_t, min=0.0)
    length = mel.shape[1] * params.hop_length
    samples = griffin_lim(linear, params, length=length, seed=seed)
    return np.asarray(samples.cpu().numpy(), dtype=np.float32)


def spectrogram_image_from_audio(
    samples: Array, params: SpectrogramParams, *, device: str = "cpu"
) -> Image.Image:
    """The image Riffusion would see for this clip (len // hop columns)."""
    return image_from_mel(mel_from_audio(samples, params, device=device), params)


def audio_from_spectrogram_image(
    image: Image.Image,
    params: SpectrogramParams,
    *,
    device: str = "cpu",
    seed: int = 0,
    max_value: float | None = None,
) -> Array:
    """Mono samples (width × hop long, unnormalised) for a spectrogram image."""
    return audio_from_mel(
        mel_from_image(image, params, max_value=max_value), params, device=device, seed=seed
    )


def crossfade_join(mels: list[Array], overlap: int) -> Array:
    """Mel spectrograms laid end to end, each overlapping the next by `overlap` columns.

    The overlap is an equal-power crossfade in the power domain, |S|² = cos²θ·|A|² + sin²θ·|B|²,
    so two unrelated clips of equal loudness keep that loudness through the join (a linear
    amplitude fade dips by 3 dB in the middle). Joining before Griffin-Lim means one phase
    estimate runs across every join: no gap and no discontinuity to click.
    """
    if not mels:
        raise ValueError("nothing to join")
    out = mels[0]
    for nxt in mels[1:]:
        n = min(overlap, out.shape[1], nxt.shape[1])
        if n == 0:
            out = np.concatenate([out, nxt], axis=1)
            continue
        theta = (np.arange(n) + 0.5) / n * (math.pi / 2)
        fade_out, fade_in = np.cos(theta) ** 2, np.sin(theta) ** 2
        tail, head = out[:, -n:], nxt[:, :n]
        blended = np.sqrt(fade_out * tail**2 + fade_in * head**2)
        out = np.concatenate([out[:, :-n], blended, nxt[:, n:]], axis=1)
    return out


def peak_normalise(samples: Array, *, peak_dbfs: float = -1.0) -> Array:
    """Scale so the largest sample sits at `peak_dbfs`; silence stays silence."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak < 1e-12:
        return np.zeros_like(samples, dtype=np.float32)
    return np.asarray(samples * (10.0 ** (peak_dbfs / 20.0) / peak), dtype=np.float32)


__all__ = [
    "SpectrogramParams",
    "audio_from_mel",
    "audio_from_spectrogram_image",
    "crossfade_join",
    "griffin_lim",
    "hz_to_mel",
    "image_from_mel",
    "magnitude",
    "mel_filterbank",
    "mel_from_audio",
    "mel_from_image",
    "mel_from_pixels",
    "mel_to_hz",
    "peak_normalise",
    "spectrogram_image_from_audio",
]
