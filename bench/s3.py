"""S3 downloads: `mediagen serve` on the s3 backend against a plain boto3 stream from the same server.

    .venv/bin/python bench/s3.py [--size-mb 200] [--rounds 3]

Starts moto's standalone S3 server on 127.0.0.1 (`tests/utils/s3.py`, with its CREDENTIALS),
`python -m mediagen.cli serve` with `MEDIAGEN_STORAGE_BACKEND=s3` on a fresh data dir and bucket,
uploads one blob through `PUT /api/blobs`, waits until mediagen has settled, and measures in the
same run, interleaved round by round so machine noise hits both:

* mediagen: `GET /api/blobs/{key}`, the whole blob, read by `http.client` into one reused buffer
  (as bench/stream.py reads it);
* boto3: `get_object` of the same object on the same server, with the client mediagen itself
  builds (`make_s3_client`), its body read in 1 MiB pieces (`iter_chunks`): what a program next
  to the bucket would do without us.

Best of `--rounds` for each, their ratio, and mediagen's RSS growth. Target (issue 14): mediagen
>= 0.5x boto3. Both paths read the same bytes from the same moto process, which on a small
machine is the slowest of the three; the ratio says what mediagen adds on top.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import in_workdir  # noqa: E402
from bench.stream import (  # noqa: E402
    MiB,
    RssSampler,
    Target,
    full_download,
    load_average,
    start_mediagen,
    stop,
    upload,
    wait_settled,
    write_payload,
)
from tests.utils.s3 import CREDENTIALS, s3_server  # noqa: E402

TARGET_RATIO = 0.5
BUCKET = "mediagen-bench"


def boto3_download(client: Any, key: str, size: int, *, verify: str | None = None) -> float:
    """One `get_object` of the whole object, its body read in 1 MiB pieces; MB/s."""
    digest = hashlib.sha256() if verify else None
    started = time.perf_counter()
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
    got = 0
    for piece in body.iter_chunks(MiB):
        got += len(piece)
        if digest is not None:
            digest.update(piece)
    elapsed = time.perf_counter() - started
    body.close()
    if got != size:
        raise RuntimeError(f"boto3: got {got} of {size} bytes")
    if digest is not None and digest.hexdigest() != verify:
        raise RuntimeError("boto3: the object's bytes do not match the upload")
    return size / elapsed / 1e6


def run(args: argparse.Namespace, workdir: Path) -> int:
    from mediagen.storage.s3 import make_s3_client

    size = args.size_mb * MiB
    payload = workdir / "blob.bin"
    print(f"writing a {args.size_mb} MiB payload ...", flush=True)
    sha = write_payload(payload, size)
    os.environ.update(CREDENTIALS)  # for boto3 here and, through the environment, for mediagen

    mediagen = None
    with s3_server() as s3:
        print(f"moto S3 up on {s3.endpoint_url}", flush=True)
        try:
            env = {
                "MEDIAGEN_STORAGE_BACKEND": "s3",
                "MEDIAGEN_S3_BUCKET": BUCKET,
                "MEDIAGEN_S3_ENDPOINT_URL": s3.endpoint_url,
                "MEDIAGEN_S3_REGION": CREDENTIALS["AWS_DEFAULT_REGION"],
            }
            mediagen, port, api_key = start_mediagen(workdir, shlex.split(args.serve_cmd), env)
            print(f"mediagen up on :{port} (pid {mediagen.pid})", flush=True)
            created = upload(port, api_key, payload)
            if created.get("key") != sha or created.get("size") != size:
                raise RuntimeError(f"upload answered {created}, expected key {sha}")
            waited = wait_settled(mediagen.pid)
            print(f"mediagen settled after {waited:.0f} s; load average {load_average()}", flush=True)

            rss = RssSampler(mediagen.pid).start()
            client = make_s3_client(endpoint_url=s3.endpoint_url, region=CREDENTIALS["AWS_DEFAULT_REGION"])
            object_key = f"blobs/{sha}"
            target = Target("mediagen", port, f"/api/blobs/{sha}", {"X-API-Key": api_key})
            buffer = memoryview(bytearray(MiB))
            full_download(target, size, buffer, verify=sha)  # correctness, and warms both paths
            boto3_download(client, object_key, size, verify=sha)
            direct: list[float] = []
            for _ in range(args.rounds):
                target.full_mbps.append(full_download(target, size, buffer))
                direct.append(boto3_download(client, object_key, size))
            growth = rss.finish()
        finally:
            stop(mediagen)

    ratio = max(target.full_mbps) / max(direct)
    ok = "ok" if ratio >= TARGET_RATIO else "MISSED"
    print()
    print(f"load average at the end {load_average()} ({os.cpu_count()} CPUs)")
    print(f"blob: {args.size_mb} MiB on moto's S3 server, {args.rounds} full downloads each")
    print(f"{'':32}{'mediagen':>10}{'boto3':>10}{'ratio':>8}  target")
    print(
        f"{'full download, MB/s (best)':32}{max(target.full_mbps):>10.0f}{max(direct):>10.0f}"
        f"{ratio:>8.2f}  >= {TARGET_RATIO}x  {ok}"
    )
    print(
        f"{'full download, MB/s (all)':32}  mediagen {' '.join(f'{v:.0f}' for v in target.full_mbps)}"
        f"; boto3 {' '.join(f'{v:.0f}' for v in direct)}"
    )
    print(f"{'mediagen RSS growth, MB':32}{growth:>10.1f}")
    return 0 if ratio >= TARGET_RATIO or not args.strict else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=200, help="blob size in MiB (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="full downloads per path (best counts)")
    parser.add_argument(
        "--serve-cmd",
        default=f"{shlex.quote(sys.executable)} -m mediagen.cli serve",
        help="how to start mediagen (default: this interpreter, `-m mediagen.cli serve`)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.size_mb < 1:
        parser.error("--size-mb must be at least 1")
    return in_workdir("mediagen-bench-s3-", args.keep, lambda workdir: run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
