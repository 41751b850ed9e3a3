"""Which chat model a CPU can serve: the candidates at full size, side by side, on this machine.

    python bench/models.py                                   # the CPU candidates, about 15 minutes on 2 cores
    python bench/models.py --models qwen3.5-0.8b --tokens 16

Each candidate is built at its published sizes from its real config (``tests/realish``; random weights in
bf16: speed does not depend on their values), loaded through the engine's own ``from_pretrained`` path with
mmdemo's CPU settings, and timed in a process of its own (so its memory is its own): time to the first token
with one 1 MP photo (a new one each run), with a photo encoded ahead (attached, then asked about: the page
encodes it while the question is typed), for a text follow-up on the photo's question, for a second photo after
the first one's question, and with text only;
decode tokens/s; the process's peak memory. ``--encoder-cache-mb 0`` times the engine without its cache.
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


def measure(name: str, runs: int, tokens: int, cache_mb: int) -> dict:
    """Build, load and time one candidate in this process."""
    import torch
    from common import IMAGE, QUESTION
    from PIL import Image
    from tiny_realish import build_twin

    from mmdemo.engines.base import GenerationParams, GenerationStats
    from mmdemo.engines.local import TransformersEngine

    photo = Image.open(IMAGE).convert("RGB").resize((1184, 864))

    def asked(run: int) -> dict:  # a photo of its own for each run: the engine keeps encodings for reuse
        copy = photo.copy()
        copy.paste((run % 256, run // 256 % 256, 128), (0, 0, 64, 64))
        return {"role": "user", "content": [{"type": "image", "image": copy}, {"type": "text", "text": QUESTION}]}

    def text(words: str, role: str = "user") -> dict:
        return {"role": role, "content": [{"type": "text", "text": words}]}

    asks = {"photo": lambda run: [asked(run)], "text": lambda run: [text(QUESTION)],
            "ahead": lambda run: [asked(1000 + run)],  # attached, then asked about
            "follow": lambda run: [asked(2000 + run), text("A street.", "assistant"), text("What colour is it?")],
            "second": lambda run: [asked(3000 + run), text("A street.", "assistant"), asked(4000 + run)]}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = build_twin(name, Path(tmp) / name, full_size=True)
        built = time.perf_counter() - started
        engine = TransformersEngine(str(folder), "cpu", encoder_cache_mb=cache_mb)
        engine.load()
        params = sum(p.numel() for p in engine._model.parameters())
        result: dict = {"model": name, "parameters": params, "built_s": built, "threads": torch.get_num_threads(),
                        "onednn": engine.cpu_decode.description if engine.cpu_decode else "with oneDNN"}  # warm-up's

        def answer(messages: list[dict]) -> GenerationStats:
            stats = GenerationStats()
            for _ in engine.stream(messages, GenerationParams(tokens, 0.0), threading.Event(), stats):
                pass
            return stats

        for kind, messages in asks.items():
            if kind == "ahead" and not cache_mb:
                continue
            firsts, speeds = [], []
            for run in range(runs):
                if kind == "ahead":  # the page encodes an attached photo while the question is typed
                    engine.prefetch(messages(run)).result()
                if kind in ("follow", "second"):  # the photo's own question first, then the next turn is timed
                    answer(messages(run)[:1])
                stats = answer(messages(run))
                firsts.append(stats.first_token_s)
                speeds.append(stats.tokens_per_s or 0.0)
                if kind != "text":  # a photo seen before is not encoded again (unless nothing is kept)
                    assert ("vision encoder" in stats.stages) == (kind in ("photo", "second") or not cache_mb), \
                        stats.stages
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
    parser.add_argument("--encoder-cache-mb", type=int, default=256, help="the engine's (0: every photo encoded "
                        "each time it is in a request, as before the cache)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # measure one candidate and print it as JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.runs, args.tokens, args.encoder_cache_mb)))
        return
    print("| model | parameters | first token, 1 MP photo | the photo encoded ahead | a follow-up (text) on it | "
          "a second photo | first token, text | decode tok/s | oneDNN (chosen at warm-up) | peak memory |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        run = subprocess.run([sys.executable, __file__, "--one", name, "--runs", str(args.runs), "--tokens",
                              str(args.tokens), "--encoder-cache-mb", str(args.encoder_cache_mb)],
                             capture_output=True, text=True)
        if run.returncode:
            print(f"| {name} | failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else '?'} |")
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])
        ahead = f"{r['ttft_ahead']:.2f} s" if "ttft_ahead" in r else "-"
        print(f"| {name} | {r['parameters'] / 1e9:.2f}B | {r['ttft_photo']:.1f} s ({r['prompt_photo']} tokens) | "
              f"{ahead} | {r['ttft_follow']:.2f} s ({r['prompt_follow']} tokens) | "
              f"{r['ttft_second']:.2f} s ({r['prompt_second']} tokens) | "
              f"{r['ttft_text']:.1f} s ({r['prompt_text']} tokens) | {r['tok_s_text']:.1f} | {r['onednn']} | "
              f"{r['peak_gb']:.1f} GB |", flush=True)


if __name__ == "__main__":
    main()
