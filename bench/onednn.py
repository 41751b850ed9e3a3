"""Where oneDNN is turned off on a CPU: never, for the whole decode step, or for the one-row products only.

    python bench/onednn.py                                      # SmolVLM2-256M and Qwen3.5-0.8B, full size
    python bench/onednn.py --models qwen3.5-0.8b --runs 5

Each model is built at its published sizes from its real config (``tests/realish``; random weights, bf16),
loaded through the engine (its warm-up's own switch then removed), and a text question answered greedily with
each of three settings, interleaved: oneDNN everywhere (transformers as it comes), and ``cpudecode``'s two
switches, which the engine chooses between at warm-up: oneDNN off for the language model's whole one-token step
(``whole_steps``), and only while a linear layer or the head multiplies one row (``one_row_products``). Prints
decode tokens/s per setting and whether each greedy answer equals oneDNN's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

import torch  # noqa: E402
from common import QUESTION  # noqa: E402
from tiny_realish import build_twin  # noqa: E402

from mmdemo.engines.base import GenerationParams, GenerationStats  # noqa: E402
from mmdemo.engines.cpudecode import one_row_products, whole_steps  # noqa: E402
from mmdemo.engines.local import TransformersEngine  # noqa: E402

SETTINGS = {"oneDNN everywhere": None, "off for the whole decode step": whole_steps,
            "off for one-row products": one_row_products}


def compare(name: str, runs: int, tokens: int) -> None:
    """One model: each setting ``runs`` times, interleaved; prints a row per setting."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = TransformersEngine(str(build_twin(name, Path(tmp) / name, full_size=True)), "cpu",
                                    encoder_cache_mb=0)
        engine.load()
        if engine.cpu_decode:
            engine.cpu_decode.remove()
        messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
        speeds: dict[str, list[float]] = {setting: [] for setting in SETTINGS}
        texts: dict[str, str] = {}
        for _ in range(runs):
            for setting, make in SETTINGS.items():
                hooks = make(engine._generator) if make else None
                stats = GenerationStats()
                text = "".join(engine.stream(messages, GenerationParams(tokens, 0.0), threading.Event(), stats))
                texts.setdefault(setting, text)
                speeds[setting].append(stats.tokens_per_s or 0.0)
                if hooks:
                    hooks.remove()
                torch.backends.mkldnn.enabled = True
        for setting, values in speeds.items():
            same = texts[setting] == texts["oneDNN everywhere"]
            print(f"| {name} | {setting} | {statistics.median(values):.1f} | {same} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smolvlm2-256m-video,qwen3.5-0.8b", help="tests/realish checkpoints")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tokens} new tokens, greedy, "
          f"median of {args.runs}\n\n| model | oneDNN | decode tok/s | same greedy text as oneDNN |\n|---|---|---|---|")
    for name in args.models.split(","):
        compare(name, args.runs, args.tokens)


if __name__ == "__main__":
    main()
