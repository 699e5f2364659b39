"""A self-hosted Cog model container as an engine (Cog's HTTP API: `PUT /predictions/{id}` with webhooks).

Cog's local HTTP API is a subset of Replicate's: there is no GET for a prediction, so the outcome
arrives only by webhook. The engine therefore does three things:

- `submit` creates the prediction asynchronously with an idempotent `PUT /predictions/{id}`, asking
  Cog to call the pipeline's webhook on "start" and "completed". The id is derived from the
  generation id and attempt number (`prediction_id`), so a submit task that runs twice (a worker
  died after the PUT but before the row recorded the ref) re-attaches to the prediction in flight
  instead of starting a second one: Cog answers a PUT of an id it is running with 202 and the
  current state. Cog forgets a prediction once it finishes, so a repeat after completion would run
  again; the pipeline's compare-and-set on status is what stops that.
- `refresh` can only check that the server is alive (see its docstring). A lost webhook is covered
  by the pipeline's lease: when no terminal webhook arrives before the lease ends, the job is
  retried under a new attempt number and eventually failed when the retry budget is spent.
- `state_from_cog_payload` turns a webhook body into a `State` for the webhook route.

Cog does not sign webhooks; the pipeline puts an unguessable per-generation token in the webhook
URL instead. Outputs come back as base64 `data:` URLs unless the container runs with
`--upload-url`, and `outputs_from_value` handles both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mediagen.engines.base import (
    BaseEngine,
    Capabilities,
    EngineError,
    Finished,
    InputError,
    Job,
    State,
    Submitted,
    WebhookAuth,
)
from mediagen.engines.outputs import outputs_from_value
from mediagen.errors import MalformedRequest
from mediagen.vocabulary import ProviderStatus

__all__ = ["CogEngine", "DEFAULT_TIMEOUT", "prediction_id", "state_from_cog_payload"]

# Cog answers an async create as soon as the input is validated, and /health-check at once, so a
# server that takes longer than this is in trouble; the queue's retry is the better place to wait.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

# Only these two events: "start" moves the row to processing, "completed" finishes it. "output" and
# "logs" events would only add webhook traffic (coglet does not throttle "output").
WEBHOOK_EVENTS = ["start", "completed"]

_COG_STATUSES: frozenset[str] = frozenset({"starting", "processing", "succeeded", "failed", "canceled"})


def prediction_id(generation_id: int, attempt: int, *, namespace: str = "mg") -> str:
    """The Cog prediction id for one attempt at one generation.

    Deterministic so that a retried submit of the same attempt is deduplicated by Cog's idempotent
    PUT; different per attempt so that a late webhook from an abandoned attempt carries a ref the
    pipeline no longer expects. `namespace` separates installations that share one Cog server.
    """
    return f"{namespace}-{generation_id}-{attempt}"


def state_from_cog_payload(payload: Mapping[str, Any], *, main_key: str | None = None) -> State:
    """Read a Cog prediction body (a webhook, or a synchronous response) as a `State`.

    Pure, so the webhook route can call it without an engine. Outputs are only reported for
    "succeeded": Cog may send partial output with other events, and the pipeline must not ingest a
    half-written result. Raises ValueError for a body that is not a Cog prediction.
    """
    ref = payload.get("id")
    if not isinstance(ref, str) or not ref:
        raise ValueError("Cog payload has no prediction id")
    status = payload.get("status")
    if not isinstance(status, str) or status not in _COG_STATUSES:
        raise ValueError(f"Cog payload for {ref} has an unknown status {status!r}")
    output = payload.get("output")
    outputs = outputs_from_value(output, main_key=main_key) if status == "succeeded" else []
    error = payload.get("error")
    if status == "succeeded" and not outputs and _is_local_path(output):
        # cog<0.17 sends async results as paths inside the container unless it was started with
        # --upload-url; a "succeeded" without a fetchable file would only fail later, less clearly.
        status = "failed"
        error = (
            f"Cog returned a path inside its container ({output!r}) instead of a file: start the "
            "server with --upload-url, or use cog>=0.17, which inlines files as data: URLs"
        )
    metrics = payload.get("metrics")
    logs = payload.get("logs")
    return State(
        ref=ref,
        status=ProviderStatus(status),
        outputs=outputs,
        error=str(error) if error not in (None, "") else None,
        metrics=dict(metrics) if isinstance(metrics, Mapping) else {},
        logs_length=len(logs) if isinstance(logs, str) else 0,
    )


class CogEngine(BaseEngine):
    """Runs models on one Cog HTTP server (`python -m cog.server.http`, or a `cog build` image).

    One instance per server URL. It is safe to share between worker threads: it holds only an
    httpx connection pool.
    """

    name = "cog"
    capabilities = Capabilities(cancels=True, webhooks=WebhookAuth.TOKEN)

    def __init__(
        self,
        *,
        base_url: str,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        connect_retries: int = 2,
        namespace: str = "mg",
        main_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`connect_retries` re-sends a request refused at connect time (a container restarting),
        waiting 0.2 s, 0.4 s, … through `sleep`. Only connect failures are retried here: the request
        never reached the server, so repeating it is always safe and costs well under a second.
        Slow answers are left to the queue's retry, which keeps every call bounded by `timeout`.
        """
        if timeout.read is None or timeout.connect is None:
            raise ValueError("CogEngine needs bounded connect and read timeouts")
        self.base_url = base_url.rstrip("/")
        self._sleep = sleep
        self._connect_retries = max(0, connect_retries)
        self._namespace = namespace
        self._main_key = main_key
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._client.close()

    # -- Engine protocol --------------------------------------------------------------------------

    def submit(self, job: Job) -> Submitted | Finished:
        """Start the prediction asynchronously; its state then arrives at `job.webhook_url`.

        Without a webhook URL nothing would ever report the result (Cog cannot be polled), so the
        job fails at once with a message that says what to configure.
        """
        if not job.webhook_url:
            raise EngineError(
                "The Cog engine needs webhooks: set MEDIAGEN_PUBLIC_URL to an address the Cog server "
                f"at {self.base_url} can reach"
            )
        ref = prediction_id(job.generation_id, job.attempt, namespace=self._namespace)
        body = {
            "id": ref,
            "input": job.inputs,
            "webhook": job.webhook_url,
            "webhook_events_filter": WEBHOOK_EVENTS,
        }
        response = self._request("PUT", f"/predictions/{ref}", json=body, headers={"Prefer": "respond-async"})

        if response.status_code == 202:
            payload = _json_object(response)
            status = payload.get("status")
            provider_status = ProviderStatus(status if status in _COG_STATUSES else "starting")
            return Submitted(ref=ref, provider_status=provider_status, provider_input=job.inputs)
        if response.status_code == 200:
            # A server that ignored `Prefer: respond-async` ran the prediction synchronously.
            return self._finished_from_sync(ref, _json_object(response))
        raise self._error_from_response(response, ref)

    def refresh(self, ref: str) -> State:
        """Report "processing" while the server is up; raise when it is not.

        Cog has no endpoint that describes one prediction, and probing with the idempotent PUT
        would start the prediction again if it had already finished. So this only asks
        `/health-check`: an unreachable, restarting or broken server means the prediction's
        webhook may never come, which the pipeline should hear about now rather than at the end
        of the lease. A healthy server (READY or BUSY) cannot tell us more, and the terminal
        webhook (retried by Cog for about five minutes) or the lease decides the outcome.
        """
        response = self._request("GET", "/health-check")
        if response.status_code != 200:
            raise self._error_from_response(response, ref)
        health = _json_object(response)
        status = str(health.get("status", "")).upper()
        if status in {"READY", "BUSY"}:
            return State(ref=ref, status=ProviderStatus.PROCESSING)
        if status == "SETUP_FAILED":
            setup = health.get("setup")
            logs = setup.get("logs") if isinstance(setup, Mapping) else None
            raise EngineError(
                f"Cog server at {self.base_url} failed its setup" + (f": {_tail(str(logs))}" if logs else ""),
                retryable=False,
            )
        # STARTING (it restarted since the submit, so the prediction is gone), DEFUNCT, UNHEALTHY.
        detail = health.get("user_healthcheck_error")
        raise EngineError(
            f"Cog server at {self.base_url} reports {status or 'no status'}"
            + (f": {detail}" if detail else "")
            + f"; prediction {ref} may be lost",
            retryable=True,
        )

    def cancel(self, ref: str) -> None:
        """Ask Cog to cancel; an unknown id (already finished, or lost) is not an error."""
        response = self._request("POST", f"/predictions/{ref}/cancel")
        if response.status_code in (200, 404):
            return
        raise self._error_from_response(response, ref)

    # -- helpers ----------------------------------------------------------------------------------

    def read_webhook(self, headers: Mapping[str, str], body: bytes) -> State:
        """A callback's body as a State. Cog cannot sign: the caller has already checked the
        per-generation token in the URL."""
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise TypeError("not a JSON object")
            return state_from_cog_payload(payload, main_key=self._main_key)
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedRequest(f"webhook body is not a prediction: {exc}") from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.base_url}{path}"
        for attempt in range(self._connect_retries + 1):
            try:
                return self._client.request(method, path, **kwargs)
            except httpx.ConnectError as exc:
                if attempt < self._connect_retries:
                    self._sleep(0.2 * 2**attempt)
                    continue
                raise EngineError(
                    f"Cog server at {self.base_url} is unreachable: {exc}", retryable=True
                ) from exc
            except httpx.TimeoutException as exc:
                raise EngineError(
                    f"Cog server at {self.base_url} did not answer {method} {url} in time "
                    f"({type(exc).__name__})",
                    retryable=True,
                ) from exc
            except httpx.TransportError as exc:
                raise EngineError(
                    f"Cog server at {self.base_url} dropped {method} {url}: {exc}", retryable=True
                ) from exc
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _error_from_response(self, response: httpx.Response, ref: str) -> EngineError:
        code = response.status_code
        payload = _json_object(response)
        if code == 422:
            return _input_error(payload, ref)
        if code == 409:
            return EngineError(
                f"Cog server busy: {_message(payload) or 'all prediction slots are in use'}",
                retryable=True,
                status_code=409,
            )
        if code == 503:
            return EngineError(
                f"Cog server at {self.base_url} is not ready: {_message(payload) or 'setup still running'}",
                retryable=True,
                status_code=503,
            )
        message = _message(payload) or response.text[:200] or response.reason_phrase
        return EngineError(
            f"Cog server at {self.base_url} answered {code} for {ref}: {message}",
            retryable=code >= 500 or code == 429,
            status_code=code,
        )

    def _finished_from_sync(self, ref: str, payload: Mapping[str, Any]) -> Finished:
        try:
            state = state_from_cog_payload({**payload, "id": payload.get("id") or ref})
        except ValueError as exc:
            raise EngineError(f"Cog server at {self.base_url} sent an unreadable prediction: {exc}") from exc
        if state.status != "succeeded":
            raise EngineError(f"Cog prediction {ref} {state.status}: {state.error or 'no error given'}")
        return Finished(outputs=state.outputs, metadata={"metrics": state.metrics})


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"detail": value}


def _message(payload: Mapping[str, Any]) -> str | None:
    """The human part of a Cog error body: coglet's `error`, or the Python server's `detail`."""
    for key in ("error", "detail"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _input_error(payload: Mapping[str, Any], ref: str) -> EngineError:
    """Name the rejected input from FastAPI-style `detail[].loc` = ["body", "input", <field>]."""
    details = payload.get("detail")
    if not isinstance(details, list) or not details:
        return InputError(f"Cog rejected the input: {_message(payload) or 'no detail given'}")
    messages: list[str] = []
    first_field: str | None = None
    for item in details:
        if not isinstance(item, Mapping):
            continue
        loc = [str(part) for part in item.get("loc") or []]
        msg = str(item.get("msg") or "invalid")
        if "input" not in loc:
            # e.g. ["body", "id"]: our request was malformed, not the user's input.
            return EngineError(f"Cog rejected prediction {ref}: {'.'.join(loc)}: {msg}", status_code=422)
        field = ".".join(loc[loc.index("input") + 1 :]) or None
        first_field = first_field or field
        messages.append(f"{field}: {msg}" if field else msg)
    return InputError("; ".join(messages) or "Cog rejected the input", field=first_field)


def _is_local_path(value: object) -> bool:
    if isinstance(value, list) and value:
        return all(_is_local_path(item) for item in value)
    return isinstance(value, str) and value.startswith("/")


def _tail(text: str, limit: int = 500) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]
