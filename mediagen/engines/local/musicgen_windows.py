"""The parts of MusicGen generation that are ours rather than transformers': per-request seeded
sampling, windows for music longer than the model's 30 s, reading codes back out of the delay
pattern, reading a stored clip, and joining a clip to its continuation.

Long music is continued in the token domain: each window after the first is prompted with the last
`context` frames of codes made so far, and only the codes are kept. The whole sequence is decoded by
EnCodec once at the end, so there is no join in the audio at all (decoding windows separately and
splicing them would leave a seam wherever two decodes of the same codes disagree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mediagen.engines.local.family import InputError, StepCallback


@dataclass(frozen=True)
class Window:
    prompt_frames: int  # codes taken from what was made before (or from the clip)
    new_frames: int  # codes this window adds
    start_frame: int  # where its prompt starts, in frames of everything made (clip prompt included)


def plan_windows(prompt_frames: int, new_frames: int, window: int, context: int) -> list[Window]:
    """Windows of at most `window` frames that together add `new_frames` after a prompt of
    `prompt_frames` (at most `context`); each later window is prompted with `context` frames."""
    if not 0 < context < window or not 0 <= prompt_frames <= context:
        raise ValueError("need 0 < context < window and a prompt no longer than the context")
    plans = []
    made, left, prompt = prompt_frames, new_frames, prompt_frames
    while left > 0:
        adds = min(left, window - prompt)
        plans.append(Window(prompt, adds, made - prompt))
        made, left = made + adds, left - adds
        prompt = min(context, made)
    return plans


def decoding_steps(window: Window, num_codebooks: int) -> int:
    """New tokens for one window: the delay pattern needs `num_codebooks - 1` more than frames."""
    return window.new_frames + num_codebooks - 1


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_k: int
    top_p: float


class Progress:
    """Counts decoding steps over every call of a batch and reports them (may raise Cancelled)."""

    def __init__(self, step: StepCallback, total: int) -> None:
        self.step, self.total, self.done = step, total, 0

    def advance(self) -> None:
        self.done += 1
        self.step(self.done, self.total)


class SeededSampler:
    """A logits processor that samples every request from its own generator.

    transformers samples a whole batch from the global RNG, so a request's music would depend on
    its batch-mates. Generation runs greedy instead, and this processor (which transformers puts
    first, ahead of its guidance processor) does guidance, temperature, top-k / top-p and the draw
    itself, per request, and hands back a one-hot of the choice. Rows are request-major
    (request * num_codebooks + codebook); with guidance the scores are doubled (conditional rows,
    then unconditional) while `input_ids` is not, and the one-hot is returned doubled too, so the
    guidance processor that follows mixes two equal rows into the same one-hot. If a transformers
    version ever ran guidance first, the scores would arrive undoubled and be sampled as they are.

    The draw is one uniform per codebook per step through the cumulative distribution: a request's
    random stream does not depend on the others, and logits that differ by rounding (another batch
    shape) pick the same token unless the uniform falls on a boundary.
    """

    def __init__(
        self,
        generators: Sequence[Any],
        sampling: Sequence[Sampling],
        num_codebooks: int,
        guidance_scale: float,
        progress: Progress,
    ) -> None:
        self.generators, self.sampling = list(generators), list(sampling)
        self.num_codebooks, self.guidance_scale, self.progress = num_codebooks, guidance_scale, progress

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        rows = input_ids.shape[0]
        if rows != len(self.generators) * self.num_codebooks:
            raise RuntimeError(f"{rows} rows of scores for {len(self.generators)} requests")
        logits = scores.float()
        doubled = logits.shape[0] == 2 * rows
        if doubled:
            cond, uncond = logits[:rows], logits[rows:]
            logits = uncond + (cond - uncond) * self.guidance_scale
        k = self.num_codebooks
        choice = torch.cat(
            [
                _draw(logits[i * k : (i + 1) * k], sampling, generator)
                for i, (sampling, generator) in enumerate(zip(self.sampling, self.generators, strict=True))
            ]
        )
        picked = torch.zeros_like(logits).scatter_(1, choice[:, None], 1.0)
        if doubled:
            picked = torch.cat([picked, picked])
        self.progress.advance()
        return picked.to(scores.dtype)


def _draw(logits: Any, sampling: Sampling, generator: Any) -> Any:
    """One token per row: audiocraft's rule (top-p when set, else top-k, 0 temperature is greedy)."""
    import torch

    if sampling.temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / sampling.temperature, dim=-1)
    vocab = probs.shape[-1]
    if sampling.top_p > 0:
        ordered, order = probs.sort(dim=-1, descending=True)
        before = ordered.cumsum(dim=-1) - ordered  # mass of the tokens ranked above each one
        ordered = ordered.masked_fill(before > sampling.top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, ordered)
    elif 0 < sampling.top_k < vocab:
        kth = probs.topk(sampling.top_k, dim=-1).values[:, -1:]
        probs = probs.masked_fill(probs < kth, 0.0)
    cdf = probs.cumsum(dim=-1)
    uniform = torch.rand((probs.shape[0], 1), generator=generator, device=probs.device, dtype=cdf.dtype)
    return torch.searchsorted(cdf, uniform * cdf[:, -1:], right=True).clamp_(max=vocab - 1).squeeze(1)


class CaptureSequences:
    """A stopping criterion that never stops and keeps the last token sequences `generate` had:
    the raw codes, which `generate` itself only returns decoded to audio."""

    def __init__(self) -> None:
        self.ids: Any = None

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self.ids = input_ids
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def codes_from_sequences(
    ids: Any, batch: int, num_codebooks: int, prompt_frames: int, new_frames: int
) -> Any:
    """The `new_frames` codes each request gained, (batch, codebooks, new_frames), out of the raw
    delayed sequences (batch * codebooks, 1 + prompt + new + codebooks - 1): codebook k's frame t sits
    at position 1 + t + k (after the start token). Positions still inside the delayed prompt are
    skipped, as transformers' own pattern mask does."""
    import torch

    seq = ids.reshape(batch, num_codebooks, -1)
    start = 1 + prompt_frames
    return torch.stack([seq[:, k, start + k : start + k + new_frames] for k in range(num_codebooks)], dim=1)


def decode_clip(path: str, rate: int) -> np.ndarray:
    """A stored clip as mono float32 at `rate` (channels averaged); InputError on field "audio"."""
    import av

    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError("the audio clip has no audio stream", field="audio")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", rate=rate)
            for frame in container.decode(stream):
                chunks.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(None))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"the audio clip cannot be read: {exc}", field="audio") from exc
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if not np.all(np.isfinite(wave)):
        raise InputError("the audio clip holds invalid samples", field="audio")
    return wave


def equal_power_join(head: np.ndarray, tail: np.ndarray, overlap: int) -> np.ndarray:
    """`head` then `tail`, the last `overlap` samples of one crossfaded (sin/cos) with the first
    `overlap` of the other: used where a clip's original samples meet music decoded after them."""
    overlap = min(overlap, len(head), len(tail))
    if overlap <= 0:
        return np.concatenate([head, tail])
    phase = 0.5 * np.pi * (np.arange(overlap, dtype=np.float64) + 0.5) / overlap
    mixed = head[-overlap:] * np.cos(phase) + tail[:overlap] * np.sin(phase)
    return np.concatenate([head[:-overlap], mixed.astype(np.float32), tail[overlap:]])
