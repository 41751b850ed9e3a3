"""Odd and hostile input through the real app's API: each gets a clear message, and the app keeps serving."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import ASSETS, Server
from PIL import Image


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    srv = Server(tiny["smolvlm"], tiny["whisper"], tmp_path_factory.mktemp("robust") / "app.log",
                 "--max-file-mb", "2", "--max-audio-seconds", "20")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


def _write(tmp, name, make):
    path = tmp / name
    make(path)
    return path


def _av(codec):
    def make(path):
        import av

        rate = 48000
        tone = (0.3 * np.sin(np.arange(rate) / 8)).astype(np.float32).reshape(1, -1)
        with av.open(str(path), "w") as out:
            stream = out.add_stream(codec, rate=rate, layout="mono")
            frame = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
    return make


def _animated(path):
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:])


def _palette(path):
    img = Image.new("P", (40, 40), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.save(path, transparency=0)


BAD = [
    ("corrupt.jpg", lambda p: p.write_bytes(b"\xff\xd8\xff\xe0 broken"), "The image 'corrupt.jpg' could not be read"),
    ("notes.png", lambda p: p.write_text("just some text"), "The image 'notes.png' could not be read"),
    ("bomb.png", lambda p: Image.new("1", (20000, 20000)).save(p), "bomb.png"),
    ("IMG_1234.heic", lambda p: p.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64), "HEIC/HEIF photo"),
    ("empty.wav", lambda p: p.write_bytes(b""), "The audio file 'empty.wav' is empty"),
    ("song.mp3", lambda p: p.write_bytes(b"ID3 but not really" * 50), "The audio file 'song.mp3' could not be decoded"),
    ("report.pdf", lambda p: p.write_bytes(b"%PDF-1.4 nothing"), "'report.pdf' is not an image"),
]

GOOD = [
    ("line.png", lambda p: Image.new("RGB", (1, 50000), "black").save(p)),
    ("dot.png", lambda p: Image.new("RGB", (1, 1), "white").save(p)),
    ("cmyk.tiff", lambda p: Image.new("CMYK", (64, 64), (0, 255, 255, 0)).save(p)),
    ("deep.png", lambda p: Image.new("I;16", (64, 64), 40000).save(p)),
    ("palette.png", _palette),
    ("anim.gif", _animated),
    ("photo.avif", lambda p: Image.new("RGB", (64, 48), "teal").save(p)),
    ("silence.wav", lambda p: soundfile.write(p, np.zeros(16000, np.float32), 16000)),
    ("long.flac", lambda p: soundfile.write(p, 0.1 * np.sin(np.arange(16000 * 45) / 9), 16000)),
    ("odd.wav", lambda p: soundfile.write(p, 0.1 * np.ones((11025, 3)), 11025, subtype="PCM_24")),
    ("chrome.webm", _av("libopus")),
    ("safari.m4a", _av("aac")),
]


def ask(client, text="What is this?", files=(), **kw):
    answer, _details = client.predict({"text": text, "files": [handle_file(f) for f in files]},
                                      max_tokens=kw.get("max_tokens", 8), temperature=0, api_name="/chat")
    return answer


@pytest.mark.parametrize(("name", "make", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_files_get_a_clear_message_then_the_app_still_answers(client, tmp_path, name, make, message):
    path = _write(tmp_path, name, make)
    with pytest.raises(AppError) as exc:
        ask(client, files=[path])
    assert message in str(exc.value)
    assert str(tmp_path) not in str(exc.value)
    assert "Traceback" not in str(exc.value)
    assert ask(client, files=[ASSETS / "scene.png"])


@pytest.mark.parametrize(("name", "make"), GOOD, ids=[g[0] for g in GOOD])
def test_odd_but_valid_files_are_answered(client, tmp_path, name, make):
    assert isinstance(ask(client, files=[_write(tmp_path, name, make)]), str)


@pytest.mark.parametrize(("text", "message"), [
    ("", "The message is empty"), ("  \n\t  ", "The message is empty"), ("\x00\x01\x1b", "The message is empty"),
    ("lorem ipsum " * 4000, "tokens long, but the model reads at most 4096"),
])
def test_bad_text(client, text, message):
    with pytest.raises(AppError, match=message):
        ask(client, text=text)
    assert ask(client, text="hello")


def test_odd_unicode_and_typed_special_tokens_are_answered(client):
    assert isinstance(ask(client, text="Zalgo ḩ̷̛e̵͝l̴l̵o ‮reversed‬ 你好 🙂 \u200b <image> <end_of_utterance> {{ x }}"), str)


def test_a_long_conversation_drops_its_oldest_turns_instead_of_failing(server):
    client = Client(server.url, verbose=False)
    for _ in range(4):  # each turn ~1 300 tokens; the tiny model reads 4 096
        ask(client, text="lorem ipsum " * 120)
    assert isinstance(ask(client, text="and now?"), str)
    assert "oldest turn(s) to fit the context" in server.log()
