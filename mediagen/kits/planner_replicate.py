"""Asking a language model on Replicate for text, within a deadline.

The engine's client makes media and hands its outputs to the pipeline; a planner needs one short
answer now. So this runs one prediction of an official model the way Replicate's docs suggest for
that (`POST /v1/models/{owner}/{name}/predictions` with `Prefer: wait`, then polling), reading
answers and errors with the engine's own wire helpers (replicate_wire), and joins the output
strings (a language model streams its answer as a list of tokens).

A create that fails is not retried: the planner falls back to the rules rather than spend the
deadline, so a prediction is never made twice. A prediction still running at the deadline is
canceled, and `Cancel-After` asks Replicate to stop it even if we cannot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mediagen.engines.base import EngineError
from mediagen.engines.replicate_wire import api_client, error_from_response, split_model

POLL_INTERVAL_S = 0.5
MAX_PREFER_WAIT_S = 60  # Replicate holds a create open at most this long
MIN_CANCEL_AFTER_S = 5  # the shortest Cancel-After Replicate accepts
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})


class TextModelError(Exception):
    """The model gave no usable answer: `reason` says why, in words for the plan's note."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Deadline(TextModelError):
    def __init__(self) -> None:
        super().__init__("the planner's time ran out")


def joined_output(output: Any) -> str:
    """A text model's output: a string, or the list of strings it streamed, joined."""
    if isinstance(output, str):
        return output
    if isinstance(output, list) and all(isinstance(part, str) for part in output):
        return "".join(output)
    raise TextModelError(f"the model's output is not text ({type(output).__name__})")


class ReplicateText:
    """One-shot text predictions on Replicate. Cheap to build; holds an httpx client until closed."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._client = api_client(token, base_url, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ReplicateText:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, model_id: str, inputs: Mapping[str, Any], *, timeout_s: float) -> str:
        """The model's answer to `inputs`, or TextModelError within about `timeout_s` seconds."""
        deadline = self._clock() + timeout_s
        try:
            owner, name = split_model(model_id)
        except EngineError as exc:
            raise TextModelError(str(exc)) from exc
        wait = max(1, min(MAX_PREFER_WAIT_S, math.floor(timeout_s)))
        headers = {
            "Prefer": f"wait={wait}",
            "Cancel-After": f"{max(MIN_CANCEL_AFTER_S, math.ceil(timeout_s))}s",
        }
        late = TextModelError(f"{model_id} did not answer within {timeout_s:g} s")
        try:
            prediction = self._call(
                "POST",
                f"models/{owner}/{name}/predictions",
                deadline,
                json={"input": dict(inputs)},
                headers=headers,
            )
        except _Deadline:
            raise late from None  # whatever the create made, Cancel-After stops it
        ident = str(prediction.get("id") or "")
        try:
            while str(prediction.get("status")) not in TERMINAL:
                if not ident:
                    raise TextModelError("Replicate answered the create without a prediction id")
                self._sleep(max(0.0, min(POLL_INTERVAL_S, deadline - self._clock())))
                prediction = self._call("GET", f"predictions/{ident}", deadline)
        except _Deadline:
            self._cancel(ident)
            raise late from None
        status = str(prediction.get("status"))
        if status != "succeeded":
            error = prediction.get("error")
            detail = f": {error}" if error else ""
            raise TextModelError(f"the {model_id} prediction {status}{detail}")
        return joined_output(prediction.get("output"))

    def _call(self, method: str, path: str, deadline: float, **kwargs: Any) -> dict[str, Any]:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise _Deadline()
        # The read may take the whole `Prefer: wait`; never past the deadline (plus a little, so a
        # create held open until the deadline can still answer).
        timeout = httpx.Timeout(remaining + 2.0, connect=min(5.0, remaining + 2.0))
        try:
            response = self._client.request(method, path, timeout=timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise _Deadline() from exc
        except httpx.HTTPError as exc:
            raise TextModelError(f"could not reach Replicate ({type(exc).__name__}: {exc})") from exc
        if not response.is_success:
            raise TextModelError(str(error_from_response(response)))
        try:
            data = response.json()
        except ValueError as exc:
            raise TextModelError(f"unreadable answer from Replicate ({response.status_code})") from exc
        if not isinstance(data, dict):
            raise TextModelError("Replicate's answer is not a prediction")
        return data

    def _cancel(self, ident: str) -> None:
        """Best effort: the deadline has passed, so one short try."""
        try:
            self._client.post(f"predictions/{ident}/cancel", timeout=httpx.Timeout(3.0))
        except httpx.HTTPError:
            pass


__all__ = ["ReplicateText", "TextModelError", "joined_output"]
