"""`storage.fs.map_cached`: a file's bytes as a read-only view of its cached pages, given only when
the page cache holds every one of them (mincore), and unmapped once the view is let go."""

from __future__ import annotations

import ctypes
import gc
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediagen.storage import fs
from mediagen.storage.fs import map_cached

pytestmark = pytest.mark.skipif(fs._MINCORE is None, reason="mincore is Linux's")

SIZE = 3 * 65536 + 1234  # pages and mapping granules that do not divide it
DATA = random.Random(7).randbytes(SIZE)


@pytest.fixture
def cached_file(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    path = tmp_path / "blob"
    path.write_bytes(DATA)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.pread(fd, SIZE, 0) == DATA  # and now in the page cache
        yield path, fd
    finally:
        os.close(fd)


def mappings_of(path: Path) -> int:
    return sum(str(path) in line for line in Path("/proc/self/maps").read_text().splitlines())


@pytest.mark.parametrize(
    ("offset", "count"), [(0, SIZE), (1, 10), (4095, 2), (65536 + 17, 70000), (SIZE - 1, 1)]
)
def test_the_cached_bytes_are_given_as_a_read_only_view(
    cached_file: tuple[Path, int], offset: int, count: int
) -> None:
    _, fd = cached_file
    view = map_cached(fd, offset, count)
    assert view is not None and view.readonly
    assert bytes(view) == DATA[offset : offset + count]
    with pytest.raises(TypeError):
        view[0] = 0


def test_bytes_past_the_end_of_the_file_are_not_given(cached_file: tuple[Path, int]) -> None:
    _, fd = cached_file
    assert map_cached(fd, SIZE - 10, 11) is None
    assert map_cached(fd, SIZE + 5000, 1) is None
    assert map_cached(fd, 0, 0) is None


def test_one_page_not_in_the_page_cache_means_none(
    cached_file: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, fd = cached_file
    real = fs._MINCORE
    assert real is not None
    asked: list[int] = []

    def last_page_missing(address: int, length: int, vector: Any) -> int:
        asked.append(length)
        result = real(address, length, vector)
        ctypes.memset(ctypes.addressof(vector) + len(vector) - 1, 0, 1)
        return result

    monkeypatch.setattr(fs, "_MINCORE", last_page_missing)
    assert map_cached(fd, 100, 20000) is None
    assert asked == [20100]  # the mapping starts on the page boundary below the offset
    monkeypatch.setattr(fs, "_MINCORE", None)  # no way to tell: nothing is given
    assert map_cached(fd, 100, 20000) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_the_mapping_lasts_as_long_as_the_view(cached_file: tuple[Path, int]) -> None:
    path, fd = cached_file
    before = mappings_of(path)
    view = map_cached(fd, 5000, 100000)
    assert view is not None
    piece = view[10:20]  # a view of the view keeps the pages mapped too
    del view
    gc.collect()
    assert mappings_of(path) == before + 1
    assert bytes(piece) == DATA[5010:5020]
    del piece
    assert mappings_of(path) == before
    assert map_cached(fd, 5000, 100) is not None
    assert mappings_of(path) == before  # an answer let go at once
