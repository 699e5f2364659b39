"""Standard Webhooks signing: the reference test vector, freshness, and tampering."""

from __future__ import annotations

import base64

import pytest

from mediagen.engines.webhook_signing import WebhookVerificationError, sign, signed_headers, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(**overrides: str) -> dict[str, str]:
    base = {"webhook-id": MSG_ID, "webhook-timestamp": str(TS), "webhook-signature": EXPECTED}
    base.update(overrides)
    return base


def test_sign_matches_reference_vector() -> None:
    assert sign(SECRET, MSG_ID, TS, BODY) == EXPECTED


def test_secret_without_prefix_or_padding_gives_same_key() -> None:
    bare = SECRET.removeprefix("whsec_")
    assert sign(bare, MSG_ID, TS, BODY) == EXPECTED
    assert sign("whsec_" + bare.rstrip("="), MSG_ID, TS, BODY) == EXPECTED


def test_verify_accepts_reference_vector() -> None:
    verify(SECRET, headers(), BODY, now=TS + 10)


def test_header_names_are_case_insensitive() -> None:
    mixed = {"Webhook-Id": MSG_ID, "WEBHOOK-TIMESTAMP": str(TS), "Webhook-Signature": EXPECTED}
    verify(SECRET, mixed, BODY, now=TS)


def test_any_v1_entry_may_match() -> None:
    forged = "v1," + base64.b64encode(b"x" * 32).decode()
    verify(SECRET, headers(**{"webhook-signature": f"v1a,abc {forged} {EXPECTED}"}), BODY, now=TS)


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_timestamp_outside_tolerance_is_refused(skew: int) -> None:
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(SECRET, headers(), BODY, now=TS + skew)


def test_tolerance_is_configurable() -> None:
    verify(SECRET, headers(), BODY, now=TS + 600, tolerance_s=900)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_named(missing: str) -> None:
    h = headers()
    del h[missing]
    with pytest.raises(WebhookVerificationError, match=missing):
        verify(SECRET, h, BODY, now=TS)


def test_tampered_body_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="signature mismatch"):
        verify(SECRET, headers(), b'{"test": 2432232315}', now=TS)


def test_reserialised_body_is_refused() -> None:
    # Same JSON, different bytes: the receiver must verify the raw body.
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers(), b'{"test":2432232314}', now=TS)


def test_tampered_id_or_timestamp_is_refused() -> None:
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers(**{"webhook-id": "msg_other"}), BODY, now=TS)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers(**{"webhook-timestamp": str(TS + 1)}), BODY, now=TS)


def test_wrong_secret_is_refused() -> None:
    other = "whsec_" + base64.b64encode(b"another secret of 24 b!!").decode()
    with pytest.raises(WebhookVerificationError, match="signature mismatch"):
        verify(other, headers(), BODY, now=TS)


def test_garbage_inputs_raise_verification_errors() -> None:
    with pytest.raises(WebhookVerificationError, match="not an integer"):
        verify(SECRET, headers(**{"webhook-timestamp": "soon"}), BODY, now=TS)
    with pytest.raises(WebhookVerificationError, match="no v1"):
        verify(SECRET, headers(**{"webhook-signature": "v2,abc"}), BODY, now=TS)
    with pytest.raises(WebhookVerificationError, match="signature mismatch"):
        verify(SECRET, headers(**{"webhook-signature": "v1,!!!notbase64"}), BODY, now=TS)
    with pytest.raises(WebhookVerificationError, match="base64"):
        verify("whsec_***", headers(), BODY, now=TS)


def test_signed_headers_round_trip() -> None:
    h = signed_headers(SECRET, "msg_1", b"{}", timestamp=TS)
    assert h["webhook-timestamp"] == str(TS)
    verify(SECRET, h, b"{}", now=TS)
