"""Showcase mode: example answers computed at start and replayed on a click; anything else runs live."""

import time

import pytest
from gradio_client import Client, handle_file
from helpers import ASSETS, Server

EXAMPLE = "Describe this picture in two sentences."  # app.py's first example, with assets/scene.png


@pytest.fixture(scope="module")
def showcase(tiny, tmp_path_factory):
    srv = Server(tiny["smolvlm"], tiny["whisper"], tmp_path_factory.mktemp("logs") / "app.log", "--showcase",
                 ready="example answers cached")
    yield srv
    srv.stop()


def test_examples_are_answered_at_start_and_replayed_without_generating(showcase):
    assert "showcase: 6 of 6 example answers cached" in showcase.log()
    computed = len(showcase.answers())
    assert computed >= 5  # warm-up + the four examples
    client = Client(showcase.url, verbose=False)
    started = time.perf_counter()
    first = client.predict({"text": EXAMPLE, "files": [handle_file(ASSETS / "scene.png")]}, api_name="/chat")[0]
    replayed_in = time.perf_counter() - started
    again = Client(showcase.url, verbose=False).predict(
        {"text": EXAMPLE, "files": [handle_file(ASSETS / "scene.png")]}, api_name="/chat")[0]
    assert first and first == again  # the same cached answer, even though the page samples (temperature 0.7)
    assert len(showcase.answers()) == computed  # nothing was generated for them
    assert replayed_in < 5


def test_other_questions_settings_and_follow_ups_are_answered_live(showcase):
    client = Client(showcase.url, verbose=False)
    before = len(showcase.answers())
    client.predict({"text": EXAMPLE + " Please.", "files": [handle_file(ASSETS / "scene.png")]}, api_name="/chat")
    client.predict({"text": EXAMPLE, "files": [handle_file(ASSETS / "scene.png")]}, api_name="/chat")  # a 2nd turn
    Client(showcase.url, verbose=False).predict({"text": EXAMPLE, "files": [handle_file(ASSETS / "scene.png")]},
                                                 max_tokens=7, api_name="/chat")
    assert len(showcase.wait_answers(before + 3)) == before + 3
