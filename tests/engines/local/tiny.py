"""Building blocks for tiny random-weight models saved the way real weights are (no downloads).

Each family's builder (`tiny_<family>.py`) saves a model under `<models_dir>/<repo id>` with the
real classes and the real configs' key values, so tests walk the loading path real weights take.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WORDS = (
    "upbeat electronic dance music with heavy bass calm ambient piano lo-fi hip hop warm sunset orange "
    "palette blue waves drums guitar synth strings slow fast happy sad epic cinematic a the and of in"
).split()


def word_tokenizer(model_max_length: int = 64, *, bos: bool = False) -> Any:
    """A word-level fast tokenizer over a small vocabulary (pad 0, eos 1, unk 2), ending each text
    with `</s>` like T5's; `bos` adds a `<s>` in front (CLIP-style)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    vocab = {w: i for i, w in enumerate([*specials, *dict.fromkeys(WORDS)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    single = "<s> $A </s>" if bos else "$A </s>"
    tok.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("</s>", vocab["</s>"]), ("<s>", vocab["<s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=model_max_length,
    )


def vocab_size() -> int:
    return 4 + len(dict.fromkeys(WORDS))


def repo_dir(models_dir: Path, repo_id: str) -> Path:
    path = models_dir / repo_id
    path.mkdir(parents=True, exist_ok=True)
    return path
