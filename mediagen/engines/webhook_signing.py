"""Standard Webhooks signing, as Replicate uses it for prediction webhooks.

A webhook carries three headers: `webhook-id`, `webhook-timestamp` (Unix seconds) and
`webhook-signature` (space-separated `v1,<base64 HMAC-SHA256>` entries). The signed content is
`"{id}.{timestamp}.{raw body}"`, over the body bytes exactly as received: re-serialising the JSON
would change the bytes and break the signature. The key is the secret with its `whsec_` prefix
stripped, base64-decoded.

`sign` exists so the fake Replicate server (and tests) produce byte-identical signatures with the
same code path the receiver checks; `verify` is what the webhook route calls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from mediagen.errors import MediagenError

__all__ = ["WebhookVerificationError", "sign", "verify", "signed_headers", "DEFAULT_TOLERANCE_S"]

DEFAULT_TOLERANCE_S = 300  # the docs' examples use five minutes either way
_SECRET_PREFIX = "whsec_"


class WebhookVerificationError(MediagenError):
    """The webhook is not authentic or not fresh; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _key(secret: str) -> bytes:
    """Turn `whsec_<base64>` (or a bare base64 string) into the HMAC key."""
    raw = secret.strip()
    if raw.startswith(_SECRET_PREFIX):
        raw = raw[len(_SECRET_PREFIX) :]
    if not raw:
        raise WebhookVerificationError("webhook secret is empty")
    try:
        # Tolerate secrets pasted without their base64 padding.
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("webhook secret is not valid base64") from exc


def _signature(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` value (`v1,<base64>`) for one message."""
    digest = _signature(_key(secret), msg_id, int(timestamp), body)
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, timestamped now unless told otherwise."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Header names are case-insensitive; plain dicts (not just Starlette/httpx headers) must work.
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Return None when the webhook is authentic and fresh; raise WebhookVerificationError otherwise.

    The timestamp check (absolute difference within `tolerance_s`) limits replay of a captured
    message; the signature covers the timestamp, so it cannot be rewritten.
    """
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signature = _header(headers, "webhook-signature")
    missing = [
        name
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        )
        if not value
    ]
    if missing:
        raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
    assert msg_id is not None and timestamp is not None and signature is not None

    try:
        ts = int(timestamp.strip())
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise WebhookVerificationError(
            f"webhook-timestamp is outside the {tolerance_s} s tolerance (age {int(current - ts)} s)"
        )

    expected = _signature(_key(secret), msg_id, ts, body)
    found_v1 = False
    for entry in signature.split():
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue  # other schemes (e.g. v1a asymmetric) are not ours to check
        found_v1 = True
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Constant-time compare: timing must not reveal how many leading bytes of a forgery were right.
        if hmac.compare_digest(candidate, expected):
            return
    if not found_v1:
        raise WebhookVerificationError("webhook-signature has no v1 entry")
    raise WebhookVerificationError("signature mismatch")
