"""A fake Replicate API: a real HTTP server on 127.0.0.1 speaking reference/replicate-api.md.

Replicate is the one outside service the tests fake (DESIGN §10), so this fake must fail the way
Replicate fails: rate limits, credit, validation, slow or lost responses, lost / duplicated /
reordered / forged webhooks, and outputs that vanish after an hour. Everything a test may turn is
a plain attribute or a small method on `FakeReplicate`; everything the fake received is recorded.

    with FakeReplicate() as fake:
        engine = ReplicateEngine(token=fake.token, base_url=fake.base_url, ...)
        fake.scripts["meta/musicgen"] = Script(run_for=0.05, output="uri")
        fake.fail_next_create(429, ratelimit_reset=2)
        ...
        assert len(fake.create_requests) == 2 and len(fake.predictions) == 1

Besides predictions it answers what the model browser and the planner read: `GET /v1/search`
(models with their latest version's schema and default example, and the matching collections,
as the v2 SDK's SearchResponse), `GET /v1/collections[/{slug}]`, `GET /v1/hardware` (SKUs, no
prices), each model's cover and example files, and more public models than the catalog packages
(`EXTRA_MODELS`), among them the text model `meta/meta-llama-3-8b-instruct` (official; its output
is a list of string tokens, `x-cog-array-type: iterator`), whose answer a test scripts with
`fake.scripts[LLM_MODEL] = Script(output=lambda prediction: ["tok", "ens"])`.

Predictions move by the clock (`time.time()` plus `advance()`d seconds) rather than by calls, as
real ones do: a background ticker advances them and sends webhooks; GETs also advance first, so
a poll always sees the state its timestamp implies.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import io
import itertools
import json
import math
import re
import secrets
import socket
import struct
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from mediagen.engines.webhook_signing import signed_headers

__all__ = [
    "DEFAULT_COLLECTIONS",
    "DEFAULT_HARDWARE",
    "DEFAULT_MODELS",
    "EXTRA_MODELS",
    "LLM_MODEL",
    "FakeCollection",
    "FakeModel",
    "FakePrediction",
    "FakeReplicate",
    "RecordedRequest",
    "Script",
    "WebhookDelivery",
    "WebhookReceiver",
    "default_content",
]

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
EVENTS = ("start", "output", "logs", "completed")
OutputShape = Literal["uri", "uri_list", "object", "data_url", "text", "tokens", "none"]


# ---------------------------------------------------------------------------------------------
# Scripts, models and the media bytes they "generate"
# ---------------------------------------------------------------------------------------------


@dataclass
class Script:
    """How predictions of one model behave. Times are seconds on the fake's clock."""

    start_after: float = 0.05  # time in "starting" (queue / cold boot)
    run_for: float = 0.1  # time in "processing"
    status: Literal["succeeded", "failed", "canceled"] = "succeeded"
    output: OutputShape | Callable[[FakePrediction], Any] | None = None  # None: the model's shape
    count: int = 2  # files in a "uri_list" output
    object_keys: tuple[str, ...] = ("audio", "spectrogram")  # "object" output: first is the asset
    error: str = "CUDA out of memory. Tried to allocate 2.00 GiB"
    logs: tuple[str, ...] = ("Loading model weights", "Generating")
    output_early: bool = False  # output visible halfway through "processing" (sync-mode case b)
    inline_when_waited: bool = False  # a `Prefer: wait` create gets data: URLs, like the real cassette


@dataclass
class FakeModel:
    owner: str
    name: str
    official: bool
    kind: Literal["audio", "image", "video", "text", "other"]
    versions: list[str]  # newest first
    output: OutputShape = "uri"
    input_schema: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    # What the model browser reads: search, collections, the model page.
    run_count: int = 1234
    tags: tuple[str, ...] = ()
    output_schema: dict[str, Any] | None = None  # None: derived from `output`
    example_input: dict[str, Any] = field(default_factory=lambda: {"prompt": "an example"})
    example_output: Any = "auto"  # "auto": a file (or tokens) of `kind` served by the fake; None: no example
    cover: bool = True  # whether the model has a cover image (served by the fake)

    @property
    def id(self) -> str:
        return f"{self.owner}/{self.name}"


def _hex_version(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "title": "Input", "properties": properties, "required": required or []}


_PROMPT = {"type": "string", "title": "Prompt", "x-order": 0}
_SEED = {"type": "integer", "title": "Seed", "nullable": True}

DEFAULT_MODELS: tuple[FakeModel, ...] = (
    FakeModel(
        "meta",
        "musicgen",
        official=False,
        kind="audio",
        versions=["671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb"],
        input_schema=_schema(
            {
                "prompt": _PROMPT,
                "model_version": {"type": "string", "enum": ["stereo-melody-large", "stereo-large"]},
                "duration": {"type": "integer", "default": 8, "minimum": 1, "maximum": 30},
                "output_format": {"type": "string", "enum": ["wav", "mp3"], "default": "wav"},
                "input_audio": {"type": "string", "format": "uri"},
                "seed": _SEED,
            }
        ),
    ),
    FakeModel(
        "riffusion",
        "riffusion",
        official=False,
        kind="audio",
        versions=["8cf61ea6c56afd61d8f5b9ffd14d7c216c0a93844ce2d82ac1c9ecc9c7f24e05"],
        output="object",
        input_schema=_schema(
            {
                "prompt_a": {"type": "string", "default": "funky synth solo"},
                "denoising": {"type": "number", "minimum": 0, "maximum": 1},
                "num_inference_steps": {"type": "integer", "minimum": 1},
            }
        ),
    ),
    FakeModel(
        "stackadoc",
        "stable-audio-open-1.0",
        official=False,
        kind="audio",
        versions=["9aff84a639f96d0f7e6081cdea002d15133d0043727f849c40abdd166b7c75a8"],
        input_schema=_schema({"prompt": _PROMPT, "seconds_total": {"type": "integer", "maximum": 47}}),
    ),
    FakeModel(
        "bytedance",
        "seedance-1-lite",
        official=True,
        kind="video",
        versions=[_hex_version("seedance-1-lite")],
        input_schema=_schema(
            {
                "prompt": _PROMPT,
                "duration": {"type": "integer", "minimum": 2, "maximum": 12, "default": 5},
                "resolution": {"type": "string", "enum": ["480p", "720p", "1080p"]},
                "seed": _SEED,
            },
            required=["prompt"],
        ),
    ),
    FakeModel(
        "kwaivgi",
        "kling-v2.1",
        official=True,
        kind="video",
        versions=["daad218feb714b03e2a1ac445986aebb9d05243cd00da2af17be2e4049f48f69"],
        input_schema=_schema({"prompt": _PROMPT, "duration": {"type": "integer", "enum": [5, 10]}}),
    ),
    FakeModel(
        "black-forest-labs",
        "flux-schnell",
        official=True,
        kind="image",
        versions=["c846a69991daf4c0e5d016514849d14ee5b2e6846ce6b9d6f21369e564cfe51e"],
        output="uri_list",
        input_schema=_schema(
            {
                "prompt": _PROMPT,
                "num_outputs": {"type": "integer", "minimum": 1, "maximum": 4},
                "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 4},
                "output_format": {"type": "string", "enum": ["webp", "jpg", "png"]},
            },
            required=["prompt"],
        ),
    ),
    FakeModel(
        "google",
        "nano-banana",
        official=True,
        kind="image",
        versions=[_hex_version("nano-banana")],
        input_schema=_schema({"prompt": _PROMPT}, required=["prompt"]),
    ),
)


def _enum_ref(name: str, values: list[Any], kind: str = "string") -> dict[str, Any]:
    """A Cog enum as Replicate shows it: its own schema under components, the input an allOf $ref."""
    return {"title": name, "description": "An enumeration.", "type": kind, "enum": values}


# More public models, for the model browser (search, collections, schemas with $ref enums, secrets,
# media inputs) and the LLM planner. Not in the packaged catalog.
LLM_MODEL = "meta/meta-llama-3-8b-instruct"
EXTRA_MODELS: tuple[FakeModel, ...] = (
    FakeModel(
        "meta",
        "meta-llama-3-8b-instruct",
        official=True,
        kind="text",
        versions=[_hex_version("meta-llama-3-8b-instruct")],
        output="tokens",
        description="An 8 billion parameter language model from Meta, fine tuned for chat completions",
        run_count=51_000_000,
        tags=("language", "llm", "chat", "text"),
        input_schema=_schema(
            {
                "prompt": {"type": "string", "title": "Prompt", "default": "", "x-order": 0},
                "system_prompt": {
                    "type": "string",
                    "title": "System Prompt",
                    "default": "You are a helpful assistant",
                    "x-order": 1,
                },
                "max_tokens": {
                    "type": "integer",
                    "title": "Max Tokens",
                    "default": 512,
                    "minimum": 1,
                    "x-order": 2,
                },
                "min_tokens": {
                    "type": "integer",
                    "title": "Min Tokens",
                    "default": 0,
                    "minimum": -1,
                    "x-order": 3,
                },
                "temperature": {
                    "type": "number",
                    "title": "Temperature",
                    "default": 0.6,
                    "minimum": 0,
                    "maximum": 5,
                    "x-order": 4,
                },
                "top_p": {
                    "type": "number",
                    "title": "Top P",
                    "default": 0.9,
                    "minimum": 0,
                    "maximum": 1,
                    "x-order": 5,
                },
                "top_k": {"type": "integer", "title": "Top K", "default": 50, "minimum": -1, "x-order": 6},
                "presence_penalty": {
                    "type": "number",
                    "title": "Presence Penalty",
                    "default": 1.15,
                    "x-order": 7,
                },
                "frequency_penalty": {
                    "type": "number",
                    "title": "Frequency Penalty",
                    "default": 0.2,
                    "x-order": 8,
                },
                "stop_sequences": {"type": "string", "title": "Stop Sequences", "x-order": 9},
                "prompt_template": {"type": "string", "title": "Prompt Template", "x-order": 10},
            }
        ),
        example_input={"prompt": "Write a haiku about llamas"},
    ),
    FakeModel(
        "google",
        "lyria-2",
        official=True,
        kind="audio",
        versions=[_hex_version("lyria-2")],
        description="Lyria 2 is a music generation model that produces 48kHz stereo audio",
        run_count=180_000,
        tags=("music", "audio", "text-to-audio"),
        input_schema=_schema(
            {
                "prompt": {"type": "string", "title": "Prompt", "description": "Text prompt", "x-order": 0},
                "negative_prompt": {"type": "string", "title": "Negative Prompt", "x-order": 1},
                "seed": {"type": "integer", "title": "Seed", "x-order": 2},
            },
            required=["prompt"],
        ),
        example_input={"prompt": "Upbeat synthwave with a driving bassline"},
    ),
    FakeModel(
        "lucataco",
        "ace-step",
        official=False,
        kind="audio",
        versions=[_hex_version("ace-step-2"), _hex_version("ace-step-1")],
        description="A step towards music generation foundation model: songs with lyrics",
        run_count=42_000,
        tags=("music", "song", "lyrics"),
        input_schema={
            "type": "object",
            "title": "Input",
            "required": ["tags"],
            "properties": {
                "tags": {"type": "string", "title": "Tags", "description": "Genres and moods", "x-order": 0},
                "lyrics": {"type": "string", "title": "Lyrics", "default": "[inst]", "x-order": 1},
                "duration": {
                    "type": "number",
                    "title": "Duration",
                    "default": 60,
                    "minimum": 1,
                    "maximum": 240,
                    "x-order": 2,
                },
                "scheduler": {
                    "allOf": [{"$ref": "#/components/schemas/scheduler"}],
                    "default": "euler",
                    "x-order": 3,
                },
                "reference_audio": {
                    "type": "string",
                    "format": "uri",
                    "title": "Reference Audio",
                    "x-order": 4,
                },
                "seed": {"type": "integer", "title": "Seed", "default": -1, "x-order": 5},
            },
        },
        example_input={"tags": "lofi, chill, piano", "duration": 30},
    ),
    FakeModel(
        "bytedance",
        "sdxl-lightning-4step",
        official=False,
        kind="image",
        versions=[_hex_version("sdxl-lightning-4step")],
        output="uri_list",
        description="SDXL-Lightning by ByteDance: a fast text-to-image model, high-quality images in 4 steps",
        run_count=1_000_000_000,
        tags=("image", "text-to-image", "sdxl"),
        input_schema={
            "type": "object",
            "title": "Input",
            "properties": {
                "width": {"type": "integer", "title": "Width", "default": 1024, "x-order": 2},
                "height": {"type": "integer", "title": "Height", "default": 1024, "x-order": 3},
                "prompt": {
                    "type": "string",
                    "title": "Prompt",
                    "default": "self-portrait of a woman",
                    "x-order": 0,
                },
                "negative_prompt": {
                    "type": "string",
                    "title": "Negative Prompt",
                    "default": "worst quality",
                    "x-order": 1,
                },
                "scheduler": {
                    "allOf": [{"$ref": "#/components/schemas/scheduler"}],
                    "default": "K_EULER",
                    "x-order": 4,
                },
                "num_outputs": {
                    "type": "integer",
                    "title": "Num Outputs",
                    "default": 1,
                    "minimum": 1,
                    "maximum": 4,
                    "x-order": 5,
                },
                "guidance_scale": {"type": "number", "title": "Guidance Scale", "default": 0, "x-order": 6},
                "seed": {"type": "integer", "title": "Seed", "default": 0, "x-order": 7},
                "image": {
                    "type": "string",
                    "format": "uri",
                    "title": "Image",
                    "description": "Input image for img2img",
                    "x-order": 8,
                },
                "disable_safety_checker": {
                    "type": "boolean",
                    "title": "Disable Safety Checker",
                    "default": False,
                    "x-order": 9,
                },
            },
        },
        example_input={"prompt": "A superhero smiling"},
    ),
    FakeModel(
        "openai",
        "gpt-image-1",
        official=True,
        kind="image",
        versions=[_hex_version("gpt-image-1")],
        output="uri_list",
        description="A multimodal image generation model (bring your own OpenAI key)",
        run_count=90_000,
        tags=("image", "text-to-image"),
        input_schema=_schema(
            {
                "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
                "openai_api_key": {
                    "type": "string",
                    "title": "Openai Api Key",
                    "format": "password",
                    "writeOnly": True,
                    "x-cog-secret": True,
                    "x-order": 1,
                },
                "aspect_ratio": {
                    "allOf": [{"$ref": "#/components/schemas/aspect_ratio"}],
                    "default": "1:1",
                    "x-order": 2,
                },
                "input_images": {
                    "type": "array",
                    "items": {"type": "string", "format": "uri"},
                    "title": "Input Images",
                    "x-order": 3,
                },
            },
            required=["prompt"],
        ),
    ),
    FakeModel(
        "minimax",
        "video-01",
        official=True,
        kind="video",
        versions=[_hex_version("video-01")],
        description="Generate 6s videos with prompts or images (Hailuo)",
        run_count=650_000,
        tags=("video", "text-to-video", "image-to-video"),
        input_schema=_schema(
            {
                "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
                "prompt_optimizer": {
                    "type": "boolean",
                    "title": "Prompt Optimizer",
                    "default": True,
                    "x-order": 1,
                },
                "first_frame_image": {
                    "type": "string",
                    "format": "uri",
                    "title": "First Frame Image",
                    "x-order": 2,
                },
                "subject_reference": {
                    "type": "string",
                    "format": "uri",
                    "title": "Subject Reference",
                    "x-order": 3,
                },
            },
            required=["prompt"],
        ),
        example_input={"prompt": "a woman is walking through a busy Tokyo street at night"},
    ),
    FakeModel(
        "openai",
        "whisper",
        official=False,
        kind="other",
        versions=[_hex_version("whisper")],
        output="text",  # what a run returns here; its schema (below) says an object of text
        description="Convert speech in audio to text",
        run_count=120_000_000,
        tags=("speech", "audio", "speech-to-text", "transcription"),
        input_schema=_schema(
            {
                "audio": {"type": "string", "format": "uri", "title": "Audio", "x-order": 0},
                "language": {"type": "string", "title": "Language", "default": "auto", "x-order": 1},
            },
            required=["audio"],
        ),
        output_schema={
            "type": "object",
            "title": "Output",
            "properties": {
                "segments": {"title": "Segments"},
                "transcription": {"type": "string", "title": "Transcription"},
                "detected_language": {"type": "string", "title": "Detected Language"},
            },
        },
        example_input={"audio": "https://example.com/speech.mp3"},
        example_output={"transcription": "hello world", "segments": [], "detected_language": "english"},
    ),
)

# Enum schemas the allOf $refs above point at (one components/schemas table per version, as Cog does).
EXTRA_COMPONENTS: dict[str, dict[str, dict[str, Any]]] = {
    "lucataco/ace-step": {"scheduler": _enum_ref("scheduler", ["euler", "heun", "pingpong"])},
    "bytedance/sdxl-lightning-4step": {
        "scheduler": _enum_ref("scheduler", ["DDIM", "DPMSolverMultistep", "K_EULER", "K_EULER_ANCESTRAL"])
    },
    "openai/gpt-image-1": {"aspect_ratio": _enum_ref("aspect_ratio", ["1:1", "3:2", "2:3"])},
}


@dataclass
class FakeCollection:
    slug: str
    name: str
    description: str
    models: list[str]  # model ids


DEFAULT_COLLECTIONS: tuple[FakeCollection, ...] = (
    FakeCollection(
        "text-to-image",
        "Generate images",
        "Models that generate images from text prompts",
        [
            "black-forest-labs/flux-schnell",
            "google/nano-banana",
            "bytedance/sdxl-lightning-4step",
            "openai/gpt-image-1",
        ],
    ),
    FakeCollection(
        "text-to-video",
        "Generate videos",
        "Models that create and edit videos",
        ["bytedance/seedance-1-lite", "kwaivgi/kling-v2.1", "minimax/video-01"],
    ),
    FakeCollection(
        "ai-music-generation",
        "AI music generation",
        "Models to generate and modify music",
        [
            "meta/musicgen",
            "riffusion/riffusion",
            "stackadoc/stable-audio-open-1.0",
            "google/lyria-2",
            "lucataco/ace-step",
        ],
    ),
    FakeCollection(
        "language-models",
        "Language models",
        "Models that can understand and generate text",
        [LLM_MODEL],
    ),
    FakeCollection("speech-to-text", "Speech to text", "Models that transcribe speech", ["openai/whisper"]),
)

# GET /v1/hardware: what Replicate lists (SKUs and names, no prices).
DEFAULT_HARDWARE: tuple[dict[str, str], ...] = (
    {"name": "CPU", "sku": "cpu"},
    {"name": "Nvidia T4 GPU", "sku": "gpu-t4"},
    {"name": "Nvidia L40S GPU", "sku": "gpu-l40s"},
    {"name": "Nvidia A100 (80GB) GPU", "sku": "gpu-a100-large"},
    {"name": "Nvidia H100 GPU", "sku": "gpu-h100"},
)


def _wav_bytes(seconds: float = 0.25, rate: int = 16000) -> bytes:
    frames = int(seconds * rate)
    samples = (int(12000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buf.getvalue()


def _png_bytes(size: int = 16) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (size, size))
    img.putdata([(x * 16 % 256, y * 16 % 256, 128) for y in range(size) for x in range(size)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _mp4_bytes(frames: int = 4, size: int = 32) -> bytes:
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        try:
            stream = container.add_stream("libx264", rate=8)
        except Exception:  # a build without x264: any MP4 video will do
            stream = container.add_stream("mpeg4", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            arr = np.full((size, size, 3), (i * 60) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


_CONTENT_CACHE: dict[str, tuple[bytes, str, str]] = {}
_CONTENT_LOCK = threading.Lock()
_MAKERS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "audio": (_wav_bytes, "audio/wav", "wav"),
    "image": (_png_bytes, "image/png", "png"),
    "video": (_mp4_bytes, "video/mp4", "mp4"),
}


def default_content(kind: str) -> tuple[bytes, str, str]:
    """(bytes, content type, extension) of a small valid file of `kind`, built once."""
    with _CONTENT_LOCK:
        if kind not in _CONTENT_CACHE:
            make, ctype, ext = _MAKERS[kind]
            _CONTENT_CACHE[kind] = (make(), ctype, ext)
        return _CONTENT_CACHE[kind]


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class WebhookDelivery:
    prediction_id: str
    event: str
    url: str
    webhook_id: str
    attempt: int
    body: bytes
    headers: dict[str, str]
    status_code: int | None = None  # None: not sent (dropped) or connection failed
    error: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class FakePrediction:
    id: str
    model: FakeModel
    version: str
    input: dict[str, Any]
    script: Script
    created: float
    webhook: str | None = None
    events_filter: list[str] = field(default_factory=list)
    deadline: float | None = None
    deployment: str | None = None
    status: str = "starting"
    started: float | None = None
    completed: float | None = None
    output: Any = None
    logs: str = ""
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    data_removed: bool = False
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    held_events: list[tuple[str, bytes]] = field(default_factory=list)
    last_sent: dict[str, float] = field(default_factory=dict)
    waited: bool = False


@dataclass
class _Failure:
    status: int
    ratelimit_reset: float = 1
    retry_after: str | None = None
    invalid_fields: list[dict[str, Any]] | None = None
    detail: str | None = None
    create_anyway: bool = False  # a 5xx after the prediction was made: the ambiguous case


@dataclass(order=True)
class _Outgoing:
    due: float
    seq: int
    delivery: WebhookDelivery = field(compare=False)
    terminal: bool = field(compare=False, default=False)


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ts(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id() -> str:
    return base64.b32encode(uuid.uuid4().bytes).decode().rstrip("=").lower()


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(value: str) -> float | None:
    """`Cancel-After` forms: `30`, `30s`, `5m`, `2h`, `1m30s`. None when malformed."""
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    match = _DURATION.fullmatch(text)
    if not text or not match or not any(match.groups()):
        return None
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s


def _problem(status: int, detail: str, title: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "status": status}
    if title:
        body["title"] = title
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


# ---------------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------------


class FakeReplicate:
    """The fake API. Knobs are public attributes; see the module docstring and each comment."""

    def __init__(self, *, token: str | None = None, webhook_secret: str | None = None) -> None:
        self.token = token or "r8_fake_" + secrets.token_hex(16)
        self.webhook_secret = webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

        # --- knobs -----------------------------------------------------------------------------
        self.models: dict[str, FakeModel] = {
            m.id: replace(m, versions=list(m.versions)) for m in DEFAULT_MODELS + EXTRA_MODELS
        }
        self.collections: dict[str, FakeCollection] = {
            c.slug: replace(c, models=list(c.models)) for c in DEFAULT_COLLECTIONS
        }
        self.hardware: list[dict[str, str]] = [dict(h) for h in DEFAULT_HARDWARE]
        # Enum schemas per model id, referenced by `allOf: [{$ref: "#/components/schemas/<name>"}]`.
        self.components: dict[str, dict[str, dict[str, Any]]] = {
            k: dict(v) for k, v in EXTRA_COMPONENTS.items()
        }
        self.scripts: dict[str, Script] = {}  # model id → Script; default_script otherwise
        self.default_script = Script()
        self.deployments: dict[str, str] = {}  # "owner/name" of a deployment → model id
        # Output bytes: content_for(prediction, index, role) wins, then content[kind], then defaults.
        self.content: dict[str, tuple[bytes, str, str]] = {}
        self.content_for: Callable[[FakePrediction, int, str], tuple[bytes, str, str] | None] | None = None
        self.data_ttl_s = 3600.0  # outputs (and their files) vanish this long after creation
        self.expired_status = 404  # what an expired output file answers: 404 or 410
        self.delivery_failures = 0  # the next N output-file GETs answer 503
        self.validate_inputs = True  # check inputs against the model's schema → 422 invalid_fields
        self.page_size = 100  # GET /predictions page size
        self.prefer_wait_max = 60  # `Prefer: wait=N` is clamped to 1..this
        self.cancel_after_range = (5.0, 86400.0)  # valid Cancel-After seconds (real: 5 s – 24 h)
        self.default_webhook_events: list[str] = ["output", "completed"]  # when no filter is sent
        self.webhook_throttle_s = 0.5  # min gap between `output`/`logs` webhooks of one prediction
        self.webhook_retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)  # terminal retries only
        self.webhook_timeout_s = 2.0
        self.drop_webhooks: bool | set[str] = False  # True: lose every webhook; a set: those events
        self.duplicate_webhooks = False  # send each webhook twice (same webhook-id)
        self.out_of_order_webhooks = False  # hold a prediction's webhooks; send `completed` first
        self.forge_signatures = False  # sign with a secret that is not ours
        self.webhook_timestamp_offset_s = 0.0  # skew the webhook-timestamp (stale-replay tests)
        self.aborted_sends_completed = True  # whether `aborted` triggers the `completed` event

        # --- records ---------------------------------------------------------------------------
        self.requests: list[RecordedRequest] = []
        self.predictions: dict[str, FakePrediction] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.webhook_deliveries: list[WebhookDelivery] = []

        self._failures: list[_Failure] = []
        self._slow: list[tuple[float, bool]] = []  # (delay, create_first)
        self._offset = 0.0
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._outbox: list[_Outgoing] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: uvicorn.Server | None = None
        self._port = 0
        self.app = self._build_app()

    # --- test-facing API -----------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def delivery_allow_entry(self) -> str:
        """The downloads allow-list entry that admits this fake's output files."""
        return self.root_url

    def fail_next_create(
        self,
        status: int,
        *,
        times: int = 1,
        ratelimit_reset: float = 1,
        retry_after: str | None = None,
        invalid_fields: list[dict[str, Any]] | None = None,
        detail: str | None = None,
        create_anyway: bool = False,
    ) -> None:
        """The next `times` creates answer `status` (401, 402, 404, 422, 429, 500, 503, …).

        429 carries `ratelimit-reset` (and `Retry-After` when given). 422 carries `invalid_fields`
        (default: a bad `output_format`). `create_anyway` with a 5xx makes the prediction first.
        """
        with self._lock:
            for _ in range(times):
                self._failures.append(
                    _Failure(status, ratelimit_reset, retry_after, invalid_fields, detail, create_anyway)
                )

    def slow_next_create(self, delay_s: float, *, times: int = 1, create_first: bool = True) -> None:
        """The next `times` creates answer after `delay_s`. `create_first`: the prediction exists
        from the start (a lost response); otherwise it is made only after the delay."""
        with self._lock:
            self._slow.extend([(delay_s, create_first)] * times)

    def advance(self, seconds: float) -> None:
        """Move the fake clock forward (deadlines, data removal) without waiting."""
        with self._lock:
            self._offset += seconds
            self._advance_all()

    def now(self) -> float:
        return time.time() + self._offset

    @property
    def create_requests(self) -> list[RecordedRequest]:
        return [
            r
            for r in list(self.requests)
            if r.method == "POST"
            and (r.path == "/v1/predictions" or r.path.endswith("/predictions"))
            and "/cancel" not in r.path
        ]

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if r.method == method and r.path == path]

    def prediction_json(self, prediction_id: str) -> dict[str, Any]:
        with self._lock:
            pred = self.predictions[prediction_id]
            self._advance(pred)
            return self._to_json(pred)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until `predicate()` (evaluated under the fake's lock) holds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("FakeReplicate: condition not reached in time")
                self._changed.wait(min(remaining, 0.05))

    def deliveries(self, prediction_id: str | None = None, event: str | None = None) -> list[WebhookDelivery]:
        with self._lock:
            return [
                d
                for d in self.webhook_deliveries
                if (prediction_id is None or d.prediction_id == prediction_id)
                and (event is None or d.event == event)
            ]

    def output_url(self, prediction_id: str, filename: str) -> str:
        return f"{self.root_url}/delivery/{prediction_id}/{filename}"

    # --- server lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeReplicate:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        server = self._server
        self._threads = [
            threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-replicate"
            ),
            threading.Thread(target=self._tick_loop, daemon=True, name="fake-replicate-clock"),
            threading.Thread(target=self._send_loop, daemon=True, name="fake-replicate-webhooks"),
        ]
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Replicate server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FakeReplicate:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the clock: lifecycle ---------------------------------------------------------------------

    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._advance_all()
            time.sleep(0.01)

    def _advance_all(self) -> None:
        for pred in list(self.predictions.values()):
            self._advance(pred)

    def _advance(self, p: FakePrediction) -> None:
        """Bring one prediction up to the fake clock. Caller holds the lock."""
        now = self.now()
        if p.status in TERMINAL:
            if not p.data_removed and now >= p.created + self.data_ttl_s:
                p.data_removed = True
                p.output = None
                p.logs = ""
                p.input = {}
                self._changed.notify_all()
            return
        t_start = p.created + p.script.start_after
        t_end = t_start + p.script.run_for
        if p.deadline is not None and p.deadline <= now and p.deadline < t_end:
            if p.deadline < t_start:
                p.status = "aborted"  # never ran, not billed
                p.completed = p.deadline
                p.error = None
                if self.aborted_sends_completed:
                    self._emit(p, "completed")
                else:
                    self._flush_held(p)
                self._changed.notify_all()
                return
            if p.status == "starting":
                self._start(p, t_start)
            self._finish(p, "canceled", p.deadline)
            return
        if p.status == "starting" and now >= t_start:
            self._start(p, t_start)
        if (
            p.status == "processing"
            and p.script.output_early
            and p.output is None
            and now >= t_start + p.script.run_for / 2
        ):
            p.output = self._build_output(p)
            self._emit(p, "output")
        if p.status == "processing" and now >= t_end:
            self._finish(p, p.script.status, t_end)

    def _start(self, p: FakePrediction, at: float) -> None:
        p.status = "processing"
        p.started = at
        self._emit(p, "start")
        for line in p.script.logs:
            p.logs += line + "\n"
        if p.script.logs:
            self._emit(p, "logs")
        self._changed.notify_all()

    def _finish(self, p: FakePrediction, status: str, at: float) -> None:
        p.status = status
        p.completed = at
        if status == "succeeded":
            if p.output is None:
                p.output = self._build_output(p)
                self._emit(p, "output")
        elif status == "failed":
            p.error = p.script.error
            p.output = None
        p.logs += f"{status} after {max(0.0, at - (p.started or at)):.2f}s\n"
        p.metrics = {
            "predict_time": round(max(0.0, at - (p.started or at)), 4),
            "total_time": round(at - p.created, 4),
        }
        self._emit(p, "completed")
        self._changed.notify_all()

    def _content(self, p: FakePrediction, index: int, role: str) -> tuple[bytes, str, str]:
        if self.content_for is not None:
            custom = self.content_for(p, index, role)
            if custom is not None:
                return custom
        kind = "image" if role == "spectrogram" else p.model.kind
        return self.content.get(kind) or default_content(kind)

    def _file_url(self, p: FakePrediction, index: int, role: str, stem: str) -> str:
        data, ctype, ext = self._content(p, index, role)
        filename = f"{stem}.{ext}"
        p.files[filename] = (data, ctype)
        return self.output_url(p.id, filename)

    def _data_url(self, p: FakePrediction, index: int, role: str) -> str:
        data, ctype, _ext = self._content(p, index, role)
        return f"data:{ctype};base64,{base64.b64encode(data).decode()}"

    def _build_output(self, p: FakePrediction) -> Any:
        shape = p.script.output if p.script.output is not None else p.model.output
        if callable(shape):
            return shape(p)
        inline = p.waited and p.script.inline_when_waited
        if shape == "data_url" or (inline and shape == "uri"):
            return self._data_url(p, 0, "main")
        if shape == "uri":
            return self._file_url(p, 0, "main", "output")
        if shape == "uri_list":
            if inline:
                return [
                    self._data_url(p, i, "main" if i == 0 else f"output_{i}") for i in range(p.script.count)
                ]
            return [
                self._file_url(p, i, "main" if i == 0 else f"output_{i}", f"out-{i}")
                for i in range(p.script.count)
            ]
        if shape == "object":
            main, *rest = p.script.object_keys
            value = {main: self._file_url(p, 0, "main", main)}
            for i, key in enumerate(rest, start=1):
                value[key] = self._file_url(p, i, key, key)
            return value
        if shape == "text":
            return "a caption, not a file"
        if shape == "tokens":  # a language model's streamed answer, concatenated by clients
            return ["This ", "is ", "a ", "fake ", "answer."]
        return None

    # --- webhooks -----------------------------------------------------------------------------------

    def _emit(self, p: FakePrediction, event: str) -> None:
        """Queue a webhook for `event` if the prediction asked for it. Caller holds the lock."""
        if not p.webhook or event not in p.events_filter:
            if event == "completed":
                self._flush_held(p)
            return
        now = self.now()
        if event in ("output", "logs"):
            if now - p.last_sent.get(event, -math.inf) < self.webhook_throttle_s:
                return  # throttled; the terminal webhook carries everything anyway
            p.last_sent[event] = now
        body = json.dumps(self._to_json(p)).encode()
        if self.out_of_order_webhooks:
            p.held_events.append((event, body))
            if event == "completed":
                self._flush_held(p)
            return
        self._enqueue(p, event, body)

    def _flush_held(self, p: FakePrediction) -> None:
        if not p.held_events:
            return
        held, p.held_events = p.held_events, []
        terminal = [h for h in held if h[0] == "completed"]
        rest = [h for h in held if h[0] != "completed"]
        for event, body in terminal + rest:  # completed first: the rare real-world race, forced
            self._enqueue(p, event, body)

    def _enqueue(self, p: FakePrediction, event: str, body: bytes) -> None:
        assert p.webhook is not None
        webhook_id = "msg_" + secrets.token_urlsafe(18)
        copies = 2 if self.duplicate_webhooks else 1
        for _ in range(copies):
            delivery = WebhookDelivery(p.id, event, p.webhook, webhook_id, 1, body, {})
            dropped = self.drop_webhooks is True or (
                isinstance(self.drop_webhooks, set) and event in self.drop_webhooks
            )
            if dropped:
                delivery.error = "dropped by the fake"
                self.webhook_deliveries.append(delivery)
                continue
            heapq.heappush(
                self._outbox, _Outgoing(time.monotonic(), next(self._seq), delivery, event == "completed")
            )
        self._changed.notify_all()

    def _send_loop(self) -> None:
        with httpx.Client(timeout=self.webhook_timeout_s, trust_env=False) as client:
            while not self._stop.is_set():
                with self._changed:
                    while not self._stop.is_set() and (
                        not self._outbox or self._outbox[0].due > time.monotonic()
                    ):
                        wait = self._outbox[0].due - time.monotonic() if self._outbox else 0.05
                        self._changed.wait(max(0.001, min(wait, 0.05)))
                    if self._stop.is_set():
                        return
                    item = heapq.heappop(self._outbox)
                self._deliver(client, item)

    def _deliver(self, client: httpx.Client, item: _Outgoing) -> None:
        d = item.delivery
        secret = self.webhook_secret
        if self.forge_signatures:
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        ts = int(time.time() + self._offset + self.webhook_timestamp_offset_s)
        headers = {
            **signed_headers(secret, d.webhook_id, d.body, timestamp=ts),
            "content-type": "application/json",
            "user-agent": "Replicate-Webhooks/fake",
        }
        sent = replace(d, headers=headers)
        try:
            response = client.post(d.url, content=d.body, headers=headers)
            sent.status_code = response.status_code
        except httpx.HTTPError as exc:
            sent.error = f"{type(exc).__name__}: {exc}"
        ok = sent.status_code is not None and 200 <= sent.status_code < 300
        with self._changed:
            self.webhook_deliveries.append(sent)
            # Only the terminal webhook is retried (same webhook-id), a few times with backoff.
            if not ok and item.terminal and d.attempt <= len(self.webhook_retry_delays):
                retry = replace(d, attempt=d.attempt + 1, headers={})
                due = time.monotonic() + self.webhook_retry_delays[d.attempt - 1]
                heapq.heappush(self._outbox, _Outgoing(due, next(self._seq), retry, True))
            self._changed.notify_all()

    # --- JSON views -------------------------------------------------------------------------------

    def _to_json(self, p: FakePrediction, *, listed: bool = False) -> dict[str, Any]:
        urls = {
            "get": f"{self.base_url}/predictions/{p.id}",
            "cancel": f"{self.base_url}/predictions/{p.id}/cancel",
            "web": f"https://replicate.com/p/{p.id}",
        }
        body: dict[str, Any] = {
            "id": p.id,
            "model": p.model.id,
            "version": p.version,
            "input": p.input,
            "output": p.output,
            "logs": p.logs,
            "error": p.error,
            "status": p.status,
            "created_at": _ts(p.created),
            "started_at": _ts(p.started),
            "completed_at": _ts(p.completed),
            "urls": urls,
            "metrics": p.metrics,
            "data_removed": p.data_removed,
            "source": "api",
            "deployment": p.deployment,
            "webhook": p.webhook,
            "webhook_events_filter": p.events_filter if p.webhook else None,
        }
        if p.deadline is not None:
            body["deadline"] = _ts(p.deadline)
        if listed:
            body.pop("logs")  # list items may leave out logs
        return body

    def _model_json(self, m: FakeModel) -> dict[str, Any]:
        return {
            "url": f"https://replicate.com/{m.id}",
            "owner": m.owner,
            "name": m.name,
            "description": m.description or f"fake {m.kind} model",
            "visibility": "public",
            "github_url": None,
            "paper_url": None,
            "license_url": None,
            "run_count": m.run_count,
            "cover_image_url": f"{self.root_url}/covers/{m.id}.png" if m.cover else None,
            "default_example": self._example_json(m),
            "is_official": m.official,
            "latest_version": self._version_json(m, m.versions[0]) if m.versions else None,
        }

    def example_url(self, m: FakeModel, index: int = 0) -> str:
        """Where the fake serves `m`'s example output file (the stand-in for replicate.delivery)."""
        ext = _MAKERS[m.kind][2] if m.kind in _MAKERS else "bin"
        return f"{self.root_url}/examples/{m.id}/output-{index}.{ext}"

    def _example_json(self, m: FakeModel) -> dict[str, Any] | None:
        """The model's default example: a finished prediction, as Replicate shows on the model."""
        if m.example_output is None:
            return None
        output = m.example_output
        if output == "auto":
            shape = m.output
            if shape == "tokens" or m.kind == "text":
                output = ["Llamas ", "in ", "the ", "mist"]
            elif shape == "uri_list":
                output = [self.example_url(m, 0)]
            elif shape == "object":
                output = {"audio": self.example_url(m, 0), "spectrogram": self.example_url(m, 1)}
            else:
                output = self.example_url(m)
        return {
            "id": "example" + hashlib.sha256(m.id.encode()).hexdigest()[:19],
            "model": m.id,
            "version": m.versions[0] if m.versions else "hidden",
            "input": dict(m.example_input),
            "output": output,
            "logs": "",
            "error": None,
            "status": "succeeded",
            "created_at": "2024-01-01T00:00:00.000000Z",
            "started_at": "2024-01-01T00:00:01.000000Z",
            "completed_at": "2024-01-01T00:00:05.000000Z",
            "urls": {},
            "metrics": {"predict_time": 4.0},
        }

    def _output_schema(self, m: FakeModel) -> dict[str, Any]:
        if m.output_schema is not None:
            return m.output_schema
        if m.output == "uri_list":
            return {"type": "array", "items": {"type": "string", "format": "uri"}, "title": "Output"}
        if m.output == "object":
            return {
                "type": "object",
                "title": "Output",
                "properties": {
                    "audio": {"type": "string", "format": "uri"},
                    "spectrogram": {"type": "string"},
                },
            }
        if m.output == "tokens":
            return {
                "type": "array",
                "items": {"type": "string"},
                "title": "Output",
                "x-cog-array-type": "iterator",
                "x-cog-array-display": "concatenate",
            }
        if m.output == "text":
            return {"type": "string", "title": "Output"}
        return {"type": "string", "format": "uri", "title": "Output"}

    def _version_json(self, m: FakeModel, version: str) -> dict[str, Any]:
        schemas: dict[str, Any] = {"Input": m.input_schema, "Output": self._output_schema(m)}
        schemas.update(self.components.get(m.id, {}))
        return {
            "id": version,
            "created_at": "2024-01-01T00:00:00.000000Z",
            "cog_version": "0.9.4",
            "openapi_schema": {
                "openapi": "3.0.2",
                "info": {"title": "Cog", "version": "0.1.0"},
                "paths": {},
                "components": {"schemas": schemas},
            },
        }

    def search_json(self, query: str, limit: int) -> dict[str, Any]:
        """`GET /v1/search`: models ranked by how many query words their id, description and tags
        hold (ties by run count), and the collections whose name, slug or description match."""
        words = [w for w in re.split(r"\s+", query.lower()) if w]

        def score(text: str) -> int:
            return sum(1 for w in words if w in text)

        ranked: list[tuple[int, FakeModel]] = []
        for m in self.models.values():
            hay = " ".join([m.id, m.description, " ".join(m.tags), m.kind]).lower()
            if (points := score(hay)) > 0:
                ranked.append((points, m))
        ranked.sort(key=lambda pair: (-pair[0], -pair[1].run_count, pair[1].id))
        models = [
            {
                "model": self._model_json(m),
                "metadata": {
                    "generated_description": m.description,
                    "score": float(points),
                    "tags": list(m.tags),
                },
            }
            for points, m in ranked[:limit]
        ]
        collections = [
            {"name": c.name, "slug": c.slug, "description": c.description, "models": list(c.models)}
            for c in self.collections.values()
            if score(" ".join([c.slug, c.name, c.description]).lower()) > 0
        ]
        return {"query": query, "models": models, "collections": collections, "pages": []}

    # --- input validation (the subset of JSON schema Replicate reports as invalid_fields) ---------

    def _invalid_fields(self, model: FakeModel, inputs: dict[str, Any]) -> list[dict[str, Any]]:
        schema = model.input_schema
        props: dict[str, Any] = schema.get("properties", {})
        problems: list[dict[str, Any]] = []
        for name in schema.get("required", []):
            if name not in inputs:
                problems.append({"type": "required", "field": "input", "description": f"{name} is required"})
        for name, value in inputs.items():
            spec = props.get(name)
            where = f"input.{name}"
            if spec is None:
                if schema.get("additionalProperties") is False:
                    problems.append(
                        {
                            "type": "additional_property_not_allowed",
                            "field": "input",
                            "description": f"Additional property {name} is not allowed",
                        }
                    )
                continue
            if value is None and spec.get("nullable"):
                continue
            expected = spec.get("type")
            type_ok = {
                "string": isinstance(value, str),
                "integer": isinstance(value, int) and not isinstance(value, bool),
                "number": isinstance(value, int | float) and not isinstance(value, bool),
                "boolean": isinstance(value, bool),
            }.get(expected, True)
            if not type_ok:
                problems.append(
                    {
                        "type": "invalid_type",
                        "field": where,
                        "description": f"Invalid type. Expected: {expected}",
                    }
                )
                continue
            if "enum" in spec and value not in spec["enum"]:
                options = ", ".join(json.dumps(o) for o in spec["enum"])
                problems.append(
                    {
                        "type": "enum",
                        "field": where,
                        "description": f"{name} must be one of the following: {options}",
                    }
                )
            if isinstance(value, int | float) and not isinstance(value, bool):
                if "maximum" in spec and value > spec["maximum"]:
                    problems.append(
                        {
                            "type": "number_lte",
                            "field": where,
                            "description": f"Must be less than or equal to {spec['maximum']}",
                        }
                    )
                if "minimum" in spec and value < spec["minimum"]:
                    problems.append(
                        {
                            "type": "number_gte",
                            "field": where,
                            "description": f"Must be greater than or equal to {spec['minimum']}",
                        }
                    )
        return problems

    # --- HTTP ---------------------------------------------------------------------------------------

    def _build_app(self) -> Any:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        fake = self

        def unauthorized(request: Request) -> JSONResponse | None:
            header = request.headers.get("authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() in ("bearer", "token") and secrets.compare_digest(value.strip(), fake.token):
                return None
            return _problem(401, "You did not pass a valid authentication token", "Unauthenticated")

        def find_version(spec: str) -> tuple[FakeModel, str] | None:
            """`owner/name` (official only), `owner/name:<hex>`, or a bare `<hex>`."""
            model_part, _, version = spec.partition(":")
            if not version and "/" not in model_part:
                for m in fake.models.values():
                    if model_part in m.versions:
                        return m, model_part
                return None
            m = fake.models.get(model_part)
            if m is None:
                return None
            if not version:
                return (m, "hidden") if m.official else None
            return (m, version) if version in m.versions else None

        async def create(request: Request, model: FakeModel | None, deployment: str | None) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            try:
                body = await request.json()
            except ValueError:
                return _problem(400, "Request body is not valid JSON")
            if not isinstance(body, dict):
                return _problem(400, "Request body must be a JSON object")
            with fake._lock:
                failure = fake._failures.pop(0) if fake._failures else None
                slow = fake._slow.pop(0) if fake._slow else None
            if failure is not None and not failure.create_anyway:
                return failure_response(failure)

            version = "hidden"
            if model is None:
                spec = body.get("version")
                if not isinstance(spec, str) or not spec:
                    return _problem(
                        422,
                        "- version: version is required\n",
                        "Input validation failed",
                        invalid_fields=[
                            {"type": "required", "field": "version", "description": "version is required"}
                        ],
                    )
                found = find_version(spec)
                if found is None:
                    return _problem(
                        422,
                        "The specified version does not exist "
                        "(or perhaps you don't have permission to use it?)",
                        "Invalid version or not permitted",
                    )
                model, version = found
            inputs = body.get("input")
            if not isinstance(inputs, dict):
                return _problem(
                    422,
                    "- input: input is required\n",
                    "Input validation failed",
                    invalid_fields=[
                        {"type": "required", "field": "input", "description": "input is required"}
                    ],
                )
            if fake.validate_inputs and (problems := fake._invalid_fields(model, inputs)):
                detail = "".join(f"- {p['field']}: {p['description']}\n" for p in problems)
                return _problem(422, detail, "Input validation failed", invalid_fields=problems)
            webhook = body.get("webhook")
            events = body.get("webhook_events_filter")
            if events is not None and (not isinstance(events, list) or not set(events) <= set(EVENTS)):
                return _problem(422, "- webhook_events_filter: invalid event\n", "Input validation failed")
            deadline: float | None = None
            if (cancel_after := request.headers.get("cancel-after")) is not None:
                seconds = parse_duration(cancel_after)
                low, high = fake.cancel_after_range
                if seconds is None or not low <= seconds <= high:
                    return _problem(422, f"Cancel-After must be a duration between {low:g}s and {high:g}s")
                deadline = fake.now() + seconds

            def make() -> FakePrediction:
                with fake._lock:
                    pred = FakePrediction(
                        id=_new_id(),
                        model=model,
                        version=version,
                        input=inputs,
                        script=fake.scripts.get(model.id, fake.default_script),
                        created=fake.now(),
                        webhook=webhook if isinstance(webhook, str) and webhook else None,
                        events_filter=list(events)
                        if events is not None
                        else list(fake.default_webhook_events),
                        deadline=deadline,
                        deployment=deployment,
                    )
                    pred.waited = request.headers.get("prefer", "").strip().startswith("wait")
                    fake.predictions[pred.id] = pred
                    fake._changed.notify_all()
                    return pred

            pred: FakePrediction | None = None
            if slow is not None:
                delay, create_first = slow
                if create_first:
                    pred = make()
                await asyncio.sleep(delay)
            if pred is None:
                pred = make()
            if failure is not None:  # create_anyway: made, then the answer is lost in a 5xx
                return failure_response(failure)

            headers = {"Location": f"{fake.base_url}/predictions/{pred.id}"}
            prefer = request.headers.get("prefer", "").strip()
            if prefer.startswith("wait"):
                _, _, n = prefer.partition("=")
                try:
                    wait_s = int(n) if n else 60
                except ValueError:
                    wait_s = 60
                wait_s = max(1, min(wait_s, fake.prefer_wait_max))
                headers["Preference-Applied"] = f"wait={wait_s}"
                until = time.monotonic() + wait_s
                while time.monotonic() < until:
                    with fake._lock:
                        fake._advance(pred)
                        if pred.status in TERMINAL or pred.output is not None:
                            break
                    await asyncio.sleep(0.01)
            with fake._lock:
                fake._advance(pred)
                return JSONResponse(fake._to_json(pred), status_code=201, headers=headers)

        def failure_response(failure: _Failure) -> JSONResponse:
            status = failure.status
            if status == 401:
                return _problem(
                    401, failure.detail or "You did not pass a valid authentication token", "Unauthenticated"
                )
            if status == 402:
                return _problem(
                    402,
                    failure.detail
                    or "You have insufficient credit to run this model. Go to https://replicate.com/account/billing",
                    "Insufficient credit",
                )
            if status == 422:
                fields = failure.invalid_fields or [
                    {
                        "type": "enum",
                        "field": "input.output_format",
                        "description": 'output_format must be one of the following: "wav", "mp3"',
                    }
                ]
                detail = failure.detail or "".join(f"- {f['field']}: {f['description']}\n" for f in fields)
                return _problem(422, detail, "Input validation failed", invalid_fields=fields)
            if status == 429:
                response = _problem(
                    429,
                    failure.detail
                    or f"Request was throttled. Your rate limit resets in ~{failure.ratelimit_reset:g}s.",
                )
                response.headers["ratelimit-reset"] = f"{failure.ratelimit_reset:g}"
                response.headers["ratelimit-remaining"] = "0"
                if failure.retry_after is not None:
                    response.headers["Retry-After"] = failure.retry_after
                return response
            if status == 404:
                return _problem(404, failure.detail or "Not found")
            return _problem(status, failure.detail or "Internal server error", "Server error")

        @app.post("/v1/predictions")
        async def create_prediction(request: Request) -> Response:
            return await create(request, None, None)

        @app.post("/v1/models/{owner}/{name}/predictions")
        async def create_model_prediction(owner: str, name: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            model = fake.models.get(f"{owner}/{name}")
            if model is None:
                return _problem(404, "The requested resource could not be found", "Not found")
            if not model.official:
                return _problem(
                    422,
                    f"{model.id} is not an official model: create predictions with a version",
                    "Invalid version or not permitted",
                )
            return await create(request, model, None)

        @app.post("/v1/deployments/{owner}/{name}/predictions")
        async def create_deployment_prediction(owner: str, name: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            model_id = fake.deployments.get(f"{owner}/{name}")
            if model_id is None or model_id not in fake.models:
                return _problem(404, "The requested deployment could not be found", "Not found")
            return await create(request, fake.models[model_id], f"{owner}/{name}")

        @app.get("/v1/predictions/{prediction_id}")
        def get_prediction(prediction_id: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            with fake._lock:
                pred = fake.predictions.get(prediction_id)
                if pred is None:
                    return _problem(404, "The requested resource could not be found", "Not found")
                fake._advance(pred)
                return JSONResponse(fake._to_json(pred))

        @app.post("/v1/predictions/{prediction_id}/cancel")
        def cancel_prediction(prediction_id: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            with fake._lock:
                pred = fake.predictions.get(prediction_id)
                if pred is None:
                    return _problem(404, "The requested resource could not be found", "Not found")
                fake._advance(pred)
                if pred.status not in TERMINAL:  # a finished prediction cannot be canceled
                    fake._finish(pred, "canceled", fake.now())
                return JSONResponse(fake._to_json(pred))

        @app.get("/v1/predictions")
        def list_predictions(request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            q = request.query_params
            try:
                after = _parse_time(q["created_after"]) if "created_after" in q else None
                before = _parse_time(q["created_before"]) if "created_before" in q else None
                cursor = int(q.get("cursor", "0"))
            except ValueError:
                return _problem(400, "invalid created_after / created_before / cursor")
            with fake._lock:
                fake._advance_all()
                rows = sorted(fake.predictions.values(), key=lambda p: p.created, reverse=True)
                # Compare at the microsecond resolution created_at is shown in, as a database would.
                rows = [
                    p
                    for p in rows
                    if (after is None or _dt(p.created) >= after)
                    and (before is None or _dt(p.created) < before)
                ]
                page = rows[cursor : cursor + fake.page_size]
                results = [fake._to_json(p, listed=True) for p in page]
            params = {k: v for k, v in q.items() if k != "cursor"}
            nxt = None
            if cursor + fake.page_size < len(rows):
                nxt = f"{fake.base_url}/predictions?" + urlencode(
                    {**params, "cursor": cursor + fake.page_size}
                )
            prev = None
            if cursor > 0:
                prev = f"{fake.base_url}/predictions?" + urlencode(
                    {**params, "cursor": max(0, cursor - fake.page_size)}
                )
            return JSONResponse({"next": nxt, "previous": prev, "results": results})

        @app.get("/v1/models/{owner}/{name}")
        def get_model(owner: str, name: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            model = fake.models.get(f"{owner}/{name}")
            if model is None:
                return _problem(404, "The requested resource could not be found", "Not found")
            return JSONResponse(fake._model_json(model))

        @app.get("/v1/models/{owner}/{name}/versions")
        def list_versions(owner: str, name: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            model = fake.models.get(f"{owner}/{name}")
            if model is None:
                return _problem(404, "The requested resource could not be found", "Not found")
            results = [fake._version_json(model, v) for v in model.versions]
            return JSONResponse({"next": None, "previous": None, "results": results})

        @app.get("/v1/models/{owner}/{name}/versions/{version_id}")
        def get_version(owner: str, name: str, version_id: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            model = fake.models.get(f"{owner}/{name}")
            if model is None or version_id not in model.versions:
                return _problem(404, "The requested resource could not be found", "Not found")
            return JSONResponse(fake._version_json(model, version_id))

        @app.get("/v1/search")
        def search(request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            query = request.query_params.get("query", "").strip()
            if not query:
                return _problem(
                    422,
                    "- query: query is required\n",
                    "Input validation failed",
                    invalid_fields=[
                        {"type": "required", "field": "query", "description": "query is required"}
                    ],
                )
            try:
                limit = int(request.query_params.get("limit", "20"))
            except ValueError:
                limit = 0
            if not 1 <= limit <= 50:
                return _problem(422, "- limit: Must be between 1 and 50\n", "Input validation failed")
            with fake._lock:
                return JSONResponse(fake.search_json(query, limit))

        @app.get("/v1/collections")
        def list_collections(request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            results = [
                {"name": c.name, "slug": c.slug, "description": c.description}
                for c in fake.collections.values()
            ]
            return JSONResponse({"next": None, "previous": None, "results": results})

        @app.get("/v1/collections/{slug}")
        def get_collection(slug: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            collection = fake.collections.get(slug)
            if collection is None:
                return _problem(404, "The requested resource could not be found", "Not found")
            models = [fake._model_json(fake.models[m]) for m in collection.models if m in fake.models]
            body = {
                "name": collection.name,
                "slug": collection.slug,
                "description": collection.description,
                "models": models,
            }
            return JSONResponse(body)

        @app.get("/v1/hardware")
        def hardware(request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            return JSONResponse(list(fake.hardware))

        # A model's cover image and example output files (public, like replicate.delivery).
        @app.get("/covers/{owner}/{filename}")
        def cover(owner: str, filename: str) -> Response:
            name = filename.removesuffix(".png")
            if f"{owner}/{name}" not in fake.models:
                return Response("not found", status_code=404)
            return Response(default_content("image")[0], media_type="image/png")

        @app.get("/examples/{owner}/{name}/{filename}")
        def example_file(owner: str, name: str, filename: str) -> Response:
            model = fake.models.get(f"{owner}/{name}")
            if model is None or model.kind not in _MAKERS:
                return Response("not found", status_code=404)
            data, ctype, _ext = default_content(model.kind)
            return Response(data, media_type=ctype)

        @app.get("/v1/webhooks/default/secret")
        def webhook_secret(request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            return JSONResponse({"key": fake.webhook_secret})

        @app.get("/v1/account")
        def account(request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            return JSONResponse({"type": "user", "username": "fake", "name": "Fake User", "github_url": None})

        @app.post("/v1/files")
        async def upload(request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            form = await request.form()
            content = form.get("content")
            if content is None or isinstance(content, str):
                return _problem(
                    422,
                    "- content: content is required\n",
                    "Input validation failed",
                    invalid_fields=[
                        {"type": "required", "field": "content", "description": "content is required"}
                    ],
                )
            data = await content.read()
            metadata_raw = form.get("metadata")
            metadata = json.loads(metadata_raw) if isinstance(metadata_raw, str) and metadata_raw else {}
            file_id = _new_id()
            created = fake.now()
            obj = {
                "id": file_id,
                "name": content.filename,
                "content_type": content.content_type or "application/octet-stream",
                "size": len(data),
                "checksums": {"sha256": hashlib.sha256(data).hexdigest()},
                "metadata": metadata,
                "created_at": _ts(created),
                "expires_at": _ts(created + 86400),
                "urls": {"get": f"{fake.base_url}/files/{file_id}"},
            }
            with fake._lock:
                fake.files[file_id] = {**obj, "_data": data}
            return JSONResponse(obj, status_code=201)

        def public_file(file_id: str) -> dict[str, Any] | None:
            entry = fake.files.get(file_id)
            return None if entry is None else {k: v for k, v in entry.items() if k != "_data"}

        @app.get("/v1/files")
        def list_files(request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            results = [public_file(f) for f in reversed(list(fake.files))]
            return JSONResponse({"next": None, "previous": None, "results": results})

        @app.get("/v1/files/{file_id}")
        def get_file(file_id: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            obj = public_file(file_id)
            if obj is None:
                return _problem(404, "The requested resource could not be found", "Not found")
            return JSONResponse(obj)

        @app.get("/v1/files/{file_id}/download")
        def download_file(file_id: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            entry = fake.files.get(file_id)
            if entry is None:
                return _problem(404, "The requested resource could not be found", "Not found")
            return Response(entry["_data"], media_type=entry["content_type"])

        @app.delete("/v1/files/{file_id}")
        def delete_file(file_id: str, request: Request) -> Response:
            if (denied := unauthorized(request)) is not None:
                return denied
            with fake._lock:
                if fake.files.pop(file_id, None) is None:
                    return _problem(404, "The requested resource could not be found", "Not found")
            return Response(status_code=204)

        # Output files: the stand-in for replicate.delivery (no auth, expires with the data).
        @app.get("/delivery/{prediction_id}/{filename}")
        def delivery(prediction_id: str, filename: str) -> Response:
            with fake._lock:
                if fake.delivery_failures > 0:
                    fake.delivery_failures -= 1
                    return Response("upstream unavailable", status_code=503)
                pred = fake.predictions.get(prediction_id)
                if pred is None or filename not in pred.files:
                    return Response("not found", status_code=404)
                fake._advance(pred)
                if fake.now() >= pred.created + fake.data_ttl_s:
                    return Response("expired", status_code=fake.expired_status)
                data, ctype = pred.files[filename]
            return Response(data, media_type=ctype)

        # Helpers for download tests: redirects, sized bodies and arbitrary statuses.
        @app.get("/_test/redirect")
        def redirect(to: str, status: int = 302) -> Response:
            return RedirectResponse(to, status_code=status)

        @app.get("/_test/loop/{n}")
        def loop(n: int) -> Response:
            return RedirectResponse(f"/_test/loop/{n + 1}", status_code=302)

        @app.get("/_test/bytes")
        def sized(
            size: int, chunked: bool = False, content_type: str = "application/octet-stream"
        ) -> Response:
            if not chunked:
                return Response(b"\0" * size, media_type=content_type)

            def body() -> Iterator[bytes]:
                left = size
                while left > 0:
                    n = min(left, 16384)
                    left -= n
                    yield b"\0" * n

            return StreamingResponse(body(), media_type=content_type)

        @app.get("/_test/status/{code}")
        def status(code: int) -> Response:
            return Response(f"status {code}", status_code=code)

        return _Recorder(app, fake)

    # --- recording ----------------------------------------------------------------------------------

    def _record(self, scope: Mapping[str, Any]) -> RecordedRequest:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        raw_query = scope.get("query_string", b"").decode("latin-1")
        rec = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(raw_query, keep_blank_values=True)),
            headers=headers,
        )
        with self._lock:
            self.requests.append(rec)
        return rec


class _Recorder:
    """ASGI wrapper that records every request (with its body) before the app sees it."""

    def __init__(self, app: FastAPI, fake: FakeReplicate) -> None:
        self._app = app
        self._fake = fake

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        rec = self._fake._record(scope)
        chunks: list[bytes] = []

        async def recording_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    rec.body = b"".join(chunks)
            return message

        await self._app(scope, recording_receive, send)


# ---------------------------------------------------------------------------------------------
# A webhook receiver (what the API's webhook route would be), for tests
# ---------------------------------------------------------------------------------------------


@dataclass
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that records POSTs; `fail_next(n)` makes it answer 500."""

    def __init__(self) -> None:
        self.received: list[ReceivedWebhook] = []
        self._failures = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    receiver.received.append(
                        ReceivedWebhook(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    failing = receiver._failures > 0
                    if failing:
                        receiver._failures -= 1
                    receiver._changed.notify_all()
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/replicate"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def fail_next(self, n: int) -> None:
        with self._changed:
            self._failures += n

    def for_prediction(self, prediction_id: str) -> list[ReceivedWebhook]:
        with self._changed:
            return [w for w in self.received if w.payload.get("id") == prediction_id]

    def wait_for(self, predicate: Callable[[list[ReceivedWebhook]], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self.received)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"webhooks not received in time; got {len(self.received)}")
                self._changed.wait(remaining)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
