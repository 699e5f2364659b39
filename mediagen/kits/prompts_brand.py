"""A client's brand in a plan's prompts, through the same `apply_brand` every generation uses.

The planner writes the brand into the prompts it drafts, so the team reads (and edits) what will
be asked for; when the kit runs, applying the brand again adds nothing (apply_brand never adds a
word the prompt already says). Avoid-words are dropped as whole words and never written as "no …".
"""

from __future__ import annotations

from collections.abc import Sequence

from mediagen.campaigns.branding import apply_brand, mentions
from mediagen.campaigns.schemas import Brand
from mediagen.kits.plan import MAX_PLAN_PROMPT


def clip(text: str, limit: int = MAX_PLAN_PROMPT) -> str:
    """At most `limit` characters, cut at a word boundary."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut or text[:limit]


def joined(words: Sequence[str], conjunction: str = "and") -> str:
    """ "a, b and c"; empty for no words."""
    words = [w.strip() for w in words if w and w.strip()]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def branded(prompt: str, brand: Brand | None, kind: str) -> str:
    """`prompt` with the brand applied for `kind`, within the plan's prompt limit. A long prompt
    is shortened before the brand is applied, so the brand's words are never the part cut."""
    text = clip(prompt)
    if brand is None:
        return text
    text = text.rstrip(" .")  # the brand's words follow after a comma
    sent = apply_brand(brand, text, kind, negative_input=False).prompt_sent
    if len(sent) > MAX_PLAN_PROMPT:
        text = clip(text, max(1, len(text) - (len(sent) - MAX_PLAN_PROMPT) - 1))
        sent = apply_brand(brand, text, kind, negative_input=False).prompt_sent
    return clip(sent)


def without_avoided(text: str, brand: Brand | None) -> str:
    """`text` with the brand's avoid-words taken out and nothing added: for a title, which the
    brand does not style (a composition's `prompt` is its title)."""
    text = clip(text)
    if brand is None or not brand.avoid:
        return text
    return apply_brand(Brand(avoid=brand.avoid), text, "image", negative_input=False).prompt_sent


def avoided(text: str, brand: Brand | None) -> list[str]:
    """The brand's avoid-words `text` still says (whole words, any case)."""
    if brand is None:
        return []
    return [w for w in brand.avoid if mentions(text, w)]


__all__ = ["avoided", "branded", "clip", "joined", "without_avoided"]
