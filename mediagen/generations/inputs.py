"""Turning stored asset ids and URLs in a job's inputs into what its engine can read.

Inline engines read local files: a stored asset is written to the job's scratch directory and a
URL is fetched through the same guarded downloader as outputs. Remote engines get a data: URL
for a small file, or a provider upload for a large one where the engine can take uploads.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

from mediagen.catalog.registry import media_refs, set_path
from mediagen.engines.base import Engine, EngineError
from mediagen.engines.downloads import DownloadError
from mediagen.generations.context import CoreContext
from mediagen.generations.tables import Generation

DATA_URL_INLINE_LIMIT = 256 * 1024  # Replicate's advice: data URLs only for small files


class InputMaterializer:
    def __init__(self, ctx: CoreContext) -> None:
        self.ctx = ctx

    def materialize(self, row: Generation, engine: Engine, workdir: Path) -> dict[str, Any]:
        inputs = copy.deepcopy(row.parameters)
        entry = self.ctx.catalog.get(row.model_id)
        media_names = entry.media_inputs if entry else {}
        inline = engine.capabilities.inline
        for name, media_kind in media_names.items():
            if "[" in name or "." in name:  # references inside a structured input (a recipe's clips)
                for path, ref in media_refs(inputs, name):
                    if isinstance(ref, int) and not isinstance(ref, bool):
                        set_path(inputs, path, self._asset_input(path, ref, engine, workdir))
                continue
            value = inputs.get(name)
            if isinstance(value, str) and inline:
                inputs[name] = str(self._fetch_url(name, value, media_kind, workdir))
            elif isinstance(value, int) and not isinstance(value, bool):
                inputs[name] = self._asset_input(name, value, engine, workdir)
        return inputs

    def _fetch_url(self, name: str, url: str, media_kind: str, workdir: Path) -> Path:
        try:
            res = self.ctx.download(
                url,
                workdir / f"{name}.input",
                max_bytes=self.ctx.settings.max_download_bytes(media_kind),
                allowed=self.ctx.settings.download_allowed_hosts,
            )
        except DownloadError as exc:
            raise EngineError(f"{name}: could not fetch {url[:80]}: {exc}") from exc
        return Path(res.path)

    def _asset_input(self, name: str, asset_id: int, engine: Engine, workdir: Path) -> str:
        src = self.ctx.rows.get(asset_id)
        if src is None or src.blob_key is None:
            raise EngineError(f"{name}: asset {asset_id} is gone", retryable=False)
        content_type = src.content_type or "application/octet-stream"
        ext = content_type.split("/")[-1].split(";")[0]
        path = workdir / f"{name}.{ext}"
        with path.open("wb") as fh:
            for chunk in self.ctx.store.open_range(src.blob_key, 0, max(0, (src.size_bytes or 1) - 1)):
                fh.write(chunk)
        if engine.capabilities.inline:
            return str(path)
        if engine.capabilities.uploads_files and path.stat().st_size > DATA_URL_INLINE_LIMIT:
            return engine.upload_file(path, content_type)
        data = base64.b64encode(path.read_bytes()).decode()
        return f"data:{content_type};base64,{data}"
