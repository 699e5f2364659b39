"""Loudness as broadcasters and platforms measure it (ITU-R BS.1770 / EBU R 128): the meter,
the delivery presets, and mastering to a preset.

Below engines and media in the layers: ingest measures every asset with it, and the
post-production engine masters its mixes with it.
"""

from mediagen.loudness.master import master
from mediagen.loudness.meter import Measurement, measure, measure_file
from mediagen.loudness.presets import PRESETS, LoudnessPreset, verdict

__all__ = ["PRESETS", "LoudnessPreset", "Measurement", "master", "measure", "measure_file", "verdict"]
