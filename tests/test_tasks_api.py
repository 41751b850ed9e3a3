"""Every task, the voice, search and drawing through the running app's API (gradio_client), tiny models."""

import json

import httpx
import pytest
import soundfile
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import ASSETS
from PIL import Image

from mmdemo.tasks import TASKS


@pytest.fixture
def client(tasks_app):
    return Client(tasks_app.url, verbose=False)


def task(client, key, text="", files=(), labels="", language="English", prompt="", max_tokens=24):
    message = {"text": text, "files": [handle_file(f) for f in files]}
    return client.predict(message=message, task_key=key, prompt=prompt, labels=labels, language=language,
                          max_tokens=max_tokens, temperature=0, api_name="/task")


def test_classify_picks_one_label_with_the_models_probabilities(client):
    answer, result, image = task(client, "classify", "I loved this film.", labels="positive, neutral, negative")
    probabilities = result["probabilities"]
    assert answer == result["label"] and answer in ("positive", "neutral", "negative") and image is None
    assert set(probabilities) == {"positive", "neutral", "negative"}
    assert sum(probabilities.values()) == pytest.approx(1.0) and probabilities[answer] == max(probabilities.values())
    assert result["prompt"] == ("Classify the input into exactly one of these labels: positive, neutral, negative. "
                                "Answer with the label only.\n\nI loved this film.")


def test_classify_an_image_with_a_ready_label_set(client):
    _, result, _ = task(client, "classify", files=[ASSETS / "chart.png"], labels="photo, drawing, chart")
    assert result["label"] in ("photo", "drawing", "chart")


@pytest.mark.parametrize(("key", "needle"), [("caption_short", "one short sentence"), ("ocr", "Read all the text"),
                                             ("document", "chart or a document")])
def test_image_tasks_send_their_prompt_and_stream_an_answer(client, tasks_app, key, needle):
    before = len(tasks_app.answers())
    answer, result, _ = task(client, key, "Which month is highest?" if key == "document" else "",
                             files=[ASSETS / "chart.png"])
    assert needle in result["prompt"] and answer == result["answer"] and answer
    task(client, "chat", result["prompt"])  # the same text without the image
    with_image, without = (a[0] for a in tasks_app.wait_answers(before + 2)[-2:])
    assert with_image >= without + 4  # the image's tokens are in the prompt


def test_edited_prompt_is_the_one_sent(client):
    _, result, _ = task(client, "caption_short", files=[ASSETS / "scene.png"], prompt="Name three colours you see.")
    assert result["prompt"] == "Name three colours you see."


def test_speech_tasks_go_through_the_transcript_for_a_model_that_cannot_hear(client):
    _, result, _ = task(client, "translate", files=[ASSETS / "hello.wav"], language="French")
    assert "into French" in result["prompt"] and len(result["transcripts"]) == 1


def test_grounding_draws_the_models_boxes_on_the_image(client):
    # the tiny Qwen2.5-VL was trained to answer this (tests/tiny_extras.py); its JSON is in pixels of the
    # 112×84 image its processor makes of the 640×480 scene, so the boxes come back ×5.71
    answer, result, image = task(client, "grounding", "house", files=[ASSETS / "scene.png"], max_tokens=200)
    assert result["prompt"].startswith("Locate every house in the image") and '"bbox_2d"' in answer
    assert result["boxes"] == [{"label": "house", "x1": 102.9, "y1": 131.4, "x2": 320.0, "y2": 360.0},
                               {"label": "tree", "x1": 371.4, "y1": 148.6, "x2": 497.1, "y2": 360.0}]
    drawn = Image.open(image).convert("RGB")
    assert drawn.size == (640, 480)
    assert drawn.getpixel((103, 250)) != Image.open(ASSETS / "scene.png").convert("RGB").getpixel((103, 250))


def test_grounding_says_when_the_answer_has_no_boxes(client):
    answer, result, image = task(client, "grounding", "ball", files=[ASSETS / "chart.png"])
    assert result["boxes"] == [] and image is None and answer == result["answer"]


def test_a_task_without_its_input_is_refused_clearly(client):
    with pytest.raises(AppError, match="needs an image"):
        task(client, "ocr", "read this")
    with pytest.raises(AppError, match="at least two labels"):
        task(client, "classify", "text", labels="one")
    with pytest.raises(AppError, match="Unknown task"):
        task(client, "nonsense", "text")


def test_speak_returns_a_clip_at_the_voices_rate(client):
    path = client.predict("Hello there. This is the demo speaking.", api_name="/speak")
    info = soundfile.info(path)
    assert info.samplerate == 16000 and info.frames > 0


def test_search_by_text_and_by_image_over_the_gallery_and_the_visitors_images(client, tmp_path):
    blue = tmp_path / "blue.png"
    Image.new("RGB", (64, 64), "blue").save(blue)
    uploads, gallery, _ = client.predict([handle_file(blue)], [], api_name="/add_images")
    assert [u["name"] for u in uploads] == ["blue.png"] and len(gallery) == 3  # two demo images and the upload
    shown, scores = client.predict("", handle_file(blue), uploads, api_name="/search")
    assert scores[0]["name"] == "blue.png" and scores[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert shown[0]["caption"].startswith("blue.png")
    _, scores = client.predict("a bar chart", None, uploads, api_name="/search")
    assert {s["name"] for s in scores} == {"scene", "chart", "blue.png"}
    forged = [{"digest": "0" * 64, "name": "x"}, {"digest": "../../etc/passwd", "name": "y"}]
    _, scores = client.predict("a bar chart", None, forged, api_name="/search")
    assert {s["name"] for s in scores} == {"scene", "chart"}  # entries not in the server's store are ignored
    with pytest.raises(AppError, match="Type what to look for"):
        client.predict("  ", None, [], api_name="/search")


def test_draw_reports_progress_and_returns_the_image(client):
    job = client.submit("a red square", 3, 7, api_name="/draw")
    updates = list(job)
    assert [u[0].split("step ")[1] for u in updates[:3]] == ["1 of 3", "2 of 3", "3 of 3"]
    image = Image.open(job.outputs()[-1][1])
    assert image.size == (32, 32)


def test_odd_api_values_are_bounded_or_refused(client, tmp_path):
    with pytest.raises(httpx.HTTPStatusError) as refused:  # refused when the request joins the queue
        client.predict("a red square", 0, 0, api_name="/draw")
    assert "less than minimum value 1" in refused.value.response.text
    job = client.submit("a red square", 1, -5, api_name="/draw")  # any integer is a seed
    assert [u[0] for u in job][-1].endswith("step 1 of 1")
    with pytest.raises(AppError, match="Describe the picture"):
        client.predict("   ", 2, 0, api_name="/draw")
    with pytest.raises(AppError, match="at most 20 labels"):
        task(client, "classify", "text", labels=",".join(f"label{i}" for i in range(21)))
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.predict([handle_file(notes)], [], api_name="/add_images")
    assert "Invalid file type" in refused.value.response.text
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    uploads, gallery, _ = client.predict([handle_file(broken)], [], api_name="/add_images")
    assert uploads == [] and len(gallery) == 2  # refused with a warning, the gallery unchanged
    with pytest.raises(AppError, match="Give the text"):
        client.predict("  ", api_name="/speak")


def test_the_chat_endpoints_describe_themselves(tasks_app):
    info = httpx.get(f"{tasks_app.url}gradio_api/info", timeout=10).json()["named_endpoints"]
    chat, task = info["/chat"], info["/task"]
    assert "translation_metadata" not in json.dumps([chat, task, info["/speak"]])  # plain English labels
    assert [p["label"] for p in chat["parameters"]][:3] == ["message", "system prompt", "max new tokens"]
    assert all(p["parameter_has_default"] for p in chat["parameters"] + task["parameters"])
    assert [r["label"] for r in task["returns"]] == ["answer", "result", "image with boxes"]
    choices = task["parameters"][1]["python_type"]["type"]
    assert all(f"'{key}'" in choices for key in TASKS)  # the tasks are listed in the schema
    assert chat["description"] and task["description"]
    for name in ("/search", "/add_images", "/draw"):  # the side endpoints too: plain names, named outputs
        endpoint = info[name]
        labels = [p["label"] for p in endpoint["parameters"]] + [r["label"] for r in endpoint["returns"]]
        assert endpoint["description"] and "translation_metadata" not in json.dumps(endpoint), endpoint
        assert all(isinstance(x, str) and not x.startswith(("parameter_", "value_")) for x in labels), labels
