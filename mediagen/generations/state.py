"""The pure state machine: which moves a generation may make, so nothing ever goes backwards."""

from __future__ import annotations

from mediagen.vocabulary import ProviderStatus, Status

PROVIDER_RANK: dict[str | None, int] = {
    None: -1,
    ProviderStatus.STARTING: 0,
    ProviderStatus.PROCESSING: 1,
    ProviderStatus.SUCCEEDED: 2,
    ProviderStatus.FAILED: 2,
    ProviderStatus.CANCELED: 2,
    ProviderStatus.ABORTED: 2,
}


def provider_advances(current: str | None, new: str) -> bool:
    """A provider event counts only if it is news: later in the lifecycle than what we have."""
    return PROVIDER_RANK.get(new, -1) > PROVIDER_RANK.get(current, -1)


def status_for_provider(provider_status: str) -> Status:
    """Our status while a provider reports `provider_status` (succeeded still needs ingest)."""
    if provider_status == ProviderStatus.FAILED:
        return Status.FAILED
    if provider_status in (ProviderStatus.CANCELED, ProviderStatus.ABORTED):
        return Status.CANCELED
    return Status.PROCESSING
