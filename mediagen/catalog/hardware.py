"""What a hosted generation really cost: the provider's compute seconds times its hardware's price.

Replicate bills a community model by the second on the hardware it runs on (`metrics.predict_time`
of the prediction) and an official model by what it made (per image, per second of video, per
run), at the prices on its pricing page. Its API lists hardware SKUs (`GET /v1/hardware`) but no
prices, so the prices are kept here: `LIST_PRICES` are the public list prices, which change;
`mediagen models sync` refreshes the SKUs into `<data_dir>/catalog/hardware/prices.json` and
reports any SKU without a price, and a price set in that file wins over the packaged one.

A catalog entry names its hardware in `price.hardware`; an entry without it (official models,
local and synth engines) is costed by its catalog price or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mediagen.catalog.registry import ModelEntry

__all__ = [
    "LIST_PRICES",
    "HardwareTable",
    "Sku",
    "actual_cost",
    "hardware_path",
    "load_hardware",
    "refresh_hardware",
]

log = logging.getLogger("mediagen.catalog")

# Replicate's public list prices (USD per second), by SKU. List prices: refresh them from
# replicate.com/pricing when Replicate changes them.
LIST_PRICES: dict[str, tuple[str, float]] = {
    "cpu": ("CPU", 0.0001),
    "gpu-t4": ("Nvidia T4 GPU", 0.000225),
    "gpu-l40s": ("Nvidia L40S GPU", 0.000975),
    "gpu-l40s-2x": ("2x Nvidia L40S GPU", 0.00195),
    "gpu-a100-large": ("Nvidia A100 (80GB) GPU", 0.0014),
    "gpu-a100-large-2x": ("2x Nvidia A100 (80GB) GPU", 0.0028),
    "gpu-h100": ("Nvidia H100 GPU", 0.001525),
    "gpu-h100-2x": ("2x Nvidia H100 GPU", 0.00305),
}
HARDWARE_DIRNAME = "hardware"  # under the catalog overrides dir, apart from the model files
HARDWARE_FILE = "prices.json"


@dataclass(frozen=True)
class Sku:
    sku: str
    name: str
    usd_per_second: float | None  # None: listed by the provider, no price known here


@dataclass(frozen=True)
class HardwareTable:
    skus: dict[str, Sku] = field(default_factory=dict)

    @classmethod
    def packaged(cls) -> HardwareTable:
        return cls({sku: Sku(sku, name, usd) for sku, (name, usd) in LIST_PRICES.items()})

    def price(self, sku: str | None) -> float | None:
        found = self.skus.get(sku) if sku else None
        return found.usd_per_second if found is not None else None

    def unpriced(self) -> list[str]:
        return sorted(s.sku for s in self.skus.values() if s.usd_per_second is None)


def hardware_path(overrides: Path) -> Path:
    return overrides / HARDWARE_DIRNAME / HARDWARE_FILE


def _read(path: Path) -> dict[str, Any]:
    raw = json.loads(path.read_text())
    skus = raw.get("skus") if isinstance(raw, Mapping) else None
    if not isinstance(skus, Mapping):
        raise ValueError("no `skus` object")
    return dict(skus)


def load_hardware(overrides: Path | None = None) -> HardwareTable:
    """The packaged list prices, updated by the refreshed file in `overrides` when there is one.
    A broken file is logged and ignored: the packaged prices still cost every generation."""
    table = dict(HardwareTable.packaged().skus)
    path = hardware_path(overrides) if overrides is not None else None
    if path is None or not path.is_file():
        return HardwareTable(table)
    try:
        listed = _read(path)
        for sku, spec in listed.items():
            spec = spec if isinstance(spec, Mapping) else {}
            usd = spec.get("usd_per_second")
            known = table.get(str(sku))
            price = float(usd) if isinstance(usd, int | float) and usd >= 0 else None
            table[str(sku)] = Sku(
                str(sku),
                str(spec.get("name") or (known.name if known else sku)),
                price if price is not None else (known.usd_per_second if known else None),
            )
    except (OSError, ValueError) as exc:
        log.warning("ignoring hardware prices %s: %s", path, exc)
        return HardwareTable.packaged()
    return HardwareTable(table)


def refresh_hardware(overrides: Path, listed: Iterable[Mapping[str, Any]]) -> tuple[HardwareTable, list[str]]:
    """Write the provider's SKU list (`[{sku, name}]`) with the prices known here; returns the
    new table and one note per change a person should know of (a new SKU without a price, a
    priced SKU no longer listed). Prices set by hand in the file are kept."""
    before = load_hardware(overrides)
    skus: dict[str, dict[str, Any]] = {}
    for item in listed:
        sku = item.get("sku")
        if not isinstance(sku, str) or not sku:
            continue
        known = before.skus.get(sku)
        skus[sku] = {
            "name": str(item.get("name") or (known.name if known else sku)),
            "usd_per_second": known.usd_per_second if known else None,
        }
    notes = [
        f"hardware {sku}: no price known; set usd_per_second for it"
        for sku in sorted(skus)
        if skus[sku]["usd_per_second"] is None
    ]
    gone = sorted(set(LIST_PRICES) - set(skus))
    if gone:
        notes.append("hardware no longer listed by Replicate: " + ", ".join(gone))
    path = hardware_path(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"skus": skus}, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return load_hardware(overrides), notes


def actual_cost(
    entry: ModelEntry, inputs: Mapping[str, Any], predict_time: float | None, table: HardwareTable
) -> float | None:
    """What a finished hosted prediction cost, or None when it cannot be told: time-billed
    (`price.hardware`) from the compute seconds, output-billed (official models) at the catalog's
    price for what was asked."""
    sku = entry.price.get("hardware")
    if sku:
        usd = table.price(str(sku))
        if usd is None or predict_time is None:
            return None
        return round(max(0.0, predict_time) * usd, 6)
    if entry.official and not entry.price.get("basis"):
        # A catalog price that is our guess (`basis`: a model added from Replicate, priced from an
        # example run or not at all) is no bill: the actual cost stays unknown.
        return entry.estimate_cost(inputs)
    return None
