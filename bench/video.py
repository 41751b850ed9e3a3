"""Video on this CPU: how long sampling a clip takes, and the time to the first token of a question about it,
with the CPU settings (1 frame a second, at most 8 frames of at most 360×360 pixels) and the CPU default
model (SmolVLM2-256M-Video: its published non-weight files, full-size random weights).

    python bench/video.py            # writes 720p test clips (about a minute), then measures
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

import av  # noqa: E402
import numpy as np  # noqa: E402

from mmdemo.conversation import build_messages  # noqa: E402
from mmdemo.engines.base import GenerationParams, GenerationStats  # noqa: E402
from mmdemo.engines.local import TransformersEngine  # noqa: E402
from mmdemo.engines.workers import TorchWorkers  # noqa: E402
from mmdemo.modalities import Budget  # noqa: E402
from mmdemo.turns import Turn  # noqa: E402
from mmdemo.video import load_video  # noqa: E402

BUDGET = Budget(video_fps=1.0, video_frames=8, video_frame_pixels=360 * 360)


def write_720p(path: Path, seconds: int) -> Path:
    """A 720p 30 fps H.264 clip whose every frame differs (a moving gradient with noise), keyframes every
    250 frames as x264 places them by default, like a phone's or a screen recorder's."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, (720, 1280, 3), dtype=np.uint8)
    ramp = np.linspace(0, 200, 1280, dtype=np.float32)[None, :, None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "28"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for i in range(seconds * 30):
            frame = (np.roll(ramp, i * 8, axis=1) + noise).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from tiny_realish import build_twin

    workers = TorchWorkers()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = {seconds: write_720p(Path(tmp) / f"{seconds}s.mp4", seconds) for seconds in (10, 60)}
        model = workers.run(build_twin, "smolvlm2-256m-video", Path(tmp) / "smolvlm2", True)
        engine = TransformersEngine(str(model), "cpu", workers=workers, encoder_cache_mb=0)
        engine.load()
        for seconds, clip in clips.items():
            sampling = []
            for _ in range(args.runs):
                started = time.perf_counter()
                frames = len(load_video(clip, BUDGET.video_fps, BUDGET.video_frames, BUDGET.max_video_seconds,
                                        BUDGET.video_frame_pixels).data.frames)
                sampling.append(time.perf_counter() - started)
            ttft, stats = [], GenerationStats()
            for _ in range(args.runs):
                started = time.perf_counter()
                prepared = build_messages([], Turn.user("What happens in this video?", [str(clip)]), system_prompt="",
                                          capabilities=engine.capabilities, budget=BUDGET)
                stats = GenerationStats()
                for _ in engine.stream(prepared.messages, GenerationParams(1, 0.0), threading.Event(), stats):
                    pass
                ttft.append(time.perf_counter() - started)
            video_tokens = stats.media_tokens.get("video", 0)
            rows.append(f"| {seconds} s 720p | {statistics.median(sampling) * 1000:.0f} ms | {frames} × "
                        f"{video_tokens // max(1, frames)} = {video_tokens} | {stats.prompt_tokens} | "
                        f"{statistics.median(ttft):.2f} s | {stats.stages.get('vision encoder', 0):.2f} s / "
                        f"{stats.stages.get('prefill', 0):.2f} s |")
    print(f"load average {os.getloadavg()[0]:.2f}; median of {args.runs} runs\n")
    print("| clip | sampling (seek + decode + scale) | frames × tokens per frame | prompt tokens | time to first "
          "token (sampling included) | of which vision encoder / prefill |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
