"""The export channels a brief can name and an export renders for: frame, loudness, length cap.

They live with the records (not with the exports that render them) because a brief validates its
`channels` against them and the kit planner reads them, and both sit below the generation core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Aspect = Literal["16:9", "9:16", "1:1", "4:5"]


@dataclass(frozen=True)
class Channel:
    name: str
    kind: Literal["video", "audio"]
    aspect: Aspect | None  # video channels
    loudness: str
    max_length: float | None = None


CHANNELS: dict[str, Channel] = {
    c.name: c
    for c in (
        Channel("youtube", "video", "16:9", "social"),
        Channel("instagram-reel", "video", "9:16", "social", 60.0),
        Channel("tiktok", "video", "9:16", "social", 60.0),
        Channel("instagram-feed", "video", "4:5", "social", 60.0),
        Channel("tv-eu", "video", "16:9", "broadcast_eu"),
        Channel("tv-us", "video", "16:9", "broadcast_us"),
        Channel("radio", "audio", None, "podcast"),
        Channel("podcast", "audio", None, "podcast"),
    )
}
