"""The delivery presets and the per-preset verdict shown as badges."""

from __future__ import annotations

import pytest

from mediagen.loudness import PRESETS, master, measure, verdict
from tests.loudness.test_meter import RATE, music


def test_presets_are_the_published_targets() -> None:
    # shared/reference/media.md: EBU R 128, ATSC A/85, streaming and podcast practice.
    targets = {name: (p.target_lufs, p.ceiling_dbtp) for name, p in PRESETS.items()}
    assert targets == {
        "social": (-14.0, -1.0),
        "broadcast_eu": (-23.0, -1.0),
        "broadcast_us": (-24.0, -2.0),
        "podcast": (-16.0, -1.0),
    }
    assert all(p.name == name and p.title for name, p in PRESETS.items())
    assert PRESETS["broadcast_eu"].tolerance_lu == 0.5  # R 128's ±0.5 LU for programmes


@pytest.mark.parametrize(
    ("integrated", "true_peak", "expected"),
    [
        (-23.0, -3.0, "meets"),
        (-22.6, -3.0, "meets"),  # inside ±0.5 LU
        (-23.4, -3.0, "meets"),
        (-22.4, -3.0, "too_loud"),
        (-23.6, -3.0, "too_quiet"),
        (-23.0, -0.95, "meets"),  # within the 0.1 dB a true-peak reading is allowed
        (-23.0, -0.5, "too_loud"),  # right loudness, but a peak over the ceiling
        (-30.0, 0.0, "too_loud"),  # quiet, yet it would clip downstream: loud wins
        (-23.0, None, "meets"),
        (None, -3.0, "unknown"),
        (None, None, "unknown"),
    ],
)
def test_verdict_against_broadcast_eu(
    integrated: float | None, true_peak: float | None, expected: str
) -> None:
    assert verdict(PRESETS["broadcast_eu"], integrated, true_peak) == expected


def test_verdicts_of_a_real_master() -> None:
    delivered, reported = master(music(8, RATE, -3.0, seed=21), RATE, PRESETS["social"])
    measured = measure(delivered, RATE)
    assert reported == measured
    badges = {
        name: verdict(p, measured.integrated_lufs, measured.true_peak_dbtp) for name, p in PRESETS.items()
    }
    assert badges == {
        "social": "meets",
        "podcast": "too_loud",  # −14 against −16 ± 1
        "broadcast_eu": "too_loud",
        "broadcast_us": "too_loud",
    }
    quiet, _ = master(music(8, RATE, -3.0, seed=22), RATE, PRESETS["broadcast_us"])
    measured = measure(quiet, RATE)
    assert verdict(PRESETS["social"], measured.integrated_lufs, measured.true_peak_dbtp) == "too_quiet"
    assert verdict(PRESETS["broadcast_us"], measured.integrated_lufs, measured.true_peak_dbtp) == "meets"
    # −24 is a whole LU under R 128's −23, outside its ±0.5.
    assert verdict(PRESETS["broadcast_eu"], measured.integrated_lufs, measured.true_peak_dbtp) == "too_quiet"
