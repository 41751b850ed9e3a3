"""The real app as a subprocess on 127.0.0.1, driven through gradio_client like any API user."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import ASSETS, MAX_TOKENS, Server


@pytest.fixture(scope="module", params=["smolvlm", "qwen2_5_omni"])
def server(request, tiny, tmp_path_factory):
    srv = Server(tiny[request.param], tiny["whisper"], tmp_path_factory.mktemp("logs") / "app.log")
    srv.arch = request.param
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    return Client(server.url, verbose=False)


def stream(job) -> list[str]:
    return [answer for answer, _details in job]


def test_image_question_streams_token_by_token(server, client):
    job = client.submit({"text": "What is in this picture?", "files": [handle_file(ASSETS / "scene.png")]},
                        max_tokens=200, temperature=0, api_name="/chat")
    updates = stream(job)
    assert len(updates) >= 3
    assert all(b.startswith(a) for a, b in itertools.pairwise(updates))  # each update extends the answer
    assert job.outputs()[-1][0] == updates[-1] and len(updates[-1]) > len(updates[0])


def test_voice_question(server, client):
    before = len(server.answers())
    answer, details = client.predict({"text": "", "files": [handle_file(ASSETS / "question.wav")]}, max_tokens=32,
                                     temperature=0, api_name="/chat")
    assert isinstance(answer, str) and answer
    prompt_tokens = server.wait_answers(before + 1)[-1][0]
    if server.arch == "qwen2_5_omni":  # native audio: 3 s of speech become audio tokens in the prompt
        assert prompt_tokens > 50 and "transcripts" not in details
    else:
        assert "transcribed 2.5 s of audio" in server.log()  # the clip went through Whisper
        assert details["transcripts"] and all(isinstance(t, str) and t for t in details["transcripts"])


def test_conversation_keeps_earlier_turns(server, client):
    before = len(server.answers())
    client.predict({"text": "Describe it.", "files": [handle_file(ASSETS / "chart.png")]}, max_tokens=8,
                   temperature=0, api_name="/chat")
    client.predict({"text": "And which month is highest?", "files": []}, max_tokens=8, temperature=0,
                   api_name="/chat")
    first, second = server.wait_answers(before + 2)[-2:]
    assert second[0] > first[0] + 5  # the second prompt carries the first turn, image included


def test_stop_ends_generation_on_the_server(server, client):
    before = len(server.answers())
    job = client.submit({"text": "Tell me a long story.", "files": []}, max_tokens=MAX_TOKENS, temperature=0,
                        api_name="/chat")
    deadline = time.monotonic() + 30
    while len(job.outputs()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.cancel()
    _prompt, generated, stopped = server.wait_answers(before + 1)[-1]
    assert stopped and generated < MAX_TOKENS


def test_disconnected_client_frees_its_generation(server):
    # greedy answers to this question run to MAX_TOKENS on both tiny models ("Go on and on." ended after 241
    # tokens on SmolVLM, sometimes before the server had noticed the disconnect)
    before = len(server.answers())
    code = (
        "import sys, os\n"
        "from gradio_client import Client\n"
        f"job = Client({server.url!r}, verbose=False).submit({{'text': 'Tell me a long story.', 'files': []}},"
        f" max_tokens={MAX_TOKENS}, temperature=0, api_name='/chat')\n"
        "for i, _ in enumerate(job):\n"
        "    if i == 1: os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], timeout=60, check=True)
    _prompt, generated, stopped = server.wait_answers(before + 1, timeout=30)[-1]
    assert stopped and generated < MAX_TOKENS, server.log()[-3000:]


def test_bad_input_gets_a_clear_error_and_the_app_keeps_serving(server, client, tmp_path):
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"definitely not a jpeg")
    with pytest.raises(AppError, match="The image 'holiday.jpg' could not be read") as exc:
        client.predict({"text": "What is this?", "files": [handle_file(broken)]}, api_name="/chat")
    assert str(tmp_path) not in str(exc.value)
    with pytest.raises(AppError, match="The message is empty"):
        client.predict({"text": "   ", "files": []}, api_name="/chat")
    assert client.predict({"text": "Still there?", "files": []}, max_tokens=8, api_name="/chat")


def test_page_and_api_are_served(server):
    config = httpx.get(server.url + "config", timeout=5).json()
    assert config["title"] == "mmdemo · multimodal chat"
    info = Client(server.url, verbose=False).view_api(print_info=False, return_format="dict")
    assert "/chat" in info["named_endpoints"]


def test_a_model_that_cannot_load_leaves_the_page_up_saying_why_and_what_to_do(tmp_path, tiny):
    missing = tmp_path / "no-such-model"
    server = Server(missing, tiny["whisper"], tmp_path / "app.log", ready="Could not load the model")
    try:
        for _ in range(20):  # a retry every few seconds says "loading" for the moment it takes to fail again
            health = httpx.get(server.url + "health", timeout=5)
            if health.json()["status"] != "loading":
                break
            time.sleep(0.25)
        assert health.status_code == 503 and health.json()["status"] == "failed"
        detail = health.json()["detail"]
        assert "'no-such-model'" in detail and "HF_HUB_OFFLINE=1" in detail and "tests/tiny_models.py" in detail
        assert str(tmp_path) not in detail  # a local folder by its name only
        with pytest.raises(AppError, match="could not be loaded|Could not load"):
            Client(server.url, verbose=False).predict({"text": "Hello?", "files": []}, api_name="/chat")
        assert server.proc.poll() is None  # still serving
    finally:
        server.stop()


def test_health_route(server):
    response = httpx.get(server.url + "health", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["model"] == server.arch and body["device"] == "cpu"


def test_ctrl_c_leaves_at_once_and_quietly_even_while_loading(tmp_path, tiny):
    import signal

    server = Server(tiny["qwen2_5_omni"], tiny["whisper"], tmp_path / "app.log", ready="Running on")
    server.proc.send_signal(signal.SIGINT)  # the model may still be loading in the background
    started = time.monotonic()
    server.proc.wait(10)
    assert time.monotonic() - started <= 2.0 and "Traceback" not in server.log(), server.log()[-2000:]
