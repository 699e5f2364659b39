"""Replicate's HTTP wire format: prediction objects read into States, error responses read into
the errors the engine raises, and the small URL and header helpers both need."""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx

from mediagen.engines.base import EngineError, InputError, State
from mediagen.engines.outputs import outputs_from_value
from mediagen.vocabulary import ProviderStatus

log = logging.getLogger("mediagen.engines.replicate")

DEFAULT_BASE_URL = "https://api.replicate.com/v1"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
WEBHOOK_EVENTS = ["start", "completed"]  # start → "processing" in the UI; completed → ingest
KNOWN_STATUSES: frozenset[str] = frozenset(ProviderStatus)
# Errors raised before the request left this machine: the server cannot have acted on it.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
SECRET_REFETCH_INTERVAL_S = 300.0


def api_client(
    token: str,
    base_url: str,
    *,
    timeout: httpx.Timeout | None = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An HTTP client for Replicate's API as every caller here speaks to it (the engine, the
    model browser, the planner's language model): the token, our User-Agent, JSON, proxies from
    the environment."""
    return httpx.Client(
        base_url=base_url.rstrip("/") + "/",
        timeout=timeout,
        headers={
            "Authorization": f"Bearer {token}",
            "User-Agent": "mediagen (+replicate-http)",
            "Accept": "application/json",
        },
        transport=transport,
        trust_env=True,
    )


def state_from_prediction(payload: Mapping[str, Any], *, main_key: str | None = None) -> State:
    """Read a prediction object (GET response or webhook body) into a State. Pure; never raises.

    Unknown statuses read as "processing" so the poller keeps asking rather than finalising on
    something it does not understand. Outputs are reported whenever present (sync mode can show
    outputs while still "processing"); the pipeline decides when to ingest.
    """
    raw_status = payload.get("status")
    status = ProviderStatus(raw_status if raw_status in KNOWN_STATUSES else "processing")
    if raw_status not in KNOWN_STATUSES:
        log.warning(
            "unknown Replicate status %r for %s; treating as processing", raw_status, payload.get("id")
        )
    data_removed = bool(payload.get("data_removed"))
    output = None if data_removed else payload.get("output")

    error_value = payload.get("error")
    error: str | None
    if error_value is None or error_value == "":
        error = None
    elif isinstance(error_value, str):
        error = error_value
    else:
        error = json.dumps(error_value)
    if error is None and status == "failed":
        error = "Replicate reported the prediction failed without an error message"
    if error is None and status == "aborted":
        error = "Replicate aborted the prediction: its deadline passed before it started"

    metrics = payload.get("metrics")
    logs = payload.get("logs")
    return State(
        ref=str(payload.get("id") or ""),
        status=status,
        outputs=outputs_from_value(output, main_key=main_key),
        error=error,
        data_removed=data_removed,
        metrics=dict(metrics) if isinstance(metrics, Mapping) else {},
        logs_length=len(logs) if isinstance(logs, str) else 0,
    )


def problem_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:500]}
    return body if isinstance(body, dict) else {"detail": str(body)[:500]}


def field_name(entry: Mapping[str, Any]) -> str | None:
    """`input.output_format` → `output_format`; a `required` error on `input` names the field in
    its description ("prompt is required")."""
    raw = str(entry.get("field") or "")
    if raw.startswith("input."):
        return raw[len("input.") :] or None
    if raw in ("", "input"):
        description = str(entry.get("description") or "")
        word = description.split(" ", 1)[0]
        if entry.get("type") == "required" and word.isidentifier():
            return word
        return None
    return raw


def seconds_header(response: httpx.Response, name: str) -> float | None:
    value = response.headers.get(name)
    if value is None:
        return None
    value = value.strip().lstrip("~").rstrip("s")
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # Retry-After may also be an HTTP date
        when = email.utils.parsedate_to_datetime(response.headers[name])
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def split_model(model_id: str) -> tuple[str, str]:
    owner, sep, name = model_id.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise EngineError(f"not a Replicate model id (owner/name): {model_id!r}")
    return owner, name


def with_marker(url: str, generation_id: int, nonce: str) -> str:
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    query.setdefault("gen", [str(generation_id)])
    query["nonce"] = [nonce]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))


class Transient(Exception):
    """A failed call worth retrying; `wait` is what the server asked for, if anything."""

    def __init__(self, message: str, *, status_code: int | None = None, wait: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.wait = wait


def error_from_response(response: httpx.Response) -> Exception:
    """Map an error response to what the pipeline and the user should see."""
    status = response.status_code
    problem = problem_of(response)
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase).strip()
    if status == 401:
        return EngineError(
            "Replicate rejected the API token (401): check REPLICATE_API_TOKEN", status_code=401
        )
    if status == 402:
        return EngineError(
            "Replicate account has no credit (402): add billing at replicate.com", status_code=402
        )
    if status == 429:
        wait = seconds_header(response, "retry-after")
        if wait is None:
            wait = seconds_header(response, "ratelimit-reset")
        return Transient(f"rate limited (429): {detail}", status_code=429, wait=wait)
    if status >= 500:
        return Transient(
            f"Replicate server error ({status}): {detail}",
            status_code=status,
            wait=seconds_header(response, "retry-after"),
        )
    if status == 422:
        invalid = [e for e in problem.get("invalid_fields") or [] if isinstance(e, Mapping)]
        if invalid:
            first = invalid[0]
            field = field_name(first)
            messages = [str(e.get("description") or e.get("type") or "invalid") for e in invalid]
            return InputError("; ".join(messages), field=field)
        title = str(problem.get("title") or "invalid request")
        return EngineError(f"Replicate rejected the request (422): {title}: {detail}", status_code=422)
    if status == 404:
        return EngineError(f"Replicate: not found (404): {detail}", status_code=404)
    return EngineError(f"Replicate error ({status}): {detail}", status_code=status)
