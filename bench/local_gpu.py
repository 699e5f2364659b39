"""Local MusicGen on a GPU: our engine (fast decoding) against plain transformers `generate`.

Run: python bench/local_gpu.py [--shape small|tiny] [--seconds 8] [--requests 32] [--out DIR]
(bench/gpu/run_local_gpu.sh installs what this needs on a fresh NVIDIA machine and runs it.)

The model has musicgen-small's dimensions (T5-base text encoder, 24-layer 1024-wide decoder,
32 kHz EnCodec) with random weights, saved with `save_pretrained` so the engine loads it through the
real path, in fp16 on CUDA. Both sides get the same prompts, seeds, guidance 3 and top-k 250.

1. one clip, batch 1: LocalEngine.submit (batcher, family, fast decoder, MP3 file) vs plain
   `model.generate` — goal >= 10x faster on CUDA;
2. `--requests` concurrent requests through LocalEngine.submit, the path the device-lane workers
   take (batcher -> one batch -> one file each) — goal >= 100x real time in aggregate; plain
   `generate` on the same batch for the ratio; time to first audio (single request and batch);
3. warm-up (load + captures) and peak GPU memory;
4. correctness: the fast path's tokens against the plain path's for the same seeds (sampled and
   greedy; equal on the CPU, agreement in % on a GPU where fp16 kernels differ), and on CUDA the
   captured graphs against the same arithmetic run eagerly (must be equal: same kernels);
5. decoding alone, fast vs plain family path: the figure behind MusicgenFamily.fast_on_cpu
   (`--only-decoding --repeat 3` runs just this, interleaved, with wall and CPU seconds).

Without CUDA (or with --shape tiny) it runs small (tiny model, 1 s clips, 4 requests) as a smoke
test of the whole script; the CPU engine then keeps the plain path, so item 1's ratio is about 1.
Results are printed and written as JSON to --out (default $OUT when set).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local import MODEL, PROMPTS, REPO, build  # noqa: E402
from mediagen.engines.base import Job  # noqa: E402
from mediagen.engines.local.engine import LocalEngine, LocalSpec  # noqa: E402
from mediagen.vocabulary import Kind  # noqa: E402

GIB = 1024**3


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_generate(model: Any, processor: Any, prompts: list[str], seconds: float, seed: int) -> float:
    """Seconds for one plain `generate` over `prompts` (one batch), as transformers documents it."""
    import torch

    torch.manual_seed(seed)
    inputs = processor(text=prompts, padding=True, return_tensors="pt").to(model.device)
    tokens = round(seconds * model.config.audio_encoder.frame_rate) + model.decoder.num_codebooks - 1
    sync()
    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(**inputs, do_sample=True, guidance_scale=3.0, top_k=250, max_new_tokens=tokens)
    sync()
    return time.perf_counter() - started


def submit(engine: LocalEngine, work: Path, prompt: str, seconds: float, seed: int, gen_id: int) -> Any:
    workdir = work / f"job{gen_id}"
    workdir.mkdir()
    inputs = {
        "prompt": prompt, "duration": seconds, "seed": seed, "guidance_scale": 3.0, "temperature": 1.0,
        "top_k": 250, "top_p": 0.0, "output_format": "mp3",
    }  # fmt: skip
    return engine.submit(Job(gen_id, Kind.AUDIO, MODEL, inputs, workdir))


def concurrent(engine: LocalEngine, work: Path, n: int, seconds: float, first_id: int) -> dict[str, float]:
    """`n` requests from `n` threads at once, as the device lane's workers submit them."""
    done: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        submit(engine, work, PROMPTS[i % len(PROMPTS)], seconds, 1000 + i, first_id + i)
        with lock:
            done.append(time.perf_counter())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    started = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if len(done) != n:
        raise RuntimeError(f"{n - len(done)} of {n} requests failed")
    return {"total_s": max(done) - started, "first_audio_s": min(done) - started}


def family_codes(
    loaded: Any, seconds: float, seeds: list[int], mode: str, temperature: float = 1.0
) -> tuple[Any, float, float]:
    """Codes from the family's decoding (no files): mode "plain", the loaded fast decoder
    ("fast"), or a fresh eager one in that mode ("masked", "exact"); wall and CPU seconds."""
    import torch

    from mediagen.engines.local.family import LocalRequest
    from mediagen.engines.local.musicgen import MusicgenFamily, _Job
    from mediagen.engines.local.musicgen_fast import FastMusicgen
    from mediagen.engines.local.musicgen_windows import Progress, Sampling, decoding_steps, plan_windows

    fam = MusicgenFamily()
    frames = round(seconds * loaded.frame_rate)
    plan = plan_windows(0, frames, 1500, 500)
    jobs = []
    for i, seed in enumerate(seeds):
        prompt = PROMPTS[i % len(PROMPTS)]
        request = LocalRequest(i, {"prompt": prompt, "guidance_scale": 3.0}, Path("."), seed)
        jobs.append(_Job(request, prompt, Sampling(temperature, 250, 0.0), frames))
    progress = Progress(lambda done, total: None, sum(decoding_steps(w, loaded.num_codebooks) for w in plan))
    device = fam_device(loaded)
    sync()
    started, cpu_started = time.perf_counter(), time.process_time()
    if mode == "plain":
        codes = fam._generate_plain(loaded, jobs, plan, device, progress)
    else:
        fast = loaded.fast["decoder"] if mode == "fast" else None
        if fast is None:
            fast = FastMusicgen(
                loaded.model, device.type, max_positions=1504, max_batch=len(seeds), mode=mode
            )
        made = fam._generate_fast(fast, loaded, jobs, plan, device, progress)
        if made is None:
            raise RuntimeError("the batch has no bucket")
        codes = made
    sync()
    return torch.stack(codes).cpu(), time.perf_counter() - started, time.process_time() - cpu_started


def fam_device(loaded: Any) -> Any:
    from mediagen.engines.local.family import Device

    dtype = str(loaded.model.dtype).removeprefix("torch.")
    return Device(loaded.model.device.type, dtype)


def agreement(a: Any, b: Any) -> dict[str, Any]:
    same = a == b
    differs = (~same).any(dim=(0, 1)).nonzero()
    return {
        "equal": bool(same.all()),
        "tokens_equal_pct": round(100 * float(same.float().mean()), 2),
        "first_differing_frame": int(differs[0]) if len(differs) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=["small", "tiny"], default=None, help="default: small on CUDA")
    parser.add_argument("--seconds", type=float, default=None, help="clip length (default 8; 1 on CPU)")
    parser.add_argument("--requests", type=int, default=None, help="concurrent requests (32; 4 on CPU)")
    parser.add_argument("--check-seconds", type=float, default=None, help="clip for item 4 (2; 1 on CPU)")
    parser.add_argument("--skip-plain-batch", action="store_true", help="no plain generate of the batch")
    parser.add_argument("--only-decoding", action="store_true", help="item 5 alone (no engine)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of item 5, interleaved; best kept")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="folder for local_gpu.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "huggingface_hub", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import torch
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    cuda = torch.cuda.is_available()
    shape = args.shape or ("small" if cuda else "tiny")
    seconds = args.seconds or (8.0 if cuda else 1.0)
    n = args.requests or (32 if cuda else 4)
    check = args.check_seconds or (2.0 if cuda else 1.0)
    device = "cuda" if cuda else "cpu"
    dtype = torch.float16 if cuda else torch.float32
    name = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    results: dict[str, Any] = {"device": name, "shape": shape, "seconds": seconds, "requests": n}
    print(f"{name}; torch {torch.__version__}; {shape} shape; {seconds:g} s clips; {n} requests", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = build(root / "models", shape)
        if args.only_decoding:
            results["decoding_only"] = decoding_only(path, device, check, args.requests or 1, args.repeat)
            print(f"5. decoding only   {json.dumps(results['decoding_only'])}", flush=True)
            write_results(args.out, results)
            return

        # plain transformers generate, the baseline
        model = MusicgenForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device).eval()
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        plain_generate(model, processor, PROMPTS[:1], 0.2, 0)  # first-call costs out of the way
        plain_one = plain_generate(model, processor, PROMPTS[1:2], seconds, 10)
        print(f"plain generate, one clip: {plain_one:.2f} s", flush=True)
        plain_batch = None
        if not args.skip_plain_batch:
            prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
            plain_batch = plain_generate(model, processor, prompts, seconds, 20)
            print(f"plain generate, batch of {n}: {plain_batch:.2f} s", flush=True)
        del model
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

        # our engine: warm-up, one clip, a concurrent batch
        engine = LocalEngine(
            {MODEL: LocalSpec(MODEL, REPO, "musicgen", memory_gb=2.0)},
            models_dir=root / "models",
            device=device,
            batch_window_s=0.15,  # the default MEDIAGEN_LOCAL_BATCH_WINDOW_MS
            max_batch=n,
            hf_cache=root / "no-cache",
            fast_decode=True,
        )
        started = time.perf_counter()
        engine.warm_up([MODEL])
        warm = time.perf_counter() - started
        resident = engine.residency.resident()[0]
        fast = resident.loaded.fast.get("decoder")
        results["warm_up"] = {
            "total_s": round(warm, 2),
            "load_s": round(resident.load_seconds, 2),
            "prepare_s": round(warm - resident.load_seconds, 2),  # captures (CUDA)
            "fast_path": None if fast is None else fast.mode,
            "graphs": 0 if fast is None else len(fast.graphs),
            "max_batch_bucket": None if fast is None else fast.max_batch,
            "cache_gib": 0 if fast is None else round(fast.cache_bytes / GIB, 2),
        }
        print(f"warm-up: {results['warm_up']}", flush=True)

        runs = []
        for i in range(3):
            started = time.perf_counter()
            submit(engine, root, PROMPTS[1], seconds, 10 + i, 100 + i)
            runs.append(time.perf_counter() - started)
        one = min(runs)
        results["one_clip"] = {
            "engine_s": round(one, 3),
            "engine_first_request_s": round(runs[0], 3),
            "plain_s": round(plain_one, 3),
            "speedup": round(plain_one / one, 2),
            "x_real_time": round(seconds / one, 2),
        }
        print(
            f"1. one clip        engine {one:7.2f} s (first request {runs[0]:.2f} s)   "
            f"plain {plain_one:7.2f} s   {plain_one / one:.1f}x faster (goal >= 10x on CUDA)",
            flush=True,
        )

        batches_before = engine.batches_run
        batch = concurrent(engine, root, n, seconds, 200)
        aggregate = n * seconds / batch["total_s"]
        results["concurrent"] = {
            **{k: round(v, 3) for k, v in batch.items()},
            "batches": engine.batches_run - batches_before,
            "x_real_time": round(aggregate, 1),
            "plain_batch_s": None if plain_batch is None else round(plain_batch, 3),
            "speedup_vs_plain_batch": None
            if plain_batch is None
            else round(plain_batch / batch["total_s"], 2),
        }
        print(
            f"2. {n} requests    {batch['total_s']:7.2f} s, {aggregate:.0f}x real time (goal >= 100x); "
            f"first audio after {batch['first_audio_s']:.2f} s; {results['concurrent']['batches']} batch(es)"
            + ("" if plain_batch is None else f"; plain generate of the batch {plain_batch:.2f} s"),
            flush=True,
        )
        results["time_to_first_audio_s"] = {
            "single": round(one, 3),
            "batch": round(batch["first_audio_s"], 3),
        }
        if cuda:
            results["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 2)
            print(f"3. peak GPU memory {results['peak_gpu_memory_gib']} GiB", flush=True)

        # correctness and decoding alone
        loaded = resident.loaded
        fast = loaded.fast.get("decoder")  # gone if the fast path failed during the runs
        results["fast_path_still_on"] = fast is not None
        seeds = [7, 8]
        plain_codes, plain_s, _ = family_codes(loaded, check, seeds, "plain")
        checks: dict[str, Any] = {}
        if fast is not None:
            fast_codes, fast_s, _ = family_codes(loaded, check, seeds, "fast")
            checks["sampled_fast_vs_plain"] = agreement(fast_codes, plain_codes)
            greedy_plain, _, _ = family_codes(loaded, check, seeds, "plain", temperature=0.0)
            greedy_fast, _, _ = family_codes(loaded, check, seeds, "fast", temperature=0.0)
            checks["greedy_fast_vs_plain"] = agreement(greedy_fast, greedy_plain)
            if fast.mode == "graphs":
                eager, _, _ = family_codes(loaded, check, seeds, "masked")
                checks["graphs_vs_eager_same_kernels"] = agreement(fast_codes, eager)
        else:  # the engine kept the plain path: time the fast loop eagerly, as it would run here
            fast_codes, fast_s, _ = family_codes(loaded, check, seeds, "exact")
            checks["sampled_fast_vs_plain"] = agreement(fast_codes, plain_codes)
        results["checks"] = checks
        results["decoding_only"] = {
            "clip_s": check,
            "batch": len(seeds),
            "plain_s": round(plain_s, 3),
            "fast_s": round(fast_s, 3),
            "speedup": round(plain_s / fast_s, 2),
        }
        print(f"4. checks          {json.dumps(checks)}", flush=True)
        print(f"5. decoding only   {json.dumps(results['decoding_only'])}", flush=True)
        engine.unload_all()

    write_results(args.out, results)


def decoding_only(path: Path, device: str, seconds: float, batch: int, repeat: int) -> dict[str, Any]:
    """Plain vs fast family decoding of `batch` requests, `repeat` times interleaved (best kept):
    on CUDA the captured fast path, elsewhere the eager exact one MusicgenFamily.fast_on_cpu
    would turn on."""
    from mediagen.engines.local.musicgen import MusicgenFamily

    family = MusicgenFamily()
    loaded = family.load(path, fam_device_for(device))
    mode = "exact"
    if device == "cuda":
        family.warm_up(loaded, fam_device(loaded), max_batch=batch)
        mode = "fast"
    seeds = list(range(7, 7 + batch))
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "fast": []}
    codes: dict[str, Any] = {}
    for _ in range(repeat):
        for name, run_mode in (("plain", "plain"), ("fast", mode)):
            codes[name], wall, cpu = family_codes(loaded, seconds, seeds, run_mode)
            times[name].append((wall, cpu))
    best = {name: min(values) for name, values in times.items()}
    return {
        "clip_s": seconds,
        "batch": batch,
        "fast_mode": mode,
        "plain_s": round(best["plain"][0], 3),
        "fast_s": round(best["fast"][0], 3),
        "plain_cpu_s": round(best["plain"][1], 3),
        "fast_cpu_s": round(best["fast"][1], 3),
        "speedup": round(best["plain"][0] / best["fast"][0], 3),
        "all_runs": times,
        "tokens": agreement(codes["fast"], codes["plain"]),
    }


def fam_device_for(device: str) -> Any:
    from mediagen.engines.local.family import Device

    return Device(device, "float16" if device == "cuda" else "float32")


def write_results(out: str | None, results: dict[str, Any]) -> None:
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "local_gpu.json").write_text(json.dumps(results, indent=2) + "\n")
        print(f"results in {folder / 'local_gpu.json'}")


if __name__ == "__main__":
    main()
