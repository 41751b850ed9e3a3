"""How time to first token and decode speed grow with the request: image size, number of images,
audio length, history length, concurrent users. Media go through mmdemo's own path (media budget,
processor settings), so the image-token column shows where the pixel budget starts to shrink images.

    python bench/scaling.py      # tiny Qwen2.5-Omni (image + audio) with the published image settings
    python bench/scaling.py --model PATH --max-image-pixels 1048576
"""

from __future__ import annotations

import argparse
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mmdemo.conversation import build_messages  # noqa: E402
from mmdemo.engines.base import GenerationParams, GenerationStats  # noqa: E402
from mmdemo.engines.local import TransformersEngine  # noqa: E402
from mmdemo.modalities import Budget  # noqa: E402
from mmdemo.turns import Turn  # noqa: E402
from mmdemo.ui.history import to_turns  # noqa: E402

TOKENS = 32


def measure(engine: TransformersEngine, budget: Budget, files: list[str], history: list[dict] | None = None,
            runs: int = 3) -> tuple[GenerationStats, float, float]:
    """Median TTFT and decode speed of one turn through mmdemo's conversation and engine."""
    results = []
    for _ in range(runs):
        prepared = build_messages(to_turns(history or []), Turn.user("Describe what you see and hear.", files),
                                  system_prompt="",
                                  capabilities=engine.capabilities, budget=budget)
        stats = GenerationStats()
        for _ in engine.stream(prepared.messages, GenerationParams(TOKENS, 0.0), threading.Event(), stats):
            pass
        results.append(stats)
    return (results[-1], statistics.median(s.first_token_s for s in results),
            statistics.median(s.tokens_per_s or 0 for s in results))


def table(title: str, header: str, rows: list[str]) -> None:
    print(f"\n### {title}\n\n| {header} | prompt tokens (image / audio) | TTFT | decode tok/s |\n|---|---|---|---|")
    print("\n".join(rows))


def row(label: object, result: tuple[GenerationStats, float, float]) -> str:
    stats, ttft, speed = result
    image, audio = stats.media_tokens.get("image", 0), stats.media_tokens.get("audio", 0)
    return (f"| {label} | {stats.prompt_tokens} ({image} / {audio}) | "
            f"{ttft * 1000:.0f} ms | {speed:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint folder (default: build a tiny Qwen2.5-Omni)")
    parser.add_argument("--max-image-pixels", type=int, default=Budget().max_image_pixels)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            from tiny_models import build_qwen2_5_omni
            from transformers import AutoProcessor

            torch.manual_seed(0)
            model = str(work / "omni")
            Path(model).mkdir()
            build_qwen2_5_omni(Path(model))
            processor = AutoProcessor.from_pretrained(model)  # the published image settings: 3 136 px to 12.8 MP
            processor.image_processor.size = {"shortest_edge": 3136, "longest_edge": 12845056}
            processor.save_pretrained(model)
        engine = TransformersEngine(model, "cpu", encoder_cache_mb=0)
        engine.load()
        budget = Budget(max_image_pixels=args.max_image_pixels, max_images=8, max_audio=8)
        print(f"model: {model}, cpu, {torch.get_num_threads()} threads, {TOKENS} new tokens, "
              f"pixel budget {args.max_image_pixels}, median of 3")

        def image(side: int) -> str:
            path = work / f"img{side}.png"
            if not path.exists():
                Image.new("RGB", (side, side * 3 // 4), (40, 120, 200)).save(path)
            return str(path)

        table("Image size (4:3)", "longest side", [row(f"{s} px", measure(engine, budget, [image(s)]))
                                                   for s in (256, 512, 1024, 1536, 2048, 4096)])
        table("Number of 1024 px images", "images", [row(n, measure(engine, budget, [image(1024)] * n))
                                                     for n in (1, 2, 4)])
        if engine.capabilities.audio:
            def clip(seconds: int) -> str:
                path = work / f"clip{seconds}.wav"
                soundfile.write(path, 0.1 * np.sin(np.arange(16000 * seconds) / 7), 16000)
                return str(path)

            table("Audio length", "seconds", [row(f"{s} s", measure(engine, budget, [clip(s)]))
                                              for s in (2, 5, 10, 30)])
        turn = [{"role": "user", "content": [{"path": image(512)}, "What is this?"]},
                {"role": "assistant", "content": "A picture of a blue rectangle. " * 8}]
        table("History (earlier turns, each with a 512 px image)", "turns",
              [row(n, measure(engine, budget, [], turn * n)) for n in (0, 2, 4, 8)])

        print("\n### Concurrent users (one engine, generate calls in parallel threads)\n")
        print("| users | aggregate tok/s | median TTFT |\n|---|---|---|")
        image(512)  # written once, read by every user
        for users in (1, 4, 16):
            started = time.perf_counter()
            with ThreadPoolExecutor(users) as pool:
                results = list(pool.map(lambda _: measure(engine, budget, [image(512)], runs=1), range(users)))
            wall = time.perf_counter() - started
            generated = sum(r[0].generated_tokens for r in results)
            print(f"| {users} | {generated / wall:.1f} | {statistics.median(r[1] for r in results) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
