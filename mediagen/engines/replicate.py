"""Replicate as an Engine: a thin httpx client for its HTTP API (https://replicate.com/docs/reference/http).

Why not the `replicate` SDK: v1 is frozen and v2 is a pre-release with a different API; both
hide the HTTP status codes we map to user-facing messages, and neither guards against the one
failure that costs money: creating the same prediction twice.

Never creating a prediction twice
---------------------------------
`POST /predictions` is not idempotent and Replicate has no idempotency key. A create that times
out (or dies with a 5xx or a dropped connection) may still have created the prediction: retrying
blindly can run — and bill — the model twice. So a create is retried only after proving that the
earlier attempt left nothing behind:

1. Each submit is tagged. With a webhook, the webhook URL carries `gen=<generation id>` and
   `nonce=<uuid4>` as query parameters (Replicate allows query strings and echoes `webhook` back
   on the prediction). Without a webhook nothing can be tagged, so identity is the exact `input`
   plus model/version, created inside our time window and not already claimed by this process.
   That is a heuristic: two generations with identical inputs submitted by different processes
   within the same two minutes, one of them timing out, could share a prediction. Configure a
   webhook URL (MEDIAGEN_PUBLIC_URL) to make the match exact.
2. After an ambiguous failure (read/write timeout, broken connection, 5xx) and before the next
   POST, the engine lists `GET /predictions?created_after=<our first POST − skew>` (a few pages)
   and adopts the earliest prediction that carries our nonce (or, untagged, matches the input).
3. Only when the list shows none is the POST retried. If the listing itself fails, the engine
   does not POST; it waits and lists again, within the same attempt/time budget.
4. Failures that cannot have created anything are retried without a check: 429 (rejected before
   any work; the wait honours `Retry-After`, else `ratelimit-reset`) and connect errors.

Residual risk, documented rather than hidden: if Replicate creates the prediction after our
listing (a request stuck server-side longer than our backoff), a duplicate can still appear. It
carries our `gen` marker, so the webhook route can recognise a prediction for a generation whose
`provider_ref` is a different id and cancel it.

Everything is bounded: connect 5 s / read 30 s per request, `max_attempts` tries and
`retry_budget_s` seconds of waiting per call.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

import httpx

from mediagen.engines.base import (
    BaseEngine,
    Capabilities,
    EngineError,
    InputError,
    Job,
    State,
    Submitted,
    WebhookAuth,
)
from mediagen.engines.replicate_wire import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    NOT_SENT,
    SECRET_REFETCH_INTERVAL_S,
    WEBHOOK_EVENTS,
    Transient,
    api_client,
    error_from_response,
    iso_time,
    split_model,
    state_from_prediction,
    with_marker,
)
from mediagen.engines.webhook_signing import DEFAULT_TOLERANCE_S, WebhookVerificationError, verify
from mediagen.errors import MalformedRequest
from mediagen.vocabulary import ProviderStatus

__all__ = ["ReplicateEngine", "state_from_prediction"]

log = logging.getLogger(__name__)


class ReplicateEngine(BaseEngine):
    """The Engine for Replicate-hosted models. Thread-safe; one per process."""

    name = "replicate"
    capabilities = Capabilities(recovers=True, uploads_files=True, cancels=True, webhooks=WebhookAuth.SIGNED)

    def __init__(
        self,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        webhook_url: str | None = None,
        version_for: Callable[[str], str | None] = lambda _model: None,
        is_official: Callable[[str], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        webhook_secret: str | None = None,
        main_key_for: Callable[[str], str | None] | None = None,
        cancel_after: str | None = None,
        max_attempts: int = 5,
        retry_budget_s: float = 60.0,
        recovery_window_s: float = 120.0,
        recovery_pages: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """
        `webhook_url`: default callback URL; a Job's own `webhook_url` wins. No URL → polling only.
        `version_for(model_id)`: pinned version id (bare 64-hex or `owner/name:hex`) or None.
        `is_official(model_id)`: use `/models/{o}/{n}/predictions`; default: "no pinned version".
        A non-official model without a pinned version runs its `latest_version` (looked up once).
        `main_key_for(model_id)`: which key of an object output is the asset (riffusion: "audio").
        `cancel_after`: optional `Cancel-After` deadline for every prediction (e.g. "30m").
        `recovery_window_s`: how far before our first POST the duplicate check looks (clock skew).
        """
        if timeout.connect is None or timeout.read is None:
            raise ValueError("Replicate timeouts must be bounded (connect and read)")
        self._base_url = base_url.rstrip("/")
        self._webhook_url = webhook_url
        self._version_for = version_for
        self._is_official = is_official or (lambda model: version_for(model) is None)
        self._sleep = sleep
        self._configured_secret = webhook_secret
        self._main_key_for = main_key_for or (lambda _model: None)
        self._cancel_after = cancel_after
        self._max_attempts = max(1, max_attempts)
        self._retry_budget_s = retry_budget_s
        self._recovery_window_s = recovery_window_s
        self._recovery_pages = recovery_pages
        self._client = api_client(token, self._base_url, timeout=timeout, transport=transport)
        self._lock = threading.Lock()
        self._claimed: deque[str] = deque(maxlen=10_000)  # prediction ids already handed out
        self._secret: str | None = None
        self._secret_fetched_at = 0.0
        self._latest_versions: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    # -- Engine protocol ---------------------------------------------------------------------

    def submit(self, job: Job) -> Submitted:
        """Create the prediction; return its id. Already-terminal creates (sync mode) are still
        `Submitted`: the pipeline applies the state through `refresh`/`state_from_prediction`."""
        owner, name = split_model(job.model_id)
        body: dict[str, Any] = {"input": job.inputs}
        version: str | None = None
        if self._is_official(job.model_id):
            path = f"models/{owner}/{name}/predictions"
        else:
            version = self._resolve_version(job.model_id, owner, name)
            path = "predictions"
            body["version"] = version
        nonce = uuid.uuid4().hex
        webhook = job.webhook_url or self._webhook_url
        if webhook:
            body["webhook"] = with_marker(webhook, job.generation_id, nonce)
            body["webhook_events_filter"] = list(WEBHOOK_EVENTS)
        headers = {"Cancel-After": self._cancel_after} if self._cancel_after else {}

        prediction = self._create(path, body, headers, model_id=job.model_id, version=version, nonce=nonce)
        ref = str(prediction.get("id") or "")
        if not ref:
            raise EngineError("Replicate answered the create without a prediction id", retryable=True)
        with self._lock:
            self._claimed.append(ref)
        return Submitted(
            ref=ref,
            provider_status=str(prediction.get("status") or "starting"),
            provider_input=dict(job.inputs),
        )

    def refresh(self, ref: str) -> State:
        """Poll one prediction (the path that covers lost webhooks)."""
        payload = self._json("GET", f"predictions/{ref}")
        return state_from_prediction(payload, main_key=self._main_key_for(str(payload.get("model") or "")))

    def cancel(self, ref: str) -> None:
        """Ask Replicate to stop a prediction; cancelling a finished one is harmless."""
        self._json("POST", f"predictions/{ref}/cancel")

    # -- webhooks ----------------------------------------------------------------------------

    def fetch_webhook_secret(self, *, refresh: bool = False) -> str:
        """The account's signing secret (`whsec_…`), fetched once and cached."""
        with self._lock:
            if self._secret is not None and not refresh:
                return self._secret
        key = self._json("GET", "webhooks/default/secret").get("key")
        if not isinstance(key, str) or not key:
            raise EngineError("Replicate returned no webhook signing secret", retryable=True)
        with self._lock:
            self._secret = key
            self._secret_fetched_at = time.monotonic()
        return key

    def read_webhook(
        self, headers: Mapping[str, str], body: bytes, *, tolerance_s: int = DEFAULT_TOLERANCE_S
    ) -> State:
        """Check a webhook's signature and read its body into a State.

        Uses the configured secret, else the fetched one. A fetched secret may have been rotated,
        so one failure triggers a refetch — at most every five minutes, so forged requests cannot
        turn into a flood of API calls. Raises WebhookVerificationError for a bad signature and
        MalformedRequest for a genuine delivery that is not a prediction.
        """
        if self._configured_secret:
            verify(self._configured_secret, headers, body, tolerance_s=tolerance_s)
        else:
            try:
                verify(self.fetch_webhook_secret(), headers, body, tolerance_s=tolerance_s)
            except WebhookVerificationError as exc:
                if exc.reason != "signature mismatch":
                    raise
                with self._lock:
                    stale = time.monotonic() - self._secret_fetched_at > SECRET_REFETCH_INTERVAL_S
                if not stale:
                    raise
                verify(self.fetch_webhook_secret(refresh=True), headers, body, tolerance_s=tolerance_s)
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise TypeError("not a JSON object")
            return state_from_prediction(
                payload, main_key=self._main_key_for(str(payload.get("model") or ""))
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedRequest(f"webhook body is not a prediction: {exc}") from exc

    # -- files and models --------------------------------------------------------------------

    def upload_file(self, path: Path, content_type: str, *, max_bytes: int | None = None) -> str:
        """Upload a local file (e.g. a melody for musicgen's `input_audio`); return its URL.

        Replicate suggests data: URLs only up to 256 KB; anything larger goes through /files.
        A duplicate upload is harmless (files expire), so this retries like a GET.
        """
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InputError(f"file is {size} bytes; the limit is {max_bytes}", field=None)

        def files() -> dict[str, tuple[str, BinaryIO, str]]:
            return {"content": (path.name, path.open("rb"), content_type)}

        payload = self._json("POST", "files", files_factory=files)
        url = (payload.get("urls") or {}).get("get")
        if not isinstance(url, str):
            raise EngineError("Replicate's file upload answer had no urls.get", retryable=True)
        return url

    def get_model(self, owner: str, name: str) -> dict[str, Any]:
        """The model object incl. `latest_version.openapi_schema` (for `mediagen models sync`)."""
        return self._json("GET", f"models/{owner}/{name}")

    def get_version(self, owner: str, name: str, version_id: str) -> dict[str, Any]:
        """One version: `{id, created_at, cog_version, openapi_schema}`."""
        return self._json("GET", f"models/{owner}/{name}/versions/{version_id}")

    def find_existing(self, job: Job, *, since: datetime) -> Submitted | None:
        """The earliest prediction created since `since` whose webhook carries `gen=<job id>`.

        For the pipeline's crash recovery: a worker that died between POST and saving the id can,
        on its second run, adopt the prediction instead of paying for another. Needs webhooks
        (the only place a tag fits); returns None without one.
        """
        webhook = job.webhook_url or self._webhook_url
        if not webhook:
            return None
        base = urlsplit(webhook)

        def ours(item: Mapping[str, Any]) -> bool:
            hook = item.get("webhook")
            if not isinstance(hook, str):
                return False
            parts = urlsplit(hook)
            same_endpoint = (parts.scheme, parts.netloc, parts.path) == (base.scheme, base.netloc, base.path)
            return same_endpoint and parse_qs(parts.query).get("gen") == [str(job.generation_id)]

        try:
            found = self._scan_recent(since, ours)
        except Transient as exc:
            raise EngineError(f"could not list Replicate predictions: {exc}", retryable=True) from exc
        if not found or not found.get("id"):
            return None
        return Submitted(
            ref=str(found["id"]),
            provider_status=str(found.get("status") or ProviderStatus.STARTING),
            provider_input=dict(job.inputs),
        )

    # -- internals: creating -----------------------------------------------------------------

    def _resolve_version(self, model_id: str, owner: str, name: str) -> str:
        pinned = self._version_for(model_id)
        if pinned:
            return pinned.rsplit(":", 1)[-1]
        with self._lock:
            cached = self._latest_versions.get(model_id)
        if cached:
            return cached
        latest = (self.get_model(owner, name).get("latest_version") or {}).get("id")
        if not isinstance(latest, str) or not latest:
            raise EngineError(
                f"{model_id} is not an official model and has no version: pin one in the catalog",
            )
        log.info("no pinned version for %s; using latest_version %s", model_id, latest)
        with self._lock:
            self._latest_versions[model_id] = latest
        return latest

    def _create(
        self,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str],
        *,
        model_id: str,
        version: str | None,
        nonce: str,
    ) -> dict[str, Any]:
        window_start = datetime.now(UTC) - timedelta(seconds=self._recovery_window_s)
        tagged = "webhook" in body
        with self._lock:
            claimed = set(self._claimed)

        def ours(item: Mapping[str, Any]) -> bool:
            if item.get("id") in claimed:
                return False
            if tagged and "webhook" in item:
                hook = item["webhook"]
                return isinstance(hook, str) and parse_qs(urlsplit(hook).query).get("nonce") == [nonce]
            # Untagged (or the listing omits `webhook`): the exact same input for the same model.
            if item.get("model") not in (None, model_id):
                return False
            if version is not None and item.get("version") not in (None, version, "hidden"):
                return False
            return bool(item.get("input") == body["input"])

        waited = 0.0
        posts = 0
        uncertain = False  # an earlier POST may have created the prediction
        last: Transient | None = None
        while True:
            if uncertain:
                try:
                    found = self._scan_recent(window_start, ours)
                except Transient as exc:
                    last = exc  # cannot tell: do not POST blind; wait and look again
                else:
                    if found is not None:
                        log.warning("adopted prediction %s created by an attempt that timed out", found["id"])
                        return found
                    uncertain = False
            if not uncertain:
                if posts >= self._max_attempts:
                    break
                posts += 1
                try:
                    return self._post_create(path, body, headers)
                except Transient as exc:
                    last = exc
                    uncertain = exc.status_code != 429 and not isinstance(exc.__cause__, NOT_SENT)
                    if posts >= self._max_attempts:
                        break
            wait = last.wait if last is not None and last.wait is not None else self._backoff(posts)
            if waited + wait > self._retry_budget_s:
                break
            log.info("Replicate create: %s; retrying in %.1f s", last, wait)
            self._sleep(wait)
            waited += wait
        if uncertain:
            # Last look, so an attempt that landed after all is adopted rather than orphaned.
            try:
                found = self._scan_recent(window_start, ours)
            except Transient:
                found = None
            if found is not None:
                return found
        assert last is not None
        raise EngineError(
            f"Replicate create failed after {posts} attempt(s): {last}",
            retryable=True,
            status_code=last.status_code,
        )

    def _post_create(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._client.post(path, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise Transient(f"{type(exc).__name__} on create") from exc
        if response.status_code in (200, 201, 202):
            try:
                created = response.json()
            except ValueError:
                created = None
            if isinstance(created, dict) and created.get("id"):
                return created
            # Created, but we cannot read which: the same uncertainty as a timeout.
            raise Transient(f"unreadable create response ({response.status_code})")
        raise error_from_response(response)

    def _scan_recent(
        self, since: datetime, match: Callable[[Mapping[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """Earliest prediction created after `since` that `match`es, over a few list pages.

        Raises Transient when the listing fails: the caller must then treat the outcome as unknown.
        """
        found: list[dict[str, Any]] = []
        for page in self._list_pages({"created_after": iso_time(since)}):
            found.extend(item for item in page if isinstance(item, dict) and match(item))
        if not found:
            return None
        return min(found, key=lambda item: str(item.get("created_at") or ""))

    def _list_pages(self, params: dict[str, str]) -> Iterator[list[Any]]:
        url: str | None = "predictions"
        origin = urlsplit(self._base_url)[:2]
        for _ in range(self._recovery_pages):
            if url is None:
                return
            data = self._once("GET", url, params=params)  # the caller decides about retrying
            yield list(data.get("results") or [])
            nxt = data.get("next")
            params = {}  # the next URL carries its own cursor and filters
            # Never send the token to another origin, whatever the API says.
            url = nxt if isinstance(nxt, str) and urlsplit(nxt)[:2] == origin else None

    # -- internals: HTTP ---------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return float(min(8.0, 0.5 * 2 ** max(0, attempt - 1)) * random.uniform(0.9, 1.1))

    def _json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        files_factory: Callable[[], dict[str, tuple[str, BinaryIO, str]]] | None = None,
    ) -> dict[str, Any]:
        """An idempotent call (GET, cancel, upload): retried on 429, 5xx and network errors."""
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(method, url, params=params, files_factory=files_factory)
            except Transient as exc:
                wait = exc.wait if exc.wait is not None else self._backoff(attempt)
                if attempt >= self._max_attempts or waited + wait > self._retry_budget_s:
                    raise EngineError(
                        f"Replicate {method} {urlsplit(url).path} failed after {attempt} attempt(s): {exc}",
                        retryable=True,
                        status_code=exc.status_code,
                    ) from exc
                self._sleep(wait)
                waited += wait

    def _once(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        files_factory: Callable[[], dict[str, tuple[str, BinaryIO, str]]] | None = None,
    ) -> dict[str, Any]:
        """One request; raises Transient for what a retry may fix, EngineError otherwise."""
        files = files_factory() if files_factory else None
        try:
            response = self._client.request(method, url, params=params, files=files)
        except httpx.TransportError as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
        finally:
            for _name, handle, _type in (files or {}).values():
                handle.close()
        if response.is_success:
            if not response.content:
                return {}
            try:
                data = response.json()
            except ValueError as exc:
                raise Transient(f"unreadable JSON from {method} {urlsplit(url).path}") from exc
            return data if isinstance(data, dict) else {"value": data}
        raise error_from_response(response)
