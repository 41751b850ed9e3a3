import numpy as np
import pytest
from PIL import Image

from mmdemo.conversation import build_messages, clean_text
from mmdemo.engines.base import Capabilities
from mmdemo.errors import UserError
from mmdemo.modalities import Budget
from mmdemo.turns import Turn
from mmdemo.ui.history import to_turns

VISION = Capabilities(image=True, audio=False)
OMNI = Capabilities(image=True, audio=True, audio_sampling_rate=16000, max_audio_seconds=30)


def build(history, text, files, **kwargs):
    """The page's path: Gradio's chat history converted to typed turns once, then the core."""
    return build_messages(to_turns(history), Turn.user(text, files), **kwargs)


def kinds(message):
    return [part["type"] for part in message["content"]]


def test_new_message_files_then_text_after_system(image_file):
    prepared = build([], "What is this?", [str(image_file())], system_prompt="Be brief.",
                              capabilities=VISION, budget=Budget())
    system, user = prepared.messages
    assert system == {"role": "system", "content": [{"type": "text", "text": "Be brief."}]}
    assert kinds(user) == ["image", "text"]
    assert isinstance(user["content"][0]["image"], Image.Image)


def test_history_in_both_gradio_formats_keeps_earlier_media(image_file, audio_file):
    img, clip = str(image_file()), str(audio_file())
    history = [
        {"role": "user", "content": [{"path": img}, "first question"]},  # as the app appends it
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "file", "file": {"path": clip, "mime_type": "audio/wav"}},
                                     {"type": "text", "text": "second"}]},  # as gr.Chatbot hands it back
        {"role": "assistant", "content": "a transcript", "metadata": {"title": "Transcript"}},  # UI note
        {"role": "assistant", "content": [{"type": "text", "text": "second answer"}]},
    ]
    prepared = build(history, "third", [], system_prompt="", capabilities=OMNI, budget=Budget())
    roles = [m["role"] for m in prepared.messages]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert kinds(prepared.messages[0]) == ["image", "text"]
    assert kinds(prepared.messages[2]) == ["audio", "text"]
    assert prepared.messages[3]["content"] == [{"type": "text", "text": "second answer"}]
    assert isinstance(prepared.messages[2]["content"][0]["audio"], np.ndarray)
    assert prepared.notices == []  # notes are for the new message only


def test_consecutive_user_messages_merge_and_leading_assistant_is_dropped():
    history = [{"role": "assistant", "content": "Welcome!"}, {"role": "user", "content": "a"},
               {"role": "user", "content": "b"}]
    prepared = build(history, "c", [], system_prompt="", capabilities=VISION, budget=Budget())
    assert len(prepared.messages) == 1
    assert [p["text"] for p in prepared.messages[0]["content"]] == ["a", "b", "c"]


def test_budget_keeps_newest_images(image_file):
    history = [{"role": "user", "content": [{"path": str(image_file(f"old{i}.png"))}, f"q{i}"]} for i in range(3)]
    prepared = build(history, "now", [str(image_file("new.png"))], system_prompt="", capabilities=VISION,
                              budget=Budget(max_images=2))
    images = [p for m in prepared.messages for p in m["content"] if p["type"] == "image"]
    assert len(images) == 2
    assert "2 older images were left out" in prepared.notices[0]
    placeholder = {"type": "text", "text": "[an earlier image was removed to save context]"}
    assert prepared.messages[0]["content"][0] == placeholder


def test_audio_is_transcribed_for_models_without_audio(audio_file):
    heard = []

    def transcribe(samples):
        heard.append(samples)
        return "hello there"

    prepared = build([], "", [str(audio_file("voice.wav"))], system_prompt="", capabilities=VISION,
                              budget=Budget(), transcribe=transcribe)
    assert prepared.messages[0]["content"] == [
        {"type": "text", "text": '[Voice clip "voice.wav", transcribed: hello there]'}]
    assert prepared.transcripts == [("voice.wav", "hello there")]
    assert heard[0].dtype == np.float32 and heard[0].size == 16000


def test_native_audio_respects_the_model_limit(audio_file):
    caps = Capabilities(image=True, audio=True, audio_sampling_rate=8000, max_audio_seconds=2)
    prepared = build([], "", [str(audio_file(seconds=5))], system_prompt="", capabilities=caps,
                              budget=Budget(max_audio_seconds=60))
    assert prepared.messages[0]["content"][0]["audio"].size == 2 * 8000
    assert "only its first 2 s" in prepared.notices[0]


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x07\x1b"])
def test_empty_message_is_refused(text):
    with pytest.raises(UserError, match="The message is empty"):
        build([], text, [], system_prompt="", capabilities=VISION, budget=Budget())


def test_unsupported_file_is_refused(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4")
    with pytest.raises(UserError, match=r"'report.pdf' is not an image, audio or video file \(its content"):
        build([], "read this", [str(path)], system_prompt="", capabilities=VISION, budget=Budget())


def test_clean_text_keeps_unicode_and_newlines():
    assert clean_text("  héllo\x00 wörld 你好 🙂\nnext\ttab\x7f ") == "héllo wörld 你好 🙂\nnext\ttab"


def test_history_media_that_no_longer_loads_becomes_a_placeholder(tmp_path):
    gone = tmp_path / "gone.png"
    history = [{"role": "user", "content": [{"path": str(gone)}, "look"]}, {"role": "assistant", "content": "ok"}]
    prepared = build(history, "next", [], system_prompt="", capabilities=VISION, budget=Budget())
    assert prepared.messages[0]["content"][0] == {"type": "text", "text": "[an earlier image could not be read]"}
