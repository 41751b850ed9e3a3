"""Which chat model a CPU can serve: the candidates at full size, side by side, on this machine.

    python bench/models.py                                   # the CPU candidates, about 15 minutes on 2 cores
    python bench/models.py --models qwen3.5-0.8b --tokens 16

Each candidate is built at its published sizes from its real config (``tests/realish``; random weights in
bf16: speed does not depend on their values), loaded through the engine's own ``from_pretrained`` path with
mmdemo's CPU settings, and timed in a process of its own (so its memory is its own): time to the first token
with one 1 MP photo (a new one each run), with a photo encoded ahead (attached, then asked about: the page
encodes it while the question is typed), and with text only; decode tokens/s; the process's peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

CANDIDATES = ["smolvlm2-256m-video", "qwen3-vl-2b-instruct", "qwen3.5-0.8b", "gemma-4-e2b-it"]


def measure(name: str, runs: int, tokens: int) -> dict:
    """Build, load and time one candidate in this process."""
    import torch
    from common import IMAGE, QUESTION
    from PIL import Image
    from tiny_realish import build_twin

    from mmdemo.engines.base import GenerationParams, GenerationStats
    from mmdemo.engines.local import TransformersEngine

    photo = Image.open(IMAGE).convert("RGB").resize((1184, 864))

    def fresh(run: int) -> Image.Image:  # a photo of its own for each run: the engine keeps encodings for reuse
        copy = photo.copy()
        copy.paste((run % 256, run // 256 % 256, 128), (0, 0, 64, 64))
        return copy

    asks = {"photo": lambda run: [{"type": "image", "image": fresh(run)}, {"type": "text", "text": QUESTION}],
            "text": lambda run: [{"type": "text", "text": QUESTION}],
            "ahead": lambda run: [{"type": "image", "image": fresh(1000 + run)}, {"type": "text", "text": QUESTION}]}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = build_twin(name, Path(tmp) / name, full_size=True)
        built = time.perf_counter() - started
        engine = TransformersEngine(str(folder), "cpu")
        engine.load()
        params = sum(p.numel() for p in engine._model.parameters())
        result: dict = {"model": name, "parameters": params, "built_s": built, "threads": torch.get_num_threads(),
                        "onednn": engine.cpu_decode.description if engine.cpu_decode else "with oneDNN"}  # warm-up's
        for kind, content in asks.items():
            firsts, speeds = [], []
            for run in range(runs):
                if kind == "ahead":  # attached first: encoded while the question is typed, then asked
                    engine.prefetch([{"role": "user", "content": content(run)[:1]}]).result()
                stats = GenerationStats()
                for _ in engine.stream([{"role": "user", "content": content(run)}], GenerationParams(tokens, 0.0),
                                       threading.Event(), stats):
                    pass
                firsts.append(stats.first_token_s)
                speeds.append(stats.tokens_per_s or 0.0)
                if kind != "text":  # a new photo is encoded with the request; one encoded ahead is not
                    assert ("vision encoder" in stats.stages) == (kind == "photo"), (kind, stats.stages)
            result[f"ttft_{kind}"] = statistics.median(firsts)
            result[f"tok_s_{kind}"] = statistics.median(speeds)
            result[f"prompt_{kind}"] = stats.prompt_tokens
    result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(CANDIDATES), help="tests/realish checkpoints, comma-separated")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # measure one candidate and print it as JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.runs, args.tokens)))
        return
    print("| model | parameters | first token, 1 MP photo | the photo encoded ahead | first token, text | "
          "decode tok/s | oneDNN (chosen at warm-up) | peak memory |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        run = subprocess.run([sys.executable, __file__, "--one", name, "--runs", str(args.runs), "--tokens",
                              str(args.tokens)], capture_output=True, text=True)
        if run.returncode:
            print(f"| {name} | failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else '?'} |")
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['parameters'] / 1e9:.2f}B | {r['ttft_photo']:.1f} s ({r['prompt_photo']} tokens) | "
              f"{r['ttft_ahead']:.2f} s | {r['ttft_text']:.1f} s ({r['prompt_text']} tokens) | "
              f"{r['tok_s_text']:.1f} | {r['onednn']} | "
              f"{r['peak_gb']:.1f} GB |", flush=True)


if __name__ == "__main__":
    main()
