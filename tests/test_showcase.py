"""Showcase mode: example answers computed at start and replayed on a click; anything else runs live."""

import time

from gradio_client import Client, handle_file
from helpers import ASSETS

EXAMPLE = "Describe this picture in two sentences."  # app.py's first example, with assets/scene.png


def test_examples_are_answered_at_start_and_replayed_without_generating(showcase_app):
    assert "showcase: 7 of 7 example answers cached" in showcase_app.log()  # a video among them
    computed = len(showcase_app.answers())
    assert computed >= 8  # warm-up + the examples
    client = Client(showcase_app.url, verbose=False)
    started = time.perf_counter()
    first = client.predict({"text": EXAMPLE, "files": [handle_file(ASSETS / "scene.png")]}, api_name="/chat")[0]
    replayed_in = time.perf_counter() - started
    again = Client(showcase_app.url, verbose=False).predict(
        {"text": EXAMPLE, "files": [handle_file(ASSETS / "scene.png")]}, api_name="/chat")[0]
    assert first and first == again  # the same cached answer, even though the page samples (temperature 0.7)
    assert len(showcase_app.answers()) == computed  # nothing was generated for them
    assert replayed_in < 5


def test_other_questions_settings_and_follow_ups_are_answered_live(showcase_app):
    client = Client(showcase_app.url, verbose=False)
    before = len(showcase_app.answers())
    client.predict({"text": EXAMPLE + " Please.", "files": [handle_file(ASSETS / "scene.png")]}, api_name="/chat")
    client.predict({"text": EXAMPLE, "files": [handle_file(ASSETS / "scene.png")]}, api_name="/chat")  # a 2nd turn
    Client(showcase_app.url, verbose=False).predict({"text": EXAMPLE, "files": [handle_file(ASSETS / "scene.png")]},
                                                 max_tokens=7, api_name="/chat")
    assert len(showcase_app.wait_answers(before + 3)) == before + 3
