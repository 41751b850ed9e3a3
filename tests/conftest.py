"""Shared fixtures: tiny checkpoints built once per session, engines on them, media files made on the fly."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_extras import build_extras  # noqa: E402
from tiny_models import build_all  # noqa: E402
from tiny_realish import build_twins  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of the tiny checkpoints: smolvlm, qwen2_5_omni, whisper."""
    return build_all(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny twins of the published defaults: their real tokenizers, templates and configs, tiny weights."""
    return build_twins(tmp_path_factory.mktemp("twins"))


CHROMIUM = os.environ.get("MMDEMO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    """Real Chromium (Debian's package) driven by Playwright, for one browser test module (closed after it:
    its open pages would otherwise keep using the CPU while the other tests run)."""
    if not CHROMIUM:
        pytest.fail("Chromium is missing: install Debian's 'chromium' package (bash .ci/run does) "
                    "or point MMDEMO_CHROMIUM at a Chromium binary.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",  # a synthetic microphone
            "--host-resolver-rules=MAP mmdemo.test 127.0.0.1"])  # the same server under a non-local name
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where browser tests save screenshots: $MMDEMO_SCREENSHOTS/screenshots (the README's), else a temp folder."""
    folder = Path(os.environ.get("MMDEMO_SCREENSHOTS") or tmp_path) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def tiny_extras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of the tiny optional models: clip (search), vits (voice), sd (drawing)."""
    return build_extras(tmp_path_factory.mktemp("tiny_extras"))


@pytest.fixture(scope="session")
def tasks_app(tiny, tiny_extras, tmp_path_factory):
    """``app.py`` on the tiny Qwen2.5-VL trained to find the example's objects (a grounding preset's
    architecture), with every optional model on: voice, search and drawing."""
    from helpers import Server

    server = Server(tiny_extras["grounding"], tiny["whisper"], tmp_path_factory.mktemp("tasks") / "app.log",
                    "--tts-model", str(tiny_extras["vits"]), "--search-model", str(tiny_extras["clip"]),
                    "--draw-model", str(tiny_extras["sd"]), ready="loaded search model")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smolvlm_engine(tiny):
    from mmdemo.engines.local import TransformersEngine

    engine = TransformersEngine(str(tiny["smolvlm"]), "cpu")
    engine.load()
    return engine


@pytest.fixture(scope="session")
def omni_engine(tiny):
    from mmdemo.engines.local import TransformersEngine

    engine = TransformersEngine(str(tiny["qwen2_5_omni"]), "cpu")
    engine.load()
    return engine


@pytest.fixture(scope="session")
def showcase_app(tiny, tmp_path_factory):
    """``app.py --showcase`` on the tiny SmolVLM, once its example answers are cached (API and browser tests)."""
    from helpers import Server

    server = Server(tiny["smolvlm"], tiny["whisper"], tmp_path_factory.mktemp("showcase") / "app.log", "--showcase",
                    "--max-new-tokens", "48", ready="example answers cached")  # 7 answers of 48 tokens, not 256
    yield server
    server.stop()


@pytest.fixture(scope="session")
def transcriber(tiny):
    from mmdemo.engines.asr import WhisperTranscriber

    return WhisperTranscriber(str(tiny["whisper"]), "cpu")


@pytest.fixture
def image_file(tmp_path: Path):
    """Write an image made with Pillow and return its path."""

    def make(name: str = "photo.png", size: tuple[int, int] = (64, 48), mode: str = "RGB", color="red", **save):
        path = tmp_path / name
        Image.new(mode, size, color).save(path, **save)
        return path

    return make


@pytest.fixture
def audio_file(tmp_path: Path):
    """Write a tone with soundfile and return its path."""

    def make(name: str = "clip.wav", seconds: float = 1.0, rate: int = 16000, channels: int = 1, **write):
        t = np.arange(int(seconds * rate)) / rate
        tone = 0.3 * np.sin(2 * np.pi * 440 * t)
        data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
        path = tmp_path / name
        soundfile.write(path, data, rate, **write)
        return path

    return make
