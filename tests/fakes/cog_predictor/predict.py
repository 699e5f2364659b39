"""A test predictor served by a real Cog HTTP server (see tests/fakes/cog_server.py).

It writes a WAV sine whose pitch depends on the prompt and seed, so a test can check that the bytes
that came back through Cog's data-URL output are the ones asked for. Two knobs exercise the failure
paths the engine must handle: `fail` raises inside the model, `sleep` keeps the single slot busy
(for 409 and cancel tests).

Every run appends the prompt to `$MEDIAGEN_COG_RUNS_DIR/runs.log`, which lets a test count how many
predictions actually ran (e.g. to prove that a repeated idempotent PUT did not start a second one).
`$MEDIAGEN_COG_SETUP_SECONDS` makes setup slow, as loading weights would.
Kept compatible with both the pure-Python server (cog<0.17) and coglet (cog>=0.17).
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import time
import wave
import zlib

from cog import BasePredictor, Input, Path  # BasePredictor: works on cog<0.17 too

SAMPLE_RATE = 16_000


def tone_hz(prompt: str, seed: int) -> float:
    """The sine frequency for a prompt and seed (the tests recompute it)."""
    return 220.0 + (zlib.crc32(prompt.encode("utf-8")) + seed) % 660


class Predictor(BasePredictor):
    def setup(self) -> None:
        self.runs_dir = os.environ.get("MEDIAGEN_COG_RUNS_DIR")
        # Stands in for loading weights, so a test can see the server answer 503 until setup is done.
        time.sleep(float(os.environ.get("MEDIAGEN_COG_SETUP_SECONDS", "0")))

    def predict(
        self,
        prompt: str = Input(description="What to play; sets the pitch together with the seed."),
        duration: float = Input(description="Seconds of audio.", ge=0.1, le=30.0),
        seed: int = Input(description="Shifts the pitch."),
        fail: bool = Input(description="Raise instead of producing audio.", default=False),
        sleep: float = Input(description="Seconds to stall before producing audio.", default=0.0, ge=0.0),
    ) -> Path:
        if self.runs_dir:
            with open(os.path.join(self.runs_dir, "runs.log"), "a", encoding="utf-8") as log:
                log.write(prompt + "\n")
        # Short naps, so a cancel (a signal or a task cancellation) lands promptly.
        deadline = time.monotonic() + sleep
        while time.monotonic() < deadline:
            time.sleep(0.02)
        if fail:
            raise RuntimeError(f"predictor asked to fail for prompt {prompt!r}")

        hz = tone_hz(prompt, seed)
        frames = round(duration * SAMPLE_RATE)
        out = os.path.join(tempfile.mkdtemp(prefix="cog-out-"), "tone.wav")
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(
                b"".join(
                    struct.pack("<h", round(12_000 * math.sin(2 * math.pi * hz * i / SAMPLE_RATE)))
                    for i in range(frames)
                )
            )
        return Path(out)
