"""The llama.cpp engine against a real llama-server (requirements-llamacpp.txt) on tiny GGUF files converted by
llama.cpp's own converter (tests/gguf, written by tests/make_gguf_twin.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from helpers import ASSETS, ROOT, Server
from PIL import Image

from mmdemo import presets
from mmdemo.chat import ChatService
from mmdemo.engines.base import EngineStatus, GenerationParams, GenerationStats
from mmdemo.engines.llamacpp import LlamaCppEngine, capabilities
from mmdemo.engines.llamaserver import find_server
from mmdemo.engines.remote import OpenAIEngine
from mmdemo.errors import UserError
from mmdemo.modalities import Budget
from mmdemo.models import ModelManager
from mmdemo.views import model_card

GGUF = ROOT / "tests" / "gguf" / "smolvlm-tiny.gguf"
try:
    find_server()
except UserError as missing:  # pragma: no cover - CI installs it (.ci/run)
    pytestmark = pytest.mark.skip(reason=str(missing))


def user(*parts: dict) -> list[dict]:
    return [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            *([{"role": "user", "content": list(parts)}] if parts else [])]


IMAGE = {"type": "image", "image": Image.new("RGB", (96, 64), "red")}
TEXT = {"type": "text", "text": "Describe."}


@pytest.fixture(scope="module")
def engine():
    served = LlamaCppEngine(str(GGUF), context=2048)
    yield served
    served.close()


def slots_busy(engine: LlamaCppEngine) -> bool:
    server = engine._server
    slots = httpx.get(f"{server.url}/slots", headers={"Authorization": f"Bearer {server.key}"}, timeout=5).json()
    return any(slot["is_processing"] for slot in slots)


def test_serves_the_gguf_with_its_projector(engine):
    caps = engine.capabilities
    assert caps.image and not caps.audio and caps.context_tokens == 2048 and not caps.thinking
    status = engine.status()
    assert status.state == "ready" and status.detail == "takes text, images" and "llama.cpp" in status.device
    with_image, text_only = GenerationStats(), GenerationStats()
    deltas = list(engine.stream(user(IMAGE, TEXT), GenerationParams(16, 0.0), threading.Event(), with_image))
    list(engine.stream(user(TEXT), GenerationParams(4, 0.0), threading.Event(), text_only))
    assert "".join(deltas) and with_image.generated_tokens >= 2 and with_image.first_token_s is not None
    assert with_image.prompt_tokens > text_only.prompt_tokens + 4  # the picture became tokens of the prompt


def test_images_are_sent_within_the_token_budget(engine):
    """256 tokens an image (the CPU budget): a photo goes at most 512 px on its long side, as one tile would."""
    assert engine.image_edge == 512 and engine.seen_size(1184, 864) == (512, 374)
    assert engine.seen_size(300, 200) == (300, 200)
    photo = Image.open(ASSETS / "scene.png").convert("RGB").resize((1184, 864))
    big, fitted = GenerationStats(), GenerationStats()
    for image, stats in ((photo, big), (photo.resize((512, 374)), fitted)):
        part = {"type": "image", "image": image}
        list(engine.stream(user(part, TEXT), GenerationParams(2, 0.0), threading.Event(), stats))
    assert big.prompt_tokens == fitted.prompt_tokens


def test_media_read_ahead_are_not_read_again(engine):
    """While a message is written, llama-server reads its picture in the conversation; it keeps that prompt, so
    the request with the question added starts after the picture."""
    photo = {"type": "image", "image": Image.open(ASSETS / "chart.png").convert("RGB")}
    system = user()[0]
    engine.load()
    assert engine.idle()
    engine.prefetch([system, {"role": "user", "content": [photo]}]).result(timeout=60)
    read, cold = GenerationStats(), GenerationStats()
    list(engine.stream([system, {"role": "user", "content": [photo, TEXT]}], GenerationParams(2, 0.0),
                       threading.Event(), read))
    list(engine.stream(user(IMAGE, TEXT), GenerationParams(2, 0.0), threading.Event(), cold))
    assert read.prompt_tokens - read.cached_tokens <= 10  # only the question and the turn's end were read
    assert cold.prompt_tokens - cold.cached_tokens > 15  # a new picture is read
    assert engine._reads_ahead  # it helped: it stays on


def test_reading_ahead_stops_where_the_server_cannot_reuse_it():
    """Qwen3.5's recurrent layers cannot be rolled back to the end of a picture: after two reads in vain the
    engine stops reading ahead (measured on it: 26 of 238 prompt tokens reused)."""
    served = LlamaCppEngine(str(GGUF), context=512)
    try:
        served.load()
        for _ in range(2):
            served._judge_reading(GenerationStats(prompt_tokens=238, cached_tokens=26))
        assert served.prefetch(user(IMAGE)) is None and not served._reads_ahead
    finally:
        served.close()


def test_the_openai_engine_probes_a_llama_server(engine):
    """llama-server refuses a part its model cannot read with HTTP 500 (not 4xx): still "not taken"."""
    remote = OpenAIEngine([f"{engine._server.url}/v1"], "any", engine._server.key)
    assert remote.capabilities.image and not remote.capabilities.audio


def test_stop_ends_the_generation_on_the_server(engine):
    cancel, stats = threading.Event(), GenerationStats()
    for i, _ in enumerate(engine.stream(user(TEXT), GenerationParams(1800, 0.0), cancel, stats)):
        if i == 2:
            cancel.set()
    assert stats.cancelled and stats.generated_tokens == 3
    deadline = time.monotonic() + 5
    while slots_busy(engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not slots_busy(engine)  # llama-server dropped the task when the stream closed


def test_a_killed_server_is_started_again(engine):
    first = engine._server.proc
    first.kill()
    first.wait(10)
    assert "".join(engine.stream(user(TEXT), GenerationParams(4, 0.0), threading.Event()))
    assert engine._server.alive() and engine._server.proc is not first and engine.status().state == "ready"


def test_a_broken_model_file_fails_with_a_clear_message(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + (99).to_bytes(4, "little") + bytes(64))
    bad = LlamaCppEngine(str(broken), start_timeout_s=60)
    with pytest.raises(UserError, match="llama.cpp could not load broken.gguf") as failed:
        bad.load()
    assert "this GGUF file is version 99" in str(failed.value)  # the cause, not the lines that gave up after it
    assert str(tmp_path) not in str(failed.value) and bad.status().state == "failed"
    assert not bad._server.alive()
    with pytest.raises(UserError, match="does not exist"):
        LlamaCppEngine(str(tmp_path / "missing.gguf")).load()
    with pytest.raises(UserError, match="requirements-llamacpp.txt"):
        find_server(str(tmp_path / "no-such-program"))


def test_a_server_started_by_a_passing_thread_stays(engine):
    """The app loads models on a background thread that then ends: the server must outlive it."""
    other = LlamaCppEngine(str(GGUF), context=512)
    loader = threading.Thread(target=other.load)
    loader.start()
    loader.join(60)
    first = other._server.proc
    time.sleep(1.5)
    try:
        assert other._server.alive() and other._server.proc is first
    finally:
        other.close()
    assert not other._server.alive()


def test_the_server_ends_with_the_app(tmp_path):
    """Even killed (no cleanup runs), the app leaves no llama-server behind."""
    script = ("import sys; from mmdemo.engines.llamacpp import LlamaCppEngine\n"
              f"e = LlamaCppEngine({str(GGUF)!r}, context=512); e.load()\n"
              "print(e._server.proc.pid, flush=True); sys.stdin.read()")
    app = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    pid = int(app.stdout.readline())
    os.kill(pid, 0)  # running
    app.send_signal(signal.SIGKILL)
    app.wait(10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "gone"


def test_capabilities_come_from_the_servers_props():
    props = {"modalities": {"vision": True, "audio": True}, "default_generation_settings": {"n_ctx": 8192},
             "chat_template": "{% if enable_thinking is defined and not enable_thinking %}<think></think>{% endif %}"}
    caps = capabilities(props)
    assert caps.image and caps.audio and caps.context_tokens == 8192 and caps.thinking
    assert not capabilities({}).image and capabilities({}).context_tokens is None


def test_presets_name_their_gguf_builds():
    assert presets.gguf(None, "cpu") == "ggml-org/SmolVLM2-256M-Video-Instruct-GGUF"
    assert presets.gguf("gemma-4-e2b", "cpu") == "ggml-org/gemma-4-E2B-it-GGUF"
    assert presets.gguf("Qwen/Qwen2.5-Omni-7B", "cuda") == "ggml-org/Qwen2.5-Omni-7B-GGUF"
    assert presets.gguf("me/my-model-GGUF:Q8_0", "cpu") == "me/my-model-GGUF:Q8_0"
    with pytest.raises(UserError, match="no llama.cpp build"):
        presets.gguf("qwen3.5-0.8b", "cpu")


def test_the_model_card_names_what_a_gguf_build_was_built_from():
    class Built(LlamaCppEngine):
        def __init__(self) -> None:  # its status only: no server
            self._status = EngineStatus("loading", "ggml-org/gemma-4-E2B-it-GGUF", "a local llama.cpp server")

    card = model_card(ChatService(ModelManager(Built()), Budget(), 64))
    assert "`google/gemma-4-E2B-it` (GGUF weights for llama.cpp)" in card and "Apache-2.0" in card


def test_the_app_on_llama_cpp(tmp_path):
    app = Server(GGUF, Path("off"), tmp_path / "app.log", "--engine", "llamacpp", ready="llama.cpp serves")
    try:
        health = httpx.get(app.url + "health", timeout=5)
        assert health.status_code == 200 and health.json()["model"] == "smolvlm-tiny.gguf"
        assert health.json()["device"] == "a local llama.cpp server" and str(ROOT) not in health.text
        client = Client(app.url, verbose=False)
        job = client.submit({"text": "What is this?", "files": [handle_file(ASSETS / "scene.png")]},
                            max_tokens=24, temperature=0, api_name="/chat")
        updates = [answer for answer, _ in job]
        assert len(updates) >= 3 and updates[-1].startswith(updates[0])  # streamed
        assert "llama.cpp serves smolvlm-tiny.gguf: takes text, images" in app.log()
    finally:
        app.stop()
