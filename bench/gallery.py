"""Gallery pages over 1,000,000 generations: live API vs the same SQL run directly.

    .venv/bin/python bench/gallery.py [--rows 1000000] [--requests 300]

Builds a SQLite database through the real migrations (10 clients × 100 campaigns, mixed kinds and
statuses, blobs for a sample), starts `mediagen serve` on it, and times filtered gallery pages
(`GET /api/audio?campaign_id=…` etc.) against the two statements the service runs for such a page
(count + page), executed directly with sqlite3 on the same file. Targets: API p50 ≤ 3× direct and
≤ 10 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import Server, pct  # noqa: E402

KINDS = ("audio", "image", "video")
PATHS = {"audio": "audio", "image": "images", "video": "videos"}
MODELS = {
    "audio": ["synth/music", "meta/musicgen", "riffusion/riffusion"],
    "image": ["synth/image", "black-forest-labs/flux-schnell"],
    "video": ["synth/video", "bytedance/seedance-1-lite"],
}


def build(db_path: Path, rows: int, blob_sample: int) -> None:
    from mediagen.db.migrate import upgrade

    upgrade(f"sqlite:///{db_path}")
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    now = datetime.now(UTC)
    con.executemany(
        "INSERT INTO clients (id, name, created_at, updated_at) VALUES (?,?,?,?)",
        [(f"client-{c}", f"Client {c}", now.isoformat(" "), now.isoformat(" ")) for c in range(10)],
    )
    con.executemany(
        "INSERT INTO campaigns (id, client_id, name, status, created_at, updated_at) VALUES (?,?,?,?,?,?)",
        [
            (
                f"camp-{c}-{k}",
                f"client-{c}",
                f"Campaign {k}",
                "active",
                now.isoformat(" "),
                now.isoformat(" "),
            )
            for c in range(10)
            for k in range(100)
        ],
    )
    rng = random.Random(1)
    sql = (
        "INSERT INTO generations (kind, prompt, model_id, engine, parameters, status, metadata, "
        "collection, client_id, campaign_id, duration, width, height, content_type, blob_key, size_bytes, "
        "download_attempted, download_retries, cost_usd, attempts, created_at, updated_at, completed_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    batch: list[tuple] = []
    start = now - timedelta(days=365)
    blob_key = "ab" * 32
    con.execute(
        "INSERT INTO blobs (key, size, chunk_size, refcount, created_at, touched_at) VALUES (?,?,?,?,?,?)",
        (blob_key, 3, 1048576, blob_sample, now.isoformat(" "), now.isoformat(" ")),
    )
    con.execute("INSERT INTO blob_chunks (blob_key, seq, data) VALUES (?,?,?)", (blob_key, 0, b"abc"))
    params = json.dumps({"prompt": "upbeat electronic", "duration": 10, "seed": 0, "output_format": "mp3"})
    meta = json.dumps({"engine_label": "offline procedural"})
    for i in range(rows):
        kind = KINDS[i % 3]
        c = rng.randrange(10)
        status = "completed" if rng.random() < 0.9 else rng.choice(["failed", "pending", "processing"])
        ts = (start + timedelta(seconds=i * 30)).isoformat(" ")
        batch.append(
            (
                kind,
                f"prompt {i} upbeat electronic with heavy bass",
                rng.choice(MODELS[kind]),
                "synth",
                params,
                status,
                meta,
                f"batch-{i % 50}",
                f"client-{c}",
                f"camp-{c}-{rng.randrange(100)}",
                10.0 if kind != "image" else None,
                None if kind == "audio" else 1280,
                None if kind == "audio" else 720,
                {"audio": "audio/mpeg", "image": "image/png", "video": "video/mp4"}[kind],
                blob_key if i < blob_sample else None,
                3 if i < blob_sample else None,
                0,
                0,
                0.0,
                1,
                ts,
                ts,
                ts if status == "completed" else None,
            )
        )
        if len(batch) >= 50_000:
            con.executemany(sql, batch)
            con.commit()
            batch.clear()
            print(f"  inserted {i + 1:,} rows", flush=True)
    if batch:
        con.executemany(sql, batch)
    con.commit()
    con.execute("ANALYZE")
    con.close()


def direct_page(con: sqlite3.Connection, kind: str, flt: dict[str, str], limit: int) -> None:
    """The service's own two statements, compiled once by SQLAlchemy and run bare with sqlite3."""
    for sql, params in compiled(kind, tuple(sorted(flt.items())), limit):
        con.execute(sql, params).fetchall()


_compiled: dict[tuple, list[tuple[str, tuple]]] = {}


def compiled(kind: str, flt: tuple, limit: int) -> list[tuple[str, tuple]]:
    key = (kind, flt, limit)
    if key not in _compiled:
        from sqlalchemy.dialects import sqlite

        from mediagen.auth.service import Principal
        from mediagen.generations.gallery import gallery_statements

        admin = Principal(user_id="bench", email="bench", role="admin", clients=None)
        out = []
        for stmt in gallery_statements(admin, kind, dict(flt), limit=limit, offset=0):
            c = stmt.compile(dialect=sqlite.dialect())
            out.append((str(c), tuple(c.params[name] for name in c.positiontup)))
        _compiled[key] = out
    return _compiled[key]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--reuse", type=Path, help="a data dir from an earlier run (skips the build)")
    args = ap.parse_args()
    tmp = args.reuse or Path(tempfile.mkdtemp(prefix="mediagen-gallery-"))
    db_path = tmp / "mediagen.db"
    if not args.reuse:
        t0 = time.perf_counter()
        print(f"building {args.rows:,} generations in {db_path} …", flush=True)
        build(db_path, args.rows, blob_sample=1000)
        print(f"built in {time.perf_counter() - t0:.0f} s", flush=True)

    rng = random.Random(7)
    cases: list[tuple[str, dict[str, str]]] = []
    for _ in range(args.requests):
        kind = rng.choice(KINDS)
        c = rng.randrange(10)
        flt = rng.choice(
            [
                {"campaign_id": f"camp-{c}-{rng.randrange(100)}"},
                {"campaign_id": f"camp-{c}-{rng.randrange(100)}", "status": "completed"},
                {"client_id": f"client-{c}"},
                {"model_id": rng.choice(MODELS[kind])},
                {"collection": f"batch-{rng.randrange(50)}"},
            ]
        )
        cases.append((kind, flt))

    con = sqlite3.connect(db_path)
    for kind, flt in cases:  # warm the page cache and the statement cache for both sides
        direct_page(con, kind, flt, args.limit)
    direct: dict[str, list[float]] = {}
    for kind, flt in cases:
        t = time.perf_counter()
        direct_page(con, kind, flt, args.limit)
        direct.setdefault("+".join(sorted(flt)), []).append((time.perf_counter() - t) * 1000)
    con.close()

    api: dict[str, list[float]] = {}
    with Server(tmp, MEDIAGEN_DATABASE_URL=f"sqlite:///{db_path}") as srv:
        from mediagen.auth.service import AuthService
        from mediagen.db.session import Database

        auth = AuthService(Database(f"sqlite:///{db_path}"))
        admin = auth.get_user_by_email("admin@localhost")
        assert admin is not None
        _, key = auth.create_key(user_id=admin.id, name="bench")
        with httpx.Client(base_url=srv.url, headers={"X-API-Key": key}, timeout=30) as c:
            for kind, flt in cases[:20]:
                c.get(f"/api/{PATHS[kind]}", params={**flt, "limit": args.limit})
            for kind, flt in cases:
                t = time.perf_counter()
                r = c.get(f"/api/{PATHS[kind]}", params={**flt, "limit": args.limit})
                api.setdefault("+".join(sorted(flt)), []).append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text

    print(
        f"\n{'filter':28} {'n':>4} {'direct p50':>10} {'api p50':>8} {'ratio':>6} {'direct p99':>10} "
        f"{'api p99':>8}"
    )
    all_d, all_a = [], []
    for name in sorted(api):
        d, a = direct[name], api[name]
        all_d += d
        all_a += a
        print(
            f"{name:28} {len(a):4d} {pct(d, 50):9.2f}ms {pct(a, 50):7.2f}ms {pct(a, 50) / pct(d, 50):5.1f}x "
            f"{pct(d, 99):9.2f}ms {pct(a, 99):7.2f}ms"
        )
    p50d, p50a = pct(all_d, 50), pct(all_a, 50)
    print(
        f"{'ALL':28} {len(all_a):4d} {p50d:9.2f}ms {p50a:7.2f}ms {p50a / p50d:5.1f}x {pct(all_d, 99):9.2f}ms "
        f"{pct(all_a, 99):7.2f}ms"
    )
    print(
        f"\ntarget: api p50 ≤ 3× direct ({'met' if p50a <= 3 * p50d else 'MISSED'}: {p50a / p50d:.2f}×) "
        f"and ≤ 10 ms ({'met' if p50a <= 10 else 'MISSED'}: {p50a:.2f} ms)"
    )


if __name__ == "__main__":
    main()
