"""Hostile input, part two, through the real app on the published checkpoints' files (tiny twins): file
references that point outside the visitor's uploads, resource abuse, out-of-range API values and a crowd
at the per-session limit. Each gets a clear message or an answer; no message names a server path or shows a
traceback; nothing is fetched or read that the visitor did not upload; the app keeps serving."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
import time
import zipfile

import httpx
import numpy as np
import pytest
import soundfile
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError
from helpers import ASSETS, ROOT, Server
from PIL import Image, PngImagePlugin

FILE = {"_type": "gradio.FileData"}


@pytest.fixture(scope="module")
def app(twins, tiny_extras, tmp_path_factory):
    srv = Server(twins["smolvlm2-256m-video"], twins["whisper-base"], tmp_path_factory.mktemp("hostile") / "app.log",
                 "--tts-model", str(twins["mms-tts-eng"]), "--search-model", str(twins["clip-vit-base-patch32"]),
                 "--max-file-mb", "8", "--max-audio-seconds", "600", ready="loaded search model")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(app):
    return Client(app.url, verbose=False)


@pytest.fixture(scope="module")
def bait():
    """A web server on 127.0.0.1 that records every request: nothing may be fetched from it."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write((ASSETS / "scene.png").read_bytes())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def call(app: Server, endpoint: str, data: list, timeout: float = 60) -> str:
    """Raw API call (as any HTTP client may send it): the join answer's error or the event stream's text."""
    joined = httpx.post(f"{app.url}gradio_api/call/{endpoint}", timeout=timeout,
                        content=json.dumps({"data": data}), headers={"content-type": "application/json"})
    if joined.status_code != 200:
        return joined.text
    return httpx.get(f"{app.url}gradio_api/call/{endpoint}/{joined.json()['event_id']}", timeout=timeout).text


def assert_clean(text: str) -> None:
    """No server path and no traceback in what the client was told (beside the download addresses of the files
    an answer carries, which Gradio's file protocol needs)."""
    text = re.sub(r'"(path|url)": "[^"]*"', "", text)
    for leak in (str(ROOT), "/tmp/", "/etc/", "Traceback", 'File "'):
        assert leak not in text, text


def still_serving(client: Client) -> None:
    answer, details = client.predict({"text": "Still there?", "files": []}, max_tokens=4, api_name="/chat")
    assert isinstance(answer, str) and isinstance(details, dict)


def references(base: str) -> dict[str, dict]:
    return {
        "a server file": {"path": "/etc/passwd", "meta": FILE},
        "the app's own file": {"path": str(ROOT / "app.py"), "meta": FILE},
        "a relative path": {"path": "../../app.py", "meta": FILE},
        "file:// URL": {"path": "file:///etc/passwd", "meta": FILE},
        "URL on this machine": {"path": "x.png", "url": f"{base}/secret.png", "meta": FILE},
        "URL as the path": {"path": f"{base}/photo.png", "meta": FILE},
        "cloud metadata address": {"path": "http://169.254.169.254/latest/meta-data/", "meta": FILE},
    }


@pytest.mark.parametrize("endpoint", ["chat", "task", "search", "add_images"])
def test_file_references_outside_the_uploads_are_refused_on_every_endpoint(app, client, bait, endpoint):
    base, hits = bait
    for name, ref in references(base).items():
        data = {
            "chat": [{"text": "What is this?", "files": [ref]}, "", 4, 0, 1, False],
            "task": [{"text": "", "files": [ref]}, "caption_short", "", "", "", "English", 4, 0, False],
            "search": ["", ref, []],
            "add_images": [[ref], []],
        }[endpoint]
        answer = call(app, endpoint, data)
        assert "not uploaded to this demo" in answer or "does not fetch files" in answer or "error" in answer, name
        assert_clean(answer)
    assert hits == []
    still_serving(client)


def test_forged_gallery_entries_are_ignored(app, client):
    forged = [{"digest": "../../etc/passwd", "name": "x"}, {"digest": "0" * 64, "name": "missing"},
              {"name": "no digest"}, "not a dict", *[{"digest": f"{i:064x}", "name": "n"} for i in range(5000)]]
    _, scores = client.predict("a chart", None, forged, api_name="/search")
    assert {s["name"] for s in scores} <= {"scene", "chart"}  # only the demo's own images
    still_serving(client)


def _gif(path, frames: int) -> None:
    images = [Image.new("P", (64, 64), i % 256) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=10)


def _png_with_huge_text(path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * 3_000_000)  # a 3 MB text chunk (Pillow reads at most 1 MB of text)
    Image.new("RGB", (64, 64), "red").save(path, pnginfo=info)


def _zip(path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "hello")


def _lying_wav(path) -> None:
    soundfile.write(path, np.zeros(16000, np.float32), 16000)
    data = bytearray(path.read_bytes())
    data[40:44] = (2**31).to_bytes(4, "little")  # the header claims ~18 hours of samples
    path.write_bytes(bytes(data))


ABUSE = [  # (file name, how to make it, expected: None = answered, else a phrase of the message)
    ("3000_frames.gif", lambda p: _gif(p, 3000), None),
    ("big_text_chunk.png", _png_with_huge_text, None),
    ("two_hours.flac", lambda p: soundfile.write(p, np.zeros(8000 * 7200, np.int16), 8000), None),
    ("lying_header.wav", _lying_wav, None),
    ("one_hertz.wav", lambda p: soundfile.write(p, np.zeros(60, np.float32), 1), "samples per second"),
    ("drawing.svg", lambda p: p.write_text('<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>'), "could not"),
    ("archive.jpg", _zip, "could not be read"),
    ("document.mp3", lambda p: p.write_bytes(b"%PDF-1.4\n" + b"0" * 5000), "could not be decoded"),
    ("archive.wav", _zip, "could not be decoded"),
]


@pytest.mark.parametrize(("name", "make", "expected"), ABUSE, ids=[a[0] for a in ABUSE])
def test_resource_abuse_is_bounded(app, client, tmp_path, name, make, expected):
    path = tmp_path / name
    make(path)
    started = time.monotonic()
    if expected is None:
        assert isinstance(client.predict({"text": "What is this?", "files": [handle_file(path)]}, max_tokens=4,
                                         api_name="/chat")[0], str)
    else:
        with pytest.raises(AppError) as exc:
            client.predict({"text": "What is this?", "files": [handle_file(path)]}, max_tokens=4, api_name="/chat")
        assert expected in str(exc.value)
        assert_clean(str(exc.value))
    assert time.monotonic() - started < 60
    still_serving(client)


def test_hundreds_of_files_and_many_huge_images(app, client, tmp_path):
    small = tmp_path / "dot.png"
    Image.new("RGB", (8, 8), "blue").save(small)
    with pytest.raises(AppError, match="send at most 16 at a time"):
        client.predict({"text": "Look", "files": [handle_file(small)] * 300}, max_tokens=4, api_name="/chat")
    huge = []
    for i in range(4):  # 48 MP each, a few hundred KB as JPEG
        huge.append(tmp_path / f"huge{i}.jpg")
        Image.new("RGB", (8000, 6000), (i * 60, 90, 200)).save(huge[-1], quality=50)
    started = time.monotonic()
    answer, _ = client.predict({"text": "Compare them.", "files": [handle_file(p) for p in huge]}, max_tokens=4,
                               api_name="/chat")
    assert isinstance(answer, str) and time.monotonic() - started < 60


NUMBERS = [-5, 0, 1e12, float("nan"), float("inf"), "many", None]


def test_out_of_range_and_wrongly_typed_values_on_every_endpoint(app, client):
    for value in NUMBERS:
        hi = {"text": "Hi", "files": []}
        for data in ([hi, "", value, 0, 1, False], [hi, "", 4, value, 1, False], [hi, "", 4, 0, value, False],
                     [hi, "", 4, 0, 1, value]):
            assert_clean(call(app, "chat", data))
        assert_clean(call(app, "task", [{"text": "Hi", "files": []}, "chat", "", "", "", "English", value, value,
                                        value]))
    labels = ",".join(f"label {i}" for i in range(5000))
    answer = call(app, "task", [{"text": "Hi", "files": []}, "classify", "", labels, "", "English", 4, 0, False])
    assert "20" in answer and "labels" in answer
    for task, text in (("no-such-task", "Hi"), ("translate", "x" * 200_000), ("chat", "../../etc/passwd\x00")):
        data = [{"text": text, "files": []}, task, "p" * 100_000, "", "t" * 100_000, "English", 4, 0, False]
        assert_clean(call(app, "task", data))
    assert_clean(call(app, "speak", ["word " * 200_000]))
    assert_clean(call(app, "search", ["cat " * 50_000, None, []]))
    assert_clean(call(app, "chat", [{"text": 12345, "files": "not a list"}, None, 4, 0, 1, "yes"]))
    named = app.log_path.parent / "..%2F..%2Fevil name\u202e.png"
    Image.new("RGB", (32, 32)).save(named)
    assert isinstance(client.predict({"text": "Hi", "files": [handle_file(named)]}, max_tokens=4, api_name="/chat")[0],
                      str)
    still_serving(client)


def test_speak_refuses_text_it_cannot_read_and_reads_numbers(client):
    with pytest.raises(AppError, match="The voice reads English; this sentence was not read"):
        client.predict("你好，世界。", api_name="/speak")
    path = client.predict("It was 1987. 你好。", api_name="/speak")
    with soundfile.SoundFile(path) as clip:
        assert clip.frames > 0 and clip.samplerate == 16000


def test_a_crowd_at_the_session_limit_on_every_endpoint(app):
    clients = [Client(app.url, verbose=False) for _ in range(3)]
    jobs = []
    for c in clients:  # each session: its limit (2) of long answers, then one more on each endpoint
        jobs += [c.submit({"text": "Tell me a long story.", "files": []}, "", 400, 0, 1, api_name="/chat")
                 for _ in range(2)]
    time.sleep(0.5)
    for c in clients:
        for args, name in ((({"text": "Hi", "files": []}, "", 4, 0, 1), "/chat"),
                           (({"text": "Hi", "files": []}, "chat", "", "", "", "English", 4, 0), "/task"),
                           (("Hello.",), "/speak")):
            with pytest.raises(ValidationError, match="requests in flight"):
                c.predict(*args, api_name=name)
    for job in jobs:
        job.cancel()
    still_serving(clients[0])


def _clicks(path, seconds: int, first: int = 0) -> None:
    """Silence with a click every second from sample ``first`` (a clip of its own: transcripts are cached by
    content); no 30 s window is silent, so each is read, and FLAC keeps ten minutes of it small."""
    samples = np.zeros(16000 * seconds, np.int16)
    samples[first::16000] = 8000
    soundfile.write(path, samples, 16000, format="FLAC")


def test_stop_or_a_disconnect_during_transcription_frees_the_model_thread(app, client, tmp_path):
    clip, other = tmp_path / "ten_minutes.flac", tmp_path / "ten_more_minutes.flac"
    _clicks(clip, 600, first=1)  # the random-weight Whisper writes to its token limit in each 30 s window
    _clicks(other, 600, first=2)
    began, stopped = "transcribing 600.0 s of audio", "transcription of 600.0 s of audio stopped"
    seen = {line: app.log().count(line) for line in (began, stopped)}  # earlier tests may have logged them
    job = client.submit({"text": "", "files": [handle_file(clip)]}, "", 4, 0, 1, api_name="/chat")
    _wait_for(app, began, seen[began] + 1, within=30)
    time.sleep(0.5)
    job.cancel()
    _wait_for(app, stopped, seen[stopped] + 1)
    started = time.monotonic()
    still_serving(client)
    assert time.monotonic() - started < 10
    code = (  # a client that sends the clip and vanishes once its transcription has begun
        "import os, time\n"
        "from gradio_client import Client, handle_file\n"
        f"job = Client({app.url!r}, verbose=False).submit({{'text': '', 'files': [handle_file({str(other)!r})]}},"
        " '', 4, 0, 1, api_name='/chat')\n"
        f"while open({str(app.log_path)!r}).read().count({began!r}) < {seen[began] + 2}: time.sleep(0.05)\n"
        "time.sleep(0.5)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], timeout=60, check=True)
    _wait_for(app, stopped, seen[stopped] + 2)


def _wait_for(app: Server, line: str, count: int, within: float = 2.0) -> None:
    """``line`` appears ``count`` times in the log within ``within`` seconds (by default: a stop reached the
    model thread in time)."""
    deadline = time.monotonic() + within
    while app.log().count(line) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app.log().count(line) >= count, app.log()[-3000:]
