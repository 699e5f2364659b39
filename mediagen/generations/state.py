"""The pure state machine: which moves a generation may make, so nothing ever goes backwards."""

from __future__ import annotations

PROVIDER_RANK = {
    None: -1,
    "starting": 0,
    "processing": 1,
    "succeeded": 2,
    "failed": 2,
    "canceled": 2,
    "aborted": 2,
}
TERMINAL = frozenset({"completed", "failed", "canceled"})
PROVIDER_TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})


def provider_advances(current: str | None, new: str) -> bool:
    """A provider event counts only if it is news: later in the lifecycle than what we have."""
    return PROVIDER_RANK.get(new, -1) > PROVIDER_RANK.get(current, -1)


def status_for_provider(provider_status: str) -> str:
    """Our status while a provider reports `provider_status` (succeeded still needs ingest)."""
    if provider_status in ("failed",):
        return "failed"
    if provider_status in ("canceled", "aborted"):
        return "canceled"
    return "processing"
