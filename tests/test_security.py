"""What the app must never do: serve files outside the upload cache, accept oversize uploads, run open when
a login is set, or let one session flood the queue."""

from __future__ import annotations

import time

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError
from helpers import ASSETS, ROOT, Server


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    srv = Server(tiny["smolvlm"], tiny["whisper"], tmp_path_factory.mktemp("security") / "app.log",
                 "--max-file-mb", "1", "--session-limit", "1")
    yield srv
    srv.stop()


@pytest.mark.parametrize("path", ["/etc/passwd", str(ROOT / "app.py"), f"{ASSETS}/../app.py",
                                  f"{ASSETS}/../../../../etc/passwd", "..%2F..%2Fetc%2Fpasswd",
                                  str(ROOT / ".git" / "config")])
def test_files_outside_the_uploads_are_not_served(server, path):
    response = httpx.get(f"{server.url}gradio_api/file={path}", timeout=5)
    assert response.status_code in (403, 404)
    assert "root:" not in response.text and "[core]" not in response.text


def test_assets_are_served(server):
    assert httpx.get(f"{server.url}gradio_api/file={ASSETS / 'scene.png'}", timeout=5).status_code == 200


def test_a_forged_file_path_in_the_api_is_refused(server):
    forged = {"text": "read this", "files": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}]}
    response = httpx.post(f"{server.url}gradio_api/call/chat", json={"data": [forged]}, timeout=10)
    body = response.text
    if response.status_code == 200:
        event_id = response.json()["event_id"]
        body = httpx.get(f"{server.url}gradio_api/call/chat/{event_id}", timeout=30).text
        assert "event: error" in body
    assert "root:" not in body
    assert "root:" not in server.log()


def test_uploads_over_the_cap_are_refused_by_the_server(server):
    files = {"files": ("big.wav", b"\x00" * (2 * 1024 * 1024), "audio/wav")}
    assert httpx.post(f"{server.url}gradio_api/upload", files=files, timeout=30).status_code == 413


def test_one_session_cannot_flood_the_queue(server):
    client = Client(server.url, verbose=False)
    # greedy: a sampled answer of the random-weight model could end early and leave nothing in flight
    first = client.submit({"text": "Tell me a long story.", "files": []}, max_tokens=3000, temperature=0,
                          api_name="/chat")
    deadline = time.monotonic() + 20
    while not first.outputs() and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(ValidationError, match="requests in flight"):
        client.predict({"text": "And another one.", "files": []}, api_name="/chat")
    first.cancel()
    time.sleep(0.5)
    assert client.predict({"text": "Now it is my turn.", "files": []}, max_tokens=4, api_name="/chat")


def test_no_share_link_and_loopback_only(server):
    assert "gradio.live" not in server.log()
    assert server.url.startswith("http://127.0.0.1:")


def test_login_when_auth_is_set(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("MMDEMO_AUTH", "demo:s3cret")
    srv = Server(tiny["smolvlm"], tiny["whisper"], tmp_path / "app.log")
    try:
        assert httpx.get(f"{srv.url}config", timeout=5).status_code == 401
        with pytest.raises(Exception):  # noqa: B017 - the client fails in different ways, all refusals
            Client(srv.url, verbose=False, auth=("demo", "wrong"))
        client = Client(srv.url, verbose=False, auth=("demo", "s3cret"))
        assert client.predict({"text": "hello", "files": [handle_file(ASSETS / "scene.png")]}, max_tokens=4,
                              api_name="/chat")
        assert "s3cret" not in srv.log()
    finally:
        srv.stop()
