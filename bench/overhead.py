"""What mmdemo costs on top of the model: raw ``generate`` vs the engine vs the whole app, side by side.

    python bench/overhead.py                       # full-size random-weight SmolVLM2-256M, built locally
    python bench/overhead.py --model tiny/smolvlm  # any checkpoint folder

Same model, prompt (one 640×480 photo + a question), greedy decoding and token count for every path: raw
``generate`` (transformers as it comes), the engine, and the whole app through gradio_client and through a lean
HTTP client (upload, Gradio's REST call, server-sent events on one connection); prints time to first token
(p50/p95) and decode tokens/s, each as a ratio to raw ``generate``, the app's time beyond the engine's own first
token, and how many greedy choices the engine's CPU decode steps share with oneDNN's (teacher-forced).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
import torch  # noqa: E402
from common import IMAGE, QUESTION, Clock  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import StoppingCriteriaList  # noqa: E402

from mmdemo.engines.base import GenerationParams, GenerationStats  # noqa: E402
from mmdemo.engines.cpudecode import onednn_restored  # noqa: E402
from mmdemo.engines.local import TransformersEngine  # noqa: E402
from mmdemo.engines.workers import TorchWorkers  # noqa: E402

FIRST_TOKEN = re.compile(r"answer: .*?first token ([0-9.]+) s")


def _messages() -> list[dict]:
    image = Image.open(IMAGE).convert("RGB")
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": QUESTION}]}]


def run_raw(engine: TransformersEngine, tokens: int, messages: list[dict] | None = None) -> tuple[float, float]:
    """Processor + ``model.generate`` alone (the engine's loaded objects and torch thread, none of its code)."""
    started = time.perf_counter()
    inputs = engine._processor.apply_chat_template(
        messages or _messages(), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
        processor_kwargs={"return_tensors": "pt", **engine._inputs.kwargs},  # mmdemo's image settings
    ).to(engine.device, dtype=engine.dtype)
    clock = Clock()
    with torch.inference_mode():
        engine._generator.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                                  stopping_criteria=StoppingCriteriaList([clock]))
    return clock.times[0] - started, (len(clock.times) - 1) / (clock.times[-1] - clock.times[0])


def run_engine(engine: TransformersEngine, tokens: int, messages: list[dict] | None = None) -> tuple[float, float]:
    """``TransformersEngine.stream``: chat template, worker thread, streamer, cancel watch."""
    stats = GenerationStats()
    for _ in engine.stream(messages or _messages(), GenerationParams(tokens, 0.0), threading.Event(), stats):
        pass
    assert stats.generated_tokens == tokens, "the model ended early: use a random-weight model"
    return stats.first_token_s, stats.tokens_per_s


def run_app(server: object, tokens: int, over: list[float]) -> tuple[float, float]:
    """The whole app through gradio_client on loopback: upload, queue, SSE stream. Appends to ``over`` the
    time to first token beyond the engine's own (the server's log)."""
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False)
    started = time.perf_counter()
    job = client.submit({"text": QUESTION, "files": [handle_file(IMAGE)]}, system="", max_tokens=tokens,
                        temperature=0, api_name="/chat")  # no system prompt: the same prompt as the others
    first = None
    for _ in job:
        first = first or time.perf_counter()
    end = time.perf_counter()
    return _finish(server, first - started, end - first, over)


def run_http(server: object, tokens: int, over: list[float]) -> tuple[float, float]:
    """The whole app as a browser or a lean HTTP client meets it: one kept-alive connection uploads the photo,
    calls ``/chat`` (Gradio's REST route) and reads the server-sent events."""
    with httpx.Client(base_url=f"{server.url}gradio_api/", timeout=120) as http:
        started = time.perf_counter()
        with open(IMAGE, "rb") as photo:
            path = http.post("upload", files={"files": (Path(IMAGE).name, photo, "image/png")}).json()[0]
        message = {"text": QUESTION, "files": [{"path": path, "meta": {"_type": "gradio.FileData"}}]}
        event = http.post("call/chat", json={"data": [message, "", tokens, 0, 1.0, False]}).json()["event_id"]
        first = None
        with http.stream("GET", f"call/chat/{event}") as events:
            for line in events.iter_lines():  # "data: [answer so far]" per update; empty ones while preparing
                if first is None and line.startswith("data: [") and not line.startswith('data: [""'):
                    first = time.perf_counter()
        end = time.perf_counter()
    return _finish(server, first - started, end - first, over)


def _finish(server: object, ttft: float, decoding: float, over: list[float]) -> tuple[float, float]:
    answer = server.wait_answers(len(server.answers()))[-1]  # the app logs each answer's token count
    engine_first = float(FIRST_TOKEN.findall(server.log())[-1])
    over.append(ttft - engine_first)
    return ttft, (answer[1] - 1) / decoding


def teacher_forced(engine: TransformersEngine, tokens: int) -> tuple[int, int, float]:
    """The engine's greedy answer replayed step by step with oneDNN on and off for the decode steps (the same
    prefill): how many next-token choices agree, and the largest logit difference."""
    from transformers import DynamicCache

    if engine.cpu_decode is not None:
        engine.cpu_decode.remove()  # the switch is set by hand here
    inputs = engine._prepare(_messages())
    start, logits = inputs["input_ids"].shape[1], []
    with torch.inference_mode():
        answer = engine._generator.generate(**inputs, max_new_tokens=tokens, do_sample=False)
        for onednn in (True, False):
            cache = DynamicCache(config=engine._generator.config.get_text_config(decoder=True))
            engine._generator(**inputs, past_key_values=cache)
            steps = []
            with onednn_restored():
                for i in range(start, answer.shape[1]):
                    torch.backends.mkldnn.enabled = onednn
                    steps.append(engine._generator(input_ids=answer[:, i:i + 1], past_key_values=cache).logits[0, -1])
            logits.append(torch.stack(steps).float())
    if engine.cpu_decode is not None:
        engine.cpu_decode = engine.cpu_decode.make(engine._generator)
    on, off = logits
    return int((on.argmax(-1) == off.argmax(-1)).sum()), len(on), float((on - off).abs().max())


def _table(rows: dict[str, list[tuple[float, float]]]) -> str:
    raw_ttft = statistics.median(t for t, _ in rows["raw generate"])
    raw_speed = statistics.median(s for _, s in rows["raw generate"])
    lines = ["| path | TTFT p50 | TTFT p95 | decode tok/s | TTFT vs raw | decode time vs raw |",
             "|---|---|---|---|---|---|"]
    for name, results in rows.items():
        ttfts = sorted(t for t, _ in results)
        speed = statistics.median(s for _, s in results)
        p95 = ttfts[min(len(ttfts) - 1, round(0.95 * (len(ttfts) - 1)))]
        lines.append(f"| {name} | {statistics.median(ttfts) * 1000:.0f} ms | {p95 * 1000:.0f} ms | {speed:.1f} | "
                     f"{(statistics.median(ttfts) - raw_ttft) * 1000:+.0f} ms | {raw_speed / speed - 1:+.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint folder (default: build a random-weight SmolVLM2-256M)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--skip-app", action="store_true", help="only raw generate and the engine")
    args = parser.parse_args()
    # All PyTorch work on one thread, as in the app (see mmdemo/engines/workers.py).
    workers = TorchWorkers()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from tiny_models import SMOLVLM2_256M, build_smolvlm

            torch.manual_seed(0)
            model = str(Path(tmp) / "smolvlm2-256m-random")
            Path(model).mkdir()
            workers.run(build_smolvlm, Path(model), SMOLVLM2_256M)
        engine = TransformersEngine(model, "cpu", workers=workers, encoder_cache_mb=0)
        engine.load()
        rows: dict[str, list[tuple[float, float]]] = {"raw generate": [], "mmdemo engine": []}
        switched = engine.cpu_decode is not None  # warm-up's choice
        choice = engine.cpu_decode.description if switched else "oneDNN everywhere"
        for _ in range(args.runs):  # interleaved, so drift hits every path alike
            if switched:
                engine.cpu_decode.remove()  # raw generate: transformers as it comes, oneDNN in every step
            rows["raw generate"].append(workers.run(run_raw, engine, args.tokens))
            if switched:
                engine.cpu_decode = engine.cpu_decode.make(engine._generator)
            rows["mmdemo engine"].append(run_engine(engine, args.tokens))
        agree, steps, diff = workers.run(teacher_forced, engine, args.tokens)
        if not args.skip_app:
            from helpers import Server

            del engine
            server = Server(Path(model), ROOT / "tiny-none", Path(tmp) / "app.log", "--encoder-cache-mb", "0")
            clients = {"whole app (gradio_client)": run_app, "whole app (lean HTTP client)": run_http}
            over: dict[str, list[float]] = {name: [] for name in clients}
            try:
                for name in clients:
                    rows[name] = []
                for _ in range(args.runs):  # interleaved too
                    for name, run in clients.items():
                        rows[name].append(run(server, args.tokens, over[name]))
            finally:
                server.stop()
            breakdown = "; ".join(f"{name}: {statistics.median(o) * 1000:+.0f} ms" for name, o in over.items())
    print(f"model: {model if args.model else 'SmolVLM2-256M (random weights, full size)'}, cpu, "
          f"{torch.get_num_threads()} threads, {args.tokens} new tokens, {args.runs} runs, torch {torch.__version__}; "
          f"engine's CPU decode (chosen at warm-up): {choice}")
    print(_table(rows))
    print(f"\nteacher-forced greedy choices, decode steps without vs with oneDNN: {agree} of {steps} agree "
          f"(largest logit difference {diff:.3f})")
    if not args.skip_app:
        print(f"\nwhole app beyond the engine's own first token (its log), p50: {breakdown}")


if __name__ == "__main__":
    main()
