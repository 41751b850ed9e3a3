"""The GPU default on a CUDA GPU: raw ``generate``, the engine's plain path and its compiled path, side by side.

    python bench/gpu.py                      # full-size random-weight Qwen2.5-Omni-7B, built on the GPU
    python bench/gpu.py --out gpu.md --budget-s 420 --profile profile.txt

Builds the default GPU chat model at its published sizes from its real config (``tests/realish``; random
weights: speed does not depend on their values), loads it through the engine's own ``from_pretrained`` path
and measures, in one run: time to first token with one 1 MP photo, decode tokens/s for one user and for 8
at once (the plain path with ``--concurrency 8``, one worker thread each; the compiled path with the default
``--concurrency 1``, the others queued), peak GPU memory, and the decode
speed as a fraction of the memory-bandwidth limit (bytes of the weights read per token × tok/s ÷ the GPU's
bandwidth). ``--history`` also times the compiled path as first built (one 8K cache, the host waiting for every
token) and with each of its two later changes alone; ``--tune`` recompiles it with inductor's tuning options
(coordinate-descent tuning; ``mode="max-autotune"``) or with transformers' own attention (``widened``: keys and
values copied per query head); ``--profile`` records one compiled answer with ``torch.profiler`` (the GPU's busy
time, the top operations, a Chrome trace). Writes the table to ``--out`` after every step, so
a run cut short still leaves its rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

import torch  # noqa: E402
from common import IMAGE, QUESTION  # noqa: E402
from overhead import run_engine, run_raw  # noqa: E402
from PIL import Image  # noqa: E402

from mmdemo.engines.local import TransformersEngine  # noqa: E402
from mmdemo.engines.workers import TorchWorkers  # noqa: E402

BANDWIDTH = {"H200": 4.8e12, "H100 NVL": 3.9e12, "H100 PCIe": 2.0e12, "H100": 3.35e12, "A100": 2.0e12,
             "L40S": 0.864e12, "A10G": 0.6e12, "L4": 0.3e12}  # bytes/s, from the vendors' data sheets
USERS = 8


def photo() -> list[dict]:
    """One 1 MP photo (the project's scene, scaled to 1184×864) and a question."""
    image = Image.open(IMAGE).convert("RGB").resize((1184, 864))
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": QUESTION}]}]


def decode_bytes(engine: TransformersEngine) -> int:
    """Bytes of weights one decode step reads: the language model without its embedding tables (a step reads one
    row of each: the input embeddings, Gemma's per-layer ones), plus its head."""
    generator = engine._generator
    size = lambda module: sum(p.numel() * p.element_size() for p in module.parameters())  # noqa: E731
    decoder = generator.get_decoder()
    tables = sum(size(module) for module in decoder.modules() if isinstance(module, torch.nn.Embedding))
    return size(decoder) - tables + size(generator.get_output_embeddings())


def bandwidth(name: str, given: float | None) -> float | None:
    """The GPU's memory bandwidth in bytes/s: ``--bandwidth``, else from its name."""
    return given or next((value for key, value in BANDWIDTH.items() if key in name), None)


def concurrent(engine: TransformersEngine, tokens: int) -> tuple[float, float]:
    """``USERS`` answers at once: (median tok/s per user, all users' tokens per second of wall time)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(USERS) as pool:
        results = list(pool.map(lambda _: run_engine(engine, tokens, photo()), range(USERS)))
    wall = time.perf_counter() - started
    return statistics.median(speed for _, speed in results), USERS * tokens / wall


class Report:
    """The table, rewritten to ``path`` after every row."""

    def __init__(self, path: Path, header: str) -> None:
        self.path, self.header, self.rows = path, header, []

    def add(self, row: str) -> None:
        self.rows.append(row)
        text = "\n".join([self.header, "", "| path | TTFT p50 (1 MP photo) | decode tok/s, 1 user | "
                          f"per user, {USERS} users | all {USERS} users | peak GPU memory | of bandwidth limit |",
                          "|---|---|---|---|---|---|---|", *self.rows])
        self.path.write_text(text + "\n")
        print(row, flush=True)


def measure(name: str, engine: TransformersEngine, run: object, args: argparse.Namespace, limit: float | None,
            report: Report, users: bool = True) -> None:
    """``args.runs`` single-user runs, then ``USERS`` at once (with ``users``); one row."""
    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    single = [run(engine, args.tokens, photo()) for _ in range(args.runs)]
    ttft = statistics.median(t for t, _ in single)
    speed = statistics.median(s for _, s in single)
    per_user = total = None
    if users and time.monotonic() < args.deadline:
        per_user, total = concurrent(engine, args.tokens)
    peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else 0.0
    share = f"{speed * decode_bytes(engine) / limit:.0%}" if limit else "-"
    many = f"{per_user:.1f} | {total:.0f}" if per_user else "- | -"
    report.add(f"| {name} | {ttft * 1000:.0f} ms | {speed:.1f} | {many} | {peak:.1f} GiB | {share} |")


def history(engine: TransformersEngine, args: argparse.Namespace, limit: float | None, report: Report) -> None:
    """The compiled path as it was first built (one 8K cache, the host waiting for every token), then each
    of its two later changes alone (the smallest cache that fits; the end learnt one step late)."""
    fast, sizes = engine.fast, engine.fast.sizes
    for name, only, defer in (("one 8K cache, host waits per token", sizes[-1:], False),
                              ("smallest cache, host waits per token", sizes, False),
                              ("one 8K cache, end known a step late", sizes[-1:], True)):
        fast.sizes, fast.defer = only, defer
        measure(f"mmdemo engine, compiled decode: {name}", engine, run_engine, args, limit, report, users=False)
    fast.sizes, fast.defer = sizes, True


TUNINGS = {"descent": ("inductor's coordinate-descent tuning", {"mode": None, "options": {
               "triton.cudagraphs": True, "coordinate_descent_tuning": True}}),  # reduce-overhead's cudagraphs too
           "max-autotune": ("mode max-autotune (inductor's own matrix-product kernels)", {"mode": "max-autotune"}),
           "widened": ("transformers' own attention (each key/value head copied per query head)",
                       {"mode": "reduce-overhead"})}


def tuned(engine: TransformersEngine, args: argparse.Namespace, limit: float | None, report: Report) -> None:
    """The compiled path recompiled with each of inductor's tuning options in ``args.tune``, or with transformers'
    own attention (``widened``), the smallest cache only (which a photo and its answer take): one row each, with
    its warm-up time. Experiments, not the app."""
    from transformers import AttentionInterface, CompileConfig
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from mmdemo.engines.fastdecode import packed_attention

    fast = engine.fast
    sizes, config = fast.sizes, fast.config
    fast.sizes = sizes[:1]
    for key in args.tune:
        name, settings = TUNINGS[key]
        AttentionInterface.register("sdpa", sdpa_attention_forward if key == "widened" else packed_attention)
        torch._dynamo.reset()  # compile anew, also where the settings are the engine's own
        fast.config = CompileConfig(dynamic=False, **settings)
        fast.config._compile_all_devices = config._compile_all_devices  # a --device cpu dry run compiles too
        started = time.perf_counter()
        fast.warm_up(lambda: run_engine(engine, 8, photo()))
        name = f"{name}, warm-up {time.perf_counter() - started:.0f} s"
        measure(f"mmdemo engine, compiled decode with {name}", engine, run_engine, args, limit, report, users=False)
    fast.sizes, fast.config = sizes, config
    AttentionInterface.register("sdpa", packed_attention)


def agreement(engine: TransformersEngine, tokens: int) -> str:
    """How many greedy tokens the plain and compiled paths share, on the same prompt."""
    from mmdemo.engines.base import GenerationParams

    fast, texts = engine.fast, []
    for path in (None, fast):
        engine.fast = path
        texts.append("".join(engine.stream(photo(), GenerationParams(tokens, 0.0), threading.Event())))
    engine.fast = fast
    plain, compiled = texts
    same = next((i for i, (a, b) in enumerate(zip(plain, compiled, strict=False)) if a != b), min(map(len, texts)))
    return f"greedy text identical: {plain == compiled} (first {same} of {len(plain)} characters agree)"


def gpu_busy(trace: Path) -> float:
    """Seconds in which the GPU ran anything (kernels, copies, fills), from a Chrome trace of the profiler."""
    events = json.loads(trace.read_text())["traceEvents"]
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                   if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"))
    busy, start, end = 0.0, None, None
    for first, last in spans:
        if end is None or first > end:
            busy += (end - start) if end is not None else 0.0
            start, end = first, last
        else:
            end = max(end, last)
    return (busy + ((end - start) if end is not None else 0.0)) / 1e6


def profile(engine: TransformersEngine, tokens: int, out: Path) -> str:
    """One engine answer under ``torch.profiler`` (recorded in the worker thread that generates, and the GPU):
    wall time against GPU-busy time, the top host operations to ``out``, a Chrome trace beside it."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    recorder = profiler(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
    engine.workers.run(recorder.start)  # the profiler records the thread it starts on: the engine's one worker
    ttft, speed = run_engine(engine, tokens, photo())
    engine.workers.run(recorder.stop)
    events = recorder.key_averages()
    out.write_text(events.table(sort_by="self_cpu_time_total", row_limit=30) + "\n\n" +
                   events.table(sort_by="self_device_time_total", row_limit=20) + "\n")
    trace = out.with_suffix(".json")
    recorder.export_chrome_trace(str(trace))
    wall, busy = ttft + (tokens - 1) / speed, gpu_busy(trace)
    return (f"profile of one compiled answer ({tokens} tokens): {wall * 1000:.0f} ms wall, the GPU busy for "
            f"{busy * 1000:.0f} ms of it ({busy / wall:.0%}); decode {1000 / speed:.2f} ms per token")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-omni-7b", help="a tests/realish checkpoint, or a folder")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--bandwidth", type=float, help="the GPU's memory bandwidth in bytes/s")
    parser.add_argument("--budget-s", type=float, default=420, help="skip the 8-user runs past this")
    parser.add_argument("--out", type=Path, default=Path("gpu-bench.md"))
    parser.add_argument("--profile", type=Path, help="also profile one compiled answer; its tables to this file")
    parser.add_argument("--history", action="store_true", help="also the compiled path as first built, and each "
                        "of its two later changes alone")
    parser.add_argument("--tune", nargs="+", choices=sorted(TUNINGS), default=[],
                        help="also the compiled path recompiled with these of inductor's tuning options, or with "
                        "transformers' own attention (widened)")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script on a tiny --model folder")
    args = parser.parse_args()
    args.deadline = time.monotonic() + args.budget_s
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench/gpu.py needs a CUDA GPU")
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "cpu (dry run)"
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = Path(args.model)
        if not folder.is_dir():
            from tiny_realish import build_twin

            folder = build_twin(args.model, Path(tmp) / args.model, full_size=True, device=args.device)
        built = time.perf_counter() - started
        single, wide = TorchWorkers(1), TorchWorkers(USERS)  # --concurrency 1 (the default) and 8
        engine = TransformersEngine(str(folder), args.device, workers=single, compile_decode=True,
                                    encoder_cache_mb=0)
        engine.load()
        header = (f"{gpu}, torch {torch.__version__}, {args.model} (random weights, full size, bf16), "
                  f"{args.tokens} new tokens, greedy, median of {args.runs}; built in {built:.0f} s; engine: "
                  f"{engine.status().detail}; {decode_bytes(engine) / 1e9:.2f} GB of weights read per token")
        print(header, flush=True)
        report = Report(args.out, header)
        limit = bandwidth(gpu, args.bandwidth)
        fast = engine.fast
        measure("raw generate", engine, lambda e, n, m: engine.workers.run(run_raw, e, n, m), args, limit, report,
                users=False)
        engine.fast, engine.workers = None, wide
        measure(f"mmdemo engine, plain decode, --concurrency {USERS}", engine, run_engine, args, limit, report)
        engine.fast, engine.workers = fast, single
        if fast:  # the graphs belong to the one worker thread; 8 users queue for it
            if args.history:
                history(engine, args, limit, report)
            measure("mmdemo engine, compiled decode, --concurrency 1 (as it runs)", engine, run_engine, args, limit,
                    report)
            report.add(f"\n{agreement(engine, 32)}; compiled path state: {fast.state}")
            if args.profile:
                report.add(profile(engine, args.tokens, args.profile))
            if args.tune:
                tuned(engine, args, limit, report)


if __name__ == "__main__":
    main()
