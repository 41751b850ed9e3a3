"""Tasks, the voice, search and drawing in real Chromium, with the screenshots the README shows."""

from __future__ import annotations

import shutil
import time

from helpers import ASSETS, assert_not_blank, open_page

from mmdemo.tasks import TASKS


def pick(page, selector: str, option: str) -> None:
    """Choose ``option`` in a Gradio dropdown."""
    page.click(f"{selector} input")
    page.get_by_role("option", name=option, exact=True).click()


def pick_task(page, label: str) -> None:
    """Choose a task and wait for its prompt to arrive in the prompt box (a person is never that quick)."""
    pick(page, "#task", label)
    prompt = next(t.prompt for t in TASKS.values() if t.label == label)
    page.wait_for_function("(p) => document.querySelector('#task-prompt textarea')?.value === p", arg=prompt,
                           timeout=10_000)


def wait_idle(page) -> None:
    page.wait_for_function("!document.querySelector('#input textarea').disabled", timeout=30_000)


def test_classify_task_shows_its_prompt_and_the_label_with_its_probability(browser, tasks_app, shots):
    page = open_page(browser, tasks_app.url, 1440, 900)
    pick_task(page, "Classify / sentiment")
    page.wait_for_selector("#labels", state="visible")
    assert "exactly one of these labels" in page.input_value("#task-prompt textarea")
    assert page.input_value("#labels textarea") == "positive, neutral, negative"
    page.fill("#input textarea", "I loved this film: the ending was perfect.")
    page.click("#send")
    page.wait_for_selector("#chat :text('confidence')", timeout=20_000)
    assert "| label | probability |" not in page.inner_text("#chat")  # rendered as a table, not raw Markdown
    assert page.locator("#chat table").count() == 1
    user = page.locator("#chat .user").last.inner_text()
    assert "Classify the input into exactly one of these labels" in user  # the prompt sent is shown
    page.screenshot(path=str(shots / "task-classify.png"))
    assert_not_blank(shots / "task-classify.png", page.locator("#chat").bounding_box())


def test_image_task_with_an_edited_prompt_and_a_task_that_needs_an_image(browser, tasks_app, shots):
    page = open_page(browser, tasks_app.url, 1440, 900)
    pick_task(page, "Read the text (OCR)")
    page.fill("#input textarea", "please")
    page.click("#send")
    page.wait_for_selector("text=needs an image", timeout=10_000)  # refused with the reason, nothing lost
    page.wait_for_function("document.querySelector('#input textarea').value === 'please'", timeout=10_000)
    pick_task(page, "Caption (detailed)")
    page.fill("#task-prompt textarea", "List the colours in this picture.")
    page.fill("#input textarea", "")
    page.set_input_files("#input input[type=file]", [str(ASSETS / "scene.png")])
    page.wait_for_selector("#input img", timeout=10_000)
    page.click("#send")
    page.wait_for_selector("#chat :text('tok/s')", timeout=20_000)
    wait_idle(page)
    assert "List the colours in this picture." in page.locator("#chat .user").last.inner_text()
    page.screenshot(path=str(shots / "task-caption.png"))


def test_find_objects_draws_the_boxes_in_the_chat(browser, tasks_app, shots):
    page = open_page(browser, tasks_app.url, 1440, 900)
    page.click("text=Generation settings")
    temperature = page.get_by_label("Temperature", exact=False).first
    temperature.fill("0")  # greedy: the twin's trained answer, not a sample of it (0.7 picks a rarer token at times)
    temperature.press("Enter")
    page.click("text=Generation settings")
    pick_task(page, "Find objects (boxes)")
    page.set_input_files("#input input[type=file]", [str(ASSETS / "scene.png")])
    page.wait_for_selector("#input img", timeout=10_000)
    page.fill("#input textarea", "house")
    page.click("#send")
    page.wait_for_selector("#chat :text('Found 2 box(es): house, tree.')", timeout=30_000)
    page.wait_for_selector("#chat a[href$='boxes.json']", timeout=10_000)  # the JSON export
    assert page.locator("#chat .bot img").count() == 1  # the image with its boxes drawn
    wait_idle(page)
    page.screenshot(path=str(shots / "task-grounding.png"))
    assert_not_blank(shots / "task-grounding.png", page.locator("#chat").bounding_box())


def test_speak_the_answer_plays_and_keeps_the_clip_in_the_chat(browser, tasks_app, shots):
    page = open_page(browser, tasks_app.url, 1440, 900)
    page.click("#speak label")
    if shutil.which("ffmpeg"):  # the live player (Gradio streams audio through ffmpeg); else the clip comes at the end
        page.wait_for_selector("#spoken", state="visible")
    # a label is read aloud: words the English voice can say (a random-weight answer in scripts the voice
    # cannot say would be skipped with a notice)
    pick_task(page, "Classify / sentiment")
    page.fill("#input textarea", "I loved this film: the ending was perfect.")
    page.click("#send")
    page.wait_for_selector("#chat a[href$='answer.wav']", timeout=30_000)  # the answer read aloud stays in the chat
    wait_idle(page)
    clip = page.request.get(page.get_attribute("#chat a[href$='answer.wav']", "href")).body()
    assert clip[:4] == b"RIFF" and len(clip) > 44 + 400  # a header and samples of the label read aloud
    page.screenshot(path=str(shots / "task-speak.png"))


def test_search_by_text_then_add_an_image_that_survives_a_reload(browser, tasks_app, shots, tmp_path):
    page = open_page(browser, tasks_app.url, 1440, 900)
    page.get_by_role("tab", name="Search").click()
    page.fill("#search-text textarea", "a bar chart")
    page.click("#search-button")
    page.wait_for_selector("#matches img", timeout=20_000)
    assert page.locator("#matches img").count() == 2 and "·" in page.inner_text("#matches")  # scores shown
    assert page.locator("#gallery img").count() == 2
    page.set_input_files("#add-images input[type=file]", [str(ASSETS.parent / "docs" / "screenshots" / "phone.png")])
    page.wait_for_function("document.querySelectorAll('#gallery img').length === 3", timeout=20_000)
    page.click("#search-button")
    page.wait_for_function("document.querySelectorAll('#matches img').length === 3", timeout=20_000)
    page.screenshot(path=str(shots / "search.png"), full_page=True)
    assert_not_blank(shots / "search.png", page.locator("#matches").bounding_box())
    page.reload()
    page.wait_for_selector("#status:has-text('ready')", timeout=30_000)
    page.get_by_role("tab", name="Search").click()
    page.wait_for_function("document.querySelectorAll('#gallery img').length === 3", timeout=20_000)


def test_draw_shows_each_step_and_the_picture(browser, tasks_app, shots):
    page = open_page(browser, tasks_app.url, 1440, 900)
    page.get_by_role("tab", name="Draw").click()
    page.fill("#draw-prompt textarea", "a lighthouse at sunset")
    started = time.monotonic()
    page.click("#draw-button")
    page.wait_for_selector("#drawn img", timeout=30_000)
    assert "step 4 of 4" in page.inner_text("#draw-progress") and time.monotonic() - started < 30
    page.screenshot(path=str(shots / "draw.png"))


def test_picking_a_model_that_cannot_load_keeps_the_running_one(browser, tasks_app):
    page = open_page(browser, tasks_app.url, 1440, 900)
    page.click("text=About this model")
    pick(page, "#model-picker", "smolvlm2-500m · 500M parameters · Apache-2.0")
    page.wait_for_selector("text=Could not load the model", timeout=20_000)  # offline: no such checkpoint here
    assert "ready" in page.inner_text("#status") and "grounding" in page.inner_text("#status")


TASK_SHOTS = [  # (task, attachment, typed text): the tasks not shown above; one file never twice in a row
    ("Caption (short)", "scene.png", ""),
    ("Read the text (OCR)", "chart.png", ""),
    ("Visual question", "scene.png", "What colour is the ball?"),
    ("Chart or document question", "chart.png", "Which month is highest?"),
    ("Transcribe speech", "hello.wav", ""),
    ("Answer a spoken question", "question.wav", ""),
    ("Translate speech", "hello.wav", ""),
]


def test_every_other_task_runs_in_the_page(browser, tasks_app, shots):
    page = open_page(browser, tasks_app.url, 1440, 900)
    page.click("text=Generation settings")
    tokens = page.get_by_label("Max new tokens", exact=False).first
    tokens.fill("24")  # short answers: the point is the prompt each task sends
    tokens.press("Enter")
    page.click("text=Generation settings")
    for number, (task, attachment, text) in enumerate(TASK_SHOTS):
        page.click("#clear")
        page.wait_for_function("document.querySelectorAll('#chat .user').length === 0", timeout=10_000)
        pick_task(page, task)
        page.set_input_files("#input input[type=file]", [str(ASSETS / attachment)])
        page.wait_for_selector("#input .thumbnail-item", timeout=10_000)
        page.fill("#input textarea", text)
        page.click("#send")
        page.wait_for_selector("#chat :text('tok/s')", timeout=30_000)
        wait_idle(page)
        prompt = page.input_value("#task-prompt textarea").split("{")[0].strip()
        assert prompt[:30] in page.locator("#chat .user").last.inner_text()  # the task's prompt was sent
        if attachment.endswith(".wav"):
            assert "Transcript of" in page.inner_text("#chat")  # heard through Whisper (this model cannot hear)
        name = task.split(" (")[0].lower().replace(" ", "-")
        page.screenshot(path=str(shots / f"task-{number + 1}-{name}.png"))
