"""The Engine protocol: how the pipeline talks to anything that makes media.

Inline engines (synth, local models) finish inside `submit` and return the files they wrote.
Remote engines (Replicate, Cog) return a provider reference; the pipeline then learns the outcome
from a webhook or from `refresh`, and downloads the outputs it is told about.

What an engine can do beyond that is declared in its `capabilities`, and the pipeline asks those,
never the engine's name: a new engine is one module plus catalog entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

from mediagen.errors import MediagenError
from mediagen.vocabulary import Kind, ProviderStatus


class JobControl(Protocol):
    """The pipeline's side of a running inline job: where progress goes, and whether the user
    canceled it (an engine checks between steps and stops)."""

    def progress(self, fraction: float | None, note: str | None = None) -> None:
        """Record how far the job is (0–1, or None while it cannot tell) and what it is doing."""
        ...

    def cancelled(self) -> bool:
        """Whether the generation was canceled (or otherwise ended) since it started."""
        ...


class NoControl:
    """For jobs run outside the pipeline (the CLI, benchmarks): nothing recorded, never canceled."""

    def progress(self, fraction: float | None, note: str | None = None) -> None:
        return None

    def cancelled(self) -> bool:
        return False


@dataclass(frozen=True)
class Job:
    """What an engine needs to run one generation."""

    generation_id: int
    kind: Kind
    model_id: str
    inputs: dict[str, Any]  # validated model inputs, defaults filled in (the catalog's job)
    workdir: Path  # a private scratch directory the engine may write into
    webhook_url: str | None = None
    attempt: int = 1  # lets engines with idempotent creates (Cog's PUT) derive a stable id
    control: JobControl = field(default_factory=NoControl)


@dataclass(frozen=True)
class OutputFile:
    """One file an inline engine produced, or one a remote engine points at.

    `role` is "main" for the asset itself; anything else is kept as a derivation of that name
    (e.g. riffusion's "spectrogram").
    """

    role: str
    path: Path | None = None  # set by inline engines
    url: str | None = None  # http(s) or data: URL, set by remote engines
    content_type: str | None = None


@dataclass(frozen=True)
class Finished:
    outputs: list[OutputFile]
    metadata: dict[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Submitted:
    ref: str
    provider_status: str = ProviderStatus.STARTING
    provider_input: dict[str, Any] | None = None


@dataclass(frozen=True)
class State:
    """A provider's view of a prediction, as read from a webhook body or a poll."""

    ref: str
    status: ProviderStatus
    outputs: list[OutputFile] = field(default_factory=list)
    error: str | None = None
    data_removed: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    logs_length: int = 0


class EngineError(MediagenError):
    """The engine could not run the job. `retryable` says whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool = False, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code


class InputError(EngineError):
    """The provider rejected an input; `field` names it as the user sent it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, retryable=False, status_code=422)
        self.field = field


class WebhookAuth(StrEnum):
    """How a provider's callbacks prove they are genuine."""

    NONE = "none"  # no callbacks: the pipeline polls
    SIGNED = "signed"  # Standard Webhooks signature; needs our public URL (MEDIAGEN_PUBLIC_URL)
    TOKEN = "token"  # an unguessable per-generation token in the URL (a server that cannot sign)


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do beyond submit/refresh; the pipeline branches on these alone."""

    inline: bool = False  # submit() runs the job to the end and returns files; inputs are local paths
    recovers: bool = False  # find_existing(): adopt a prediction created just before a crash
    uploads_files: bool = False  # upload_file(): large media inputs go up as provider files
    cancels: bool = False  # cancel() stops the work (and the bill) at the provider
    webhooks: WebhookAuth = WebhookAuth.NONE
    device: bool = False  # runs on this machine's accelerator: its jobs go to the device queue


@runtime_checkable
class Engine(Protocol):
    name: str
    capabilities: Capabilities

    def submit(self, job: Job) -> Submitted | Finished:
        """Start (remote) or run (inline) one job."""
        ...

    def refresh(self, ref: str) -> State:
        """The provider's current view of a prediction."""
        ...

    def cancel(self, ref: str) -> None:
        """Stop a prediction at the provider (with `capabilities.cancels`)."""
        ...

    def find_existing(self, job: Job, *, since: datetime) -> Submitted | None:
        """The prediction an earlier attempt of `job` made, if any (with `capabilities.recovers`)."""
        ...

    def upload_file(self, path: Path, content_type: str) -> str:
        """Put a local file where the provider can read it; its URL (`capabilities.uploads_files`)."""
        ...

    def read_webhook(self, headers: Mapping[str, str], body: bytes) -> State:
        """A provider callback as a State, its signature verified where `capabilities.webhooks` is
        SIGNED (WebhookVerificationError); MalformedRequest for a body that is not a prediction."""
        ...

    def unavailable_reason(self, model_id: str) -> str | None:
        """Why this engine cannot run `model_id` here right now (and the fix), or None."""
        ...

    def preflight(
        self, model_id: str, inputs: Mapping[str, Any], durations: Mapping[str, float | None]
    ) -> None:
        """Refuse, before anything is queued, inputs this engine can already tell it cannot run
        (InputError naming the field). `durations`: each referenced stored asset's length, by the
        place the inputs name it (clips[2].video_id)."""
        ...

    def model_details(self, model_id: str) -> dict[str, Any]:
        """What the model list shows beyond the catalog entry (a local model's weights)."""
        ...


class BaseEngine:
    """Defaults for what an engine does not declare in its capabilities: asking for it is a bug
    in the caller (the pipeline checks capabilities first), so each refuses loudly."""

    name: str = "engine"
    capabilities: Capabilities = Capabilities()

    def close(self) -> None:
        """Release connections (engines that hold a client override this)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def refresh(self, ref: str) -> State:
        raise EngineError(f"{self.name} finishes inline; there is no prediction {ref!r} to refresh")

    def cancel(self, ref: str) -> None:
        raise EngineError(f"{self.name} cannot cancel a prediction")

    def find_existing(self, job: Job, *, since: datetime) -> Submitted | None:
        return None

    def upload_file(self, path: Path, content_type: str) -> str:
        raise EngineError(f"{self.name} does not take file uploads")

    def read_webhook(self, headers: Mapping[str, str], body: bytes) -> State:
        raise EngineError(f"{self.name} sends no webhooks")

    def unavailable_reason(self, model_id: str) -> str | None:
        return None

    def preflight(
        self, model_id: str, inputs: Mapping[str, Any], durations: Mapping[str, float | None]
    ) -> None:
        return None

    def model_details(self, model_id: str) -> dict[str, Any]:
        return {}
