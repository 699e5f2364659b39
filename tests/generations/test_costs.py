"""What a generation really cost, beside the catalog's estimate: Replicate's `predict_time` times
the hardware's price (community models), the catalog price of what was made (official models),
time billed for a failed run, metrics that arrive after the news that it finished, the synth's
own run time at no cost, and the hardware price table with its refreshed file."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mediagen.auth.service import Principal
from mediagen.catalog.hardware import LIST_PRICES, actual_cost, hardware_path, load_hardware, refresh_hardware
from mediagen.catalog.registry import Catalog
from mediagen.catalog.sync import sync_hardware
from mediagen.config import Settings
from mediagen.generations.presenters import asset_json
from mediagen.generations.schemas import GenerateRequest
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services
from mediagen.vocabulary import KINDS, Kind, ProviderStatus, Status
from tests.fakes.replicate_server import FakeReplicate, Script
from tests.generations.conftest import Hosted, reread

MUSICGEN = "meta/musicgen"  # community model on an A100: billed by the second
FLUX = "black-forest-labs/flux-schnell"  # official: billed per image
A100 = LIST_PRICES["gpu-a100-large"][1]
RUNS = 12.5  # seconds of predict_time on the fake's clock


def finish(hosted: Hosted, gen_id: int) -> None:
    hosted.fake.advance(RUNS + 1)
    hosted.services.pipeline.refresh(gen_id)
    hosted.queue.drain(hosted.services.pipeline)


@pytest.mark.timeout(60)
def test_a_community_model_costs_its_predict_time_at_its_hardware_price(hosted: Hosted) -> None:
    hosted.fake.scripts[MUSICGEN] = Script(start_after=0.0, run_for=RUNS)
    req = GenerateRequest(prompt="lo-fi beat", model=MUSICGEN, duration=10)
    row, _ = hosted.services.generations.create(hosted.admin, "audio", req)
    assert row.cost_usd == pytest.approx(0.023)  # the estimate: $0.0023 per second of audio
    assert row.actual_cost_usd is None and row.compute_seconds is None  # not known yet

    finish(hosted, row.id)
    done = reread(hosted.services, row.id)
    assert done.status == Status.COMPLETED, done.error
    assert done.compute_seconds == pytest.approx(RUNS)
    assert done.actual_cost_usd == pytest.approx(RUNS * A100)
    assert done.cost_usd == pytest.approx(0.023)  # the estimate is kept beside it
    shown = asset_json(done, KINDS[Kind.AUDIO])
    assert (shown["cost_usd"], shown["actual_cost_usd"], shown["compute_seconds"]) == (
        pytest.approx(0.023),
        pytest.approx(RUNS * A100),
        pytest.approx(RUNS),
    )


@pytest.mark.timeout(60)
def test_an_official_model_costs_its_catalog_price_for_what_it_made(hosted: Hosted) -> None:
    hosted.fake.scripts[FLUX] = Script(start_after=0.0, run_for=RUNS, count=2)
    req = GenerateRequest(prompt="a poster", model=FLUX, num_outputs=2)
    row, _ = hosted.services.generations.create(hosted.admin, "image", req)
    finish(hosted, row.id)
    done = reread(hosted.services, row.id)
    assert done.status == Status.COMPLETED, done.error
    assert done.actual_cost_usd == pytest.approx(2 * 0.003)  # two images at $0.003
    assert done.compute_seconds == pytest.approx(RUNS)  # the time is still recorded


@pytest.mark.timeout(60)
def test_a_failed_run_is_billed_for_its_time(hosted: Hosted) -> None:
    hosted.fake.scripts[MUSICGEN] = Script(start_after=0.0, run_for=RUNS, status="failed", error="CUDA OOM")
    row, _ = hosted.services.generations.create(
        hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN)
    )
    finish(hosted, row.id)
    failed = reread(hosted.services, row.id)
    assert failed.status == Status.FAILED and failed.error == "CUDA OOM"
    assert failed.actual_cost_usd == pytest.approx(RUNS * A100)


@pytest.mark.timeout(60)
def test_metrics_that_come_after_the_news_are_still_recorded_once(hosted: Hosted) -> None:
    services, fake = hosted.services, hosted.fake
    fake.scripts[MUSICGEN] = Script(start_after=0.0, run_for=RUNS)
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    assert row.provider_ref is not None
    fake.advance(RUNS + 1)
    final = hosted.engine.refresh(row.provider_ref)
    assert final.status == ProviderStatus.SUCCEEDED and final.metrics["predict_time"] == pytest.approx(RUNS)

    # Replicate's "output" webhook says it succeeded before "completed" brings the metrics.
    assert services.pipeline.apply_state(row.id, dataclasses.replace(final, metrics={})) is True
    early = reread(services, row.id)
    assert early.compute_seconds is None and early.actual_cost_usd is None
    hosted.queue.drain(services.pipeline)
    assert reread(services, row.id).status == Status.COMPLETED

    assert services.pipeline.apply_state(row.id, final) is False  # no news for the row's status...
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED
    assert done.compute_seconds == pytest.approx(RUNS)  # ...but its figures are kept
    assert done.actual_cost_usd == pytest.approx(RUNS * A100)
    # The same figures again (a redelivery) change nothing.
    later = dataclasses.replace(final, metrics={"predict_time": 99.0})
    assert services.pipeline.apply_state(row.id, later) is False
    assert reread(services, row.id).compute_seconds == pytest.approx(RUNS)


def test_the_synth_records_its_run_time_at_no_cost(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="calm piano", duration=1))
    assert row.actual_cost_usd is None
    queue.drain(services.pipeline)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED
    assert done.actual_cost_usd == 0.0 and done.cost_usd == 0.0
    assert done.compute_seconds is not None and 0.0 < done.compute_seconds < 60.0


# -- the hardware price table ----------------------------------------------------------------------


def test_the_packaged_list_prices_cost_the_catalogs_hardware() -> None:
    catalog = Catalog.load()
    for entry in catalog.list():
        sku = entry.price.get("hardware")
        if sku is not None:
            assert catalog.hardware.price(sku) is not None, f"{entry.id}: no price for {sku}"
    assert catalog.hardware.price("gpu-t4") == pytest.approx(0.000225)
    assert catalog.hardware.unpriced() == []


def test_a_refresh_keeps_known_prices_and_reports_skus_without_one(tmp_path: Path) -> None:
    listed = [
        {"sku": "cpu", "name": "CPU"},
        {"sku": "gpu-a100-large", "name": "Nvidia A100 (80GB) GPU"},
        {"sku": "gpu-b200", "name": "Nvidia B200 GPU"},
    ]
    table, notes = refresh_hardware(tmp_path, listed)
    assert table.price("cpu") == pytest.approx(0.0001) and table.price("gpu-b200") is None
    assert table.unpriced() == ["gpu-b200"]
    assert any("gpu-b200" in n and "no price" in n for n in notes)
    assert any("no longer listed" in n and "gpu-t4" in n for n in notes)

    # A price set by hand in the file is used, and kept by the next refresh.
    path = hardware_path(tmp_path)
    raw = json.loads(path.read_text())
    raw["skus"]["gpu-b200"]["usd_per_second"] = 0.0025
    raw["skus"]["gpu-a100-large"]["usd_per_second"] = 0.0015
    path.write_text(json.dumps(raw))
    assert load_hardware(tmp_path).price("gpu-b200") == pytest.approx(0.0025)
    again, notes = refresh_hardware(tmp_path, listed)
    assert again.price("gpu-b200") == pytest.approx(0.0025) and again.price(
        "gpu-a100-large"
    ) == pytest.approx(0.0015)
    assert not any("no price" in n for n in notes)


def test_a_broken_price_file_falls_back_to_the_list_prices(tmp_path: Path) -> None:
    path = hardware_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert load_hardware(tmp_path).price("gpu-a100-large") == pytest.approx(A100)


@pytest.mark.timeout(60)
def test_a_price_from_the_data_dir_costs_hosted_runs(
    tmp_path: Path, hosted_factory: Callable[..., Hosted]
) -> None:
    # hosted_factory's first services live in tmp_path/"hosted0": its catalog reads the file there.
    path = hardware_path(tmp_path / "hosted0" / "catalog")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"skus": {"gpu-a100-large": {"name": "A100", "usd_per_second": 0.002}}}))
    hosted = hosted_factory()
    hosted.fake.scripts[MUSICGEN] = Script(start_after=0.0, run_for=RUNS)
    row, _ = hosted.services.generations.create(
        hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN)
    )
    finish(hosted, row.id)
    assert reread(hosted.services, row.id).actual_cost_usd == pytest.approx(RUNS * 0.002)


def test_models_sync_refreshes_the_skus_and_names_the_unpriced(
    fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        REPLICATE_API_TOKEN=fake_replicate.token,  # type: ignore[call-arg]
        replicate_base_url=fake_replicate.base_url,
    )
    fake_replicate.hardware.append({"name": "Nvidia B200 GPU", "sku": "gpu-b200"})  # new at Replicate
    lines = list(sync_hardware(settings))
    assert lines[0].startswith("hardware: ") and "failed" not in lines[0], lines
    assert fake_replicate.requests_to("GET", "/v1/hardware")
    assert any("gpu-b200" in line and "no price" in line for line in lines), lines
    written = json.loads(hardware_path(settings.data_dir / "catalog").read_text())["skus"]
    assert set(written) == {h["sku"] for h in fake_replicate.hardware}
    assert written["gpu-a100-large"]["usd_per_second"] == pytest.approx(A100)  # our price, kept
    assert written["gpu-b200"] == {"name": "Nvidia B200 GPU", "usd_per_second": None}
    # The server's catalog reads the refreshed file: the new SKU is known, without a price.
    catalog = Catalog.load(overrides=settings.data_dir / "catalog")
    assert catalog.hardware.unpriced() == ["gpu-b200"]
    assert catalog.hardware.price("gpu-a100-large") == pytest.approx(A100)


def test_a_guessed_price_is_no_bill() -> None:
    """A model added from Replicate is priced from an example run (or not at all): that guess is
    its estimate, never its actual cost, even where an official model's price would be."""
    catalog = Catalog.load()
    official = next(e for e in catalog.list() if e.official and e.price.get("usd"))
    table = load_hardware(None)
    assert actual_cost(official, {}, 3.0, table) == official.estimate_cost({})
    guessed = dataclasses.replace(official, price={**official.price, "basis": "example"})
    assert actual_cost(guessed, {}, 3.0, table) is None
    assert guessed.estimate_cost({}) == official.estimate_cost({}) > 0
