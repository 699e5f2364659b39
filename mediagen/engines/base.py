"""The Engine protocol (DESIGN §5): how the pipeline talks to anything that makes media.

Inline engines (synth, local models) finish inside `submit` and return the files they wrote.
Remote engines (Replicate, Cog) return a provider reference; the pipeline then learns the outcome
from a webhook or from `refresh`, and downloads the outputs it is told about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

Kind = Literal["audio", "image", "video"]


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
    provider_status: str = "starting"
    provider_input: dict[str, Any] | None = None


ProviderStatus = Literal["starting", "processing", "succeeded", "failed", "canceled", "aborted"]


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


class EngineError(Exception):
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


@runtime_checkable
class Engine(Protocol):
    name: str

    def submit(self, job: Job) -> Submitted | Finished: ...

    def refresh(self, ref: str) -> State: ...

    def cancel(self, ref: str) -> None: ...
