"""The SSRF-guarded downloader against real HTTP(S) servers on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from mediagen.engines.downloads import DownloadError, check_url, download
from tests.fakes.replicate_server import FakeReplicate, Script, default_content

pytestmark = pytest.mark.timeout(60)

MB = 1024 * 1024


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        yield server


@pytest.fixture
def allowed(fake: FakeReplicate) -> list[str]:
    return ["https://replicate.delivery", "https://*.replicate.delivery", fake.delivery_allow_entry]


def finished_prediction(fake: FakeReplicate, model: str = "meta/musicgen") -> str:
    """Run one prediction on the fake and return its output URL."""
    import httpx

    fake.scripts[model] = Script(start_after=0, run_for=0)
    with httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"}) as c:
        version = fake.models[model].versions[0]
        pid = c.post("/predictions", json={"version": version, "input": {"prompt": "x"}}).json()["id"]
        fake.wait_for(lambda: fake.predictions[pid].status == "succeeded")
        output = c.get(f"/predictions/{pid}").json()["output"]
    assert isinstance(output, str)
    return output


def test_downloads_output_file(fake: FakeReplicate, allowed: list[str], tmp_path: Path) -> None:
    url = finished_prediction(fake)
    result = download(url, tmp_path / "out.wav", max_bytes=MB, allowed=allowed)
    data, ctype, _ = default_content("audio")
    assert result.path.read_bytes() == data
    assert result.size == len(data)
    assert result.content_type == ctype
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temp file left behind


def test_host_not_on_allow_list_is_refused_without_a_request(fake: FakeReplicate, tmp_path: Path) -> None:
    before = len(fake.requests)
    with pytest.raises(DownloadError, match="allow-list") as info:
        download(
            f"{fake.root_url}/_test/bytes?size=10",
            tmp_path / "x",
            max_bytes=MB,
            allowed=["https://replicate.delivery"],
        )
    assert not info.value.retryable and not info.value.expired
    assert len(fake.requests) == before


def test_other_port_on_allowed_host_is_refused(fake: FakeReplicate, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="allow-list"):
        download("http://127.0.0.1:1/x", tmp_path / "x", max_bytes=MB, allowed=[fake.delivery_allow_entry])


@pytest.mark.parametrize(
    "url",
    [
        "http://replicate.delivery/x.wav",  # plain http under an https entry
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://10.0.0.7/x",
        "https://[::1]/x",
        "ftp://replicate.delivery/x",
        "file:///etc/passwd",
        "https://user:pw@replicate.delivery/x",
        "https://replicate.delivery.evil.com/x",
        "https://evilreplicate.delivery/x",
    ],
)
def test_refused_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        download(
            url,
            tmp_path / "x",
            max_bytes=MB,
            allowed=["https://replicate.delivery", "https://*.replicate.delivery"],
        )
    assert not info.value.retryable


def test_wildcard_never_admits_plain_http(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="plain http"):
        check_url(
            "http://a.example.test/x", ["http://*.example.test"], resolve=lambda h, p: ["93.184.216.34"]
        )


def test_allowed_name_resolving_to_private_address_is_refused() -> None:
    allowed = ["https://*.replicate.delivery"]
    for address in ("10.1.2.3", "127.0.0.1", "169.254.169.254", "::1", "::ffff:192.168.0.1", "100.64.0.1"):
        with pytest.raises(DownloadError, match="non-public"):
            check_url("https://pbxt.replicate.delivery/a.wav", allowed, resolve=lambda h, p, a=address: [a])
    # one bad answer among good ones is enough to refuse (the connect could pick it)
    with pytest.raises(DownloadError, match="non-public"):
        check_url(
            "https://x.replicate.delivery/a", allowed, resolve=lambda h, p: ["93.184.216.34", "10.0.0.1"]
        )
    ok = check_url("https://x.replicate.delivery/a", allowed, resolve=lambda h, p: ["93.184.216.34"])
    assert ok.address == "93.184.216.34" and ok.host == "x.replicate.delivery" and ok.port == 443


def test_exact_entry_unlocks_loopback_name(tmp_path: Path) -> None:
    vetted = check_url(
        "https://localhost:8443/x", ["https://localhost:8443"], resolve=lambda h, p: ["127.0.0.1"]
    )
    assert vetted.address == "127.0.0.1"


def test_redirect_to_allowed_host_is_followed(
    fake: FakeReplicate, allowed: list[str], tmp_path: Path
) -> None:
    target = finished_prediction(fake)
    url = f"{fake.root_url}/_test/redirect?to={quote(target, safe='')}"
    result = download(url, tmp_path / "a.wav", max_bytes=MB, allowed=allowed)
    assert result.path.read_bytes() == default_content("audio")[0]


def test_redirect_to_disallowed_host_is_refused(
    fake: FakeReplicate, allowed: list[str], tmp_path: Path
) -> None:
    for target in (
        "http://169.254.169.254/latest/meta-data/",
        "https://evil.example.com/x",
        "http://127.0.0.1:1/x",
    ):
        url = f"{fake.root_url}/_test/redirect?to={quote(target, safe='')}&status=307"
        with pytest.raises(DownloadError, match="refused"):
            download(url, tmp_path / "x", max_bytes=MB, allowed=allowed)
    assert not (tmp_path / "x").exists()


def test_redirect_loop_is_bounded(fake: FakeReplicate, allowed: list[str], tmp_path: Path) -> None:
    before = len(fake.requests_to("GET", "/_test/loop/0"))
    with pytest.raises(DownloadError, match="more than 5 redirects"):
        download(f"{fake.root_url}/_test/loop/0", tmp_path / "x", max_bytes=MB, allowed=allowed)
    assert len(fake.requests_to("GET", "/_test/loop/0")) == before + 1  # not retried


@pytest.mark.parametrize("chunked", [False, True])
def test_size_cap_aborts_and_leaves_nothing(
    fake: FakeReplicate, allowed: list[str], tmp_path: Path, chunked: bool
) -> None:
    url = f"{fake.root_url}/_test/bytes?size={3 * MB}&chunked={str(chunked).lower()}"
    with pytest.raises(DownloadError, match="output exceeds 2 MB cap") as info:
        download(url, tmp_path / "big", max_bytes=2 * MB, allowed=allowed)
    assert not info.value.retryable
    assert list(tmp_path.iterdir()) == []


def test_exactly_at_cap_is_fine(fake: FakeReplicate, allowed: list[str], tmp_path: Path) -> None:
    url = f"{fake.root_url}/_test/bytes?size=4096&chunked=true"
    assert download(url, tmp_path / "ok", max_bytes=4096, allowed=allowed).size == 4096


def test_expired_output_is_not_retried(fake: FakeReplicate, allowed: list[str], tmp_path: Path) -> None:
    url = finished_prediction(fake)
    path = url.removeprefix(fake.root_url)
    fake.advance(3601)
    retries: list[tuple[int, str]] = []
    try:
        for status in (404, 410):
            fake.expired_status = status
            with pytest.raises(DownloadError, match=f"gone \\({status}\\)") as info:
                download(
                    url,
                    tmp_path / "x",
                    max_bytes=MB,
                    allowed=allowed,
                    on_retry=lambda n, r: retries.append((n, r)),
                )
            assert info.value.expired and not info.value.retryable
    finally:
        fake.advance(-3601)
        fake.expired_status = 404
    assert retries == []
    assert len(fake.requests_to("GET", path)) == 2


def test_server_errors_are_retried_with_backoff(
    fake: FakeReplicate, allowed: list[str], tmp_path: Path
) -> None:
    url = finished_prediction(fake)
    fake.delivery_failures = 2
    retries: list[tuple[int, str]] = []
    sleeps: list[float] = []
    result = download(
        url,
        tmp_path / "r.wav",
        max_bytes=MB,
        allowed=allowed,
        backoff=0.25,
        on_retry=lambda n, reason: retries.append((n, reason)),
        sleep=sleeps.append,
    )
    assert result.size == len(default_content("audio")[0])
    assert retries == [(1, "HTTP 503"), (2, "HTTP 503")]
    assert sleeps == [0.25, 0.5]


def test_retries_are_bounded(fake: FakeReplicate, allowed: list[str], tmp_path: Path) -> None:
    url = f"{fake.root_url}/_test/status/502"
    with pytest.raises(DownloadError, match="after 3 attempt") as info:
        download(url, tmp_path / "x", max_bytes=MB, allowed=allowed, retries=2, sleep=lambda s: None)
    assert info.value.retryable and not info.value.expired


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError) as info:
        download(
            f"http://127.0.0.1:{port}/x",
            tmp_path / "x",
            max_bytes=MB,
            allowed=[f"http://127.0.0.1:{port}"],
            retries=1,
            sleep=lambda s: None,
        )
    assert info.value.retryable


def test_client_errors_are_final(fake: FakeReplicate, allowed: list[str], tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 403") as info:
        download(f"{fake.root_url}/_test/status/403", tmp_path / "x", max_bytes=MB, allowed=allowed)
    assert not info.value.retryable


def test_data_url_is_decoded(tmp_path: Path) -> None:
    data, ctype, _ = default_content("image")
    url = f"data:{ctype};base64,{base64.b64encode(data).decode()}"
    result = download(url, tmp_path / "img", max_bytes=MB, allowed=[])
    assert result.path.read_bytes() == data
    assert result.content_type == "image/png"
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_large_data_url_decodes_in_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 2000  # 512 000 bytes, several decode chunks
    url = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    assert download(url, tmp_path / "b", max_bytes=MB, allowed=[]).path.read_bytes() == data


def test_data_url_cap_and_garbage(tmp_path: Path) -> None:
    url = "data:audio/wav;base64," + base64.b64encode(b"\0" * 5000).decode()
    with pytest.raises(DownloadError, match="exceeds 4 KB cap"):
        download(url, tmp_path / "x", max_bytes=4096, allowed=[])
    with pytest.raises(DownloadError, match="bad base64"):
        download("data:audio/wav;base64,@@@@", tmp_path / "x", max_bytes=4096, allowed=[])
    with pytest.raises(DownloadError, match="no comma"):
        download("data:audio/wav;base64", tmp_path / "x", max_bytes=4096, allowed=[])
    assert list(tmp_path.iterdir()) == []


def test_plain_data_url(tmp_path: Path) -> None:
    result = download("data:text/plain,hello%20world", tmp_path / "t", max_bytes=100, allowed=[])
    assert result.path.read_bytes() == b"hello world" and result.content_type == "text/plain"


# --- HTTPS with the connection pinned to the vetted address ---------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, list[str]]]:
    """An HTTPS server for `cdn.replicate.test` (self-signed) that records Host headers."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=cdn.replicate.test",
            "-addext", "subjectAltName=DNS:cdn.replicate.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    hosts: list[str] = []
    app = FastAPI()

    @app.get("/out.wav")
    def out(request: Request) -> Response:
        hosts.append(request.headers["host"])
        return Response(default_content("audio")[0], media_type="audio/wav")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", ssl_certfile=str(cert), ssl_keyfile=str(key), lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield port, cert, hosts
    server.should_exit = True
    thread.join(5)


def test_https_connects_to_vetted_address_with_name_for_sni_and_host(
    tls_server: tuple[int, Path, list[str]], tmp_path: Path
) -> None:
    port, cert, hosts = tls_server
    context = ssl.create_default_context(cafile=str(cert))
    resolved: list[str] = []

    def resolve(host: str, p: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    url = f"https://cdn.replicate.test:{port}/out.wav"
    result = download(
        url,
        tmp_path / "o.wav",
        max_bytes=MB,
        allowed=[f"https://cdn.replicate.test:{port}"],
        resolve=resolve,
        verify=context,
    )
    assert result.path.read_bytes() == default_content("audio")[0]
    assert resolved == ["cdn.replicate.test"]  # resolved once, by us
    assert hosts[-1] == f"cdn.replicate.test:{port}"


def test_https_certificate_is_checked_against_the_name(
    tls_server: tuple[int, Path, list[str]], tmp_path: Path
) -> None:
    port, cert, _ = tls_server
    context = ssl.create_default_context(cafile=str(cert))
    # A name the certificate does not cover, pinned to the same server: TLS must fail.
    with pytest.raises(DownloadError, match="certificate") as info:
        download(
            f"https://other.replicate.test:{port}/out.wav",
            tmp_path / "x",
            max_bytes=MB,
            allowed=[f"https://other.replicate.test:{port}"],
            resolve=lambda h, p: ["127.0.0.1"],
            verify=context,
        )
    assert not info.value.retryable
