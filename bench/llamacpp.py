"""llama.cpp (through llama-cpp-python) against mmdemo's transformers engine, same model, same CPU, one run.

    pip install llama-cpp-python              # no wheel for this platform: builds llama.cpp from source
    python tests/tiny_realish.py ...          # or any full-size checkpoint folder, e.g. from bench/models.py
    # GGUF files with llama.cpp's own converter (vendored in llama-cpp-python's source archive):
    python vendor/llama.cpp/convert_hf_to_gguf.py HF_DIR --outtype bf16 --outfile model.gguf
    python vendor/llama.cpp/convert_hf_to_gguf.py HF_DIR --outtype bf16 --mmproj --outfile mmproj.gguf
    python bench/llamacpp.py --hf HF_DIR --gguf model.gguf --mmproj mmproj.gguf

Times to the first token with one 1 MP photo and with text only, and decode tokens/s, median of ``--runs``,
interleaved (llama.cpp, then transformers, each run). The chat prompt for llama.cpp is SmolVLM's (other
families need their own prompt format here); llama-cpp-python's multimodal handler adds its own system line.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import IMAGE, QUESTION  # noqa: E402
from PIL import Image  # noqa: E402

SMOLVLM = ("{% for message in messages %}<|im_start|>{{ message.role | capitalize }}:"
           "{% if message.content is string %} {{ message.content }}{% else %}{% for part in message.content %}"
           "{% if part.type == 'image_url' %}{{ part.image_url.url }}{% else %} {{ part.text }}{% endif %}"
           "{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}Assistant:")


def photo_url(edge: int) -> str:
    """The benchmark photo (1184×864) as a data URL for llama.cpp's multimodal chat handler, scaled to ``edge``
    pixels at most (SmolVLM's projector in llama.cpp cuts a larger image into 512 px tiles)."""
    buffer = io.BytesIO()
    image = Image.open(IMAGE).convert("RGB").resize((1184, 864))
    image.thumbnail((edge, edge))
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def llama_cpp_run(llm: object, content: list[dict] | str, tokens: int) -> tuple[float, float]:
    """(time to first token, decode tok/s) of one streamed chat completion."""
    started, times = time.perf_counter(), []
    stream = llm.create_chat_completion(messages=[{"role": "user", "content": content}], max_tokens=tokens,  # type: ignore[attr-defined]
                                        temperature=0.0, stream=True)
    for chunk in stream:
        if chunk["choices"][0]["delta"].get("content"):
            times.append(time.perf_counter())
    return times[0] - started, (len(times) - 1) / (times[-1] - times[0])


def engine_run(engine: object, content: list[dict], tokens: int) -> tuple[float, float]:
    """(time to first token, decode tok/s) of one answer through mmdemo's engine."""
    from mmdemo.engines.base import GenerationParams, GenerationStats

    stats = GenerationStats()
    for _ in engine.stream([{"role": "user", "content": content}], GenerationParams(tokens, 0.0),  # type: ignore[attr-defined]
                           threading.Event(), stats):
        pass
    return stats.first_token_s or 0.0, stats.tokens_per_s or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hf", required=True, help="the checkpoint folder (transformers)")
    parser.add_argument("--gguf", required=True)
    parser.add_argument("--mmproj", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--edge", type=int, default=512, help="the photo's longest edge for llama.cpp (512: one "
                        "tile, as mmdemo's CPU settings send SmolVLM; 1184: llama.cpp tiles the whole photo)")
    args = parser.parse_args()
    import torch
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Llava15ChatHandler

    from mmdemo.engines.local import TransformersEngine

    class SmolVLMHandler(Llava15ChatHandler):
        CHAT_FORMAT = SMOLVLM

    llm = Llama(model_path=args.gguf, chat_handler=SmolVLMHandler(clip_model_path=args.mmproj, verbose=False),
                n_ctx=4096, n_threads=torch.get_num_threads(), verbose=False)
    engine = TransformersEngine(args.hf, "cpu", encoder_cache_mb=0)
    engine.load()
    image = Image.open(IMAGE).convert("RGB").resize((1184, 864))
    url = photo_url(args.edge)
    asks = {"photo": ([{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": QUESTION}],
                      [{"type": "image", "image": image}, {"type": "text", "text": QUESTION}]),
            "text": (QUESTION, [{"type": "text", "text": QUESTION}])}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        for kind, (llama_content, engine_content) in asks.items():
            results.setdefault(("llama.cpp", kind), []).append(llama_cpp_run(llm, llama_content, args.tokens))
            results.setdefault(("transformers", kind), []).append(engine_run(engine, engine_content, args.tokens))
    print(f"{torch.get_num_threads()} threads, {args.tokens} new tokens, median of {args.runs}")
    print("| runtime | first token, 1 MP photo | first token, text | decode tok/s |")
    print("|---|---|---|---|")
    for runtime in ("llama.cpp", "transformers"):
        photo, text = results[(runtime, "photo")], results[(runtime, "text")]
        print(f"| {runtime} | {statistics.median(t for t, _ in photo):.2f} s | "
              f"{statistics.median(t for t, _ in text):.2f} s | {statistics.median(s for _, s in text):.1f} |")


if __name__ == "__main__":
    main()
