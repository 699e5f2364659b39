"""Channel exports: one finished asset rendered for several channels at once (aspect, length cap
and loudness per channel), each rendition a composition of its own, grouped under an export and
downloadable as one streamed zip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from mediagen.auth.service import Principal

# Re-exported (`as`) for the pages and routes that read the channels from here.
from mediagen.campaigns.channels import CHANNELS as CHANNELS
from mediagen.campaigns.channels import Aspect
from mediagen.campaigns.channels import Channel as Channel
from mediagen.db.base import utcnow
from mediagen.errors import InvalidInput, MediagenError, NotFound, invalid, not_found
from mediagen.generations.compose import ClipIn, ComposeRequest, MusicIn, as_sent
from mediagen.generations.context import CoreContext
from mediagen.generations.filenames import extension
from mediagen.generations.schemas import AssetId
from mediagen.generations.service import GenerationService
from mediagen.generations.tables import Export, ExportItem, Generation
from mediagen.generations.zipstream import ZipMember, zip_blobs
from mediagen.loudness import PRESETS
from mediagen.vocabulary import KINDS, Kind, Status


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ChannelIn(_Strict):
    """A channel of your own: its name, frame and loudness (and a length cap)."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")
    aspect: Aspect | None = None
    loudness: Literal["social", "broadcast_eu", "broadcast_us", "podcast"] = "social"
    max_length: float | None = Field(default=None, gt=0, le=600)


class SourceIn(_Strict):
    video_id: AssetId | None = None
    audio_id: AssetId | None = None


class ExportRequest(_Strict):
    source: SourceIn
    channels: list[str | ChannelIn] = Field(min_length=1, max_length=12)
    collection: str | None = Field(default=None, min_length=1, max_length=128)


class ExportService:
    def __init__(self, ctx: CoreContext, generations: GenerationService) -> None:
        self.ctx, self.db, self.generations = ctx, ctx.db, generations

    def _channels(self, req: ExportRequest, kind: str) -> list[Channel]:
        out: list[Channel] = []
        for i, given in enumerate(req.channels):
            where = f"channels[{i}]"
            if isinstance(given, str):
                channel = CHANNELS.get(given)
                if channel is None:
                    raise invalid(where, f"unknown channel {given!r}; presets: {', '.join(CHANNELS)}")
            else:
                channel = Channel(
                    given.name,
                    "video" if given.aspect else "audio",
                    given.aspect,
                    given.loudness,
                    given.max_length,
                )
            if channel.kind != kind:
                raise invalid(where, f"{channel.name} is a {channel.kind} channel; the source is {kind}")
            if channel.name in {c.name for c in out}:
                raise invalid(where, f"{channel.name} is listed twice")
            out.append(channel)
        return out

    def _source(self, principal: Principal, req: ExportRequest) -> Generation:
        given = [(k, v) for k, v in (("video", req.source.video_id), ("audio", req.source.audio_id)) if v]
        if len(given) != 1:
            raise invalid("source", "give exactly one of video_id, audio_id")
        kind, gen_id = given[0]
        try:
            row = self.generations.get(principal, kind, gen_id)
        except NotFound as exc:
            raise NotFound(f"{kind} {gen_id} not found", field=f"source.{kind}_id") from exc
        if row.status != Status.COMPLETED:
            raise invalid(f"source.{kind}_id", f"{kind} {gen_id} is not completed yet (status {row.status})")
        return row

    def _rendition(self, source: Generation, channel: Channel, collection: str | None) -> tuple[str, Any]:
        length = None
        if channel.max_length is not None and (source.duration or 0) > channel.max_length:
            length = channel.max_length
        filing: dict[str, Any] = {
            "title": f"{source.prompt[:150]} ({channel.name})",
            "client_id": source.client_id,
            "campaign_id": source.campaign_id,
            "brief_id": source.brief_id,
            "collection": collection,
            "loudness": channel.loudness,
        }
        if channel.kind == "video":
            compose = ComposeRequest(
                clips=[ClipIn(video_id=source.id)], aspect=channel.aspect, fit="pad", length=length, **filing
            )
        else:
            compose = ComposeRequest(
                music=MusicIn(audio_id=source.id), length=length or source.duration, **filing
            )
        return compose.as_generation()

    def create(self, principal: Principal, req: ExportRequest) -> tuple[Export, list[ExportItem]]:
        """Every rendition is checked before any is made; if one cannot be queued, those already
        made are removed again, so an export is whole or absent."""
        source = self._source(principal, req)
        channels = self._channels(req, source.kind)
        made: list[tuple[Channel, Generation]] = []
        try:
            for channel in channels:
                kind, gen_req = self._rendition(source, channel, req.collection)
                row, _ = self.generations.create(principal, kind, gen_req)
                made.append((channel, row))
        except MediagenError as exc:
            for _, row in made:
                self.generations.delete(principal, row.kind, row.id)
            raise (as_sent(exc) if isinstance(exc, InvalidInput) else exc) from None
        with self.db.write() as s:
            export = Export(
                source_id=source.id,
                source_kind=source.kind,
                client_id=source.client_id,
                campaign_id=source.campaign_id,
                owner_key=principal.user_id,
                created_at=utcnow(),
            )
            s.add(export)
            s.flush()
            items = [ExportItem(export_id=export.id, channel=c.name, generation_id=r.id) for c, r in made]
            s.add_all(items)
        return export, items

    def get(self, principal: Principal, export_id: int) -> tuple[Export, list[tuple[str, Generation | None]]]:
        with self.db.read() as s:
            export = s.get(Export, export_id)
            if export is None or not principal.can_see_client(export.client_id):
                raise not_found("export", export_id)
            rows = s.execute(
                select(ExportItem.channel, Generation)
                .outerjoin(Generation, Generation.id == ExportItem.generation_id)
                .where(ExportItem.export_id == export_id)
                .order_by(ExportItem.channel)
            ).all()
        return export, [(channel, gen) for channel, gen in rows]

    def json(self, export: Export, renditions: list[tuple[str, Generation | None]]) -> dict[str, Any]:
        return {
            "export_id": export.id,
            "source": {"kind": export.source_kind, "id": export.source_id},
            "created_at": export.created_at.isoformat().replace("+00:00", "Z"),
            "renditions": [
                {
                    "channel": channel,
                    "kind": gen.kind if gen else None,
                    "id": gen.id if gen else None,
                    "status": gen.status if gen else "deleted",
                    "url": f"/api/{KINDS[Kind(gen.kind)].path}/{gen.id}" if gen else None,
                    "data_url": f"/api/{KINDS[Kind(gen.kind)].path}/{gen.id}/data"
                    if gen and gen.status == Status.COMPLETED
                    else None,
                }
                for channel, gen in renditions
            ],
            "zip_url": f"/api/exports/{export.id}/zip",
        }

    def zip_stream(self, principal: Principal, export_id: int) -> tuple[str, Iterator[bytes]]:
        """(file name, the zip's bytes as they are written): completed renditions only, stored
        (media is compressed already), read from the blob store in chunks — flat memory."""
        export, renditions = self.get(principal, export_id)
        ready = [
            (c, g) for c, g in renditions if g is not None and g.status == Status.COMPLETED and g.blob_key
        ]
        if not ready:
            raise invalid("export", "no rendition is completed yet")
        prefix = export.campaign_id or export.client_id or "mediagen"
        members = [
            ZipMember(
                f"{prefix}-{channel}-{gen.id}.{extension(gen.content_type)}",
                gen.blob_key or "",
                gen.size_bytes or 0,
                gen.completed_at or gen.created_at,
            )
            for channel, gen in ready
        ]
        return f"{prefix}-export-{export.id}.zip", zip_blobs(self.ctx.store, members)


__all__ = ["CHANNELS", "PRESETS", "ExportRequest", "ExportService"]
