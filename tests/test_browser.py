"""The page in real Chromium (Debian's package, driven by Playwright): what a visitor does and sees.

Screenshots go to $MMDEMO_SCREENSHOTS when set (the README's come from
``MMDEMO_SCREENSHOTS=docs python -m pytest tests/test_browser.py``), else to a temp folder.
"""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from helpers import ASSETS, Server, assert_not_blank, open_page


@pytest.fixture(scope="module")
def app(tiny, tmp_path_factory):
    server = Server(tiny["smolvlm"], tiny["whisper"], tmp_path_factory.mktemp("browser") / "app.log")
    yield server
    server.stop()


def answer_lengths(page, seconds: float) -> list[int]:
    lengths = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lengths.append(len(page.locator("#chat .bot").last.inner_text()) if page.locator("#chat .bot").count() else 0)
        time.sleep(0.05)
    return lengths


def test_image_question_streams_and_stop_works(browser, app, shots):
    page = open_page(browser, app.url, 1440, 900)
    page.click("text=Generation settings")

    def setting(label: str, value: str) -> None:
        box = page.get_by_label(label, exact=False).first
        box.fill(value)
        box.press("Enter")

    setting("Temperature", "0")  # greedy: the same answer every run, no early end of text by chance
    page.set_input_files("#input input[type=file]", [str(ASSETS / "scene.png")])
    page.wait_for_selector("#input img", timeout=10_000)
    page.fill("#input textarea", "What is in this picture?")
    page.click("#send")
    page.wait_for_selector("#chat .user img", timeout=10_000)  # the image shows in the chat
    lengths = answer_lengths(page, 3)
    assert len({n for n in lengths if n}) >= 2, "the answer did not grow while streaming"
    page.wait_for_selector("#chat :text('s to first token')", timeout=20_000)  # the speed strip
    assert "tok/s" in page.inner_text("#chat")
    assert not page.locator("#think").is_visible()  # SmolVLM's template has no thinking switch
    page.screenshot(path=str(shots / "desktop.png"))
    assert_not_blank(shots / "desktop.png", page.locator("#chat").bounding_box())

    page.click("#export")
    page.wait_for_selector("#exported [aria-label='conversation.zip']", timeout=10_000)
    download = page.request.get(page.get_attribute("#exported a[data-testid=download-link]", "href"))
    with zipfile.ZipFile(io.BytesIO(download.body())) as archive:
        assert {"conversation.md", "conversation.json", "media/01-scene.png"} <= set(archive.namelist())
    page.click("text=About this model")
    card = page.inner_text("#model-card")
    assert "text, images" in card and "vision encoder" in card and "→ language decoder" in card

    page.click("#clear")
    page.wait_for_function("document.querySelectorAll('#chat .bot').length == 0", timeout=10_000)

    setting("Max new tokens", "3000")  # still greedy: a long answer to stop
    page.fill("#input textarea", "Now tell me a very long story.")
    page.click("#send")
    page.wait_for_selector("#chat :text('tok/s')", timeout=20_000)  # streaming, with its live speed strip
    page.keyboard.press("Escape")  # the Stop button's shortcut
    page.wait_for_selector("#chat :text('stopped')", timeout=5_000)  # the speed strip says so
    time.sleep(0.5)
    settled = []
    for _ in range(20):
        settled.append(len(page.inner_text("#chat")))
        time.sleep(0.05)
    assert len(set(settled)) == 1, "the answer kept growing after Stop"
    assert page.locator("#input textarea").is_enabled()
    assert "(stopped)" in app.log()  # the server's generation ended, not only the display
    page.click("#stop")  # the button itself, with nothing running: harmless
    assert page.locator("#input textarea").is_enabled()


def test_the_first_screen_shows_the_examples_the_model_and_the_input(browser, app):
    page = open_page(browser, app.url, 1440, 900)
    page.wait_for_selector("#status.state-ready", timeout=30_000)
    status = page.inner_text("#status")
    assert "ready" in status and "reads text · image · video" in status  # the model and what it takes
    card = page.get_by_text("What happens in this video?").first  # an example card in the empty chat
    for box in (card.bounding_box(), page.locator("#send").bounding_box()):
        assert box["y"] + box["height"] <= 900, "below the fold"
    card.click()
    page.wait_for_selector("#input .thumbnail-item", timeout=10_000)  # the example's clip is in the input box
    assert page.input_value("#input textarea") == "What happens in this video?"
    for _ in range(100):  # while the visitor could still edit the question, the model encodes the clip
        if "encoded ahead (video)" in app.log():
            break
        time.sleep(0.1)
    assert "encoded ahead (video)" in app.log()
    phone = open_page(browser, app.url, 390, 844)
    assert not phone.is_visible("#description")  # folded away on a phone
    box = phone.locator("#send").bounding_box()
    assert box["y"] + box["height"] <= 844, "Send is off the phone's screen"
    chat = phone.locator("#chat").bounding_box()
    for shown in (phone.locator("#chat .placeholder"), *phone.locator("#chat .example").all()):
        box = shown.bounding_box()  # the call to action and every example card, none scrolled out of sight
        assert chat["y"] <= box["y"] and box["y"] + box["height"] <= chat["y"] + chat["height"], shown


def test_phone_layout_keeps_the_input_reachable(browser, app, shots):
    page = open_page(browser, app.url, 390, 844)
    page.click("text=Describe this picture in two sentences.")
    page.click("#send")
    page.wait_for_selector("#chat .bot", timeout=20_000)
    page.wait_for_function("!document.querySelector('#input textarea').disabled", timeout=30_000)
    for selector in ("#input", "#send"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"{selector} overflows the phone screen"
    page.locator("#chat").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "phone.png"))
    assert_not_blank(shots / "phone.png", page.locator("#chat").bounding_box())


def test_microphone_recording_is_transcribed_and_answered(browser, app):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, permissions=["microphone"])
    page = context.new_page()
    page.goto(app.url)
    page.wait_for_selector("#status:has-text('ready')", timeout=30_000)
    page.click("#input button[aria-label='Record audio']")
    page.click("#input button[aria-label='Start recording']")
    time.sleep(2.5)
    page.click("#input button[aria-label='Stop recording']")
    page.click("#input button[aria-label='Attach audio']")
    page.click("#send")
    page.wait_for_selector("#chat :text('Transcript of')", timeout=30_000)  # Whisper heard the recording
    page.wait_for_selector("#chat :text('tok/s')", timeout=30_000)
    assert "transcribed 2." in app.log() or "transcribed 3." in app.log()
    context.close()


def test_a_bad_file_gets_a_message_and_the_question_comes_back(browser, app, tmp_path):
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"not a photo at all")
    page = open_page(browser, app.url, 1440, 900)
    page.set_input_files("#input input[type=file]", [str(broken)])
    page.fill("#input textarea", "Where was this taken?")
    page.click("#send")
    page.wait_for_selector("text=The image 'holiday.jpg' could not be read", timeout=20_000)
    page.wait_for_function("document.querySelector('#input textarea').value === 'Where was this taken?'",
                           timeout=10_000)  # nothing typed is lost
    assert page.locator("#chat .user").count() == 0  # and the failed message left the chat


def test_plain_http_page_explains_the_microphone(browser, app):
    page = open_page(browser, app.url, 1440, 900)  # 127.0.0.1 is a secure context: recording works
    assert not page.is_visible("#mic-notice")
    page = open_page(browser, app.url.replace("127.0.0.1", "mmdemo.test"), 1440, 900)  # plain HTTP elsewhere
    page.wait_for_selector("#mic-notice", state="visible", timeout=10_000)  # shown by the page's script
    assert "HTTPS" in page.inner_text("#mic-notice")


@pytest.mark.parametrize(("locale", "example", "send", "cached"), [
    ("en-US", "Describe this picture in two sentences.", "Send", "computed at start (showcase)"),
    ("zh-CN", "用两句话描述这张图片。", "发送", "启动时已计算"),
])
def test_showcase_example_click_answers_at_once_in_the_browser_language(browser, showcase_app, shots, locale,
                                                                         example, send, cached):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale=locale)
    page = context.new_page()
    page.goto(showcase_app.url)
    page.wait_for_selector("#status.state-ready", timeout=30_000)  # the green dot
    assert not page.is_visible("#banner")  # the examples were ready before the page was
    assert page.inner_text("#send").strip() == send
    before = len(showcase_app.answers())
    started = time.monotonic()
    page.click(f"text={example}")  # one click, no Send
    page.wait_for_selector(f"#chat :text('{cached}')", timeout=10_000)
    assert time.monotonic() - started < 5
    assert len(showcase_app.answers()) == before  # replayed, not generated again
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / f"showcase-{locale}.png"))
    assert_not_blank(shots / f"showcase-{locale}.png", page.locator("#chat").bounding_box())
    context.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_no_raw_translation_keys_on_the_page(browser, app, locale):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale=locale)
    page = context.new_page()
    page.goto(app.url)
    page.wait_for_selector("#status:has-text('ready'), #status:has-text('就绪')", timeout=30_000)
    text = page.inner_text("body")
    assert "__i18n__" not in text and "translation_metadata" not in text, text[:2000]
    context.close()
