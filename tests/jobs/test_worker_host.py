"""What a worker process does at start beside consuming: the device lane warms its models up
(and says how long it took), the io lane does not wait for that."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from mediagen.app import worker_host
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.generations.pipeline import Pipeline
from mediagen.generations.ports import Lane
from mediagen.services import build_services


@pytest.mark.parametrize("lanes", [frozenset({Lane.DEVICE}), frozenset({Lane.IO})])
def test_the_device_lane_warms_up_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, lanes: frozenset[Lane]
) -> None:
    warmed = threading.Event()

    def warm_up(self: Pipeline) -> dict[str, float]:
        time.sleep(0.2)  # a model loading: the consumers are already running meanwhile
        warmed.set()
        return {"local/musicgen-small": 0.2}

    monkeypatch.setattr(Pipeline, "warm_up_devices", warm_up)
    settings = Settings(data_dir=tmp_path, reconcile_interval_seconds=60)
    upgrade(settings.resolved_database_url)
    services = build_services(settings)
    host = worker_host(services, lanes)
    with caplog.at_level(logging.INFO, logger="mediagen"):
        started = time.monotonic()
        host.start()
        assert time.monotonic() - started < 1.0  # the warm-up (0.2 s) runs beside, not before
        try:
            assert warmed.wait(5) is (Lane.DEVICE in lanes)
            if Lane.DEVICE in lanes:
                deadline = time.monotonic() + 5
                while "local models warmed up" not in caplog.text and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert "local/musicgen-small 0.2 s" in caplog.text
        finally:
            host.stop()
            services.close()
