"""Where a local model's weights are, how big they are, and how they get there.

Weights live in `MEDIAGEN_MODELS_DIR/<repo id>` (the layout `save_pretrained` and
`snapshot_download(local_dir=…)` write) or, failing that, in the Hugging Face cache a user may
already have filled with other tools. Generation never downloads: only `mediagen models pull` does,
so a request cannot stall on, or be billed for, a multi-gigabyte transfer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mediagen.engines.base import EngineError

# Files no pipeline of ours reads: other frameworks' copies and single-file checkpoints. Pickled
# `*.bin` weights are skipped per model (catalog `local.ignore`) where the repo has safetensors;
# an older repo may have only those.
IGNORED = [
    "*.ckpt",
    "*.pt",
    "*.pth",
    "*.onnx",
    "*.onnx_data",
    "*.msgpack",
    "*.h5",
    "*.ot",
    "*.gguf",
    "*.tflite",
]
MARKERS = ("model_index.json", "config.json")  # diffusers pipeline / transformers model


@dataclass(frozen=True)
class Weights:
    """Weights found on disk: where, from which source, and their size on disk."""

    path: Path
    source: str  # "models_dir" or "hf_cache"
    size_bytes: int


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub resolves it (without importing it)."""
    if cache := os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(cache).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _complete(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in MARKERS)


def _cache_snapshot(repo_id: str, cache: Path) -> Path | None:
    """The snapshot `refs/main` points at, else the newest complete one."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    if ref.is_file():
        pinned = snapshots / ref.read_text().strip()
        if _complete(pinned):
            return pinned
    candidates = [p for p in snapshots.iterdir() if _complete(p)]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def size_on_disk(path: Path) -> int:
    """Bytes of every file under `path`, following the cache's symlinks and counting a blob once."""
    seen: set[Path] = set()
    total = 0
    for file in path.rglob("*"):
        if ".cache" in file.relative_to(path).parts:  # snapshot_download's resume bookkeeping
            continue
        real = file.resolve()
        if real in seen or not real.is_file():
            continue
        seen.add(real)
        total += real.stat().st_size
    return total


def find_weights(repo_id: str, models_dir: Path, *, hf_cache: Path | None = None) -> Weights | None:
    """The weights of `repo_id`: the models dir first, then the Hugging Face cache."""
    own = models_dir / repo_id
    if _complete(own):
        return Weights(own, "models_dir", size_on_disk(own))
    snapshot = _cache_snapshot(repo_id, hf_cache or hf_cache_dir())
    if snapshot is not None:
        return Weights(snapshot, "hf_cache", size_on_disk(snapshot))
    return None


class PullError(EngineError):
    """A download of weights that could not finish; the message says why and what to do."""


def pull(repo_id: str, models_dir: Path, *, ignore: list[str] | None = None) -> Path:
    """Download `repo_id` into `<models_dir>/<repo id>` with huggingface_hub: a progress bar on the
    terminal, and an interrupted pull resumes where it stopped (its partial files are kept)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise PullError("downloading weights needs the local extra: pip install 'mediagen[local]'") from exc
    target = models_dir / repo_id
    target.mkdir(parents=True, exist_ok=True)
    try:
        snapshot_download(repo_id, local_dir=target, ignore_patterns=[*IGNORED, *(ignore or [])])
    except Exception as exc:  # network, auth (gated repos), disk: one clear sentence each
        raise PullError(_explain(repo_id, exc)) from exc
    if not _complete(target):
        raise PullError(f"{repo_id}: the download finished without a config file; is it a model repo?")
    return target


def _explain(repo_id: str, exc: Exception) -> str:
    name = type(exc).__name__
    text = str(exc).splitlines()[0] if str(exc) else name
    if "GatedRepo" in name or "401" in text or "403" in text:
        return (
            f"{repo_id} is gated on Hugging Face: accept its licence on huggingface.co, then log in "
            f"(`hf auth login` or HF_TOKEN) and pull again ({text})"
        )
    if "RepositoryNotFound" in name or "404" in text:
        return f"{repo_id} was not found on Hugging Face ({text})"
    if isinstance(exc, OSError) and exc.errno == 28:
        return f"no space left on the device while downloading {repo_id}; free some and pull again"
    return (
        f"could not download {repo_id} from Hugging Face: {text}. Check the network (or HF_ENDPOINT); "
        "run the same command again to resume"
    )
