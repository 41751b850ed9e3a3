"""A long prompt read in one pass against in chunks (``inputs.PREFILL_CHUNK`` tokens at a time): peak memory of
the process and the time to the first token, on a full-size random-weight model built from its real config.

    python bench/prefill.py                          # SmolVLM2-256M, a photo and ~8K tokens of text, on this CPU
    python bench/prefill.py --model qwen2.5-omni-7b --device cuda --tokens 16000

Each run is a process of its own (the peak is the process's: its largest resident set on a CPU, torch's largest
allocation on a GPU), the variants interleaved; prints one row per variant (medians).
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
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]


def one_run(folder: str, device: str, tokens: int, chunk: int) -> dict:
    """One answer of 4 tokens to a photo and ``tokens`` tokens of text, prefill in chunks of ``chunk``."""
    import torch
    from common import IMAGE
    from PIL import Image

    from mmdemo.engines.base import GenerationParams, GenerationStats
    from mmdemo.engines.local import TransformersEngine

    engine = TransformersEngine(folder, device, compile_decode=False, encoder_cache_mb=0)
    engine.load()
    engine.prefill_chunk = chunk
    text = "The quick brown fox jumps over the lazy dog. " * (tokens // 10)  # ~10 tokens a sentence
    messages = [{"role": "user", "content": [{"type": "image", "image": Image.open(IMAGE).convert("RGB")},
                                             {"type": "text", "text": text + "Summarise."}]}]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (ru_maxrss is in KiB)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stats = GenerationStats()
    for _ in engine.stream(messages, GenerationParams(4, 0.0), threading.Event(), stats):
        pass
    peak = (torch.cuda.max_memory_allocated() / 2**30 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return {"prompt": stats.prompt_tokens, "ttft": stats.first_token_s, "peak": peak, "loaded": before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smolvlm2-256m-video", help="a tests/realish checkpoint, or a folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=8000, help="tokens of text after the photo")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement, in a process of its own
        folder, chunk = json.loads(args.child)
        print(json.dumps(one_run(folder, args.device, args.tokens, chunk)))
        return
    from mmdemo.engines.inputs import PREFILL_CHUNK

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.model)
        if not folder.is_dir():
            from tiny_realish import build_twin

            folder = build_twin(args.model, Path(tmp) / args.model, full_size=True)
        variants = {"one pass": 10**9, f"chunks of {PREFILL_CHUNK}": PREFILL_CHUNK}
        results: dict[str, list[dict]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, chunk in variants.items():
                child = [sys.executable, __file__, "--device", args.device, "--tokens", str(args.tokens),
                         "--child", json.dumps([str(folder), chunk])]
                out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
                results[name].append(json.loads(out.strip().splitlines()[-1]))
    where = "GPU memory allocated" if args.device == "cuda" else "resident memory"
    print(f"{args.model}, {args.device}, a photo and ~{args.tokens} tokens of text, median of {args.runs}\n")
    print(f"| prefill | prompt tokens | time to first token | peak {where} | of which the loaded model |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        median = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731,B023
        print(f"| {name} | {runs[0]['prompt']} | {median('ttft'):.1f} s | {median('peak'):.2f} GiB | "
              f"{median('loaded'):.2f} GiB |")


if __name__ == "__main__":
    main()
