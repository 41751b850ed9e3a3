"""The model's own voice, streamed: what vocoding each chunk costs against the audio it makes, and against
vocoding the whole answer at once (as transformers' composite ``generate`` does).

    python bench/voice.py --device cuda --seconds 20 --runs 3     # on a GPU (about a minute on an H100)
    python bench/voice.py --seconds 1.2 --runs 1                  # on a CPU, far slower than real time (~7 min)

Builds Qwen2.5-Omni's token2wav (DiT + BigVGAN) at transformers' default sizes (random weights, float32 as the
model runs it; the published checkpoint's token2wav section is not among this project's files) and feeds
``--seconds`` of random speech codes (50 a second) through ``mmdemo.engines.talker.VoiceStream`` one by one, as
the talker hands them over. Prints, per chunk, how long its vocoding took and how much audio it gave; then the
whole-answer vocoding of the same codes. The talker itself (which writes the codes) is not timed: its real
sizes are not known here either.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from transformers import Qwen2_5OmniToken2WavConfig
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniToken2WavModel

from mmdemo.engines.streaming import Spoken
from mmdemo.engines.talker import SAMPLE_RATE, VoiceStream


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def streamed(model: SimpleNamespace, codes: list[int], device: str) -> list[tuple[int, float, float]]:
    """(codes in when the chunk came, seconds its vocoding took, seconds of audio) per chunk."""
    chunks: list[tuple[int, float, float]] = []
    clock = {"codes": 0, "started": 0.0}

    def out(clip: tuple[int, object]) -> None:
        sync(device)
        chunks.append((clock["codes"], time.perf_counter() - clock["started"], len(clip[1]) / SAMPLE_RATE))

    voice = VoiceStream(model, "Chelsie", len(codes), [8292, 8294], out, lambda: False)
    voice.put(torch.tensor([[0]]))  # the talker's prompt
    for code in codes:
        clock["codes"] += 1
        clock["started"] = time.perf_counter()
        voice.put(torch.tensor([code]))
    clock["started"] = time.perf_counter()
    with contextlib.suppress(Spoken):
        voice.end()
    return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=10.0, help="of speech (50 codes a second)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="the DiT compiled with CUDA graphs (torch.compile, "
                        "mode='reduce-overhead'; one graph per window length; the first run compiles)")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = Qwen2_5OmniToken2WavConfig()
    with torch.device(args.device):
        token2wav = Qwen2_5OmniToken2WavModel(config).float().eval()
        voice = {"cond": torch.randn(1, config.dit_config.enc_emb_dim), "ref_mel": torch.randn(1, 300, 80)}
    if args.compile:
        token2wav.code2wav_dit_model = torch.compile(token2wav.code2wav_dit_model, mode="reduce-overhead",
                                                     dynamic=False)
    model = SimpleNamespace(token2wav=token2wav, speaker_map={"Chelsie": voice})
    codes = torch.randint(0, 8000, (int(args.seconds * 50),)).tolist()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    params = sum(p.numel() for p in token2wav.parameters()) / 1e6
    print(f"{name}, torch {torch.__version__}; token2wav {params:.0f}M parameters (default sizes, random), float32; "
          f"{len(codes)} codes = {args.seconds:.1f} s of speech; median of {args.runs} runs"
          f"{'; DiT compiled (CUDA graphs)' if args.compile else ''}\n")
    with torch.inference_mode():
        streamed(model, codes[:60], args.device)  # warm-up
        runs = [streamed(model, codes, args.device) for _ in range(args.runs)]
        wholes = []
        for _ in range(args.runs):
            sync(args.device)
            started = time.perf_counter()
            token2wav(torch.tensor([codes], device=args.device), conditioning=voice["cond"],
                      reference_mel=voice["ref_mel"])
            sync(args.device)
            wholes.append(time.perf_counter() - started)
    print("| chunk | after code | vocoding (ms) | audio (s) |\n|---|---|---|---|")
    for index, chunk in enumerate(runs[0]):
        took = statistics.median(run[index][1] for run in runs)
        print(f"| {index + 1} | {chunk[0]} | {took * 1000:.0f} | {chunk[2]:.2f} |")
    totals = [sum(c[1] for c in run) for run in runs]
    print(f"\nall chunks, each run: {', '.join(f'{t:.2f} s' for t in totals)}; whole answer at once, each run: "
          f"{', '.join(f'{t:.2f} s' for t in wholes)}")
    total = statistics.median(totals)
    first = statistics.median(run[0][1] for run in runs)
    audio = sum(c[2] for c in runs[0])
    print(f"\nstreamed: first audio {first * 1000:.0f} ms after the 48th code; all chunks {total:.2f} s for "
          f"{audio:.2f} s of audio ({audio / total:.1f}× real time)")
    print(f"whole answer at once (transformers' composite path): {statistics.median(wholes):.2f} s, "
          "all of it after the last code")


if __name__ == "__main__":
    main()
