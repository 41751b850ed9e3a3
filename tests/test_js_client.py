"""The official Gradio JavaScript client (``@gradio/client`` from npm, installed by ``.ci/run`` into
``tests/js``) drives the app on the published defaults' tiny twins: files arrive as blobs named ``blob``,
tasks answer, a bad file gets its message and a cancelled job ends cleanly."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from helpers import ASSETS, ROOT, Server

JS = ROOT / "tests" / "js"


@pytest.fixture(scope="module")
def results(twins, tmp_path_factory) -> dict[str, dict]:
    node = shutil.which("node")
    if not node or not (JS / "node_modules" / "@gradio" / "client").is_dir():
        pytest.fail("The JavaScript client is missing: run `npm ci` in tests/js (bash .ci/run does), with Node.js 18+.")
    server = Server(twins["smolvlm2-256m-video"], twins["whisper-base"], tmp_path_factory.mktemp("js") / "app.log")
    try:
        out = subprocess.run([node, "drive.mjs", server.url, str(ASSETS / "scene.png"), str(ASSETS / "hello.wav")],
                             cwd=JS, capture_output=True, text=True, timeout=180)
    finally:
        server.stop()
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines, out.stderr[-3000:]
    return {line["name"]: line for line in lines}


def test_text_image_and_audio_blobs_are_answered(results):
    for name in ("schema", "image", "audio", "positional"):
        assert results[name]["ok"], results[name]
        assert isinstance(results[name]["data"][0], str) and isinstance(results[name]["data"][1], dict)
    assert len(results["audio"]["data"][1]["transcripts"]) == 1  # what the page shows: the clip's transcript


def test_a_file_that_is_not_an_image_gets_its_message(results):
    assert not results["bad file"]["ok"]
    assert "'blob' is not an image" in (
        results["bad file"]["message"])


def test_tasks_answer_with_their_results(results):
    assert results["caption"]["ok"] and results["caption"]["data"][1]["task"] == "caption_short"
    classified = results["classify"]["data"]
    assert classified[1]["label"] in ("positive", "negative") and classified[0] == classified[1]["label"]
    assert classified[1]["answer"] == classified[1]["label"]  # the JSON carries what the page shows


def test_a_cancelled_job_ends_cleanly(results):
    assert results["cancel"]["ok"] and results["cancel"]["updates"] >= 2, results["cancel"]


def test_the_session_limit_arrives_as_the_pages_plain_message(results):
    assert not results["limit"]["ok"]
    assert results["limit"]["message"].startswith("You already have 2 requests in flight (the limit is 2)."), results
