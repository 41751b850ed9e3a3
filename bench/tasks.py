"""What each task and extra costs on a CPU: full-size random-weight models from the real configurations.

    python bench/tasks.py                 # SmolVLM2-256M (chat, classification), MMS-TTS (voice), CLIP B/32 (search)
    python bench/tasks.py --model DIR     # another chat checkpoint folder

Speed does not depend on weight values. Prints one table: what was timed, the median of ``--runs`` and
what it means for a visitor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402
from common import IMAGE  # noqa: E402
from PIL import Image  # noqa: E402

from mmdemo.chat import ChatService, Request  # noqa: E402
from mmdemo.engines.base import GenerationParams  # noqa: E402
from mmdemo.engines.local import TransformersEngine  # noqa: E402
from mmdemo.engines.retrieval import Embedder  # noqa: E402
from mmdemo.engines.speech import Speaker  # noqa: E402
from mmdemo.engines.workers import TorchWorkers  # noqa: E402
from mmdemo.modalities import Budget  # noqa: E402
from mmdemo.models import ModelManager  # noqa: E402
from mmdemo.runner import start  # noqa: E402
from mmdemo.turns import Turn  # noqa: E402

SENTENCE = "The house stands on a green hill, and a red ball lies in the grass beside it."


def median(fn, runs: int) -> float:
    """Median wall time of ``fn()`` over ``runs`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def build_full_size(folder: Path, workers: TorchWorkers) -> dict[str, Path]:
    """SmolVLM2-256M, an MMS-TTS-sized VITS and a CLIP ViT-B/32, random weights, saved under ``folder``."""
    from tiny_extras import build_clip, build_vits
    from tiny_models import SMOLVLM2_256M, build_smolvlm
    from transformers import CLIPConfig, CLIPModel, VitsConfig, VitsModel

    paths = {name: folder / name for name in ("smolvlm", "vits", "clip")}
    for path in paths.values():
        path.mkdir()
    torch.manual_seed(0)
    workers.run(build_smolvlm, paths["smolvlm"], SMOLVLM2_256M)
    build_vits(paths["vits"])  # the tokenizer; then the full-size model in its place
    vocab = VitsModel.from_pretrained(paths["vits"]).config.vocab_size
    VitsModel(VitsConfig(vocab_size=vocab)).save_pretrained(paths["vits"])  # VitsConfig() is MMS-TTS's size
    build_clip(paths["clip"])
    text_vocab = CLIPModel.from_pretrained(paths["clip"]).config.text_config.vocab_size
    CLIPModel(CLIPConfig(text_config={"vocab_size": text_vocab})).save_pretrained(paths["clip"])  # ViT-B/32
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPProcessor

    tokenizer = AutoTokenizer.from_pretrained(paths["clip"])
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer).save_pretrained(paths["clip"])  # 224 px
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="chat checkpoint folder (default: a random-weight SmolVLM2-256M)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workers = TorchWorkers()
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_full_size(Path(tmp), workers)
        engine = TransformersEngine(args.model or str(paths["smolvlm"]), "cpu", workers=workers,
                                    encoder_cache_mb=0)
        service = ChatService(ModelManager(engine), Budget(), 64)
        service.models.warm_up()
        labels = ("positive", "neutral", "negative")
        text_only = Request(Turn.user("I loved this film."), labels=labels)
        with_photo = Request(Turn.user("What kind of picture is this?", [str(IMAGE)]), labels=labels)
        rows.append(("classify, text, 3 labels", median(
            lambda: service.classify(text_only, threading.Event()), args.runs), "to the label"))
        rows.append(("classify, photo + text, 3 labels", median(
            lambda: service.classify(with_photo, threading.Event()), args.runs), "to the label"))
        stages: dict[str, float] = {}

        def first_token() -> None:
            handle = start(service, Request(Turn.user("Describe this picture.", [str(IMAGE)]),
                                            params=GenerationParams(1, 0.0)))
            for _ in handle:
                pass
            stages.update(handle.stats.stages)

        rows.append(("caption, first token (for comparison)", median(first_token, args.runs), "to the first word"))
        speaker = Speaker(str(paths["vits"]), "cpu", workers)
        rate, audio = speaker.synthesize(SENTENCE)
        spoken = median(lambda: speaker.synthesize(SENTENCE), args.runs)
        rows.append((f"voice, one sentence ({len(audio) / rate:.1f} s of speech)", spoken,
                     f"real-time factor {spoken / (len(audio) / rate):.2f}"))
        embedder = Embedder(str(paths["clip"]), "cpu", workers)
        images = {f"{i}": Image.open(IMAGE).rotate(i) for i in range(8)}
        embedder.load()

        def index() -> None:
            embedder._cache.clear()
            embedder.image_vectors(images)

        rows.append(("search, index 8 images", median(index, args.runs), "once per image, then cached"))
        rows.append(("search, text query over the gallery", median(
            lambda: embedder.search(embedder.text_vector("a house"), embedder.image_vectors(images)), args.runs),
            "per search"))
    print(f"CPU: {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{threading.active_count()} Python threads")
    print("| what | median | note |\n|---|---|---|")
    for what, seconds, note in rows:
        print(f"| {what} | {seconds * 1000:.0f} ms | {note} |")
    print("\nStages of the caption's first token: " + " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in stages.items()))


if __name__ == "__main__":
    main()
