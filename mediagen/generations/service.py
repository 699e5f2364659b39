"""Create, read, list, delete and cancel generations, always within the caller's client scope."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Unpack

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mediagen.auth.service import Principal
from mediagen.campaigns.service import CampaignService
from mediagen.catalog.registry import ModelEntry
from mediagen.db.base import utcnow
from mediagen.engines.base import InputError
from mediagen.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable, invalid, not_found
from mediagen.generations.assets import AssetRecords
from mediagen.generations.branded import brand_inputs, client_brand, explain_length, within_budget
from mediagen.generations.context import CoreContext
from mediagen.generations.drafts import resolve_model
from mediagen.generations.events import EventType, record_event
from mediagen.generations.gallery import GalleryPage, PageQuery, read_page
from mediagen.generations.ingest import IngestError, StorageFailure
from mediagen.generations.pipeline import Pipeline
from mediagen.generations.ports import Step
from mediagen.generations.presenters import AssetRow
from mediagen.generations.ratelimit import Limiter
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Derivation, Generation, Source
from mediagen.generations.takes import (
    Takes,
    drop_rows,
    given_seed,
    join_group,
    new_group,
    plan_seeds,
    request_takes,
    seed_input,
    submit_takes,
)
from mediagen.vocabulary import TERMINAL, UPLOAD_ENGINE, ProviderStatus, Status

log = logging.getLogger("mediagen.generations")


@dataclass(frozen=True)
class Canceled:
    """A canceled generation, and what the provider said if stopping it there failed."""

    row: Generation
    provider_error: str | None = None


def idempotency_scope(principal: Principal) -> str:
    """Where an Idempotency-Key is unique: the API key that sent it, or the user's web session."""
    return f"key:{principal.key_id}" if principal.key_id else f"user:{principal.user_id}"


def request_hash(kind: str, req: GenerateRequest) -> str:
    """A fingerprint of what was asked, to tell a retry from a different request under one key."""
    body = {"kind": kind, "request": req.model_dump(mode="json", exclude_unset=True)}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class GenerationService:
    def __init__(
        self,
        ctx: CoreContext,
        *,
        campaigns: CampaignService,
        assets: AssetRecords,
        pipeline: Pipeline,
        rate_limiter: Limiter,
    ) -> None:
        self.ctx = ctx
        self.settings, self.db, self.catalog, self.router, self.queue = (
            ctx.settings,
            ctx.db,
            ctx.catalog,
            ctx.router,
            ctx.queue,
        )
        self.campaigns = campaigns
        self.assets = assets
        self.pipeline = pipeline
        self.rate_limiter = rate_limiter

    # create -----------------------------------------------------------------
    def create(
        self, principal: Principal, kind: str, req: GenerateRequest, *, idempotency_key: str | None = None
    ) -> tuple[Generation, bool]:
        """`create_takes` for callers that want the (first) row and whether it is new."""
        takes = self.create_takes(principal, kind, req, idempotency_key=idempotency_key)
        return takes.first, takes.created

    def create_takes(
        self,
        principal: Principal,
        kind: str,
        req: GenerateRequest,
        *,
        idempotency_key: str | None = None,
        regenerate: int | None = None,
    ) -> Takes:
        """Validate everything, insert `req.n` rows (pending) in one transaction and queue them.

        An `Idempotency-Key` seen before from the same API key (or web session) with the same
        request returns the first request's takes unchanged, so a client retrying a timed-out POST
        never makes a second set; with another request it is a Conflict. A request counts against
        the rate limit once it is valid, once whatever its `n`, and a replay does not count.
        `regenerate` (an asset's id) puts the new take into that asset's take group.
        """
        if req.n > self.settings.max_takes:
            raise invalid("n", f"at most {self.settings.max_takes} takes per request on this server")
        fingerprint = request_hash(kind, req)
        if idempotency_key:
            existing = self._by_idempotency(principal, idempotency_key)
            if existing is not None:
                return self._replay(existing, fingerprint)
        if req.override_budget and not principal.is_admin:
            raise Forbidden("only an admin may override a campaign's budget", field="override_budget")
        if req.prompt is None:  # a prompt-less brief request is expanded by the route (kits)
            raise invalid("prompt", "field required")
        resolved = resolve_model(
            self.ctx,
            kind,
            req.model or self.router.default_model(kind),
            req.named_inputs(),
            dict(req.parameters),
            functools.partial(self._check_dropped_media, principal),
        )
        model_id, entry, routing = resolved.model_id, resolved.entry, resolved.routing
        filing = (req.client_id, req.campaign_id, req.brief_id)
        brand = client_brand(self.db, self.campaigns, principal, filing) if req.brand else None
        branded = brand_inputs(brand, entry, kind, resolved.named, resolved.parameters)
        try:
            built = self.catalog.build_inputs(entry, branded.named, branded.parameters)
        except InvalidInput as exc:
            raise explain_length(exc, branded) from exc
        prompt_sent, brand_meta = branded.row_fields(req.prompt, brand_off=not req.brand)
        parameters = dict(built.inputs)
        for name, asset_id in built.media.items():
            if name in entry.media_inputs:  # top-level; nested ids are already in place
                parameters[name] = asset_id
        seed_name = seed_input(entry)
        chosen = (
            built.inputs.get(seed_name or "")
            if given_seed(entry, branded.named, branded.parameters)
            else None
        )
        seeds = plan_seeds(entry, chosen, req.n)
        rows: list[Generation] = []
        with self.db.write() as s:
            client_id, campaign_id, brief_id = self.campaigns.resolve_filing(
                s, principal, client_id=req.client_id, campaign_id=req.campaign_id, brief_id=req.brief_id
            )
            durations = {
                name: self._check_media(s, principal, asset_id, entry.media_kind(name), built.origin[name])
                for name, asset_id in built.media.items()
            }
            engine_for_row = self.router.engine(routing.engine)
            if engine_for_row is not None:
                try:
                    engine_for_row.preflight(model_id, built.inputs, durations)
                except InputError as exc:
                    where = built.origin.get(
                        exc.field or "", f"parameters.{exc.field}" if exc.field else "parameters"
                    )
                    raise invalid(where, exc.message) from exc
            takes_inputs = [
                parameters if seed is None else {**parameters, seed_name or "seed": seed} for seed in seeds
            ]
            total = sum(entry.estimate_cost(inputs) for inputs in takes_inputs)
            overridden = within_budget(self.campaigns, s, campaign_id, total, override=req.override_budget)
            self.rate_limiter.check(principal.key_id or principal.user_id, s)
            now = utcnow()
            group = join_group(s, regenerate) if regenerate is not None else None
            group = group or (new_group() if req.n > 1 else None)
            for take, (seed, inputs) in enumerate(zip(seeds, takes_inputs, strict=True)):
                first = take == 0 and idempotency_key is not None  # the key is unique: on one row
                row = Generation(
                    kind=kind,
                    prompt=req.prompt,
                    prompt_sent=prompt_sent,
                    model_id=model_id,
                    engine=routing.engine,
                    parameters=inputs,
                    status=Status.PENDING,
                    collection=req.collection,
                    client_id=client_id,
                    campaign_id=campaign_id,
                    brief_id=brief_id,
                    cost_usd=entry.estimate_cost(inputs),
                    meta={
                        **({"engine_label": entry.label} if entry.label else {}),
                        **resolved.notice,
                        **brand_meta,
                        **({"budget_override": overridden} if overridden else {}),
                    },
                    seed=seed,
                    take_group=group,
                    idempotency_key=idempotency_key if first else None,
                    idempotency_scope=idempotency_scope(principal) if first else None,
                    idempotency_hash=fingerprint if first else None,
                    owner_key=principal.user_id,
                    webhook_token=secrets.token_urlsafe(24),
                    # Unclaimed rows become visible to reconcile after one lease: a lost enqueue heals.
                    lease_until=now + timedelta(seconds=self.settings.lease_seconds),
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                try:
                    s.flush()
                except IntegrityError:
                    s.rollback()
                    existing = self._by_idempotency(principal, idempotency_key or "")
                    if existing is None or not first:
                        raise
                    return self._replay(existing, fingerprint)
                for name, asset_id in built.media.items():
                    s.add(
                        Source(
                            generation_id=row.id,
                            field=name,
                            source_id=asset_id,
                            source_kind=entry.media_kind(name),
                        )
                    )
                record_event(s, row.id, EventType.CREATED)
                rows.append(row)
        engine = self.router.engine(routing.engine)
        if engine is None or engine.capabilities.inline:
            self._enqueue(rows)
            return Takes(rows, True)
        return Takes(submit_takes(self.pipeline, rows, kind, built.origin), True)

    def create_upload(
        self,
        principal: Principal,
        kind: str,
        path: Path,
        *,
        title: str,
        client_id: str | None,
        campaign_id: str | None,
        brief_id: str | None,
        collection: str | None,
    ) -> Generation:
        """An asset from a file the user brings (a start image, a melody to follow): probed,
        derived and stored by the same ingest as generated media, and inserted completed in the
        transaction that references its bytes, so a failure leaves nothing behind."""
        with self.db.read() as s:
            client_id, campaign_id, brief_id = self.campaigns.resolve_filing(
                s, principal, client_id=client_id, campaign_id=campaign_id, brief_id=brief_id
            )
        now = utcnow()
        row = Generation(
            kind=kind,
            prompt=title,
            model_id=UPLOAD_ENGINE,
            engine=UPLOAD_ENGINE,
            parameters={},
            provider_status=ProviderStatus.SUCCEEDED,
            collection=collection,
            client_id=client_id,
            campaign_id=campaign_id,
            brief_id=brief_id,
            owner_key=principal.user_id,
            meta={"uploaded": True},
            created_at=now,
        )
        try:
            return self.pipeline.add_completed(row, path)
        except StorageFailure as exc:
            raise Unavailable(str(exc), retry_after=30) from exc
        except IngestError as exc:
            raise invalid("file", f"not usable {kind}: {exc}") from exc

    def _by_idempotency(self, principal: Principal, key: str) -> Generation | None:
        with self.db.read() as s:
            return s.scalar(
                select(Generation).where(
                    Generation.idempotency_scope == idempotency_scope(principal),
                    Generation.idempotency_key == key,
                )
            )

    def _enqueue(self, rows: list[Generation]) -> None:
        """Hand new rows to the queue; if the queue cannot take them, the rows go too (a 503 that
        leaves nothing pending forever)."""
        try:
            for row in rows:
                self.queue.dispatch(Step.SUBMIT, row.id, lane=self.pipeline.ctx.lane_for(row.engine))
        except Exception as exc:
            log.exception("generation %s: the job queue refused it", rows[0].id)
            drop_rows(self.db, [r.id for r in rows])
            raise Unavailable(
                "the job queue cannot take new jobs right now; try again", retry_after=5
            ) from exc

    def _replay(self, existing: Generation, fingerprint: str) -> Takes:
        """The first answer to a repeated request (all its takes); a key reused for another
        request is refused (it must never answer with something the caller did not ask for)."""
        if existing.idempotency_hash is not None and existing.idempotency_hash != fingerprint:
            raise Conflict("Idempotency-Key was already used for a different request; send a new key")
        with self.db.read() as s:
            return Takes(request_takes(s, existing), False)

    def _check_dropped_media(
        self,
        principal: Principal,
        entry: ModelEntry,
        dropped: list[str],
        named: dict[str, Any],
        parameters: dict[str, Any],
    ) -> None:
        for name in dropped:
            value = named[name] if name in named else parameters.get(name)
            media_kind = entry.media_inputs.get(entry.request_map.get(name, name))
            is_id = isinstance(value, int) and not isinstance(value, bool)
            if media_kind is None or not (
                is_id or (isinstance(value, str) and value.isascii() and value.isdigit())
            ):
                continue
            field = name if name in named else f"parameters.{name}"
            with self.db.read() as s:
                self._check_media(s, principal, int(value), media_kind, field)  # type: ignore[arg-type]

    def _check_media(
        self, s: Session, principal: Principal, asset_id: int, kind: str, field: str
    ) -> float | None:
        """The referenced asset is one the caller may use; returns its stored length."""
        row = s.get(Generation, asset_id)
        visible = row is not None and principal.can_see_client(row.client_id)
        if "[" in field or "." in field.removeprefix("parameters."):
            # A recipe's references (a composition's clips and music): a missing or hidden asset
            # is a 404 naming the place, another kind a 422.
            if row is None or not visible:
                raise NotFound(f"{kind} {asset_id} not found", field=field)
            if row.kind != kind:
                raise invalid(field, f"asset {asset_id} is {row.kind}, not {kind}")
        if row is None or row.kind != kind or not visible:
            raise invalid(field, f"{kind} {asset_id} not found")
        if row.status != Status.COMPLETED or row.blob_key is None:
            raise invalid(field, f"{kind} {asset_id} is not completed yet (status {row.status})")
        return row.duration

    # read -------------------------------------------------------------------
    def get(self, principal: Principal, kind: str, gen_id: int) -> Generation:
        with self.db.read() as s:
            row = s.get(Generation, gen_id)
            if row is None or row.kind != kind or not principal.can_see_client(row.client_id):
                raise not_found(kind, gen_id)
            return row

    def lineage(self, principal: Principal, gen_id: int) -> dict[str, list[dict[str, Any]]]:
        """What an asset was made from and what was made from it, as far as the caller may see;
        a deleted source stays listed (its id, `exists: false`): the asset's bytes are its own."""
        with self.db.read() as s:
            made_from = s.execute(
                select(
                    Source.field, Source.source_id, Source.source_kind, Generation.client_id, Generation.id
                )
                .outerjoin(Generation, Generation.id == Source.source_id)
                .where(Source.generation_id == gen_id)
                .order_by(Source.field)
            ).all()
            used_in = s.execute(
                select(Generation.id, Generation.kind, Generation.client_id)
                .join(Source, Source.generation_id == Generation.id)
                .where(Source.source_id == gen_id)
                .order_by(Generation.id)
            ).all()
        return {
            "made_from": [
                {"kind": kind, "id": sid, "field": field, "exists": found is not None}
                for field, sid, kind, client, found in made_from
                if found is None or principal.can_see_client(client)
            ],
            "used_in": [
                {"kind": kind, "id": gid}
                for gid, kind, client in dict.fromkeys(used_in)
                if principal.can_see_client(client)
            ],
        }

    def derivations(self, gen_id: int) -> dict[str, Derivation]:
        with self.db.read() as s:
            rows = s.scalars(select(Derivation).where(Derivation.generation_id == gen_id)).all()
        return {d.name: d for d in rows}

    def derivation_names(self, ids: list[int]) -> dict[int, list[str]]:
        if not ids:
            return {}
        with self.db.read() as s:
            rows = s.execute(
                select(Derivation.generation_id, Derivation.name).where(Derivation.generation_id.in_(ids))
            ).all()
        out: dict[int, list[str]] = {i: [] for i in ids}
        for gid, name in rows:
            out[gid].append(name)
        return out

    def list(
        self,
        principal: Principal,
        kind: str,
        *,
        filters: dict[str, Any],
        limit: int,
        offset: int,
        q: str | None = None,
        sort: str | None = None,
    ) -> tuple[list[AssetRow], int]:
        """A gallery page's rows and total (`page` gives its next cursor too)."""
        found = self.page(principal, kind, filters, limit=limit, offset=offset, q=q, sort=sort)
        return found.rows, found.total

    def page(
        self, principal: Principal, kind: str, filters: dict[str, Any], **page: Unpack[PageQuery]
    ) -> GalleryPage:
        """A gallery page from the indexes alone: newest first (with a search `q`, best match
        first) unless `sort` says otherwise; ties broken by id (`gallery.read_page`)."""
        return read_page(self.db, principal, kind, filters, **page)

    # delete -----------------------------------------------------------------
    def delete(self, principal: Principal, kind: str, gen_id: int) -> None:
        row = self.get(principal, kind, gen_id)
        with self.db.write() as s:
            # Events have no foreign key: this one outlives the row, so streams see it go.
            record_event(s, row.id, EventType.DELETED)
            released = self.assets.purge_where(s, Generation.id == row.id)
        self.assets.free(released)

    # cancel / retry ---------------------------------------------------------
    def cancel(self, principal: Principal, kind: str, gen_id: int) -> Canceled:
        """Mark canceled and stop it at the provider too; what the provider said if that failed
        is saved on the asset (`metadata.cancel_error`), since we stop waiting either way."""
        row = self.get(principal, kind, gen_id)
        if row.status in TERMINAL:
            raise Conflict(f"generation {gen_id} is already {row.status}")
        canceled = self.pipeline.rows.finish(gen_id, Status.CANCELED, error="canceled by user")
        if not canceled:
            raise Conflict(f"generation {gen_id} finished before it could be canceled")
        engine = self.router.engine(row.engine)
        provider_error = None
        if row.provider_ref and engine is not None and engine.capabilities.cancels:
            try:
                engine.cancel(row.provider_ref)
            except Exception as exc:  # a provider error must not undo our cancel
                provider_error = str(exc)
                with self.db.write() as s:
                    fresh = s.get(Generation, gen_id)
                    if fresh is not None:
                        fresh.meta = {**(fresh.meta or {}), "cancel_error": provider_error}
        return Canceled(self.get(principal, kind, gen_id), provider_error)

    def retry(self, principal: Principal, kind: str, gen_id: int, *, same_seed: bool = False) -> Generation:
        """A new take of an asset: the same model, inputs and filing, a new seed (`same_seed`
        reuses the stored one), in the original's take group (one is made if it had none)."""
        row = self.get(principal, kind, gen_id)
        params = dict(row.parameters)
        entry = self.catalog.get(row.model_id)
        # The prompt comes from what was typed (the brand is applied again, as it stands now).
        params.pop(entry.request_map.get("prompt", "prompt") if entry is not None else "prompt", None)
        params.pop("prompt", None)
        seed_name = seed_input(entry) if entry is not None else None
        if seed_name is not None and not same_seed:
            params.pop(seed_name, None)
        elif seed_name is not None and row.seed is not None:
            params[seed_name] = row.seed
        try:
            req = GenerateRequest(
                prompt=row.prompt,
                model=row.model_id,
                client_id=row.client_id,
                campaign_id=row.campaign_id,
                brief_id=row.brief_id,
                collection=row.collection,
                parameters=params,
                brand=not (row.meta or {}).get("brand_off", False),
            )
        except ValidationError as exc:  # stored before today's input limits
            raise Conflict(
                f"{kind} {gen_id} was made with inputs no longer accepted: {exc.errors()[0]['msg']}"
            ) from exc
        return self.create_takes(principal, kind, req, regenerate=row.id).first
