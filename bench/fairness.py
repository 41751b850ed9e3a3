"""How long one visitor's long job holds another visitor's text answer, on this CPU.

    python bench/fairness.py            # full-size random-weight SmolVLM2-256M + Whisper-base (published files)

Visitor A sends a 60 s clip (the chat model cannot hear, so Whisper transcribes it); 0.3 s later visitor B
asks a text question. All PyTorch work shares one thread (docs/PERFORMANCE.md says why), so B waits for
A's transcription: that wait is bounded by the transcription's limits (greedy, tokens in proportion to
the clip, a time limit per 30 s window). Random weights write every window to its token limit: the worst
case. Also timed: A presses Stop mid-transcription, and how soon the thread is free for B.
Runs the variants interleaved, ``--runs`` times, and prints medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402

from mmdemo.chat import ChatService, Request  # noqa: E402
from mmdemo.engines.asr import WhisperTranscriber  # noqa: E402
from mmdemo.engines.base import GenerationParams  # noqa: E402
from mmdemo.engines.local import TransformersEngine  # noqa: E402
from mmdemo.engines.workers import TorchWorkers  # noqa: E402
from mmdemo.errors import Cancelled  # noqa: E402
from mmdemo.modalities import Budget  # noqa: E402
from mmdemo.models import ModelManager  # noqa: E402
from mmdemo.runner import start  # noqa: E402
from mmdemo.turns import Turn  # noqa: E402

QUESTION = "What is the capital of France?"


def build(folder: Path, workers: TorchWorkers) -> tuple[Path, Path]:
    """Full-size random-weight SmolVLM2-256M, and Whisper-base beside its published non-weight files."""
    from tiny_models import SMOLVLM2_256M, build_smolvlm
    from tiny_realish import REALISH
    from transformers import AutoConfig, AutoModelForSpeechSeq2Seq

    chat, whisper = folder / "smolvlm", folder / "whisper-base"
    chat.mkdir()
    torch.manual_seed(0)
    workers.run(build_smolvlm, chat, SMOLVLM2_256M)
    shutil.copytree(REALISH / "whisper-base", whisper)
    model = AutoModelForSpeechSeq2Seq.from_config(AutoConfig.from_pretrained(whisper))
    model.save_pretrained(whisper)
    shutil.copy(REALISH / "whisper-base" / "generation_config.json", whisper / "generation_config.json")
    return chat, whisper


def first_token(service: ChatService, text: str, files: list[str], cancel: threading.Event | None = None) -> float:
    """Seconds from the request to its first answer text (the answer is then stopped)."""
    started = time.perf_counter()
    cancel = cancel or threading.Event()
    try:
        request = Request(Turn.user(text, files), params=GenerationParams(8, 0.0))
        for event in start(service, request, cancel):
            if event.kind == "text":
                break
    except Cancelled:
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workers = TorchWorkers()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        chat, whisper = build(Path(tmp), workers)
        clip = Path(tmp) / "minute.wav"
        soundfile.write(clip, (0.1 * np.random.default_rng(0).standard_normal(16000 * 60)).astype(np.float32), 16000)
        engine = TransformersEngine(str(chat), "cpu", workers=workers, encoder_cache_mb=0)
        transcriber = WhisperTranscriber(str(whisper), "cpu", workers=workers)
        service = ChatService(ModelManager(engine, transcriber), Budget(), 64)
        service.models.warm_up()
        transcriber.load()
        for run in range(args.runs):
            results.setdefault("B alone: text question, first token", []).append(first_token(service, QUESTION, []))
            transcriber._cache.clear()
            started = time.perf_counter()
            transcriber.transcribe(soundfile.read(clip, dtype="float32")[0])
            results.setdefault("A alone: 60 s clip transcribed (random weights: every window to its limit)",
                               []).append(time.perf_counter() - started)
            transcriber._cache.clear()
            a = threading.Thread(target=first_token, args=(service, "", [str(clip)]))
            a.start()
            time.sleep(0.3)
            results.setdefault("B while A's clip is transcribed: first token", []).append(
                first_token(service, QUESTION, []))
            a.join()
            transcriber._cache.clear()
            stop = threading.Event()
            a = threading.Thread(target=first_token, args=(service, "", [str(clip)], stop))
            a.start()
            time.sleep(1.0)
            stop.set()
            results.setdefault("B right after A pressed Stop mid-transcription: first token", []).append(
                first_token(service, QUESTION, []))
            a.join()
            print(f"run {run + 1} of {args.runs} done", file=sys.stderr)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"CPU: {os.cpu_count()} cores, torch {torch.__version__}; {load}")
    print("| what | median | runs |\n|---|---|---|")
    for what, times in results.items():
        print(f"| {what} | {statistics.median(times):.2f} s | {', '.join(f'{t:.2f}' for t in times)} |")


if __name__ == "__main__":
    main()
