"""The one error the media helpers raise, so callers need not know PyAV's or Pillow's."""

from __future__ import annotations

from mediagen.errors import MediagenError


class MediaError(MediagenError):
    """The file is empty, truncated, corrupt, or not a kind of media we can read."""
