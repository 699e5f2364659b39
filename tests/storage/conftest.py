"""The S3 endpoint the storage tests share (one moto server per test session)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.utils.s3 import CREDENTIALS, S3Server, s3_server


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Server]:
    pytest.importorskip("boto3")
    pytest.importorskip("moto")
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        with s3_server() as server:
            yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
