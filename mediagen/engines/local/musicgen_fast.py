"""Fast decoding for local MusicGen: the same tokens as the plain `generate` path, without its
per-token overhead.

With plain transformers `generate`, a MusicGen of musicgen-small's size spends its ~400 steps per
8 s clip on Python, host syncs and a cache that grows by concatenation, not on arithmetic (19.8 s
on an H200 for one clip, where the weights-times-steps floor is 0.2 s). This decoder keeps the
model's modules and arithmetic (musicgen_fast_step) and changes how the loop runs:

- keys and values live in caches allocated once, written in place at a position held on the device;
- the conditional and unconditional (classifier-free guidance) rows run as one batch;
- the delay pattern, the sampling and the position all advance on the device, so the loop never
  reads a tensor on the host;
- on CUDA each step is captured once as a CUDA graph per shape bucket (batch 1, 2, 4, 8, 16, 32;
  key length 128, 256, 512, 1024, the window; text length 64, 512) at warm-up, and replayed;
  a batch is padded up to its bucket (the padding rows repeat the first request and are dropped).

Each request keeps its own generator: on CUDA the decoder owns one generator per batch row,
registered with every graph and seeded with the request's seed before the batch, so a replay draws
what an eager `torch.rand` on that generator would have drawn. Sampled tokens therefore equal the
plain path's wherever the logits do: bit for bit on the CPU in `exact` mode (tested); in the captured
or `masked` mode the attention runs over a fixed number of positions with the later ones masked,
which can change the last bit of a logit, and on a GPU fp16 kernels for the two shapes differ too:
a draw differs only when its uniform falls within that rounding of a token boundary, and from there
the two sequences go their own ways (the GPU benchmark reports how many tokens agree).

The prefill (the start token and any prompt codes) runs through transformers' own forward, so the
first token and the caches start exactly where the plain path's do. MusicGen-melody, whose decoder
prepends its conditioning to the sequence instead of cross-attending, keeps the plain path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mediagen.engines.local.musicgen_fast_step import Buffers, StepState, decoder_logits, sample_next
from mediagen.engines.local.musicgen_windows import Progress, Sampling

log = logging.getLogger("mediagen.local")

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
TEXT_BUCKETS = (64, 512)
KV_BUCKET_MIN = 128
MEMORY_SHARE = 0.5  # most of the free device memory the caches may take


def bucket(value: int, buckets: Sequence[int]) -> int:
    """The smallest bucket holding `value` (ValueError past the largest)."""
    for size in buckets:
        if value <= size:
            return size
    raise ValueError(f"{value} is beyond the largest bucket ({buckets[-1]})")


def kv_buckets(max_positions: int) -> tuple[int, ...]:
    """Key-length buckets: powers of two from 128, the last one the window rounded up to 128."""
    top = -(-max_positions // KV_BUCKET_MIN) * KV_BUCKET_MIN
    sizes, size = [], KV_BUCKET_MIN
    while size < top:
        sizes.append(size)
        size *= 2
    return (*sizes, top)


@dataclass(frozen=True)
class FastRow:
    """What one request brings to a batch: its seed and sampling settings."""

    seed: int
    sampling: Sampling


class FastMusicgen:
    """Decodes MusicgenForConditionalGeneration windows for batches of requests.

    `mode`: "graphs" (CUDA: static caches, padded buckets, captured steps), "masked" (the same
    static, padded shapes run eagerly: how the CPU tests cover the captured arithmetic) or "exact"
    (eager, unpadded, caches sized per window and attention over exactly the live positions:
    the plain path's logits bit for bit)."""

    def __init__(
        self, model: Any, device_type: str, *, max_positions: int, max_batch: int, mode: str | None = None
    ) -> None:
        import torch

        self.model, self.device_type = model, device_type
        self.mode = mode or ("graphs" if device_type == "cuda" else "exact")
        if self.mode not in ("graphs", "masked", "exact") or (
            self.mode == "graphs" and device_type != "cuda"
        ):
            raise ValueError(f"no {self.mode!r} decoding on {device_type}")
        self.num_codebooks = int(model.decoder.num_codebooks)
        self.vocab = int(model.decoder.config.vocab_size)
        gen = model.generation_config
        start = gen.decoder_start_token_id if gen.decoder_start_token_id is not None else gen.bos_token_id
        self.start_token = int(start)
        self.max_positions = max_positions
        self.kv_buckets = kv_buckets(max_positions)
        self.text_max = TEXT_BUCKETS[-1]
        self.max_batch = min(bucket(min(max_batch, BATCH_BUCKETS[-1]), BATCH_BUCKETS), BATCH_BUCKETS[-1])
        self.graphs: dict[tuple[int, bool, int, int], Any] = {}
        self._static: Buffers | None = None
        self._generators: list[Any] = []
        if self.mode != "exact":
            self.max_batch = self._fit_batch(self.max_batch)
            rows = 2 * self.max_batch
            self._static = Buffers.allocate(
                model, rows, self.max_batch * self.num_codebooks, self.kv_buckets[-1], self.text_max
            )
            self._generators = [
                torch.Generator(device=device_type).manual_seed(0) for _ in range(self.max_batch)
            ]
        self._pool = torch.cuda.graph_pool_handle() if self.mode == "graphs" else None
        self._stream = torch.cuda.Stream() if self.mode == "graphs" else None

    @property
    def cache_bytes(self) -> int:
        """Device memory the static caches hold (0 in exact mode, which allocates per window)."""
        if self._static is None:
            return 0
        tensors = [*self._static.self_k, *self._static.self_v, *self._static.cross_k, *self._static.cross_v]
        return sum(t.numel() * t.element_size() for t in tensors)

    # shapes --------------------------------------------------------------------------------
    def fits(self, text_tokens: int, positions: int) -> bool:
        """Whether a batch with this much text and this many positions per window has a bucket
        (longer ones run on the plain path)."""
        return self.mode == "exact" or (text_tokens <= self.text_max and positions <= self.kv_buckets[-1])

    def _fit_batch(self, wanted: int) -> int:
        """The largest batch bucket up to `wanted` whose caches take at most MEMORY_SHARE of the
        free device memory (a GPU smaller than the model's largest batch gets smaller buckets)."""
        if self.device_type != "cuda":
            return wanted
        import torch

        free, _ = torch.cuda.mem_get_info()
        per_row = Buffers.bytes_per_row(self.model, self.kv_buckets[-1], self.text_max)
        size = wanted
        while size > 1 and 2 * size * per_row > MEMORY_SHARE * free:
            size //= 2
        if size < wanted:
            log.warning("MusicGen fast decoding: caches for batches of %d do not fit; up to %d", wanted, size)
        return size

    # warm-up -------------------------------------------------------------------------------
    def warm_up(self) -> float:
        """Capture every guided shape once (graphs mode; nothing to do otherwise): seconds taken.
        Unguided batches (guidance_scale <= 1) are captured on first use."""
        if self.mode != "graphs":
            return 0.0
        import torch

        started = time.perf_counter()
        torch.cuda.synchronize()
        with torch.inference_mode():
            for size in (b for b in BATCH_BUCKETS if b <= self.max_batch):
                for text_len in TEXT_BUCKETS:
                    for kv_len in self.kv_buckets:
                        self._graph(size, True, kv_len, text_len)
            self._self_check()
        torch.cuda.synchronize()
        return time.perf_counter() - started

    def _self_check(self, steps: int = 3) -> None:
        """A few replays of the smallest captured shape must draw exactly what the same steps draw
        run eagerly (same kernels, same generator): else a capture went wrong (say, a generator
        whose draws a replay does not advance) and warm-up fails, leaving the plain path."""
        import torch

        state = self._state(1, True)
        state.seq.zero_()
        state.pattern.fill_(-1)
        state.temperature.fill_(1.0)
        state.use_top_k.fill_(False)
        state.use_top_p.fill_(False)
        state.greedy.fill_(False)
        state.guidance.fill_(3.0)
        graph = self._graph(1, True, self.kv_buckets[0], TEXT_BUCKETS[0])
        drawn = []
        for captured in (False, True):
            state.pos.zero_()
            state.generators[0].manual_seed(1234)
            for _ in range(steps):
                if captured:
                    graph.replay()
                else:
                    sample_next(
                        state,
                        decoder_logits(self.model.decoder, state, self.kv_buckets[0], TEXT_BUCKETS[0], None),
                    )
            drawn.append(state.seq[:, 1 : steps + 1].clone())
        state.pos.zero_()
        if not torch.equal(drawn[0], drawn[1]):
            raise RuntimeError("a captured decoding step draws other tokens than the same step run eagerly")

    def _graph(self, size: int, cfg: bool, kv_len: int, text_len: int) -> Any:
        """The captured step for one shape (captured now if it is not yet).

        Before capturing, the step runs once eagerly on the capture stream, since libraries set
        themselves up lazily (handles, workspaces) and that cannot happen inside a capture. That
        run moves the position and the generators, so both are put back: a shape captured in the
        middle of a batch (an unguided one, the first time) leaves the batch where it was; what it
        wrote at the position is written again by the replay that follows."""
        import torch

        key = (size, cfg, kv_len, text_len)
        found = self.graphs.get(key)
        if found is not None:
            return found
        assert self._stream is not None
        state = self._state(size, cfg)
        self._stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self._stream):
            pos = state.pos.clone()
            generators = [generator.get_state() for generator in state.generators]
            sample_next(state, decoder_logits(self.model.decoder, state, kv_len, text_len, None))
            state.pos.copy_(pos)
            for generator, saved in zip(state.generators, generators, strict=True):
                generator.set_state(saved)
            graph = torch.cuda.CUDAGraph()
            for generator in state.generators:
                graph.register_generator_state(generator)
            graph.capture_begin(pool=self._pool, capture_error_mode="thread_local")
            try:
                sample_next(state, decoder_logits(self.model.decoder, state, kv_len, text_len, None))
            finally:
                graph.capture_end()
        torch.cuda.current_stream().wait_stream(self._stream)
        self.graphs[key] = graph
        return graph

    def _state(self, size: int, cfg: bool, buffers: Buffers | None = None) -> StepState:
        """The step's tensors for a batch of `size` rows: views of the static buffers (the same
        memory for every capture and replay of that shape) or of per-window ones."""
        buffers = buffers or self._static
        assert buffers is not None
        rows, tokens = (2 * size if cfg else size), size * self.num_codebooks
        generators = self._generators[:size] if buffers is self._static else buffers.generators
        return StepState(
            batch=size,
            cfg=cfg,
            num_codebooks=self.num_codebooks,
            pos=buffers.pos,
            seq=buffers.seq[:tokens],
            pattern=buffers.pattern[:tokens],
            self_k=[k[:rows] for k in buffers.self_k],
            self_v=[v[:rows] for v in buffers.self_v],
            cross_k=[k[:rows] for k in buffers.cross_k],
            cross_v=[v[:rows] for v in buffers.cross_v],
            cross_mask=None if buffers.cross_mask is None else buffers.cross_mask[:rows],
            positions=buffers.positions,
            temperature=buffers.temperature[:tokens],
            top_k=buffers.top_k[:tokens],
            top_p=buffers.top_p[:tokens],
            use_top_p=buffers.use_top_p[:tokens],
            use_top_k=buffers.use_top_k[:tokens],
            greedy=buffers.greedy[:tokens],
            guidance=buffers.guidance,
            generators=generators,
        )

    # decoding ------------------------------------------------------------------------------
    def start(self, text: dict[str, Any], rows: Sequence[FastRow], guidance: float) -> FastBatch:
        """A batch of requests (at most `max_batch`): its text encoded once, its generators seeded."""
        if not 0 < len(rows) <= self.max_batch:
            raise ValueError(f"a fast batch holds 1 to {self.max_batch} requests, not {len(rows)}")
        return FastBatch(self, text, list(rows), guidance)


class FastBatch:
    """One batch's requests across its windows: the generators carry on from window to window,
    as the plain path's do."""

    def __init__(
        self, fast: FastMusicgen, text: dict[str, Any], rows: list[FastRow], guidance: float
    ) -> None:
        import torch

        self.fast, self.rows, self.count = fast, rows, len(rows)
        self.size = self.count if fast.mode == "exact" else bucket(self.count, BATCH_BUCKETS)
        self.cfg = guidance > 1  # as transformers decides whether to double the batch
        self.guidance = guidance
        model, device = fast.model, fast.device_type
        ids, mask = _pad_rows(text["input_ids"], self.size), _pad_rows(text["attention_mask"], self.size)
        with torch.inference_mode():
            hidden = model.text_encoder(
                input_ids=ids, attention_mask=mask, return_dict=True
            ).last_hidden_state
            if self.cfg:
                hidden = torch.cat([hidden, torch.zeros_like(hidden)])
                mask = torch.cat([mask, torch.zeros_like(mask)])
        self.hidden, self.mask = hidden, mask
        padded = rows + [rows[0]] * (self.size - self.count)
        if fast.mode == "exact":
            self.generators = [torch.Generator(device=device).manual_seed(row.seed) for row in padded]
        else:
            self.generators = fast._generators[: self.size]
            for generator, row in zip(self.generators, padded, strict=True):
                generator.manual_seed(row.seed)
        self.settings = _sampling_tensors(padded, fast.num_codebooks, fast.vocab, device)

    def window(self, prompt: Any, steps: int, progress: Progress) -> Any:
        """Raw token sequences (count * K, 1 + prompt + steps) of one window, as `generate` leaves
        them: the start token, the prompt codes (count * K, prompt frames) or None, then `steps`
        sampled tokens by position (the delay pattern's fixed positions not yet applied)."""
        import torch

        fast, model, k = self.fast, self.fast.model, self.fast.num_codebooks
        device = fast.device_type
        frames = 0 if prompt is None else int(prompt.shape[-1])
        length = 1 + frames + steps
        if not fast.fits(self.hidden.shape[1], length):
            raise ValueError(f"a window of {length} positions has no bucket")
        with torch.inference_mode():
            ids = torch.full((self.size * k, 1), fast.start_token, dtype=torch.long, device=device)
            if prompt is not None:
                ids = torch.cat([ids, _pad_rows(prompt, self.size * k, group=k)], dim=-1)
            ids, pattern = model.decoder.build_delay_pattern_mask(
                ids, pad_token_id=fast.start_token, max_length=length
            )
            state = self._prepare(length)
            state.pattern[:, :length].copy_(pattern)
            state.seq[:, : ids.shape[-1]].copy_(ids)
            logits = self._prefill(state, model.decoder.apply_delay_pattern_mask(ids, pattern))
            sample_next(state, logits)
            progress.advance()
            text_len = self._text_len
            for position in range(frames + 1, length - 1):
                if fast.mode == "exact":
                    sample_next(state, decoder_logits(model.decoder, state, 0, text_len, position + 1))
                else:
                    kv_len = bucket(position + 1, fast.kv_buckets)
                    if fast.mode == "graphs":
                        fast._graph(self.size, self.cfg, kv_len, text_len).replay()
                    else:
                        sample_next(state, decoder_logits(model.decoder, state, kv_len, text_len, None))
                progress.advance()
            return state.seq[: self.count * k, :length].clone()

    def _prepare(self, length: int) -> StepState:
        """The step state for this window, with the batch's sampling settings in it."""
        fast = self.fast
        if fast.mode == "exact":
            buffers = Buffers.allocate(
                fast.model, 2 * self.size if self.cfg else self.size, self.size * fast.num_codebooks,
                length, int(self.hidden.shape[1]), exact_mask=self.mask,
            )  # fmt: skip
            buffers.generators = self.generators
            state = fast._state(self.size, self.cfg, buffers)
        else:
            state = fast._state(self.size, self.cfg)
        for name, value in self.settings.items():
            getattr(state, name).copy_(value)
        state.guidance.fill_(self.guidance)
        return state

    @property
    def _text_len(self) -> int:
        real = int(self.hidden.shape[1])
        return real if self.fast.mode == "exact" else bucket(real, TEXT_BUCKETS)

    def _prefill(self, state: StepState, decoder_ids: Any) -> Any:
        """transformers' own forward over the start token and prompt (exactly the plain path's
        first step), its caches copied into the step's; float32 logits of the last position."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        if self.cfg:
            decoder_ids = decoder_ids.repeat((2, 1))
        out = self.fast.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=self.hidden),
            attention_mask=self.mask,
            decoder_input_ids=decoder_ids,
            use_cache=True,
            return_dict=True,
        )
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        frames, text = decoder_ids.shape[-1], self.hidden.shape[1]
        for index, (own, cross) in enumerate(
            zip(cache.self_attention_cache.layers, cache.cross_attention_cache.layers, strict=True)
        ):
            state.self_k[index][:, :, :frames].copy_(own.keys)
            state.self_v[index][:, :, :frames].copy_(own.values)
            state.cross_k[index][:, :, :text].copy_(cross.keys)
            state.cross_v[index][:, :, :text].copy_(cross.values)
        if self.fast.mode != "exact":
            mask = state.cross_mask
            mask.fill_(False)
            mask[: self.size, 0, 0, :text].copy_(self.mask[: self.size].bool())
            if self.cfg:
                # The unconditional rows' keys and values are zero, so attending to them gives the
                # zero plain `generate` gets from its fully masked rows, without a fully masked row.
                mask[self.size :, 0, 0, :text] = True
        state.pos.fill_(frames - 1)
        return out.logits[:, -1].to(copy=True, dtype=torch.float32)


def _sampling_tensors(rows: Sequence[FastRow], num_codebooks: int, vocab: int, device: str) -> dict[str, Any]:
    """Per-token-row sampling settings (each request's repeated for its codebooks), as
    SeededSampler reads them: temperature <= 0 is greedy, top-p when set, else top-k."""
    import torch

    def column(values: list[Any], dtype: Any) -> Any:
        return torch.tensor(values, dtype=dtype).repeat_interleave(num_codebooks)[:, None].to(device)

    samplings = [row.sampling for row in rows]
    return {
        "temperature": column(
            [s.temperature if s.temperature > 0 else 1.0 for s in samplings], torch.float32
        ),
        "top_k": column([min(max(s.top_k, 1), vocab) for s in samplings], torch.long),
        "top_p": column([s.top_p for s in samplings], torch.float32),
        "use_top_p": column([s.top_p > 0 for s in samplings], torch.bool),
        "use_top_k": column([s.top_p <= 0 and 0 < s.top_k < vocab for s in samplings], torch.bool),
        "greedy": column([s.temperature <= 0 for s in samplings], torch.bool).squeeze(1),
    }


def _pad_rows(tensor: Any, rows: int, group: int = 1) -> Any:
    """`tensor` with rows appended up to `rows`: copies of its first `group` rows (the first
    request), so padding rows compute something real and are then dropped."""
    import torch

    missing = (rows - tensor.shape[0]) // group
    if missing <= 0:
        return tensor
    return torch.cat([tensor, tensor[:group].repeat((missing, *([1] * (tensor.dim() - 1))))])
