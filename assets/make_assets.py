"""Regenerate the example media in assets/ (all made here, so they may be redistributed freely).

    python assets/make_assets.py    # needs espeak-ng for the speech clips
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def scene() -> None:
    """A simple scene: sky, sun, a house, a tree and a red ball."""
    img = Image.new("RGB", (640, 480), (135, 200, 250))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 340, 640, 480], fill=(90, 170, 80))
    d.ellipse([500, 40, 590, 130], fill=(255, 215, 0))
    d.rectangle([120, 220, 300, 360], fill=(200, 120, 70))
    d.polygon([(100, 225), (210, 130), (320, 225)], fill=(150, 40, 40))
    d.rectangle([190, 290, 230, 360], fill=(90, 60, 30))
    d.rectangle([420, 230, 445, 360], fill=(110, 70, 40))
    d.ellipse([370, 150, 495, 270], fill=(40, 130, 50))
    d.ellipse([330, 370, 390, 430], fill=(220, 30, 30))
    img.save(HERE / "scene.png", optimize=True)


def chart() -> None:
    """A bar chart with a title and labelled axes."""
    values = {"Jan": 12, "Feb": 18, "Mar": 9, "Apr": 24, "May": 15}
    img = Image.new("RGB", (640, 420), "white")
    d = ImageDraw.Draw(img)
    d.text((320, 24), "Monthly sales (units)", fill="black", anchor="mm", font=_font(24))
    d.line([(70, 360), (600, 360)], fill="black", width=2)
    d.line([(70, 60), (70, 360)], fill="black", width=2)
    for i, (month, value) in enumerate(values.items()):
        x = 110 + i * 100
        d.rectangle([x, 360 - value * 11, x + 60, 360], fill=(60, 110, 200))
        d.text((x + 30, 380), month, fill="black", anchor="mm", font=_font(18))
        d.text((x + 30, 345 - value * 11), str(value), fill="black", anchor="mm", font=_font(18))
    img.save(HERE / "chart.png", optimize=True)


def speech(name: str, text: str) -> None:
    """A spoken clip made with espeak-ng, stored as 16 kHz mono 16-bit WAV."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), text], check=True)
        samples, rate = soundfile.read(raw, dtype="float32")
    import soxr

    samples = soxr.resample(samples, rate, 16000)
    samples = samples / max(1e-6, float(np.abs(samples).max())) * 0.8
    soundfile.write(HERE / f"{name}.wav", samples, 16000, subtype="PCM_16")


def clip() -> None:
    """A 6 s video (H.264 + AAC in MP4): the scene, a red ball rolling from left to right, and a voice saying so."""
    import av

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), "Watch the red ball roll across the garden."],
                       check=True)
        voice, rate = soundfile.read(raw, dtype="float32")
    background = Image.open(HERE / "scene.png").convert("RGB").resize((320, 240))
    with av.open(str(HERE / "clip.mp4"), "w") as container:
        video = container.add_stream("libx264", rate=10, options={"crf": "30"})
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        sound = container.add_stream("aac", rate=rate)
        for i in range(60):
            frame = background.copy()
            x = 10 + i * 4.8
            ImageDraw.Draw(frame).ellipse([x, 185, x + 30, 215], fill=(220, 30, 30))
            container.mux(video.encode(av.VideoFrame.from_image(frame)))
        container.mux(video.encode())
        samples = av.AudioFrame.from_ndarray((0.8 * voice / np.abs(voice).max()).astype(np.float32)[None, :],
                                             format="flt", layout="mono")
        samples.sample_rate = rate
        container.mux(sound.encode(samples))
        container.mux(sound.encode())


if __name__ == "__main__":
    scene()
    chart()
    clip()
    speech("question", "What colour is the ball in this picture?")
    speech("hello", "Hello! This is a short voice message recorded for the multimodal demo.")
    print("assets written to", HERE)
