"""Media helpers shared by every kind: probe, waveform peaks, thumbnails (PyAV + Pillow)."""

from mediagen.media.errors import MediaError
from mediagen.media.probe import MediaInfo, probe
from mediagen.media.thumbnails import image_thumbnail, video_poster, video_thumbnail
from mediagen.media.waveform import waveform_peaks

__all__ = [
    "MediaError",
    "MediaInfo",
    "image_thumbnail",
    "probe",
    "video_poster",
    "video_thumbnail",
    "waveform_peaks",
]
