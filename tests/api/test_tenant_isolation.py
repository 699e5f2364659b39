"""Tenant isolation: every API route and web page, as principals limited to one client, against the
records, keys, blobs and idempotency keys of another client.

The promise (hardening issue): "every route and web page, with keys, member users, client-limited
admins and sessions, against another client's data and keys and idempotency keys: 0 leaks".

Two tenants, `acme` and `globex`, each with a campaign, a brief, completed uploads of every kind (with
their derivations: waveform, thumbnail, poster), pending generations (one made from an image input)
and API keys. The callers are limited to acme: an admin key narrowed to acme, an admin user limited to
acme (key and web session) and a member user limited to acme (key and web session); and, the other way
round, globex's member key against acme's records.

The route tables below are checked against the app itself (the OpenAPI document plus the routes it
leaves out, such as HEAD; the page routes likewise), so a new route fails `test_every_api_route_is_in_a_table`
or `test_every_page_is_in_a_table` until it is probed here or listed as holding no tenant's records.
Each probe aims one request at a globex id and checks:

- the status (404 for a record, 422 naming the field for a reference in a body or query, 403 on the
  operator routes, which document it);
- that the answer is the same as for the same request about an id that exists nowhere (the "twin"),
  once the two ids are blanked out: no existence oracle, and no globex data in the body;
- that no row was created, changed or deleted anywhere (a census of the tables), and that the record
  aimed at reads back the same to the unrestricted admin.

Everything runs in-process on one app (workers off, so generations stay pending).
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, text

from mediagen.app import create_app
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.engines.synth.video import render_video
from mediagen.generations.gallery import encode_cursor
from mediagen.generations.tables import Derivation, Generation
from mediagen.services import Services
from mediagen.vocabulary import KINDS, MAX_ID, Kind

PASSWORD = "correct horse battery"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SYNTH = {Kind.AUDIO: "synth/music", Kind.IMAGE: "synth/image", Kind.VIDEO: "synth/video"}
# A hosted model with a media input, routed to a Cog server that is never reached: the media check
# runs before the engine is called, so a refused input never leaves the process.
MUSICGEN = "meta/musicgen"
COG_NOWHERE = "http://127.0.0.1:9"
SHARED_IDEMPOTENCY_KEY = "shared-idem-0001"

# Ids that name nothing, for the twin of each probe.
MISSING_CLIENT = "nope-client"
MISSING_CAMPAIGN = "nope-campaign"
MISSING_BRIEF = "nope-brief"
MISSING_ASSET = 2_000_000_001
MISSING_KEY = "ffffffffffffffff"
MISSING_BLOB = "0" * 64

TABLES = (
    "users", "api_keys", "clients", "campaigns", "briefs", "generations", "derivations", "blobs", "sources",
    "exports", "export_items", "shares", "comments", "review_events", "asset_tags", "plans",
)  # fmt: skip


# -- the world ------------------------------------------------------------------------------------


@dataclass
class Caller:
    """One principal: an API key, or a signed-in browser (its own cookie jar and CSRF token)."""

    name: str
    http: TestClient
    key: str | None = None
    csrf: str | None = None

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        sent = dict(headers or {})
        if self.key:
            sent["X-API-Key"] = self.key
        if self.csrf and method.upper() in UNSAFE:
            sent["X-CSRF-Token"] = self.csrf
        return self.http.request(method, url, headers=sent, follow_redirects=False, **kw)

    def get(self, url: str, **kw: Any) -> Any:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.request("POST", url, **kw)


@dataclass
class Tenant:
    client: str
    name: str
    campaign: str
    campaign_name: str
    brief: str
    brief_title: str
    brief_text: str
    collection: str
    word: str  # a word only this tenant's prompts and titles use
    member_email: str
    assets: dict[Kind, dict[str, int]] = field(default_factory=dict)  # kind -> role -> id
    key_ids: list[str] = field(default_factory=list)
    key_prefixes: list[str] = field(default_factory=list)
    blob_keys: list[str] = field(default_factory=list)
    member: Caller | None = None
    export: int = 0  # a channel export of its uploaded video
    take_group: str = ""  # two takes of a pending image (`n`: 2)
    share: int = 0  # a review link to its campaign
    plan: int = 0  # a kit plan drafted from its brief

    def asset_ids(self) -> set[int]:
        return {i for roles in self.assets.values() for i in roles.values()}

    def search_words(self) -> list[str]:
        """Words of its client's and its campaign's names, to search for."""
        return [self.name.split()[0], self.campaign_name.split()[0]]

    def secrets(self) -> list[str]:
        """Strings that only this tenant's records hold (none is one of its ids)."""
        return [
            self.name,
            self.campaign_name,
            self.brief_title,
            self.brief_text,
            self.collection,
            self.word,
            self.member_email,
            *self.key_ids,
            *self.key_prefixes,
            *self.blob_keys,
        ]


@dataclass
class World:
    app: FastAPI
    services: Services
    root: Caller  # an admin key that reaches every client
    root_key_id: str
    acme: Tenant
    globex: Tenant
    callers: dict[str, Caller]  # limited to acme
    media: dict[Kind, bytes]
    before: dict[str, Any] = field(default_factory=dict)  # globex as root saw it before any probe
    twins: dict[tuple[str, ...], Any] = field(default_factory=dict)  # answers about ids of nothing


def wav_bytes(freq: float) -> bytes:
    t = np.arange(11025) / 22050
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * freq * t), 22050, format="WAV")
    return buf.getvalue()


def png_bytes(seed: int) -> bytes:
    pixels = (np.random.default_rng(seed).random((48, 64, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def mp4_bytes(folder: Path, seed: int) -> bytes:
    out = folder / f"clip-{seed}.mp4"
    render_video("ocean", duration=1.0, fps=10, width=64, height=48, seed=seed, out=out)
    return out.read_bytes()


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, "page has no csrf meta tag"
    return m.group(1)


def signed_in(stack: ExitStack, app: FastAPI, name: str, email: str) -> Caller:
    """A browser of its own (cookie jar), signed in through the form."""
    http = stack.enter_context(TestClient(app, base_url="http://testserver"))
    token = csrf_of(http.get("/login").text)
    r = http.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/clients"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return Caller(name, http, csrf=csrf_of(http.get("/clients").text))


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}"
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else r


def populate(w: World, t: Tenant, by: Caller, media: dict[Kind, bytes], *, idempotency: bool) -> None:
    """The tenant's campaign, brief, uploads of every kind, pending generations and a derived video."""
    ok(
        w.root.post(
            "/api/campaigns", json={"id": t.campaign, "client_id": t.client, "name": t.campaign_name}
        ),
        201,
    )
    brief = {"id": t.brief, "campaign_id": t.campaign, "title": t.brief_title, "text": t.brief_text}
    ok(by.post("/api/briefs", json=brief), 201)
    for kind, info in KINDS.items():
        params = {"title": f"{t.word} {info.noun}", "brief_id": t.brief, "collection": t.collection}
        row = ok(by.post(f"/api/{info.path}/upload", params=params, content=media[kind]), 201)
        assert row["client_id"] == t.client and row["status"] == "completed"
        assert row["derivations"] == sorted(info.derivations), row
        t.assets[kind] = {"upload": row["id"]}
    for kind in KINDS:
        body = idem_body(t) if kind == Kind.AUDIO else pending_body(t, kind)
        headers = {"Idempotency-Key": SHARED_IDEMPOTENCY_KEY} if idempotency and kind == Kind.AUDIO else {}
        row = ok(by.post(f"/api/v2/generate/{kind}", json=body, headers=headers), 202)
        t.assets[kind]["pending"] = row["id"]
    derived = {**pending_body(t, Kind.VIDEO), "image_id": t.assets[Kind.IMAGE]["upload"]}
    t.assets[Kind.VIDEO]["derived"] = ok(by.post("/api/v2/generate/video", json=derived), 202)["id"]
    takes = ok(by.post("/api/v2/generate/image", json={**pending_body(t, Kind.IMAGE), "n": 2}), 202)
    t.take_group, t.assets[Kind.IMAGE]["take"] = takes["take_group"], takes["ids"][1]
    export = {"source": {"video_id": t.assets[Kind.VIDEO]["upload"]}, "channels": ["youtube"]}
    made = ok(by.post("/api/v2/export", json=export), 202)
    t.export, t.assets[Kind.VIDEO]["rendition"] = made["export_id"], made["ids"][0]
    with w.services.db.read() as s:
        ids = sorted(t.asset_ids())
        keys = set(s.scalars(select(Generation.blob_key).where(Generation.id.in_(ids))))
        keys |= set(s.scalars(select(Derivation.blob_key).where(Derivation.generation_id.in_(ids))))
    t.blob_keys = sorted(k for k in keys if k)
    link = {"target": {"campaign_id": t.campaign}, "label": f"{t.word} review round"}
    t.share = ok(by.post("/api/shares", json=link), 201)["id"]
    t.plan = ok(by.post(f"/api/briefs/{t.brief}/plan"), 201)["id"]
    # Three files, a waveform, two thumbnails and a poster (a poster and a thumbnail of a clip this
    # small may be the same bytes, stored once).
    assert len(t.blob_keys) >= 6, t.blob_keys


def pending_body(t: Tenant, kind: Kind) -> dict[str, Any]:
    return {"prompt": f"{t.word} pending {kind}", "model": SYNTH[kind], "brief_id": t.brief}


def idem_body(t: Tenant) -> dict[str, Any]:
    return {"prompt": f"{t.word} jingle", "model": SYNTH[Kind.AUDIO], "duration": 1, "brief_id": t.brief}


ACME = Tenant(
    client="acme",
    name="Acme Rockets",
    campaign="acme-spring",
    campaign_name="Spring Launch",
    brief="acme-brief",
    brief_title="Rocket jingle brief",
    brief_text="kumquat rockets for everyone",
    collection="acme-shelf",
    word="kumquat",
    member_email="acme-member@example.com",
)
GLOBEX = Tenant(
    client="globex",
    name="Globex Corporation",
    campaign="globex-harvest",
    campaign_name="Harvest Moon",
    brief="globex-brief",
    brief_title="Operation Blue Harvest",
    brief_text="zanzibar plans, confidential",
    collection="globex-vault",
    word="zanzibar",
    member_email="globex-member@example.com",
)


def build_world(stack: ExitStack, data: Path) -> World:
    settings = Settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'mediagen.db'}",
        queue_url=None,
        secret_key="tenant-isolation",
        generate_rate_limit_per_minute=0,
        cog_routes={MUSICGEN: COG_NOWHERE},
    )
    upgrade(settings.resolved_database_url)
    app = create_app(settings, run_workers=False)
    services: Services = app.state.services
    api = stack.enter_context(TestClient(app, base_url="http://testserver"))
    auth = services.auth
    users = {
        email: auth.create_user(email=email, password=PASSWORD, role=role, clients=clients).id
        for email, role, clients in (
            ("root@example.com", "admin", None),
            ("acme-admin@example.com", "admin", ["acme"]),
            (ACME.member_email, "member", ["acme"]),
            (GLOBEX.member_email, "member", ["globex"]),
        )
    }
    acme, globex = (replace(t, assets={}, key_ids=[], key_prefixes=[], blob_keys=[]) for t in (ACME, GLOBEX))

    def key(email: str, name: str, clients: list[str] | None, tenant: Tenant | None) -> str:
        row, token = auth.create_key(user_id=users[email], name=name, clients=clients)
        if tenant is not None:
            tenant.key_ids.append(row.id)
            tenant.key_prefixes.append(row.prefix)
        return token

    root_row, root_token = auth.create_key(user_id=users["root@example.com"], name="root key")
    root = Caller("root", api, key=root_token)
    ok(root.post("/api/clients", json={"id": acme.client, "name": acme.name}), 201)
    ok(root.post("/api/clients", json={"id": globex.client, "name": globex.name}), 201)
    globex.member = Caller(
        "globex-member-key", api, key=key(globex.member_email, "zanzibar key", None, globex)
    )
    key("root@example.com", "root zanzibar key", ["globex"], globex)
    acme.member = Caller("acme-member-key", api, key=key(acme.member_email, "kumquat key", None, acme))
    admin_key = key("root@example.com", "root acme key", ["acme"], acme)
    admin_user_key = key("acme-admin@example.com", "kumquat admin key", None, acme)
    callers = {
        "acme-admin-key": Caller("acme-admin-key", api, key=admin_key),
        "acme-admin-user-key": Caller("acme-admin-user-key", api, key=admin_user_key),
        "acme-admin-session": signed_in(stack, app, "acme-admin-session", "acme-admin@example.com"),
        "acme-member-key": acme.member,
        "acme-member-session": signed_in(stack, app, "acme-member-session", acme.member_email),
    }
    media = {Kind.AUDIO: wav_bytes(440), Kind.IMAGE: png_bytes(1), Kind.VIDEO: mp4_bytes(data, 1)}
    w = World(app, services, root, root_row.id, acme, globex, callers, media)
    acme_media = {Kind.AUDIO: wav_bytes(220), Kind.IMAGE: png_bytes(2), Kind.VIDEO: mp4_bytes(data, 2)}
    populate(w, acme, acme.member, acme_media, idempotency=False)
    populate(w, globex, globex.member, media, idempotency=True)
    w.before = globex_state(w)
    return w


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ExitStack() as stack:  # leaving the test clients runs the app's shutdown (closes services)
        yield build_world(stack, Path(tmp_path_factory.mktemp("tenants")))


# -- reading state back ---------------------------------------------------------------------------


def read_back(w: World, ref: str) -> Any:
    """What the unrestricted admin reads at `ref`: a URL, or `key:<id>` for one key's row."""
    if ref.startswith("key:"):
        keys = ok(w.root.get("/api/keys"))["keys"]
        return [{k: v for k, v in row.items() if k != "last_used_at"} for row in keys if row["id"] == ref[4:]]
    r = w.root.get(ref)
    if r.headers.get("content-type", "").startswith("application/json"):
        return r.status_code, r.json()
    return r.status_code, hashlib.sha256(r.content).hexdigest()


def census(w: World) -> dict[str, Any]:
    """Every table's row count, blob references, revoked keys and assets by client and status."""
    with w.services.db.read() as s:
        out: dict[str, Any] = {t: s.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}
        out["refs"] = s.execute(text("SELECT COALESCE(SUM(refcount), 0) FROM blobs")).scalar()
        out["revoked"] = s.execute(
            text("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NOT NULL")
        ).scalar()
        out["assets"] = sorted(
            map(
                tuple,
                s.execute(text("SELECT client_id, kind, status, COUNT(*) FROM generations GROUP BY 1, 2, 3")),
            )
        )
    return out


def globex_state(w: World) -> dict[str, Any]:
    g = w.globex
    refs = [
        f"/api/clients/{g.client}",
        f"/api/clients/{g.client}/stats",
        f"/api/campaigns/{g.campaign}",
        f"/api/campaigns/{g.campaign}/stats",
        f"/api/briefs/{g.brief}",
        *(f"key:{k}" for k in [*g.key_ids, w.root_key_id]),
        *(f"/api/blobs/{b}" for b in g.blob_keys),
    ]
    for kind, roles in g.assets.items():
        path = KINDS[kind].path
        for gen_id in roles.values():
            refs.append(f"/api/{path}/{gen_id}")
        upload = roles["upload"]
        refs += [f"/api/{path}/{upload}/{d}" for d in ("data", *KINDS[kind].derivations)]
    refs.append(f"/api/shares?campaign_id={g.campaign}")
    state = {ref: read_back(w, ref) for ref in refs}
    for info in KINDS.values():
        page = ok(w.root.get(f"/api/{info.path}", params={"client_id": g.client, "limit": 100}))
        state[f"list {info.path}"] = sorted(item["id"] for item in page[info.path])
    return state


# -- probes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request aimed at another tenant's `secret` id; its twin swaps in `missing`."""

    method: str
    url: str
    expect: int
    secret: str | int
    missing: str | int
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, Any] | None = None  # a web form (the caller's csrf_token is added)
    content: bytes | None = None
    field: str | None = None  # a 422 must name this field
    reread: str | None = None  # read back as root before and after: must not change

    def twin(self) -> Probe:
        def swap(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: swap(v) for k, v in value.items()}
            if isinstance(value, list):
                return [swap(v) for v in value]
            if type(value) is type(self.secret) and value == self.secret:
                return self.missing
            if isinstance(value, str) and value == str(self.secret):
                return str(self.missing)
            return value

        url = "/".join(
            str(self.missing) if part == str(self.secret) else part for part in self.url.split("/")
        )
        return Probe(
            self.method,
            url,
            self.expect,
            self.missing,
            self.missing,
            swap(self.params),
            swap(self.json),
            swap(self.data),
            self.content,
            self.field,
        )

    def send(self, caller: Caller) -> Any:
        kw: dict[str, Any] = {"params": self.params}
        if self.json is not None:
            kw["json"] = self.json
        if self.content is not None:
            kw["content"] = self.content
        if self.data is not None:
            kw["data"] = {**self.data, "csrf_token": caller.csrf or ""}
        return caller.request(self.method, self.url, **kw)

    def label(self) -> str:
        body = self.json if self.json is not None else (self.data or self.params or "")
        return f"{self.method} {self.url} {json.dumps(body, default=str)[:160]}"


def blank_ids(body: str, *ids: str | int) -> str:
    for ident in ids:
        body = re.sub(rf"(?<![\w.:-]){re.escape(str(ident))}(?![\w:-]|\.\w)", "«id»", body)
    return body


def difference(ours: str, theirs: str, probe: Probe) -> str:
    """The lines where two answers differ once the ids are blanked, for the failure message."""
    a = blank_ids(ours, probe.secret, probe.missing).splitlines()
    b = blank_ids(theirs, probe.secret, probe.missing).splitlines()
    lines = difflib.unified_diff(a, b, "globex id", "missing id", n=1, lineterm="")
    return "\n".join(list(lines)[:40])


def answer_for_nothing(w: World, caller: Caller, twin: Probe) -> Any:
    """The answer to a request about ids that exist nowhere; the same request (the twin of every globex
    asset on one route) is sent once per caller."""
    body = json.dumps([twin.params, twin.json, twin.data], sort_keys=True, default=str)
    content = hashlib.sha256(twin.content or b"").hexdigest()
    key = (caller.name, twin.method, twin.url, body, content)
    if key not in w.twins:
        w.twins[key] = twin.send(caller)
    return w.twins[key]


def check(w: World, caller: Caller, probe: Probe) -> list[str]:
    """Runs one probe and its twin; returns what went wrong (empty: no leak)."""
    problems: list[str] = []
    before = census(w)
    reread = probe.reread if probe.method in UNSAFE else None  # a read changes nothing to read back
    read_before = read_back(w, reread) if reread else None
    r = probe.send(caller)
    twin = answer_for_nothing(w, caller, probe.twin())
    where = f"{caller.name}: {probe.label()}"
    if r.status_code != probe.expect:
        problems.append(f"{where} answered {r.status_code}, not {probe.expect}: {r.text[:300]}")
    if (
        probe.field is not None
        and r.status_code == 422
        and r.headers["content-type"].startswith("application/")
    ):
        fields = [e["field"] for e in r.json().get("errors") or []]
        if probe.field not in fields:
            problems.append(f"{where}: the 422 names {fields}, not {probe.field}")
    if twin.status_code != r.status_code:
        problems.append(f"{where}: {r.status_code} here but {twin.status_code} for an id that exists nowhere")
    elif blank_ids(r.text, probe.secret, probe.missing) != blank_ids(twin.text, probe.secret, probe.missing):
        problems.append(
            f"{where}: the answer differs from a missing id's:\n{difference(r.text, twin.text, probe)}"
        )
    # What the caller sent may come back (an id in a message, a filter in a form); nothing else may.
    answer = blank_ids(r.text, probe.secret, probe.missing).lower()
    leaked = [s for s in w.globex.secrets() if s.lower() in answer]
    if leaked:
        problems.append(f"{where}: the answer holds the other tenant's data {leaked}")
    after = census(w)
    if after != before:
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        problems.append(f"{where}: the database changed: {changed}")
    if reread and read_back(w, reread) != read_before:
        problems.append(f"{where}: {reread} changed")
    return problems


Builder = Callable[[World], list[Probe]]


def _record_probes(
    collection: str, attr: str, missing: str, patch: dict[str, Any]
) -> dict[tuple[str, str], Builder]:
    """GET, PATCH, DELETE (with cascade) and stats of one of globex's clients/campaigns/briefs."""
    one = f"/api/{collection}/{{{collection[:-1]}_id}}"

    def probes(method: str, suffix: str = "", **kw: Any) -> Builder:
        def build(w: World) -> list[Probe]:
            ident = getattr(w.globex, attr)
            url = f"/api/{collection}/{ident}{suffix}"
            return [Probe(method, url, 404, ident, missing, reread=f"/api/{collection}/{ident}", **kw)]

        return build

    table = {
        ("GET", one): probes("GET"),
        ("PATCH", one): probes("PATCH", json=patch),
        ("DELETE", one): probes("DELETE", params={"cascade": "true"} if collection != "briefs" else None),
    }
    if collection != "briefs":
        table[("GET", f"{one}/stats")] = probes("GET", "/stats")
    return table


def _asset_probes(w: World, kind: Kind, method: str, suffix: str, **kw: Any) -> list[Probe]:
    path = KINDS[kind].path
    out = []
    for kind_of, roles in w.globex.assets.items():
        # Every globex asset of this kind; on the item routes every other kind's too (a mismatch is a
        # 404 as well).
        if kind_of != kind and suffix:
            continue
        for gen_id in roles.values():
            reread = f"/api/{KINDS[kind_of].path}/{gen_id}"
            out.append(
                Probe(
                    method, f"/api/{path}/{gen_id}{suffix}", 404, gen_id, MISSING_ASSET, reread=reread, **kw
                )
            )
    return out


def _refused(url: str, secret: str | int, missing: str | int, body: dict[str, Any], field: str) -> Probe:
    """A POST whose `field` names another tenant's record: a 422 naming it, as for a missing one."""
    return Probe("POST", url, 422, secret, missing, json=body, field=field)


def _filing(t: Tenant) -> list[tuple[str, str, str]]:
    """Each filing field, the tenant's record for it, and an id that names nothing."""
    return [
        ("client_id", t.client, MISSING_CLIENT),
        ("campaign_id", t.campaign, MISSING_CAMPAIGN),
        ("brief_id", t.brief, MISSING_BRIEF),
    ]


def _generate_probes(kind: Kind) -> Builder:
    def build(w: World) -> list[Probe]:
        g, a, url = w.globex, w.acme, f"/api/v2/generate/{kind}"
        base: dict[str, Any] = {"prompt": "probe", "model": SYNTH[kind]}
        probes = [
            _refused(url, ident, missing, {**base, name: ident}, name) for name, ident, missing in _filing(g)
        ]
        # Filing that mixes a globex record (refused) with the caller's own.
        mixed = [
            ("client_id", g.client, MISSING_CLIENT, {"campaign_id": a.campaign}),
            ("client_id", g.client, MISSING_CLIENT, {"brief_id": a.brief}),
            ("brief_id", g.brief, MISSING_BRIEF, {"campaign_id": a.campaign}),
            ("campaign_id", g.campaign, MISSING_CAMPAIGN, {"client_id": a.client}),
        ]
        probes += [
            _refused(url, ident, missing, {**base, **own, name: ident}, name)
            for name, ident, missing, own in mixed
        ]
        # Globex's assets as media inputs, however an asset id is spelled (a digit string too).
        inputs: list[tuple[int, dict[str, Any], str]] = []
        if kind == Kind.AUDIO:
            audio, music = g.assets[Kind.AUDIO]["upload"], {"prompt": "probe", "model": MUSICGEN}
            inputs = [
                (audio, {**music, "audio_id": audio}, "audio_id"),
                (audio, {**music, "input_audio": str(audio)}, "input_audio"),
                (audio, {**music, "parameters": {"input_audio": audio}}, "parameters.input_audio"),
            ]
        if kind == Kind.VIDEO:
            image, video = g.assets[Kind.IMAGE]["upload"], g.assets[Kind.VIDEO]["upload"]
            inputs = [
                (image, {**base, "image_id": image}, "image_id"),
                (image, {**base, "image": str(image)}, "image"),
                (image, {**base, "parameters": {"image": image}}, "parameters.image"),
                (video, {**base, "image_id": video}, "image_id"),  # an asset of the wrong kind too
            ]
        probes += [_refused(url, asset, MISSING_ASSET, body, name) for asset, body, name in inputs]
        return probes

    return build


def _upload_probes(kind: Kind) -> Builder:
    def build(w: World) -> list[Probe]:
        url = f"/api/{KINDS[kind].path}/upload"
        return [
            Probe(
                "POST",
                url,
                422,
                ident,
                missing,
                params={"title": "probe", name: ident},
                content=w.media[kind],
                field=name,
            )
            for name, ident, missing in _filing(w.globex)
        ]

    return build


def _kind_table(kind: Kind) -> dict[tuple[str, str], Builder]:
    info = KINDS[kind]
    one = f"/api/{info.path}/{{gen_id}}"
    table: dict[tuple[str, str], Builder] = {
        ("GET", one): lambda w: _asset_probes(w, kind, "GET", ""),
        ("DELETE", one): lambda w: _asset_probes(w, kind, "DELETE", ""),
        ("POST", f"{one}/cancel"): lambda w: _asset_probes(w, kind, "POST", "/cancel"),
        ("POST", f"{one}/retry"): lambda w: _asset_probes(w, kind, "POST", "/retry"),
        ("POST", f"/api/v2/generate/{kind}"): _generate_probes(kind),
        ("POST", f"/api/{info.path}/upload"): _upload_probes(kind),
    }
    media_routes = ["data", *info.derivations, *(["spectrogram"] if kind == Kind.AUDIO else [])]
    for name in media_routes:
        for method in ("GET", "HEAD"):

            def build(w: World, method: str = method, name: str = name) -> list[Probe]:
                probes = _asset_probes(w, kind, method, f"/{name}")
                if name == "data":
                    probes += _asset_probes(w, kind, method, "/data", params={"download": "true"})
                return probes

            table[(method, f"{one}/{name}")] = build
    for method in ("GET", "HEAD"):
        # Any file kept with an asset, by name: the derivations globex's assets have, and an output.
        def files(w: World, method: str = method) -> list[Probe]:
            names = (*info.derivations, "output_1")
            return [p for name in names for p in _asset_probes(w, kind, method, f"/files/{name}")]

        table[(method, f"{one}/files/{{name}}")] = files
    return table


def _key_probes(w: World) -> list[Probe]:
    return [
        Probe("DELETE", f"/api/keys/{k}", 404, k, MISSING_KEY, reread=f"key:{k}")
        for k in [*w.globex.key_ids, w.root_key_id]
    ]


def _new_key_probes(w: World) -> list[Probe]:
    g, a = w.globex.client, w.acme.client
    return [
        _refused("/api/keys", g, MISSING_CLIENT, {"name": "x", "clients": c}, "clients")
        for c in ([g], [a, g])
    ]


def _new_record_probes(collection: str) -> Builder:
    """Creating a record under another tenant's client or campaign (422 naming the field); a limited
    caller cannot create clients at all (403, documented), whichever id it asks for."""

    def build(w: World) -> list[Probe]:
        g, url = w.globex, f"/api/{collection}"
        if collection == "clients":
            return [Probe("POST", url, 403, g.client, MISSING_CLIENT, json={"id": g.client, "name": "x"})]
        name = {"campaigns": "name", "briefs": "title"}[collection]
        probes = [_refused(url, g.client, MISSING_CLIENT, {"client_id": g.client, name: "x"}, "client_id")]
        if collection == "briefs":
            body = {"campaign_id": g.campaign, name: "x"}
            probes.append(_refused(url, g.campaign, MISSING_CAMPAIGN, body, "campaign_id"))
        return probes

    return build


def _blob_probes(method: str) -> Builder:
    """Operator routes: a caller limited to some clients is refused (403, documented there), and the
    refusal is the same for a blob that exists and one that does not."""

    def build(w: World) -> list[Probe]:
        if method == "PUT":
            return [Probe("PUT", "/api/blobs", 403, MISSING_BLOB, MISSING_BLOB, content=w.media[Kind.IMAGE])]
        return [
            Probe(method, f"/api/blobs/{b}", 403, b, MISSING_BLOB, reread=f"/api/blobs/{b}")
            for b in w.globex.blob_keys
        ]

    return build


# Every tenant-scoped API operation, with the probes it gets (list routes are in LISTS).
TARGETED: dict[tuple[str, str], Builder] = {
    **_record_probes("clients", "client", MISSING_CLIENT, {"name": "pwned", "description": "pwned"}),
    **_record_probes("campaigns", "campaign", MISSING_CAMPAIGN, {"name": "pwned", "status": "archived"}),
    **_record_probes("briefs", "brief", MISSING_BRIEF, {"title": "pwned", "text": "pwned"}),
    **{("POST", f"/api/{c}"): _new_record_probes(c) for c in ("clients", "campaigns", "briefs")},
    ("DELETE", "/api/keys/{key_id}"): _key_probes,
    ("POST", "/api/keys"): _new_key_probes,
    ("PUT", "/api/blobs"): _blob_probes("PUT"),
    ("GET", "/api/blobs/{key}"): _blob_probes("GET"),
    ("HEAD", "/api/blobs/{key}"): _blob_probes("HEAD"),
    ("DELETE", "/api/blobs/{key}"): _blob_probes("DELETE"),
    ("POST", "/api/webhooks/cog/{gen_id}"): lambda w: [
        # Token-authenticated, not key-scoped; a wrong token reads the same for any id.
        Probe(
            "POST",
            f"/api/webhooks/cog/{gen_id}",
            401,
            gen_id,
            MISSING_ASSET,
            params={"token": "guess"},
            json={"status": "succeeded"},
        )
        for gen_id in sorted(w.globex.asset_ids())
    ],
    **{op: build for kind in KINDS for op, build in _kind_table(kind).items()},
}


def _compose_probes(w: World) -> list[Probe]:
    """Globex's assets named anywhere in a recipe: a 404 naming the place, as for no asset at all."""
    g, a, url = w.globex, w.acme, "/api/v2/compose"
    own = {"clips": [{"video_id": a.assets[Kind.VIDEO]["upload"]}]}
    probes = [
        Probe(
            "POST",
            url,
            404,
            vid,
            MISSING_ASSET,
            json={"clips": [{"video_id": vid}]},
            field="clips[0].video_id",
        )
        for vid in sorted(g.assets[Kind.VIDEO].values())
    ]
    image, audio = g.assets[Kind.IMAGE]["upload"], g.assets[Kind.AUDIO]["upload"]
    bodies = [
        (image, {"clips": [{"image_id": image}]}, "clips[0].image_id"),
        (audio, {**own, "music": {"audio_id": audio}}, "music.audio_id"),
        (audio, {"music": {"audio_id": audio}, "length": 2}, "music.audio_id"),  # an audio master
    ]
    probes += [Probe("POST", url, 404, i, MISSING_ASSET, json=b, field=f) for i, b, f in bodies]
    probes += [
        _refused(url, ident, missing, {**own, name: ident}, name) for name, ident, missing in _filing(g)
    ]
    return probes


def _export_probes(w: World) -> list[Probe]:
    g, url = w.globex, "/api/v2/export"
    probes = []
    for kind, channel in (("video", "youtube"), ("audio", "podcast")):
        for gen_id in sorted(g.assets[Kind(kind)].values()):
            body = {"source": {f"{kind}_id": gen_id}, "channels": [channel]}
            probes.append(
                Probe("POST", url, 404, gen_id, MISSING_ASSET, json=body, field=f"source.{kind}_id")
            )
    return probes


TARGETED.update(
    {
        ("POST", "/api/v2/compose"): _compose_probes,
        ("POST", "/api/v2/export"): _export_probes,
        ("GET", "/api/exports/{export_id}"): lambda w: [
            Probe("GET", f"/api/exports/{w.globex.export}", 404, w.globex.export, MISSING_ASSET)
        ],
        ("GET", "/api/exports/{export_id}/zip"): lambda w: [
            Probe("GET", f"/api/exports/{w.globex.export}/zip", 404, w.globex.export, MISSING_ASSET)
        ],
    }
)


def _plan_probes(method: str, suffix: str = "", **kw: Any) -> Builder:
    """One of globex's kit plans read, edited, approved, run, retried or zipped: a 404 as for a
    plan that exists nowhere, and the plan reads back unchanged."""

    def build(w: World) -> list[Probe]:
        plan = w.globex.plan
        url = f"/api/plans/{plan}{suffix}"
        return [Probe(method, url, 404, plan, MISSING_ASSET, reread=f"/api/plans/{plan}", **kw)]

    return build


def _brief_plan_probes(method: str, suffix: str) -> Builder:
    def build(w: World) -> list[Probe]:
        brief = w.globex.brief
        return [Probe(method, f"/api/briefs/{brief}{suffix}", 404, brief, MISSING_BRIEF)]

    return build


_IMAGE_PROBES = TARGETED[("POST", "/api/v2/generate/image")]
TARGETED.update(
    {
        ("POST", "/api/briefs/{brief_id}/plan"): _brief_plan_probes("POST", "/plan"),
        ("GET", "/api/briefs/{brief_id}/plans"): _brief_plan_probes("GET", "/plans"),
        ("GET", "/api/plans/{plan_id}"): _plan_probes("GET"),
        ("PATCH", "/api/plans/{plan_id}"): _plan_probes("PATCH", json={"scenes": []}),
        ("POST", "/api/plans/{plan_id}/approve"): _plan_probes("POST", "/approve", json={}),
        ("POST", "/api/plans/{plan_id}/run"): _plan_probes("POST", "/run", json={}),
        ("POST", "/api/plans/{plan_id}/items/{item_id}/retry"): _plan_probes("POST", "/items/d1/retry"),
        ("GET", "/api/plans/{plan_id}/kit.zip"): _plan_probes("GET", "/kit.zip"),
        # The images of a globex brief's scenes: refused naming the brief, as for no brief at all.
        ("POST", "/api/generate-images-from-brief"): lambda w: [
            _refused(
                "/api/generate-images-from-brief",
                w.globex.brief,
                MISSING_BRIEF,
                {"brief_id": w.globex.brief},
                "brief_id",
            )
        ],  # fmt: skip
        ("POST", "/api/v2/generate/image"): lambda w: [
            *_IMAGE_PROBES(w),
            _refused(
                "/api/v2/generate/image",
                w.globex.brief,
                MISSING_BRIEF,
                {"brief_id": w.globex.brief},
                "brief_id",
            ),
        ],  # fmt: skip
    }
)
# A brief of acme moved into a globex campaign: PATCH on a record of its own, a reference to globex.
CROSS_REFERENCES: dict[tuple[str, str], Builder] = {
    ("PATCH", "/api/briefs/{brief_id}"): lambda w: [
        Probe(
            "PATCH",
            f"/api/briefs/{w.acme.brief}",
            422,
            w.globex.campaign,
            MISSING_CAMPAIGN,
            json={"campaign_id": w.globex.campaign},
            field="campaign_id",
            reread=f"/api/briefs/{w.acme.brief}",
        )
    ],
}


def _asset_lists(kind: Kind) -> Callable[[World], list[dict[str, Any]]]:
    def build(w: World) -> list[dict[str, Any]]:
        g = w.globex
        return [
            {},
            {"limit": 100},
            {"client_id": g.client},
            {"campaign_id": g.campaign},
            {"brief_id": g.brief},
            {"collection": g.collection},
            {"q": g.word},
            {"status": "completed"},
            {"status": "pending"},
            {"model_id": "upload"},
            {"model_id": SYNTH[kind]},
            {"client_id": g.client, "status": "completed", "limit": 100},
        ]

    return build


# Every list route, with the queries each acme caller sends (a filter naming globex must find nothing).
LISTS: dict[tuple[str, str], Callable[[World], list[dict[str, Any]]]] = {
    ("GET", "/api/clients"): lambda w: [{}, {"limit": 100}, {"q": w.globex.search_words()[0]}, {"q": "o"}],
    ("GET", "/api/campaigns"): lambda w: [
        {},
        {"client_id": w.globex.client},
        {"q": w.globex.search_words()[1]},
        {"status": "draft"},
        {"client_id": w.globex.client, "status": "draft"},
    ],
    ("GET", "/api/briefs"): lambda w: [
        {},
        {"client_id": w.globex.client},
        {"campaign_id": w.globex.campaign},
        {"limit": 100, "offset": 0},
    ],
    ("GET", "/api/keys"): lambda w: [{}],
    **{("GET", f"/api/{info.path}"): _asset_lists(kind) for kind, info in KINDS.items()},
}


def _share_probes(w: World) -> list[Probe]:
    """A review link to any of globex's assets, its take groups or its campaign: a 404 naming
    `target`, as for one that exists nowhere (what a link's token reaches: tests/studio/test_shares.py)."""
    g, url = w.globex, "/api/shares"
    probes = [
        Probe("POST", url, 404, gen_id, MISSING_ASSET, json={"target": {"kind": str(kind), "id": gen_id}})
        for kind, roles in g.assets.items()
        for gen_id in sorted(roles.values())
    ]
    probes.append(
        Probe("POST", url, 404, g.campaign, MISSING_CAMPAIGN, json={"target": {"campaign_id": g.campaign}})
    )
    probes.append(Probe("POST", url, 404, g.plan, MISSING_ASSET, json={"target": {"plan_id": g.plan}}))
    groups = {
        w.root.get(f"/api/{KINDS[k].path}/{i}").json().get("take_group")
        for k, r in g.assets.items()
        for i in r.values()
    }
    probes += [
        Probe("POST", url, 404, tg, "tg_missing00000", json={"target": {"take_group": tg}})
        for tg in sorted(x for x in groups if x)
    ]
    return probes


TARGETED.update(
    {
        ("POST", "/api/shares"): _share_probes,
        ("DELETE", "/api/shares/{share_id}"): lambda w: [
            Probe(
                "DELETE",
                f"/api/shares/{w.globex.share}",
                404,
                w.globex.share,
                MISSING_ASSET,
                reread=f"/api/shares?campaign_id={w.globex.campaign}",
            )
        ],
    }
)
LISTS[("GET", "/api/shares")] = lambda w: [
    {},
    {"limit": 100},
    {"campaign_id": w.globex.campaign},
    {"kind": "audio", "id": w.globex.assets[Kind.AUDIO]["upload"]},
    {"active": "false"},
]


def _event_probes(w: World) -> list[Probe]:
    """The live stream (bounded by `max_seconds`) replaying every kept event of one of globex's
    assets: nothing, as for an asset that exists nowhere (the unfiltered stream's scope:
    tests/api/test_events.py)."""
    return [
        Probe(
            "GET",
            "/api/events",
            200,
            gen_id,
            MISSING_ASSET,
            params={"since": 0, "ids": str(gen_id), "max_seconds": 0.05},
        )
        for gen_id in sorted(w.globex.asset_ids())
    ]


TARGETED[("GET", "/api/events")] = _event_probes

MISSING_TAKE_GROUP = "tg_0000000000000000"


def _take_probes(method: str) -> Builder:
    """Globex's take group, read or its winner picked or undone: a 404 as for a group of nothing;
    and globex's take named as the winner of the caller's own group: a 422 naming `id`, as for
    an id that exists nowhere."""

    def build(w: World) -> list[Probe]:
        g, a = w.globex, w.acme
        take = g.assets[Kind.IMAGE]["take"]
        suffix = "" if method == "GET" else "/winner"
        body = {"id": take} if method == "POST" else None
        probes = [
            Probe(
                method,
                f"/api/takes/{g.take_group}{suffix}",
                404,
                g.take_group,
                MISSING_TAKE_GROUP,
                json=body,
                reread=f"/api/images/{take}",
            )
        ]
        if method == "POST":
            probes.append(
                Probe(
                    "POST",
                    f"/api/takes/{a.take_group}/winner",
                    422,
                    take,
                    MISSING_ASSET,
                    json={"id": take},
                    field="id",
                    reread=f"/api/takes/{a.take_group}",
                )
            )
        return probes

    return build


def _download_probes(method: str) -> Builder:
    """Globex's assets in a zip, alone or after one of the caller's own: a 404 naming the item, as
    for an asset that exists nowhere."""

    def build(w: World) -> list[Probe]:
        own = {"kind": "audio", "id": w.acme.assets[Kind.AUDIO]["upload"]}
        probes = []
        for kind, roles in w.globex.assets.items():
            for gen_id in sorted(roles.values()):
                item = {"kind": str(kind), "id": gen_id}
                if method == "POST":
                    probes += [
                        Probe("POST", "/api/downloads", 404, gen_id, MISSING_ASSET, json=b, field=f)
                        for b, f in (({"items": [item]}, "items[0]"), ({"items": [own, item]}, "items[1]"))
                    ]
                else:
                    link = f"{kind}:{gen_id}"
                    probes.append(
                        Probe(
                            "GET",
                            "/api/downloads",
                            404,
                            link,
                            f"{kind}:{MISSING_ASSET}",
                            params={"items": link},
                            field="items[0]",
                        )
                    )
        return probes

    return build


TARGETED.update(
    {
        ("GET", "/api/takes/{take_group}"): _take_probes("GET"),
        ("POST", "/api/takes/{take_group}/winner"): _take_probes("POST"),
        ("DELETE", "/api/takes/{take_group}/winner"): _take_probes("DELETE"),
        ("POST", "/api/downloads"): _download_probes("POST"),
        ("GET", "/api/downloads"): _download_probes("GET"),
    }
)

# A comment on each of the other tenant's assets, made by the unrestricted key when first needed.
_THEIR_COMMENTS: dict[int, int] = {}


def _their_comment(w: World, kind: Kind, gen_id: int) -> int:
    if gen_id not in _THEIR_COMMENTS:
        url = f"/api/{KINDS[kind].path}/{gen_id}/comments"
        _THEIR_COMMENTS[gen_id] = ok(w.root.post(url, json={"text": "internal note"}), 201)["id"]
    return _THEIR_COMMENTS[gen_id]


def _review_table(kind: Kind) -> dict[tuple[str, str], Builder]:
    """Editing, the review history and the comments of globex's assets: a 404 as for no asset; and
    one of acme's own assets refiled under globex's client, campaign or brief: a 422 naming it."""
    path = KINDS[kind].path
    one = f"/api/{path}/{{gen_id}}"
    note = {"text": "pwned"}

    def patch(w: World) -> list[Probe]:
        body = {"title": "pwned", "review_status": "approved", "tags": ["pwned"]}
        probes = _asset_probes(w, kind, "PATCH", "", json=body)
        own = w.acme.assets[kind]["upload"]
        again = f"/api/{path}/{own}"
        probes += [
            Probe("PATCH", again, 422, ident, missing, json={name: ident}, field=name, reread=again)
            for name, ident, missing in _filing(w.globex)
        ]
        return probes

    def delete_comment(w: World) -> list[Probe]:
        probes = []
        for gen_id in sorted(w.globex.assets[kind].values()):
            url = f"/api/{path}/{gen_id}/comments/{_their_comment(w, kind, gen_id)}"
            reread = f"/api/{path}/{gen_id}/comments"
            probes.append(Probe("DELETE", url, 404, gen_id, MISSING_ASSET, reread=reread))
        return probes

    return {
        ("PATCH", one): patch,
        ("GET", f"{one}/history"): lambda w: _asset_probes(w, kind, "GET", "/history"),
        ("GET", f"{one}/comments"): lambda w: _asset_probes(w, kind, "GET", "/comments"),
        ("POST", f"{one}/comments"): lambda w: _asset_probes(w, kind, "POST", "/comments", json=note),
        ("DELETE", f"{one}/comments/{{comment_id}}"): delete_comment,
    }


def _bulk_probes(w: World) -> list[Probe]:
    """Globex's assets among the items (alone or after acme's own): a 404 naming the item, and
    nothing changes; acme's assets moved under globex's records: a 422 naming the field."""
    g, url = w.globex, "/api/bulk"
    own = {"kind": "audio", "id": w.acme.assets[Kind.AUDIO]["upload"]}
    probes = []
    for kind, roles in g.assets.items():
        for gen_id in sorted(roles.values()):
            theirs = {"kind": str(kind), "id": gen_id}
            reread = f"/api/{KINDS[kind].path}/{gen_id}"
            bodies = [
                ({"items": [theirs], "action": "approve"}, "items[0]"),
                ({"items": [theirs], "action": "delete"}, "items[0]"),
                ({"items": [theirs], "action": "tag", "tag": "pwned"}, "items[0]"),
                ({"items": [own, theirs], "action": "favorite"}, "items[1]"),
            ]
            probes += [
                Probe("POST", url, 404, gen_id, MISSING_ASSET, json=body, field=field, reread=reread)
                for body, field in bodies
            ]
    mine = f"/api/audio/{own['id']}"
    probes += [
        Probe("POST", url, 422, ident, missing, json={"items": [own], "action": "move", name: ident},
              field=name, reread=mine)
        for name, ident, missing in _filing(g)
    ]  # fmt: skip
    return probes


for _kind in KINDS:
    TARGETED.update(_review_table(_kind))
TARGETED[("POST", "/api/bulk")] = _bulk_probes


def _review_lists(kind: Kind) -> Callable[[World], list[dict[str, Any]]]:
    """The asset lists' review filters, orders and search too."""
    base = _asset_lists(kind)

    def build(w: World) -> list[dict[str, Any]]:
        g = w.globex
        return [
            *base(w),
            {"review_status": "draft"},
            {"favorite": "false", "limit": 100},
            {"rating_min": "1"},
            {"tag": g.word},
            {"sort": "-rating", "limit": 100},
            {"sort": "duration", "limit": 100},
            {"q": g.word, "sort": "created"},
            {"q": g.search_words()[0]},
            {"collection": g.collection.upper()},
            {"cursor": FIRST_CURSOR, "limit": 100},
            {"cursor": FIRST_CURSOR, "client_id": g.client},
        ]

    return build


# A keyset cursor that every row of the newest-first order comes after: a cursor page is scoped too.
FIRST_CURSOR = encode_cursor(
    "-created", SimpleNamespace(created_at=datetime(9999, 1, 1, tzinfo=UTC), id=MAX_ID)
)


LISTS.update({("GET", f"/api/{info.path}"): _review_lists(kind) for kind, info in KINDS.items()})

# Routes that hold no tenant's records, and why.
UNSCOPED: dict[tuple[str, str], str] = {
    ("GET", "/health"): "liveness; no key, no records",
    ("GET", "/api/models"): "the model catalog is the same for every client",
    ("GET", "/api/models/{owner}/{name}"): "the model catalog is the same for every client",
    ("GET", "/api/models/replicate/search"): "Replicate's public models, the same for every client",
    ("GET", "/api/models/replicate/{owner}/{name}"): "a public Replicate model, the same for every client",
    ("POST", "/api/models/replicate"): "the model catalog is the same for every client (admins only)",
    ("DELETE", "/api/models/{owner}/{name}"): "the model catalog is the same for every client (admins only)",
    ("GET", "/api/me"): "the caller's own identity",
    ("POST", "/api/me/password"): "the caller's own password",
    ("POST", "/api/webhooks/replicate"): "signed by the provider; names no record in its path",
}
ACME_CALLERS = (
    "acme-admin-key",
    "acme-admin-user-key",
    "acme-admin-session",
    "acme-member-key",
    "acme-member-session",
)
# The other way round too: globex's member key against acme's records (`seen_by`).
REVERSE = "globex-member-key"
WEB_CALLERS = ("acme-admin-session", "acme-member-session")


def seen_by(world: World, who: str) -> tuple[World, Caller]:
    """The world from `who`'s side: `acme` is the caller's tenant and `globex` the other one."""
    if who == REVERSE:
        assert world.globex.member is not None
        return replace(world, acme=world.globex, globex=world.acme), world.globex.member
    return world, world.callers[who]


def _walk(routes: list[Any], prefix: str = "") -> list[tuple[str, set[str], bool]]:
    """Every endpoint (path, methods, in the OpenAPI document), however FastAPI nests routers."""
    found: list[tuple[str, set[str], bool]] = []
    for r in routes:
        if isinstance(r, APIRoute):
            found.append((prefix + r.path, set(r.methods), r.include_in_schema))
        elif hasattr(r, "original_router"):
            found += _walk(
                r.original_router.routes, prefix + (getattr(r.include_context, "prefix", "") or "")
            )
        elif hasattr(r, "routes") and not hasattr(r, "app"):
            found += _walk(r.routes, prefix + getattr(r, "path", ""))
    return found


def api_operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every API operation: the OpenAPI document's, plus the routes it leaves out (HEAD on media)."""
    ops = {(m.upper(), p) for p, item in app.openapi()["paths"].items() for m in item}
    walked = {(m, p) for p, ms, _ in _walk(app.routes) for m in ms if p.startswith(("/api", "/health"))}
    assert {op for op in ops if op[0] != "HEAD"} <= walked, "the route walk misses documented routes"
    return ops | walked


def web_operations(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (m, p)
        for p, ms, in_schema in _walk(app.routes)
        for m in ms
        if not in_schema and not p.startswith(("/api", "/health", "/docs", "/redoc", "/openapi"))
    }


# -- the API --------------------------------------------------------------------------------------


def test_every_api_route_is_in_a_table(world: World) -> None:
    """A new route fails here until it is probed below or listed as holding no tenant's records."""
    ops = api_operations(world.app)
    assert len(ops) > 50
    tables = set(TARGETED) | set(LISTS) | set(UNSCOPED) | set(CROSS_REFERENCES)
    assert ops - tables == set(), "routes no tenant probe covers"
    assert tables - ops == set(), "table entries for routes that no longer exist"
    assert not set(TARGETED) & set(LISTS) and not set(UNSCOPED) & (set(TARGETED) | set(LISTS))


def test_the_world_is_what_the_probes_assume(world: World) -> None:
    """Positive controls: the globex records exist with their derivations, the musicgen route is live
    (so media-input probes reach the scope check), and every acme caller reaches acme."""
    g = world.globex
    for kind, info in KINDS.items():
        upload = g.assets[kind]["upload"]
        for name in ("data", *info.derivations, *(f"files/{d}" for d in info.derivations)):
            assert world.root.get(f"/api/{info.path}/{upload}/{name}").status_code == 200, name
        assert world.root.get(f"/api/{info.path}/{g.assets[kind]['pending']}").json()["status"] == "pending"
    assert ok(world.root.get(f"/api/models/{MUSICGEN}"))["available"] is True
    for name in ACME_CALLERS:
        caller = world.callers[name]
        assert ok(caller.get("/api/me"))["clients"] == ["acme"], name
        assert ok(caller.get("/api/clients/acme"))["name"] == world.acme.name
        audio = world.acme.assets[Kind.AUDIO]["upload"]
        assert caller.get(f"/api/audio/{audio}/waveform").status_code == 200, name
    assert g.member is not None
    assert ok(g.member.get(f"/api/audio/{g.assets[Kind.AUDIO]['upload']}"))["client_id"] == g.client


@pytest.mark.parametrize("op", sorted({**TARGETED, **CROSS_REFERENCES}), ids=" ".join)
@pytest.mark.parametrize("who", [*ACME_CALLERS, REVERSE])
def test_acme_callers_cannot_reach_globex(world: World, who: str, op: tuple[str, str]) -> None:
    w, caller = seen_by(world, who)
    build = TARGETED.get(op) or CROSS_REFERENCES[op]
    probes = build(w)
    assert probes, op
    problems = [p for probe in probes for p in check(w, caller, probe)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("op", sorted(LISTS), ids=" ".join)
@pytest.mark.parametrize("who", [*ACME_CALLERS, REVERSE])
def test_lists_never_show_globex(world: World, who: str, op: tuple[str, str]) -> None:
    w, caller = seen_by(world, who)
    g, a = w.globex, w.acme
    _, path = op
    key = path.rsplit("/", 1)[1]
    seen_acme: set[Any] = set()
    for params in LISTS[op](w):
        r = caller.get(path, params=params)
        body = ok(r)
        where = f"{who}: GET {path} {params}"
        assert g.client not in r.text.lower(), where
        assert not [s for s in g.secrets() if s.lower() in r.text.lower()], where
        items = body[key]
        ids = {item["id"] for item in items}
        # A review link's id is a number of its own (it may equal some asset's id).
        theirs = {g.share} if key == "shares" else g.asset_ids() | {g.client, g.campaign, g.brief}
        assert not ids & theirs, where
        assert not [item for item in items if item.get("client_id") == g.client], where
        if any(
            v in (g.client, g.campaign, g.brief, g.collection, g.word, *g.search_words())
            for v in params.values()
        ):
            assert body["total"] == 0 and items == [], where
        seen_acme |= ids
    # Not vacuous: the unfiltered lists show acme's records to every acme caller.
    expected: set[Any] = {
        "clients": {a.client},
        "campaigns": {a.campaign},
        "briefs": {a.brief},
        "keys": set(),
    }.get(key, set())
    for kind, info in KINDS.items():
        if key == info.path:
            expected = set(a.assets[kind].values())
    assert expected <= seen_acme, (who, path)
    if key == "keys":
        assert seen_acme, f"{who} sees no key at all"
        assert not seen_acme & {*g.key_ids, w.root_key_id}


def test_an_idempotency_key_that_globex_used_never_replays_globex_asset(world: World) -> None:
    g, a = world.globex, world.acme
    ours = g.assets[Kind.AUDIO]["pending"]
    url = "/api/v2/generate/audio"
    headers = {"Idempotency-Key": SHARED_IDEMPOTENCY_KEY}
    made: list[int] = []
    for name in ACME_CALLERS:
        caller = world.callers[name]
        # globex's very request (same key, same body): not a replay, and refused for its filing.
        r = caller.post(url, json=idem_body(g), headers=headers)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "brief_id", (name, r.text)
        assert str(ours) not in r.text
        # The same key with a body of its own: a new acme asset.
        body = {k: v for k, v in idem_body(g).items() if k != "brief_id"}
        first = ok(caller.post(url, json=body, headers=headers), 202)
        assert first["id"] != ours and first["id"] not in made, name
        assert ok(caller.get(first["url"]))["client_id"] == a.client
        made.append(first["id"])
        # Replays stay in the caller's own scope; another body under it is a 409 naming nothing of globex.
        again = caller.post(url, json=body, headers=headers)
        assert again.status_code == 200 and again.json()["id"] == first["id"], name
        other = caller.post(url, json=idem_body(g), headers=headers)
        assert other.status_code == 409, (name, other.text)
        assert "globex" not in other.text.lower() and str(ours) not in other.text
    # An unrestricted admin key sending globex's exact request makes its own asset too.
    mine = ok(world.root.post(url, json=idem_body(g), headers=headers), 202)
    assert mine["id"] != ours
    ok(world.root.request("DELETE", f"/api/audio/{mine['id']}"), 204)
    # globex's own key still replays its own asset, unchanged.
    assert g.member is not None
    replay = g.member.post(url, json=idem_body(g), headers=headers)
    assert replay.status_code == 200 and replay.json()["id"] == ours
    assert read_back(world, f"/api/audio/{ours}") == world.before[f"/api/audio/{ours}"]
    for gen_id in made:
        ok(world.root.request("DELETE", f"/api/audio/{gen_id}"), 204)


def test_an_acme_copy_of_globex_bytes_shares_nothing_but_the_blob(world: World) -> None:
    """Blobs are content-addressed: acme uploading globex's exact bytes and deleting its copy must
    leave globex's asset and bytes as they were."""
    g = world.globex
    caller = world.callers["acme-member-key"]
    row = ok(
        caller.post("/api/images/upload", params={"title": "same bytes"}, content=world.media[Kind.IMAGE]),
        201,
    )
    assert row["client_id"] == "acme" and "globex" not in json.dumps(row).lower()
    ok(caller.request("DELETE", f"/api/images/{row['id']}"), 204)
    image = g.assets[Kind.IMAGE]["upload"]
    for ref in (f"/api/images/{image}", f"/api/images/{image}/data", f"/api/images/{image}/thumbnail"):
        assert read_back(world, ref) == world.before[ref], ref


def test_an_id_another_tenant_chose_is_refused_without_saying_whose(world: World) -> None:
    """Record ids are global, so creating a campaign or brief under an id globex already uses is a 409:
    that much tells an acme caller the id is taken. It must tell nothing more (whose, what name)."""
    g = world.globex
    for name in ACME_CALLERS:
        caller = world.callers[name]
        before = census(world)
        for url, body in (
            ("/api/campaigns", {"id": g.campaign, "client_id": "acme", "name": "x"}),
            ("/api/briefs", {"id": g.brief, "client_id": "acme", "title": "x"}),
        ):
            r = caller.post(url, json=body)
            assert r.status_code == 409, (name, url, r.text)
            what = url.rsplit("/", 1)[1][:-1]
            message = f"{what} id {body['id']!r} already exists"
            assert r.json() == {"detail": message, "errors": [{"field": "id", "message": message}]}
            assert not [s for s in g.secrets() if s.lower() in r.text.lower()]
        assert census(world) == before


# -- the web pages --------------------------------------------------------------------------------


def _web_asset_pages(suffix: str) -> Builder:
    def build(w: World) -> list[Probe]:
        return [
            Probe("GET", f"/assets/{kind}/{gen_id}{suffix}", 404, gen_id, MISSING_ASSET)
            for kind, roles in w.globex.assets.items()
            for gen_id in roles.values()
        ]

    return build


def _filtered_pages(path: str, *, search: bool) -> Builder:
    """A gallery or the generate page with its filters (or filing pickers) set to globex's records."""

    def build(w: World) -> list[Probe]:
        g = w.globex
        probes = [
            Probe("GET", path, 200, ident, missing, params={name: ident})
            for name, ident, missing in _filing(g)
        ]
        if search:
            every = {"client_id": g.client, "campaign_id": g.campaign, "brief_id": g.brief}
            probes += [
                Probe("GET", path, 200, g.word, "nothingmatches", params={"q": g.word}),
                Probe("GET", path, 200, g.collection, "nope-collection", params={"collection": g.collection}),
                Probe("GET", path, 200, g.client, MISSING_CLIENT, params=every),
            ]
        return probes

    return build


def _record_page(
    method: str, page: str, attr: str, missing: str, reread: str | None = None, **kw: Any
) -> Builder:
    """One page or form about a globex record (a 404 page); `{}` in `page` and `reread` is its id."""

    def build(w: World) -> list[Probe]:
        ident = getattr(w.globex, attr)
        again = reread.format(ident) if reread else None
        return [Probe(method, page.format(ident), 404, ident, missing, reread=again, **kw)]

    return build


def _web_form_starts(w: World) -> list[Probe]:
    """The generate form started from a globex asset ("Edit and rerun", a video from its image,
    its track continued or followed): the not-found page, as for an asset that exists nowhere."""
    g, probes = w.globex, []
    for kind, roles in g.assets.items():
        for gen_id in sorted(roles.values()):
            page = f"/generate/{KINDS[kind].gallery}"
            probes.append(
                Probe(
                    "GET",
                    page,
                    404,
                    f"{kind}:{gen_id}",
                    f"{kind}:{MISSING_ASSET}",
                    params={"from": f"{kind}:{gen_id}"},
                )
            )
            if kind == Kind.IMAGE:
                probes.append(
                    Probe("GET", "/generate/videos", 404, gen_id, MISSING_ASSET, params={"image_id": gen_id})
                )
            if kind == Kind.AUDIO:
                probes += [
                    Probe("GET", page, 404, gen_id, MISSING_ASSET, params={use: gen_id})
                    for use in ("continue", "melody")
                ]
    return probes


def _web_take_groups(w: World) -> list[Probe]:
    """The compare page of a globex take group: the not-found page, as for a group that is none."""
    group = w.globex.take_group
    assert group, "the world has a take group per tenant"
    return [Probe("GET", f"/takes/{group}", 404, group, "tg_missing00000")]


WEB_TARGETED: dict[tuple[str, str], Builder] = {
    ("GET", "/takes/{take_group}"): _web_take_groups,
    # Kit plans: a globex brief's plans, one of its plans and its kit, and every form on them.
    ("GET", "/briefs/{brief_id}/plans"): _record_page("GET", "/briefs/{}/plans", "brief", MISSING_BRIEF),
    ("POST", "/briefs/{brief_id}/plans"): _record_page(
        "POST", "/briefs/{}/plans", "brief", MISSING_BRIEF, data={}
    ),
    ("GET", "/plans/{plan_id}"): _record_page("GET", "/plans/{}", "plan", MISSING_ASSET),
    ("GET", "/plans/{plan_id}/kit"): _record_page("GET", "/plans/{}/kit", "plan", MISSING_ASSET),
    **{
        ("POST", f"/plans/{{plan_id}}{suffix}"): _record_page(
            "POST", f"/plans/{{}}{path}", "plan", MISSING_ASSET, "/api/plans/{}", data=form
        )
        for suffix, path, form in (
            ("", "", {"version": "1", "move": "up:2"}),
            ("/deliverables", "/deliverables", {"role": "clip", "prompt": "pwned"}),
            ("/approve", "/approve", {"version": "1"}),
            ("/run", "/run", {"override_budget": "on"}),
            ("/items/{item_id}/retry", "/items/d1/retry", {}),
        )
    },
    ("GET", "/exports/{export_id}"): _record_page("GET", "/exports/{}", "export", MISSING_ASSET),
    ("GET", "/compose"): lambda w: [
        Probe("GET", "/compose", 404, gen_id, MISSING_ASSET, params={f"{kind}_id": gen_id})
        for kind in ("video", "image", "audio")
        for gen_id in sorted(w.globex.assets[Kind(kind)].values())
    ],
    ("GET", "/clients/{client_id}"): _record_page("GET", "/clients/{}", "client", MISSING_CLIENT),
    # The brand editor and its "remove": a globex client's brand is neither set nor cleared.
    ("POST", "/clients/{client_id}/brand"): _record_page(
        "POST",
        "/clients/{}/brand",
        "client",
        MISSING_CLIENT,
        "/api/clients/{}",
        data={"style_keywords": "pwned"},
    ),
    ("POST", "/clients/{client_id}/brand/clear"): _record_page(
        "POST", "/clients/{}/brand/clear", "client", MISSING_CLIENT, "/api/clients/{}", data={}
    ),
    ("GET", "/briefs/{brief_id}"): _record_page("GET", "/briefs/{}", "brief", MISSING_BRIEF),
    ("POST", "/briefs/{brief_id}"): _record_page(
        "POST", "/briefs/{}", "brief", MISSING_BRIEF, "/api/briefs/{}", data={"title": "pwned"}
    ),
    ("POST", "/clients/{client_id}"): _record_page(
        "POST", "/clients/{}", "client", MISSING_CLIENT, "/api/clients/{}", data={"name": "pwned"}
    ),
    # A limited user cannot create clients (the form says so), whichever id it asks for.
    ("POST", "/clients"): lambda w: [
        Probe(
            "POST",
            "/clients",
            400,
            w.globex.client,
            MISSING_CLIENT,
            data={"id": w.globex.client, "name": "x"},
        )
    ],
    ("GET", "/campaigns/{campaign_id}"): _record_page("GET", "/campaigns/{}", "campaign", MISSING_CAMPAIGN),
    ("POST", "/campaigns/{campaign_id}"): _record_page(
        "POST", "/campaigns/{}", "campaign", MISSING_CAMPAIGN, "/api/campaigns/{}", data={"name": "pwned"}
    ),
    ("POST", "/campaigns/{campaign_id}/briefs"): _record_page(
        "POST", "/campaigns/{}/briefs", "campaign", MISSING_CAMPAIGN, data={"title": "pwned", "text": "x"}
    ),
    ("POST", "/campaigns"): lambda w: [
        Probe(
            "POST",
            "/campaigns",
            422,
            w.globex.client,
            MISSING_CLIENT,
            data={"client_id": w.globex.client, "name": "x", "status": "active"},
            field="client_id",
        )
    ],
    ("GET", "/campaigns"): lambda w: [
        Probe(
            "GET", "/campaigns", 200, w.globex.client, MISSING_CLIENT, params={"client_id": w.globex.client}
        )
    ],
    ("GET", "/assets/{kind}/{gen_id}"): _web_asset_pages(""),
    ("GET", "/assets/{kind}/{gen_id}/card"): _web_asset_pages("/card"),
    ("POST", "/keys/{key_id}/revoke"): lambda w: [
        Probe("POST", f"/keys/{k}/revoke", 404, k, MISSING_KEY, data={}, reread=f"key:{k}")
        for k in [*w.globex.key_ids, w.root_key_id]
    ],
    ("POST", "/keys"): lambda w: [
        Probe(
            "POST",
            "/keys",
            422,
            w.globex.client,
            MISSING_CLIENT,
            data={"name": "x", "clients": w.globex.client},
            field="clients",
        )
    ],
    **{
        ("GET", f"/{info.gallery}"): _filtered_pages(f"/{info.gallery}", search=True)
        for info in KINDS.values()
    },
    ("GET", "/generate/{gallery}"): lambda w: (
        [p for info in KINDS.values() for p in _filtered_pages(f"/generate/{info.gallery}", search=False)(w)]
        + _web_form_starts(w)
    ),
}
# Pages whose URL names no globex record: globex must not show up on them at all.
WEB_LISTS: dict[tuple[str, str], list[str]] = {
    ("GET", "/clients"): ["/clients", "/clients?page=1"],
    ("GET", "/campaigns"): ["/campaigns"],
    ("GET", "/keys"): ["/keys"],
    ("GET", "/generate/{gallery}"): [f"/generate/{info.gallery}" for info in KINDS.values()],
    **{
        ("GET", f"/{info.gallery}"): [f"/{info.gallery}", f"/{info.gallery}?status=completed"]
        for info in KINDS.values()
    },
    ("GET", "/account"): ["/account"],
    ("GET", "/models"): ["/models"],
}
# A review link's page and what it loads: scoped by the token in the path, not by a tenant's
# caller (tests/studio/test_shares.py probes that a token reaches exactly what was shared).
SHARE_PAGES = {
    ("GET", "/s/{token}"),
    ("POST", "/s/{token}/{kind}/{gen_id}/comments"),
    ("POST", "/s/{token}/{kind}/{gen_id}/review"),
    *(
        (method, f"/s/{{token}}/{{kind}}/{{gen_id}}/{name}")
        for name in ("data", "waveform", "thumbnail", "poster")
        for method in ("GET", "HEAD")
    ),
}
WEB_UNSCOPED: dict[tuple[str, str], str] = {
    **dict.fromkeys(SHARE_PAGES, "a review link's page and files: the token scopes them"),
    ("GET", "/"): "a redirect",
    ("GET", "/generate"): "a redirect",
    ("GET", "/login"): "the sign-in form",
    ("POST", "/login"): "signing in",
    ("POST", "/logout"): "signing out",
    ("POST", "/account/password"): "the caller's own password",
    ("POST", "/account/sessions/end-others"): "the caller's own sessions",
    ("GET", "/models/replicate/{owner}/{name}"): "a public Replicate model, the same for every client",
    ("POST", "/models/add"): "the model catalog is the same for every client (admins only)",
    ("POST", "/models/{owner}/{name}/remove"): "the model catalog is the same for every client (admins only)",
}


def test_every_page_is_in_a_table(world: World) -> None:
    ops = web_operations(world.app)
    assert len(ops) > 20
    tables = set(WEB_TARGETED) | set(WEB_LISTS) | set(WEB_UNSCOPED)
    assert ops - tables == set(), "pages no tenant probe covers"
    assert tables - ops == set(), "table entries for pages that no longer exist"


@pytest.mark.parametrize("op", sorted(WEB_TARGETED), ids=" ".join)
@pytest.mark.parametrize("who", WEB_CALLERS)
def test_pages_for_globex_records_are_404_or_show_nothing(
    world: World, who: str, op: tuple[str, str]
) -> None:
    caller = world.callers[who]
    problems = [p for probe in WEB_TARGETED[op](world) for p in check(world, caller, probe)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("op", sorted(WEB_LISTS), ids=" ".join)
@pytest.mark.parametrize("who", WEB_CALLERS)
def test_pages_never_show_globex(world: World, who: str, op: tuple[str, str]) -> None:
    caller = world.callers[who]
    for url in WEB_LISTS[op]:
        r = caller.get(url)
        assert r.status_code == 200, (who, url, r.status_code)
        html = r.text.lower()
        assert "globex" not in html, (who, url)
        assert not [s for s in world.globex.secrets() if s.lower() in html], (who, url)
        for kind, roles in world.globex.assets.items():
            for gen_id in roles.values():
                assert f"/assets/{kind}/{gen_id}" not in html and f"/{KINDS[kind].path}/{gen_id}/" not in html
    if op == ("GET", "/clients"):
        assert world.acme.name.lower() in html  # not vacuous
    if op == ("GET", "/music"):
        assert f"/assets/audio/{world.acme.assets[Kind.AUDIO]['upload']}" in caller.get("/music").text


# -- afterwards -----------------------------------------------------------------------------------


def test_globex_is_unchanged_after_every_probe(world: World) -> None:
    """Runs last: globex's records, stats, keys, blobs and lists read back as before any probe."""
    after = globex_state(world)
    changed = [ref for ref in world.before if after.get(ref) != world.before[ref]]
    assert not changed, changed
    assert world.globex.member is not None  # globex's keys and the unrestricted one still work
    assert world.globex.member.get("/api/me").status_code == 200
    assert world.root.get("/api/me").status_code == 200
