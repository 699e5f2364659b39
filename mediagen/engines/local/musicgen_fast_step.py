"""One decoding step of MusicGen's decoder over preallocated caches, with the sampling and the
delay-pattern bookkeeping that follow it, all on the device.

The step reads and writes only tensors that live as long as the decoder (`StepState`, views of
`Buffers`): the position is a device tensor that the step itself advances, the sampled token goes
into a token buffer at that position, and the per-request sampling settings are tensors. So one
step can be captured once as a CUDA graph and replayed for every position of every request of that
shape, with no host sync.

The arithmetic is transformers' own, operation for operation (the decoder's own modules, the same
SDPA call, the same order of the sums), so on the CPU a step gives the plain `generate` path's
logits bit for bit when it attends over exactly the live positions (`live`). A captured step cannot
change shape, so it attends over a fixed bucket of positions with the later ones masked out: the
result is the same up to rounding in the attention's sums.

Sampling is `SeededSampler`'s (musicgen_windows), vectorised over requests with per-row settings:
guidance, temperature, top-p or else top-k, one uniform per codebook from each request's own
generator, and the token where the uniform falls in the cumulative distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class StepState:
    """The tensors one batch shape decodes with. Rows of the decoder are `2 * batch` with
    classifier-free guidance (conditional requests first, then their unconditional twins, as
    transformers orders them) and `batch` without; token rows are request-major
    (`request * num_codebooks + codebook`) and never doubled."""

    batch: int
    cfg: bool
    num_codebooks: int
    pos: Any  # (1,) long: the position whose token the next step feeds
    seq: Any  # (batch * K, L) long: sampled tokens by position
    pattern: Any  # (batch * K, L) long: the delay pattern, -1 where the token is sampled
    self_k: list[Any]  # per layer (rows, heads, L, head_dim)
    self_v: list[Any]
    cross_k: list[Any]  # per layer (rows, heads, S, head_dim): the text, projected once
    cross_v: list[Any]
    cross_mask: Any  # (rows, 1, 1, S) bool, or None: every text position counts
    positions: Any  # (L,) long: 0..L-1, for the self-attention mask
    temperature: Any  # (batch * K, 1) float32, 1 where greedy
    top_k: Any  # (batch * K, 1) long, >= 1
    top_p: Any  # (batch * K, 1) float32
    use_top_p: Any  # (batch * K, 1) bool
    use_top_k: Any  # (batch * K, 1) bool
    greedy: Any  # (batch * K,) bool
    guidance: Any  # (1,) float32
    generators: list[Any]  # one per request row of the batch

    @property
    def rows(self) -> int:
        return 2 * self.batch if self.cfg else self.batch


@dataclass
class Buffers:
    """Preallocated tensors behind a StepState: once per decoder for the static shapes, per window
    in exact mode. The caches start as zeros (masked positions must hold finite values, since a
    mask adds -inf to the score of whatever is there) and the settings valid ones."""

    pos: Any
    seq: Any
    pattern: Any
    self_k: list[Any]
    self_v: list[Any]
    cross_k: list[Any]
    cross_v: list[Any]
    cross_mask: Any
    positions: Any
    temperature: Any
    top_k: Any
    top_p: Any
    use_top_p: Any
    use_top_k: Any
    greedy: Any
    guidance: Any
    generators: list[Any]

    @staticmethod
    def bytes_per_row(model: Any, positions: int, text: int) -> int:
        config = model.decoder.config
        size = model.decoder.lm_heads[0].weight.element_size()
        return 2 * config.num_hidden_layers * (positions + text) * config.hidden_size * size

    @classmethod
    def allocate(
        cls, model: Any, rows: int, tokens: int, positions: int, text: int, exact_mask: Any = None
    ) -> Buffers:
        import torch

        config, weight = model.decoder.config, model.decoder.lm_heads[0].weight
        heads = config.num_attention_heads
        head_dim = config.hidden_size // heads
        layers = config.num_hidden_layers

        def cache(length: int) -> list[Any]:
            shape = (rows, heads, length, head_dim)
            return [torch.zeros(shape, dtype=weight.dtype, device=weight.device) for _ in range(layers)]

        def column(dtype: Any) -> Any:  # valid settings (temperature 1, top-k 1) before any batch
            fill = 1 if dtype in (torch.float32, torch.long) else 0
            return torch.full((tokens, 1), fill, dtype=dtype, device=weight.device)

        if exact_mask is None:
            cross_mask = torch.ones((rows, 1, 1, text), dtype=torch.bool, device=weight.device)
        else:  # what transformers passes: no mask when every text position counts
            cross_mask = None if bool(exact_mask.all()) else exact_mask.bool()[:, None, None, :]
        return cls(
            pos=torch.zeros(1, dtype=torch.long, device=weight.device),
            seq=torch.zeros((tokens, positions), dtype=torch.long, device=weight.device),
            pattern=torch.zeros((tokens, positions), dtype=torch.long, device=weight.device),
            self_k=cache(positions),
            self_v=cache(positions),
            cross_k=cache(text),
            cross_v=cache(text),
            cross_mask=cross_mask,
            positions=torch.arange(positions, device=weight.device),
            temperature=column(torch.float32),
            top_k=column(torch.long),
            top_p=column(torch.float32),
            use_top_p=column(torch.bool),
            use_top_k=column(torch.bool),
            greedy=torch.zeros(tokens, dtype=torch.bool, device=weight.device),
            guidance=torch.zeros(1, dtype=torch.float32, device=weight.device),
            generators=[],
        )


def decoder_logits(decoder: Any, state: StepState, kv_len: int, text_len: int, live: int | None) -> Any:
    """Float32 logits (rows * K, vocab) for the token at `state.pos`, whose keys and values are
    written into the caches at that position. `live` (eager only) attends over exactly the first
    `live` positions, as transformers' growing cache does; otherwise the first `kv_len` positions
    are attended with those after `pos` masked, and the text over `text_len` positions."""
    import torch

    inner = decoder.model.decoder
    k = state.num_codebooks
    pos = state.pos
    token = state.seq.index_select(1, pos).squeeze(1)
    fixed = state.pattern.index_select(1, pos).squeeze(1)
    token = torch.where(fixed == -1, token, fixed).reshape(state.batch, k)
    if state.cfg:
        token = torch.cat([token, token])
    # transformers sums the codebooks' embeddings starting from 0 with Python's `sum`.
    hidden = inner.embed_tokens[0](token[:, 0])
    for codebook in range(1, k):
        hidden = hidden + inner.embed_tokens[codebook](token[:, codebook])
    hidden = hidden[:, None, :] + inner.embed_positions.weights.index_select(0, pos)
    if live is None:
        self_mask = (state.positions[:kv_len] <= pos).view(1, 1, 1, kv_len)
        length, cross_mask = kv_len, state.cross_mask
    else:
        self_mask, length, cross_mask = None, live, state.cross_mask
    if cross_mask is not None:
        cross_mask = cross_mask[..., :text_len]
    for index, layer in enumerate(inner.layers):
        hidden = _layer(layer, hidden, state, index, pos, self_mask, length, cross_mask, text_len)
    hidden = inner.layer_norm(hidden)
    logits = torch.stack([head(hidden) for head in decoder.lm_heads], dim=1)
    return logits.reshape(state.rows * k, -1).float()


def _layer(
    layer: Any,
    hidden: Any,
    state: StepState,
    index: int,
    pos: Any,
    self_mask: Any,
    length: int,
    cross_mask: Any,
    text_len: int,
) -> Any:
    """MusicgenDecoderLayer.forward for one token: self-attention over the cache, cross-attention
    over the text, feed-forward; each with its residual, in transformers' order."""
    attn = layer.self_attn
    normed = layer.self_attn_layer_norm(hidden)
    query = _heads(attn.q_proj(normed), attn.head_dim)
    state.self_k[index].index_copy_(2, pos, _heads(attn.k_proj(normed), attn.head_dim))
    state.self_v[index].index_copy_(2, pos, _heads(attn.v_proj(normed), attn.head_dim))
    keys = state.self_k[index][:, :, :length]
    values = state.self_v[index][:, :, :length]
    hidden = hidden + attn.out_proj(_attend(query, keys, values, self_mask, attn.scaling))

    cross = layer.encoder_attn
    normed = layer.encoder_attn_layer_norm(hidden)
    query = _heads(cross.q_proj(normed), cross.head_dim)
    keys = state.cross_k[index][:, :, :text_len]
    values = state.cross_v[index][:, :, :text_len]
    hidden = hidden + cross.out_proj(_attend(query, keys, values, cross_mask, cross.scaling))

    normed = layer.final_layer_norm(hidden)
    return hidden + layer.fc2(layer.activation_fn(layer.fc1(normed)))


def _heads(projected: Any, head_dim: int) -> Any:
    """(rows, 1, hidden) -> (rows, heads, 1, head_dim), as MusicgenAttention views it."""
    return projected.view(projected.shape[0], 1, -1, head_dim).transpose(1, 2)


def _attend(query: Any, keys: Any, values: Any, mask: Any, scaling: float) -> Any:
    """transformers' SDPA attention for one query position, back to (rows, 1, hidden)."""
    import torch

    out = torch.nn.functional.scaled_dot_product_attention(
        query, keys, values, attn_mask=mask, dropout_p=0.0, scale=scaling, is_causal=False
    )
    out = out.transpose(1, 2).contiguous()
    return out.reshape(out.shape[0], 1, -1).contiguous()


def sample_next(state: StepState, logits: Any) -> None:
    """Pick the next token of every row from `logits` (rows * K, vocab) into `seq` at `pos + 1`,
    then advance `pos`: guidance, then `sample_rows` with one uniform per codebook drawn from each
    request's generator (in request order, as SeededSampler draws them)."""
    import torch

    rows = state.batch * state.num_codebooks
    if state.cfg:
        cond, uncond = logits[:rows], logits[rows:]
        logits = uncond + (cond - uncond) * state.guidance
    uniform = torch.cat(
        [
            torch.rand(
                (state.num_codebooks, 1), generator=generator, device=logits.device, dtype=logits.dtype
            )
            for generator in state.generators
        ]
    )
    token = sample_rows(
        logits,
        state.temperature,
        state.top_k,
        state.top_p,
        state.use_top_p,
        state.use_top_k,
        state.greedy,
        uniform,
    )
    state.seq.index_copy_(1, state.pos + 1, token[:, None])
    state.pos.add_(1)


def sample_rows(
    logits: Any,
    temperature: Any,
    top_k: Any,
    top_p: Any,
    use_top_p: Any,
    use_top_k: Any,
    greedy: Any,
    uniform: Any,
) -> Any:
    """One token per row with per-row settings, equal to SeededSampler's `_draw` row by row:
    top-p when set (the tokens ranked below the first `top_p` of mass are dropped), else top-k
    (the tokens below the k-th probability), then the inverse of the cumulative distribution at
    `uniform`; greedy rows take the argmax. Every row is computed either way; `where` picks."""
    import torch

    vocab = logits.shape[-1]
    if logits.device.type == "cuda":
        # On CUDA, dividing by a Python number (SeededSampler's temperature) multiplies by its
        # float32 reciprocal; do the same so the two paths round alike.
        probs = torch.softmax(logits * (1.0 / temperature), dim=-1)
    else:
        probs = torch.softmax(logits / temperature, dim=-1)
    ordered, order = probs.sort(dim=-1, descending=True)
    before = ordered.cumsum(dim=-1) - ordered  # mass of the tokens ranked above each one
    drop_p = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, order, before > top_p)
    kth = ordered.gather(-1, top_k - 1)
    drop = torch.where(use_top_p, drop_p, use_top_k & (probs < kth))
    cdf = probs.masked_fill(drop, 0.0).cumsum(dim=-1)
    picked = torch.searchsorted(cdf, uniform * cdf[:, -1:], right=True).clamp_(max=vocab - 1).squeeze(1)
    return torch.where(greedy, logits.argmax(dim=-1), picked)
