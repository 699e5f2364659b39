"""Fetch a provider's output file to disk without letting the URL attack us.

A model's `output` is data we did not write: a URL in it could point at our own admin port, a
cloud metadata endpoint (169.254.169.254) or a LAN host (SSRF), or at a file large enough to fill
the disk. So every download here:

- accepts only URLs whose scheme, host and port match an allow-list entry
  (`https://replicate.delivery`, `https://*.replicate.delivery`, `http://127.0.0.1:8123`);
- refuses plain http and any non-public address (loopback, private, link-local, CGNAT, …) unless
  an entry names that exact scheme + host (+ port) — wildcards never unlock those;
- resolves the host itself, checks every address, then connects to the checked address (keeping
  the Host header and TLS SNI/certificate check on the name), so a DNS answer that changes between
  check and connect (rebinding) cannot steer the request elsewhere;
- follows at most five redirects by hand, re-checking each hop;
- streams into a temp file beside `dest` with a byte cap, then renames it into place;
- retries 5xx, 429 and network errors with exponential backoff; 404/410 mean the provider has
  deleted the file (Replicate removes outputs after an hour) and are not retried.

`data:` URLs (sync-mode outputs, Cog without an upload URL) are decoded locally under the same cap.
Proxy environment variables are ignored on purpose: a proxy would make the address checks moot.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import httpx

from mediagen.engines.outputs import guess_content_type
from mediagen.errors import MediagenError

__all__ = [
    "DEFAULT_TIMEOUT",
    "DownloadError",
    "DownloadResult",
    "Downloader",
    "Resolver",
    "VettedURL",
    "check_url",
    "download",
]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = {301, 302, 303, 307, 308}

Resolver = Callable[[str, int], list[str]]
"""(host, port) → IP address strings; injectable so tests can simulate hostile DNS answers."""


class DownloadError(MediagenError):
    """A download failed. `retryable`: trying later may work. `expired`: the provider deleted it."""

    def __init__(self, message: str, *, retryable: bool = False, expired: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.expired = expired


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    content_type: str | None
    sha256: str


class Downloader(Protocol):
    """The shape of `download`, for the collaborators that take it (tests pass their own)."""

    def __call__(
        self,
        url: str,
        dest: Path,
        *,
        max_bytes: int,
        allowed: Sequence[str],
        on_retry: Callable[[int, str], None] | None = None,
    ) -> DownloadResult: ...


@dataclass(frozen=True)
class _Entry:
    scheme: str
    host: str  # without the "*." of a wildcard
    port: int
    wildcard: bool


@dataclass(frozen=True)
class VettedURL:
    """A URL that passed the checks, with the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in seen:
            seen.append(addr)
    return seen


def _parse_entries(allowed: Sequence[str]) -> list[_Entry]:
    entries = []
    for raw in allowed:
        text = raw.strip().rstrip("/")
        if not text:
            continue
        if "://" not in text:
            text = "https://" + text  # a bare host means HTTPS, the only safe default
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if scheme not in _DEFAULT_PORTS or not host:
            raise ValueError(f"bad download allow-list entry: {raw!r}")
        wildcard = host.startswith("*.")
        entries.append(
            _Entry(
                scheme=scheme,
                host=host[2:] if wildcard else host,
                port=parts.port or _DEFAULT_PORTS[scheme],
                wildcard=wildcard,
            )
        )
    return entries


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback in disguise
    return ip.is_global and not ip.is_multicast


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def check_url(url: str, allowed: Sequence[str], *, resolve: Resolver | None = None) -> VettedURL:
    """Raise DownloadError unless `url` may be fetched; return where to connect.

    Exposed so callers (e.g. an API that accepts input URLs) can vet a URL without fetching it.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise DownloadError(f"refused {scheme or 'schemeless'} URL: only http(s) can be fetched")
    if parts.username is not None or parts.password is not None:
        raise DownloadError("refused URL with credentials in it")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise DownloadError("refused URL without a host")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise DownloadError("refused URL with an invalid port") from exc

    entries = _parse_entries(allowed)
    exact = any(not e.wildcard and e.scheme == scheme and e.host == host and e.port == port for e in entries)
    wildcard = any(
        e.wildcard and e.scheme == scheme and host.endswith("." + e.host) and e.port == port for e in entries
    )
    if not (exact or wildcard):
        raise DownloadError(f"refused {scheme}://{host}:{port}: not on the download allow-list")
    if scheme == "http" and not exact:
        raise DownloadError(f"refused plain http to {host}: only an exact allow-list entry permits it")

    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = (resolve or _system_resolver)(host, port)
        except OSError as exc:
            raise DownloadError(f"could not resolve {host}: {exc}", retryable=True) from exc
        if not addresses:
            raise DownloadError(f"could not resolve {host}", retryable=True)
    if not exact:
        for address in addresses:
            if not _is_public(address):
                raise DownloadError(
                    f"refused {host}: it resolves to non-public address {address}; "
                    "only an exact allow-list entry permits that"
                )
    return VettedURL(url=url, scheme=scheme, host=host, port=port, address=addresses[0])


def _pinned_request(client: httpx.Client, target: VettedURL, headers: dict[str, str]) -> httpx.Request:
    """A request that connects to the vetted address while speaking to the host by name."""
    parts = urlsplit(target.url)
    address = target.address.split("%", 1)[0]
    netloc_ip = f"[{address}]" if ":" in address else address
    default = _DEFAULT_PORTS[target.scheme] == target.port
    host_header = parts.hostname or target.host
    if ":" in host_header:
        host_header = f"[{host_header}]"
    if not default:
        host_header = f"{host_header}:{target.port}"
    pinned = parts._replace(netloc=f"{netloc_ip}:{target.port}").geturl()
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return client.build_request(
        "GET", pinned, headers={**headers, "Host": host_header}, extensions=extensions
    )


def _tls_verification_failed(exc: BaseException) -> bool:
    """A bad certificate will be just as bad on the next attempt: do not retry it."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _fmt_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB"
    if n >= 1024:
        return f"{n / 1024:g} KB"
    return f"{n} bytes"


def _cap_error(max_bytes: int) -> DownloadError:
    return DownloadError(f"output exceeds {_fmt_size(max_bytes)} cap")


@contextmanager
def _temp_beside(dest: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """A temp file in dest's directory (same filesystem, so the final rename is atomic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh, tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _finish(fh: IO[bytes], tmp: Path, dest: Path) -> None:
    # No fsync: `dest` is a scratch file that a step reads back at once and deletes. The bytes
    # become durable in the blob store, which syncs what it keeps; syncing here too made every
    # ingest wait for the disk twice.
    fh.flush()
    os.replace(tmp, dest)


def _download_data_url(url: str, dest: Path, max_bytes: int) -> DownloadResult:
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise DownloadError("malformed data: URL (no comma)")
    params = [p.strip().lower() for p in header.split(";")]
    is_b64 = "base64" in params[1:]
    content_type = guess_content_type(url)
    digest = hashlib.sha256()
    size = 0
    with _temp_beside(dest) as (fh, tmp):
        if is_b64:
            if "%" in payload:
                payload = unquote_to_bytes(payload).decode("ascii", "replace")
            payload = "".join(payload.split())
            # Reject before decoding anything: the decoded size is known from the length.
            estimate = len(payload) * 3 // 4 - payload[-2:].count("=")
            if estimate > max_bytes:
                raise _cap_error(max_bytes)
            step = _CHUNK * 4  # a multiple of 4 base64 chars decodes independently
            try:
                for start in range(0, len(payload), step):
                    chunk = base64.b64decode(payload[start : start + step], validate=True)
                    size += len(chunk)
                    digest.update(chunk)
                    fh.write(chunk)
            except (binascii.Error, ValueError) as exc:
                raise DownloadError("malformed data: URL (bad base64)") from exc
        else:
            data = unquote_to_bytes(payload)
            if len(data) > max_bytes:
                raise _cap_error(max_bytes)
            size = len(data)
            digest.update(data)
            fh.write(data)
        _finish(fh, tmp, dest)
    return DownloadResult(path=dest, size=size, content_type=content_type, sha256=digest.hexdigest())


class _Retry(Exception):
    """One attempt failed in a way that another attempt may fix."""

    def __init__(self, reason: str, *, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), 60.0))
    except ValueError:
        return None


def _attempt(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    allowed: Sequence[str],
    resolve: Resolver | None,
    headers: dict[str, str],
    deadline_s: float,
) -> DownloadResult:
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        target = check_url(current, allowed, resolve=resolve)
        request = _pinned_request(client, target, headers)
        try:
            response = client.send(request, stream=True)
        except httpx.TransportError as exc:
            if _tls_verification_failed(exc):
                raise DownloadError(f"TLS certificate check failed for {target.host}: {exc}") from exc
            raise _Retry(f"{type(exc).__name__}: {exc}") from exc
        try:
            status = response.status_code
            if status in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise DownloadError(f"redirect {status} without a Location header")
                current = urljoin(current, location)
                continue
            if status in (404, 410):
                raise DownloadError(
                    f"output file is gone ({status}): the provider deletes outputs after an hour",
                    expired=True,
                )
            if status == 429 or status >= 500:
                raise _Retry(f"HTTP {status}", wait=_retry_after(response))
            if status != 200:
                raise DownloadError(f"unexpected HTTP {status} fetching output")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise _cap_error(max_bytes)
            raw_type = response.headers.get("content-type")
            content_type = raw_type.split(";", 1)[0].strip().lower() if raw_type else None
            if not content_type or content_type in ("application/octet-stream", "binary/octet-stream"):
                content_type = guess_content_type(current) or content_type
            return _stream_body(response, dest, max_bytes, content_type, deadline_s)
        finally:
            response.close()
    raise DownloadError(f"more than {MAX_REDIRECTS} redirects")


def _stream_body(
    response: httpx.Response, dest: Path, max_bytes: int, content_type: str | None, deadline_s: float
) -> DownloadResult:
    started = time.monotonic()
    digest = hashlib.sha256()
    size = 0
    with _temp_beside(dest) as (fh, tmp):
        try:
            for chunk in response.iter_bytes(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise _cap_error(max_bytes)
                digest.update(chunk)
                fh.write(chunk)
                # A read timeout bounds each gap, not the whole: a server trickling bytes
                # could otherwise hold a worker forever.
                if time.monotonic() - started > deadline_s:
                    raise _Retry(f"download took longer than {deadline_s:g} s")
        except httpx.TransportError as exc:
            raise _Retry(f"{type(exc).__name__} while reading: {exc}") from exc
        _finish(fh, tmp, dest)
    return DownloadResult(path=dest, size=size, content_type=content_type, sha256=digest.hexdigest())


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """Building a verifying TLS context loads the CA bundle (~10 ms); once per process is enough."""
    return ssl.create_default_context()


def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    allowed: Sequence[str],
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    retries: int = 3,
    backoff: float = 0.5,
    on_retry: Callable[[int, str], None] | None = None,
    resolve: Resolver | None = None,
    verify: ssl.SSLContext | bool = True,
    deadline_s: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DownloadResult:
    """Fetch `url` (http(s) or data:) into `dest`; raise DownloadError on refusal or failure.

    `retries` is the number of further attempts after the first; the wait before retry n is
    `backoff * 2**(n-1)` (or the server's Retry-After, capped at 60 s). `on_retry(n, reason)` is
    called before each retry so the pipeline can record `download_retries`. `dest` only ever
    appears complete: a failed download leaves nothing behind.
    """
    if url[:5].lower() == "data:":
        return _download_data_url(url, dest, max_bytes)
    headers = {"User-Agent": "mediagen", "Accept": "*/*"}
    if verify is True:
        verify = _default_tls()
    with httpx.Client(timeout=timeout, verify=verify, trust_env=False, follow_redirects=False) as client:
        attempt = 0
        while True:
            try:
                return _attempt(
                    client,
                    url,
                    dest,
                    max_bytes=max_bytes,
                    allowed=allowed,
                    resolve=resolve,
                    headers=headers,
                    deadline_s=deadline_s,
                )
            except _Retry as exc:
                if attempt >= retries:
                    raise DownloadError(
                        f"download failed after {attempt + 1} attempt(s): {exc.reason}", retryable=True
                    ) from exc
                attempt += 1
                if on_retry is not None:
                    on_retry(attempt, exc.reason)
                sleep(exc.wait if exc.wait is not None else backoff * 2 ** (attempt - 1))
            except DownloadError as exc:
                if not exc.retryable or attempt >= retries:
                    raise
                attempt += 1
                if on_retry is not None:
                    on_retry(attempt, str(exc))
                sleep(backoff * 2 ** (attempt - 1))
