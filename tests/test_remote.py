"""The remote engine against a real OpenAI-compatible server: ``transformers serve`` with tiny checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import ASSETS, Server, free_port
from PIL import Image

from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.remote import OpenAIEngine
from mmdemo.errors import UserError

SERVE = Path(sys.executable).with_name("transformers")


class Serve:
    """``transformers serve MODEL`` on 127.0.0.1, started and stopped by the test."""

    def __init__(self, model: Path, log: Path, port: int | None = None) -> None:
        self.model, self.port = str(model), port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen([str(SERVE), "serve", self.model, "--host", "127.0.0.1", "--port",
                                      str(self.port), "--device", "cpu"], env=env, stdout=log.open("w"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f"transformers serve did not start:\n{log.read_text()}")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def vision_server(tiny, tmp_path_factory):
    server = Serve(tiny["smolvlm"], tmp_path_factory.mktemp("serve") / "serve.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def omni_server(tiny, tmp_path_factory):
    server = Serve(tiny["qwen2_5_omni_thinker"], tmp_path_factory.mktemp("serve") / "serve.log")
    yield server
    server.stop()


def user(*parts):
    system = {"role": "system", "content": [{"type": "text", "text": "Be brief."}]}
    return [system, {"role": "user", "content": list(parts)}]


IMAGE = {"type": "image", "image": Image.new("RGB", (96, 64), "red")}
TEXT = {"type": "text", "text": "Describe."}


def test_capabilities_are_probed(vision_server, omni_server):
    vision = OpenAIEngine([vision_server.url], vision_server.model)
    assert vision.capabilities.image and not vision.capabilities.audio  # the server ignores audio for it
    assert vision.status().state == "ready" and "takes text, images" in vision.status().detail
    omni = OpenAIEngine([omni_server.url], omni_server.model)
    assert omni.capabilities.image and omni.capabilities.audio


def test_streams_an_image_answer(vision_server):
    engine, stats = OpenAIEngine([vision_server.url], vision_server.model), GenerationStats()
    deltas = list(engine.stream(user(IMAGE, TEXT), GenerationParams(48, 0.0), threading.Event(), stats))
    assert len(deltas) >= 3 and stats.generated_tokens == len(deltas)
    assert stats.prompt_tokens > 10 and stats.first_token_s is not None


def test_audio_reaches_an_omni_server(omni_server):
    engine, stats = OpenAIEngine([omni_server.url], omni_server.model), GenerationStats()
    audio = {"type": "audio", "audio": np.zeros(16000 * 2, np.float32)}
    assert "".join(engine.stream(user(audio, TEXT), GenerationParams(8, 0.0), threading.Event(), stats))
    text_only = GenerationStats()
    list(engine.stream(user(TEXT), GenerationParams(8, 0.0), threading.Event(), text_only))
    assert stats.prompt_tokens > text_only.prompt_tokens + 20  # 2 s of audio became audio tokens


def test_cancel_closes_the_stream(vision_server):
    engine = OpenAIEngine([vision_server.url], vision_server.model)
    cancel, stats = threading.Event(), GenerationStats()
    for i, _ in enumerate(engine.stream(user(TEXT), GenerationParams(3000, 0.0), cancel, stats)):
        if i == 2:
            cancel.set()
    assert stats.cancelled and stats.generated_tokens < 100
    started = time.monotonic()  # a server still generating 3 000 tokens would make this wait for seconds
    assert "".join(engine.stream(user(TEXT), GenerationParams(4, 0.0), threading.Event()))
    assert time.monotonic() - started < 2.0


def test_server_errors_become_clear_messages(vision_server):
    engine = OpenAIEngine([vision_server.url], "/no/such/model")
    with pytest.raises(UserError, match="The model server"):
        list(engine.stream(user(TEXT), GenerationParams(8, 0.0), threading.Event()))


def test_a_server_killed_mid_stream(tiny, tmp_path):
    server = Serve(tiny["smolvlm"], tmp_path / "serve.log")
    engine = OpenAIEngine([server.url], server.model)
    with pytest.raises(UserError, match="stopped in the middle of the answer"):
        for i, _ in enumerate(engine.stream(user(TEXT), GenerationParams(3000, 0.0), threading.Event())):
            if i == 2:
                server.stop()


def test_two_replicas_one_killed(tiny, tmp_path, vision_server):
    doomed = Serve(tiny["smolvlm"], tmp_path / "serve.log")
    try:
        engine = OpenAIEngine([vision_server.url, doomed.url], doomed.model, retry_after_s=60)
        for _ in range(2):  # round-robin reaches both
            assert "".join(engine.stream(user(TEXT), GenerationParams(4, 0.0), threading.Event()))
        doomed.stop()
        for _ in range(4):  # the dead one is skipped; every request is answered
            assert "".join(engine.stream(user(TEXT), GenerationParams(4, 0.0), threading.Event()))
        assert engine._replicas[1].down_until > time.monotonic()
    finally:
        doomed.stop()


def test_the_app_on_a_remote_server_down_at_start(tiny, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    app = Server(Path(str(tiny["smolvlm"])), tiny["whisper"], tmp_path / "app.log", "--engine", "openai",
                 "--base-url", url, ready="not reachable")
    try:
        client = Client(app.url, verbose=False)
        with pytest.raises(AppError, match="is not reachable"):
            client.predict({"text": "hello", "files": []}, api_name="/chat")
        assert httpx.get(app.url + "health", timeout=5).status_code == 503
        serve = Serve(tiny["smolvlm"], tmp_path / "serve.log", port=port)
        try:
            deadline = time.monotonic() + 8  # a load balancer polling /health sees it come back (checked every 5 s)
            while httpx.get(app.url + "health", timeout=5).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert httpx.get(app.url + "health", timeout=5).json()["status"] == "ready"
            # the same app now answers, with images, streamed; voice clips go through Whisper
            job = client.submit({"text": "What is this?", "files": [handle_file(ASSETS / "scene.png")]},
                                max_tokens=48, temperature=0, api_name="/chat")
            updates = [answer for answer, _ in job]
            assert len(updates) >= 3 and updates[-1].startswith(updates[0])
            answer, details = client.predict({"text": "", "files": [handle_file(ASSETS / "question.wav")]},
                                             max_tokens=8, api_name="/chat")
            assert isinstance(answer, str)
            assert "transcribed 2.5 s of audio" in app.log()  # the server's model cannot hear: Whisper did
            assert len(details["transcripts"]) == 1  # and the client gets what the page shows
        finally:
            serve.stop()
    finally:
        app.stop()


def test_a_server_that_never_answers_times_out_with_a_message():
    import socket

    with socket.socket() as hung:  # accepts connections (the kernel's backlog) and never replies
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        engine = OpenAIEngine([f"http://127.0.0.1:{hung.getsockname()[1]}/v1"], "m", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(UserError, match="not reachable"):
            engine.load()
        assert time.monotonic() - started < 10
        assert engine.status().state == "failed"
