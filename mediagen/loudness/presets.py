"""Delivery loudness targets (facts in shared/reference/media.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoudnessPreset:
    name: str
    target_lufs: float  # integrated loudness to deliver at
    ceiling_dbtp: float  # highest true peak allowed
    title: str
    tolerance_lu: float = 1.0  # how far from the target still "meets" it


PRESETS: dict[str, LoudnessPreset] = {
    p.name: p
    for p in (
        LoudnessPreset("social", -14.0, -1.0, "Social and streaming (−14 LUFS)"),
        LoudnessPreset("broadcast_eu", -23.0, -1.0, "Broadcast, EBU R 128 (−23 LUFS)", tolerance_lu=0.5),
        LoudnessPreset("broadcast_us", -24.0, -2.0, "Broadcast, ATSC A/85 (−24 LKFS)", tolerance_lu=2.0),
        LoudnessPreset("podcast", -16.0, -1.0, "Podcast (−16 LUFS)"),
    )
}


def verdict(preset: LoudnessPreset, integrated_lufs: float | None, true_peak_dbtp: float | None) -> str:
    """A measured asset against a preset: "meets", "too_loud", "too_quiet", or "unknown" without a
    measurement. A true peak over the ceiling is too loud whatever the integrated loudness."""
    if integrated_lufs is None:
        return "unknown"
    if integrated_lufs > preset.target_lufs + preset.tolerance_lu:
        return "too_loud"
    if true_peak_dbtp is not None and true_peak_dbtp > preset.ceiling_dbtp + 0.1:
        return "too_loud"
    if integrated_lufs < preset.target_lufs - preset.tolerance_lu:
        return "too_quiet"
    return "meets"
