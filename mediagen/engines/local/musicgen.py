"""MusicGen on this machine with transformers: text-to-music, the continuation of a stored clip,
and (MusicGen-melody) music that follows a stored clip's melody; any length up to the schema's.

What a request gets back is always `duration` seconds (to a codec frame, 20 ms):
- text only: new music;
- `audio` on `local/musicgen-*`: music that picks up where the clip ends, prompted with the clip's
  last `context_seconds`. By default only the new music (play the clip, then this); with
  `continuation` true the clip itself comes first, as on Replicate, and `duration` then counts the
  clip too. The clip is kept as it was (not its EnCodec re-encoding), crossfaded over 50 ms into
  the continuation, which is decoded from codes that start inside the clip, so the two agree;
- `audio` on `local/musicgen-melody`: new music whose melody is the clip's chroma (looped when the
  clip is shorter than the music, as the model itself does).

Beyond the model's 30 s window the music is continued window by window in the token domain (see
musicgen_windows) and decoded once. Sampling is ours, per request and seeded (`SeededSampler`),
so a request makes the same music alone or in any batch (bit for bit on the CPU, where the tests
check it; a GPU's kernels may round differently for another batch size, which changes a draw only
when its uniform falls within that rounding of a token boundary).

A batch shares one `generate` call per window. Requests in it that cannot share one (continuations
of clips shorter than the context, whose prompts differ in length; melody prompts of different
padded lengths) run as consecutive calls, each request still with its own generator.

On CUDA, once the engine has warmed a loaded model up (`warm_up`, unless MEDIAGEN_LOCAL_FAST_DECODE
is false), MusicGen's windows decode on the fast path instead (musicgen_fast: static caches, captured
steps, the same per-request sampling). Should it fail, a warning is logged and the plain path takes
over for that loaded model. MusicGen-melody and the CPU keep the plain path (on the CPU the fast
loop was measured no faster: `fast_on_cpu`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mediagen.engines.audio_io import write_audio
from mediagen.engines.local.chroma import ChromaSettings, chroma_window, melody_chroma
from mediagen.engines.local.family import (
    Cancelled,
    Device,
    InputError,
    LocalOutput,
    LocalRequest,
    StepCallback,
    WeightsError,
)
from mediagen.engines.local.musicgen_windows import (
    CaptureSequences,
    Progress,
    Sampling,
    SeededSampler,
    Window,
    codes_from_sequences,
    decode_clip,
    decoding_steps,
    equal_power_join,
    plan_windows,
)

log = logging.getLogger("mediagen.local")

if TYPE_CHECKING:
    from mediagen.engines.local.musicgen_fast import FastMusicgen

# The melody model prepends the text states to its decoder input without an attention mask, so
# padding a prompt moves every token after it; prompts are padded to a multiple of this (not to
# their batch-mates' length), and only prompts of the same padded length share a call.
MELODY_TEXT_BUCKET = 32
WRITERS = 8  # threads writing a batch's files


@dataclass(frozen=True)
class LoadedMusicgen:
    model: Any
    tokenizer: Any
    sampling_rate: int
    frame_rate: int  # codec frames per second
    hop: int  # samples per codec frame
    num_codebooks: int
    chroma: ChromaSettings | None  # melody models only
    chroma_length: int = 0  # chroma frames the melody model conditions on
    # What warm-up prepared: "decoder" holds the FastMusicgen while the fast path is in use.
    fast: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class _Job:
    """One request, read and checked, ready to join a call."""

    request: LocalRequest
    prompt: str
    sampling: Sampling
    new_frames: int
    text_bucket: int = 0
    prompt_codes: Any = None  # (codebooks, frames) from the clip, for a continuation
    clip: np.ndarray | None = None  # the clip at the model's rate, when it leads the output
    chroma: np.ndarray | None = None  # the melody's one-hot chroma (frames, 12)
    clip_seconds: float = 0.0

    @property
    def prompt_frames(self) -> int:
        return 0 if self.prompt_codes is None else int(self.prompt_codes.shape[-1])


class _MusicgenBase:
    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    model_class: ClassVar[str]
    model_type: ClassVar[str]
    window_seconds: ClassVar[float] = 30.0  # the model's context: 1500 frames at 50 Hz
    context_seconds: ClassVar[float] = 10.0  # what each later window (and a clip) prompts with
    crossfade_seconds: ClassVar[float] = 0.05
    # The fast decoder on the CPU would run eagerly (exact mode). With musicgen-small's dimensions a
    # CPU step is arithmetic, not overhead. Measured with one thread (`OMP_NUM_THREADS=1
    # bench/local_gpu.py --shape small --only-decoding --check-seconds S --requests N --repeat R`),
    # decoding alone, best runs: 1 s at batch 2 (53 steps) plain 11.16 s, fast 11.47 s; 0.2 s at
    # batch 1 (13 steps) plain 3.76 s, fast 2.81 s. No gain where it matters, so the CPU keeps the
    # plain path.
    fast_on_cpu: ClassVar[bool] = False

    def load(self, path: Path, device: Device) -> LoadedMusicgen:
        import torch
        import transformers
        from safetensors import SafetensorError

        try:
            config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
            if config.model_type != self.model_type:
                raise WeightsError(f"{path} holds a {config.model_type} model, not {self.model_type}")
            model, info = getattr(transformers, self.model_class).from_pretrained(
                path, local_files_only=True, dtype=device.torch_dtype, output_loading_info=True
            )
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            chroma = ChromaSettings.from_repo(path) if self.model_type == "musicgen_melody" else None
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
            raise WeightsError(f"the {self.name} weights in {path} cannot be loaded: {exc}") from exc
        broken = [*info.get("missing_keys", ()), *info.get("mismatched_keys", ())]
        if broken:
            raise WeightsError(
                f"the weights in {path} do not fit {self.model_class}: {sorted(map(str, broken))[:5]}"
            )
        model = model.to(device.type).eval()
        with torch.no_grad():
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise WeightsError(f"the weights in {path} hold non-finite values (a corrupt file)")
        audio = model.config.audio_encoder
        hop = math.prod(audio.upsampling_ratios)
        return LoadedMusicgen(
            model=model,
            tokenizer=tokenizer,
            sampling_rate=int(audio.sampling_rate),
            frame_rate=round(audio.sampling_rate / hop),
            hop=hop,
            num_codebooks=int(model.decoder.config.num_codebooks),
            chroma=chroma,
            chroma_length=int(getattr(model.config, "chroma_length", 0)),
        )

    def batch_key(self, inputs: dict[str, Any]) -> Hashable:
        # Sampling settings are applied per request by SeededSampler, and the format when writing:
        # neither has to match. Guidance decides whether transformers doubles the batch.
        return (
            float(inputs.get("duration", 8)),
            float(inputs.get("guidance_scale", 3.0)),
            inputs.get("audio") is not None,
            bool(inputs.get("continuation", False)),
        )

    def run(
        self, loaded: LoadedMusicgen, requests: Sequence[LocalRequest], device: Device, step: StepCallback
    ) -> list[LocalOutput]:
        jobs = [self._prepare(loaded, request, device) for request in requests]
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault((job.prompt_frames, job.new_frames, job.text_bucket), []).append(i)
        window = max(2, round(self.window_seconds * loaded.frame_rate))
        context = min(window - 1, max(1, round(self.context_seconds * loaded.frame_rate)))
        plans = {key: plan_windows(key[0], key[1], window, context) for key in groups}
        k = loaded.num_codebooks
        progress = Progress(step, sum(decoding_steps(w, k) for plan in plans.values() for w in plan))
        codes: list[Any] = [None] * len(jobs)
        for key, members in groups.items():
            made = self._generate(loaded, [jobs[i] for i in members], plans[key], device, progress)
            for i, row in zip(members, made, strict=True):
                codes[i] = row

        def write(pair: tuple[_Job, Any]) -> LocalOutput:
            job, row = pair
            return self._write(loaded, job, row, plans[(job.prompt_frames, job.new_frames, job.text_bucket)])

        if len(jobs) == 1:
            return [write((jobs[0], codes[0]))]
        # Encoding MP3 takes longer than decoding a batch on a GPU, and PyAV encodes without the
        # GIL: the files are written side by side.
        with ThreadPoolExecutor(max_workers=min(len(jobs), WRITERS)) as pool:
            return list(pool.map(write, zip(jobs, codes, strict=True)))

    def _prepare(self, loaded: LoadedMusicgen, request: LocalRequest, device: Device) -> _Job:
        inputs = request.inputs
        job = _Job(
            request=request,
            prompt=str(inputs.get("prompt", "")),
            sampling=Sampling(
                temperature=float(inputs.get("temperature", 1.0)),
                top_k=int(inputs.get("top_k", 250)),
                top_p=float(inputs.get("top_p", 0.0)),
            ),
            new_frames=max(1, round(float(inputs.get("duration", 8)) * loaded.frame_rate)),
        )
        if loaded.chroma is not None:
            count = len(loaded.tokenizer(job.prompt, truncation=True)["input_ids"])
            job.text_bucket = max(1, math.ceil(count / MELODY_TEXT_BUCKET)) * MELODY_TEXT_BUCKET
        if inputs.get("audio") is not None:
            self._attach_clip(loaded, job, str(inputs["audio"]), device)
        return job

    def _attach_clip(self, loaded: LoadedMusicgen, job: _Job, path: str, device: Device) -> None:
        raise NotImplementedError

    def warms_up(self, device: Device) -> bool:
        """Whether `warm_up` prepares anything on `device` (a worker warms only such models)."""
        return device.type == "cuda" or self.fast_on_cpu

    def warm_up(self, loaded: LoadedMusicgen, device: Device, *, max_batch: int) -> str | None:
        """Prepare the fast decoder for a freshly loaded model (on CUDA: capture its steps once, so
        no request pays for it); what was prepared, or None where the plain path stays. A failure
        is logged and leaves the plain path."""
        if loaded.chroma is not None or not self.warms_up(device):
            return None
        from mediagen.engines.local.musicgen_fast import FastMusicgen

        window = max(2, round(self.window_seconds * loaded.frame_rate))
        try:
            fast = FastMusicgen(
                loaded.model, device.type, max_positions=window + loaded.num_codebooks, max_batch=max_batch
            )
            seconds = fast.warm_up()
        except Exception as exc:  # any failure: the plain path still works
            log.warning(
                "MusicGen fast decoding unavailable, the plain path runs instead: %s", exc, exc_info=True
            )
            return None
        loaded.fast["decoder"] = fast
        return (
            f"fast decoding ({fast.mode}, batches up to {fast.max_batch}, "
            f"{len(fast.graphs)} graphs captured in {seconds:.2f} s)"
        )

    def _generate(
        self, loaded: LoadedMusicgen, jobs: list[_Job], plan: list[Window], device: Device, progress: Progress
    ) -> list[Any]:
        """Codes (codebooks, prompt + new frames) for each job: on the fast path when warm-up
        prepared one and the batch fits its buckets, else with one `generate` call per window."""
        fast = loaded.fast.get("decoder")
        if fast is not None and loaded.chroma is None:
            before = progress.done
            try:
                made = self._generate_fast(fast, loaded, jobs, plan, device, progress)
                if made is not None:
                    return made
            except Cancelled:
                raise
            except Exception as exc:
                log.warning(
                    "MusicGen fast decoding failed; the plain path runs this batch and the next: %s",
                    exc,
                    exc_info=True,
                )
                loaded.fast.pop("decoder", None)
                progress.done = before
        return self._generate_plain(loaded, jobs, plan, device, progress)

    def _generate_fast(
        self,
        fast: FastMusicgen,
        loaded: LoadedMusicgen,
        jobs: list[_Job],
        plan: list[Window],
        device: Device,
        progress: Progress,
    ) -> list[Any] | None:
        """The fast path's codes, in batches of at most the decoder's largest bucket (progress
        counts each window's steps once, as the plain path's single call does); None when the
        batch does not fit its buckets."""
        import torch

        from mediagen.engines.local.musicgen_fast import FastRow

        k = loaded.num_codebooks
        guidance = float(jobs[0].request.inputs.get("guidance_scale", 3.0))
        text = loaded.tokenizer(
            [job.prompt for job in jobs], truncation=True, return_tensors="pt", padding=True
        )
        longest = max(w.prompt_frames + decoding_steps(w, k) + 1 for w in plan)
        if not fast.fits(int(text["input_ids"].shape[1]), longest):
            return None
        chunks = [
            list(range(i, min(i + fast.max_batch, len(jobs)))) for i in range(0, len(jobs), fast.max_batch)
        ]
        shared = _SharedProgress(progress, len(chunks))
        made_all: list[Any] = [None] * len(jobs)
        for chunk in chunks:
            part = {name: value[chunk].to(device.type) for name, value in text.items()}
            batch = fast.start(
                part, [FastRow(jobs[i].request.seed, jobs[i].sampling) for i in chunk], guidance
            )
            if jobs[chunk[0]].prompt_codes is not None:
                made = torch.stack([jobs[i].prompt_codes for i in chunk])
            else:
                made = torch.zeros((len(chunk), k, 0), dtype=torch.long, device=device.type)
            for window in plan:
                prompt = None
                if window.prompt_frames:
                    prompt = made[:, :, made.shape[-1] - window.prompt_frames :].reshape(len(chunk) * k, -1)
                ids = batch.window(prompt, decoding_steps(window, k), shared)
                new = codes_from_sequences(ids, len(chunk), k, window.prompt_frames, window.new_frames)
                made = torch.cat([made, new], dim=-1)
            for i, row in zip(chunk, made, strict=True):
                made_all[i] = row
        return made_all

    def _generate_plain(
        self, loaded: LoadedMusicgen, jobs: list[_Job], plan: list[Window], device: Device, progress: Progress
    ) -> list[Any]:
        """Codes (codebooks, prompt + new frames) for each job: one `generate` call per window."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        model, k, batch = loaded.model, loaded.num_codebooks, len(jobs)
        guidance = float(jobs[0].request.inputs.get("guidance_scale", 3.0))
        padding: dict[str, Any] = {"padding": True}
        if loaded.chroma is not None:
            padding = {"padding": "max_length", "max_length": jobs[0].text_bucket}
        text = loaded.tokenizer([job.prompt for job in jobs], truncation=True, return_tensors="pt", **padding)
        text = {name: value.to(device.type) for name, value in text.items()}
        generators = [torch.Generator(device=device.type).manual_seed(job.request.seed) for job in jobs]
        sampler = SeededSampler(generators, [job.sampling for job in jobs], k, guidance, progress)
        capture = CaptureSequences()
        if jobs[0].prompt_codes is not None:
            made = torch.stack([job.prompt_codes for job in jobs])
        else:
            made = torch.zeros((batch, k, 0), dtype=torch.long, device=device.type)
        for window in plan:
            extra: dict[str, Any] = {}
            if window.prompt_frames:
                prompt = made[:, :, made.shape[-1] - window.prompt_frames :]
                extra["decoder_input_ids"] = prompt.reshape(batch * k, window.prompt_frames)
            if loaded.chroma is not None and jobs[0].chroma is not None:
                extra["input_features"] = self._window_chroma(loaded, jobs, window, device)
            with torch.inference_mode():
                model.generate(
                    **text,
                    **extra,
                    do_sample=False,
                    guidance_scale=guidance,
                    max_new_tokens=decoding_steps(window, k),
                    logits_processor=LogitsProcessorList([sampler]),
                    stopping_criteria=StoppingCriteriaList([capture]),
                )
            new = codes_from_sequences(capture.ids, batch, k, window.prompt_frames, window.new_frames)
            made = torch.cat([made, new], dim=-1)
        return list(made)

    def _window_chroma(self, loaded: LoadedMusicgen, jobs: list[_Job], window: Window, device: Device) -> Any:
        import torch

        assert loaded.chroma is not None
        start = round(window.start_frame / loaded.frame_rate * loaded.chroma.frame_rate)
        frames = [
            chroma_window(job.chroma, start, loaded.chroma_length) for job in jobs if job.chroma is not None
        ]
        return torch.from_numpy(np.stack(frames)).to(device.type, dtype=loaded.model.dtype)

    def _write(self, loaded: LoadedMusicgen, job: _Job, codes: Any, plan: list[Window]) -> LocalOutput:
        import torch

        with torch.inference_mode():
            decoded = loaded.model.audio_encoder.decode(codes[None, None], audio_scales=[None]).audio_values
        wave = decoded[0, 0].float().cpu().numpy()
        start = job.prompt_frames * loaded.hop
        if job.clip is not None:
            overlap = min(start, round(self.crossfade_seconds * loaded.sampling_rate))
            wave = equal_power_join(job.clip, wave[start - overlap :], overlap)
        else:
            wave = wave[start:]
        wave = np.clip(wave, -1.0, 1.0).astype(np.float32)
        inputs = job.request.inputs
        fmt = str(inputs.get("output_format", "mp3"))
        path = job.request.workdir / f"music.{fmt}"
        content_type = write_audio(wave[None, :], path, fmt, rate=loaded.sampling_rate)
        metadata: dict[str, Any] = {
            "sample_rate": loaded.sampling_rate,
            "channels": 1,
            "duration": round(len(wave) / loaded.sampling_rate, 3),
            "windows": len(plan),
            "decoding_steps": sum(decoding_steps(w, loaded.num_codebooks) for w in plan),
            "guidance_scale": float(inputs.get("guidance_scale", 3.0)),
            "temperature": job.sampling.temperature,
            "top_k": job.sampling.top_k,
            "top_p": job.sampling.top_p,
        }
        metadata.update(self._clip_metadata(loaded, job))
        return LocalOutput(path=path, content_type=content_type, metadata=metadata)

    def _clip_metadata(self, loaded: LoadedMusicgen, job: _Job) -> dict[str, Any]:
        return {}


class _SharedProgress(Progress):
    """Progress for a batch split into `parts` fast batches run one after the other: every part
    counts each step, and every `parts`-th count is passed on, so the total is the plain path's."""

    def __init__(self, progress: Progress, parts: int) -> None:
        super().__init__(progress.step, progress.total)
        self.progress, self.parts, self.calls = progress, parts, 0

    def advance(self) -> None:
        self.calls += 1
        if self.calls % self.parts == 0:
            self.progress.advance()


class MusicgenFamily(_MusicgenBase):
    """facebook/musicgen-small / -medium / -large: text-to-music and continuations."""

    name = "musicgen"
    model_class = "MusicgenForConditionalGeneration"
    model_type = "musicgen"

    def _attach_clip(self, loaded: LoadedMusicgen, job: _Job, path: str, device: Device) -> None:
        import torch

        clip = decode_clip(path, loaded.sampling_rate)
        job.clip_seconds = len(clip) / loaded.sampling_rate
        frames = min(len(clip) // loaded.hop, max(1, round(self.context_seconds * loaded.frame_rate)))
        if frames < 1:
            raise InputError(
                f"the audio clip is too short to continue (under {loaded.hop} samples)", field="audio"
            )
        tail = torch.from_numpy(clip[len(clip) - frames * loaded.hop :]).to(
            device.type, dtype=loaded.model.dtype
        )
        with torch.inference_mode():
            encoded = loaded.model.audio_encoder.encode(
                tail[None, None]
            ).audio_codes  # (chunks, 1, K, frames)
        job.prompt_codes = encoded[0, 0, :, :frames]
        if job.request.inputs.get("continuation"):
            total = float(job.request.inputs.get("duration", 8)) * loaded.sampling_rate
            job.new_frames = round((total - len(clip)) / loaded.hop)
            if job.new_frames < 1:
                seconds = len(clip) / loaded.sampling_rate
                raise InputError(
                    f"with continuation the duration counts the clip ({seconds:.1f} s): ask for more",
                    field="duration",
                )
            job.clip = clip

    def _clip_metadata(self, loaded: LoadedMusicgen, job: _Job) -> dict[str, Any]:
        if job.prompt_codes is None:
            return {}
        return {
            "clip_seconds": round(job.clip_seconds, 3),
            "prompted_with_seconds": round(job.prompt_frames / loaded.frame_rate, 3),
            "includes_clip": job.clip is not None,
        }


class MusicgenMelodyFamily(_MusicgenBase):
    """facebook/musicgen-melody: text-to-music, optionally following a clip's melody."""

    name = "musicgen-melody"
    model_class = "MusicgenMelodyForConditionalGeneration"
    model_type = "musicgen_melody"

    def _attach_clip(self, loaded: LoadedMusicgen, job: _Job, path: str, device: Device) -> None:
        assert loaded.chroma is not None
        melody = decode_clip(path, loaded.chroma.sampling_rate)
        job.clip_seconds = len(melody) / loaded.chroma.sampling_rate
        if len(melody) < loaded.chroma.hop_length:
            raise InputError("the melody clip is too short (under 0.13 s)", field="audio")
        job.chroma = melody_chroma(melody, loaded.chroma, truncate=False)

    def _clip_metadata(self, loaded: LoadedMusicgen, job: _Job) -> dict[str, Any]:
        return {} if job.chroma is None else {"melody_seconds": round(job.clip_seconds, 3)}

    def warms_up(self, device: Device) -> bool:
        return False  # the melody decoder keeps the plain path (see musicgen_fast)
