#!/usr/bin/env bash
# Local MusicGen on an NVIDIA GPU: install what bench/local_gpu.py needs into a fresh venv and run it.
#
# For a fresh NVIDIA machine whose only network is the Python package index (PyPI or the index in
# PIP_INDEX_URL). Installs the CUDA build of torch==2.13.0 (PyPI's Linux x86-64 torch wheels are the
# CUDA builds; torch is pinned in the same install as the `local` extra, so nothing pulls another
# version) and the project with `.[local]`, checks that torch sees the GPU, then runs the benchmark.
#
#   bash bench/gpu/run_local_gpu.sh                      # results in ./bench-out, or $OUT when set
#   VENV=/tmp/v OUT=/tmp/out bash bench/gpu/run_local_gpu.sh --requests 16
#
# Extra arguments go to bench/local_gpu.py (--seconds, --requests, --skip-plain-batch, ...).
# Writes $OUT/local_gpu.json (the figures), $OUT/local_gpu.log (the run), $OUT/pip.log (the install).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-/tmp/mediagen-gpu-venv}"
OUT="${OUT:-$ROOT/bench-out}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
cd "$ROOT"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || {
  echo "no NVIDIA GPU visible (nvidia-smi failed)" >&2
  exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
started=$(date +%s)
{
  "$VENV/bin/python" -m pip install --upgrade pip
  "$VENV/bin/python" -m pip install "torch==2.13.0" -e ".[local]"
} >"$OUT/pip.log" 2>&1 || {
  tail -40 "$OUT/pip.log" >&2
  exit 1
}
echo "installed in $(( $(date +%s) - started )) s"

"$VENV/bin/python" - <<'PY'
import torch
assert torch.__version__.startswith("2.13.0"), torch.__version__
assert torch.version.cuda, f"torch {torch.__version__} is not a CUDA build"
assert torch.cuda.is_available(), "torch does not see the GPU"
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) on {torch.cuda.get_device_name(0)}")
PY

export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
"$VENV/bin/python" bench/local_gpu.py --out "$OUT" "$@" 2>&1 | tee "$OUT/local_gpu.log"
