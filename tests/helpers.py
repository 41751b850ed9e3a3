"""A real ``python app.py`` on 127.0.0.1 with a tiny model, started and stopped by the tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image, ImageStat

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
ANSWER_LOG = re.compile(r"answer: (\d+) prompt tokens, (\d+) generated( \(stopped\))?")
MAX_TOKENS = 3000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python app.py`` with a tiny model; its log is read by the tests."""

    def __init__(self, model: Path, asr: Path, log_path: Path, *args: str, ready: str = "loaded") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--model", str(model), "--asr-model", str(asr),
             "--port", str(self.port), "--max-new-tokens", str(MAX_TOKENS), *args],
            cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            if ready in self.log():
                try:
                    if httpx.get(self.url, timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        self.stop()
        raise AssertionError(f"app did not start within 120 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def answers(self) -> list[tuple[int, int, bool]]:
        """(prompt tokens, generated tokens, stopped) of every answer so far."""
        return [(int(p), int(g), bool(s)) for p, g, s in ANSWER_LOG.findall(self.log())]

    def wait_answers(self, count: int, timeout: float = 20) -> list[tuple[int, int, bool]]:
        deadline = time.monotonic() + timeout
        while len(self.answers()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.answers()) >= count, self.log()[-3000:]
        return self.answers()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def open_page(browser, url: str, width: int, height: int):
    """A new page at ``url`` once the model is ready."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.wait_for_selector("#status:has-text('ready')", timeout=30_000)
    return page


def assert_not_blank(path: Path, box: dict) -> None:
    """The screenshot at ``path`` shows something (not one flat colour) inside ``box``."""
    with Image.open(path) as shot:
        left, top = max(0, box["x"]), max(0, box["y"])
        region = shot.convert("L").crop((left, top, box["x"] + box["width"], box["y"] + box["height"]))
        assert ImageStat.Stat(region).stddev[0] > 10, f"{path.name}: the area looks blank"


def write_clip(path: Path, seconds: float = 3.0, fps: int = 10, size: tuple[int, int] = (160, 120),
               audio: bool = False, codec: str = "libx264", gop: int | None = None) -> Path:
    """A test video: each second a different colour (frame i is (i * 7 % 256, ...)), optionally a 440 Hz
    sound track; ``gop``: frames between keyframes (default: the encoder's)."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        sound = container.add_stream("aac", rate=16000) if audio else None
        for i in range(int(seconds * fps)):
            shade = int(i / fps * 40) % 256
            pixels = np.full((size[1], size[0], 3), (shade, 255 - shade, 80), np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
        if sound is not None:
            t = np.arange(int(seconds * 16000)) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate = 16000
            for chunk in [frame]:
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    return path
