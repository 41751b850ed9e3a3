"""The chat model's own voice (Qwen2.5-Omni's talker and vocoder, on a tiny twin that has them): loaded only
with ``--native-voice``, it reads the streamed answer aloud after the text, and Stop ends it."""

import threading

import numpy as np
import pytest

from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.local import TransformersEngine

HELLO = [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}]
SPEAK = GenerationParams(12, 0.0, speak=True)


@pytest.fixture(scope="module")
def speaking(tiny):
    engine = TransformersEngine(str(tiny["qwen2_5_omni_speech"]), "cpu", speech=True)
    engine.load()
    return engine


def answer(engine: TransformersEngine, params: GenerationParams) -> tuple[list[str], GenerationStats]:
    stats = GenerationStats()
    return list(engine.stream(HELLO, params, threading.Event(), stats)), stats


def test_the_model_reads_its_streamed_answer_in_its_own_voice(speaking):
    assert speaking.capabilities.speech and speaking.status().state == "ready"
    silent, quiet = answer(speaking, GenerationParams(12, 0.0))
    spoken, stats = answer(speaking, SPEAK)
    assert "".join(spoken) == "".join(silent) and stats.generated_tokens == quiet.generated_tokens == 12
    assert quiet.speech is None
    rate, samples = stats.speech
    assert rate == 24_000 and samples.dtype == np.float32 and samples.ndim == 1
    assert 0 < len(samples) <= 25 * 12 * 480 and np.isfinite(samples).all()  # 480 samples a speech code
    assert "" in spoken  # while the voice is made after the text, the stream still reports


def test_it_speaks_about_a_photo_too(speaking):
    from PIL import Image

    photo = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (96, 64), "red")},
                                          {"type": "text", "text": "What is this?"}]}]
    stats = GenerationStats()
    text = "".join(speaking.stream(photo, SPEAK, threading.Event(), stats))
    assert text and stats.media_tokens.get("image") and stats.speech[1].size > 0


def test_without_the_switch_the_speech_head_is_not_loaded(tiny):
    engine = TransformersEngine(str(tiny["qwen2_5_omni_speech"]), "cpu")
    engine.load()
    assert not engine.capabilities.speech and not engine._model.has_talker
    assert not any(role == "speech head" for role, _ in engine.capabilities.parts)
    _, stats = answer(engine, SPEAK)  # asked to speak anyway: text only
    assert stats.speech is None and stats.generated_tokens == 12


def test_stop_while_the_voice_is_made_gives_no_audio(speaking):
    cancel, stats = threading.Event(), GenerationStats()
    for delta in speaking.stream(HELLO, SPEAK, cancel, stats):
        if delta == "":  # the text is complete, the talker is at work
            cancel.set()
    assert stats.cancelled and stats.speech is None and stats.generated_tokens == 12
    _, after = answer(speaking, SPEAK)  # the engine answers and speaks again
    assert after.speech is not None


def test_the_speech_head_is_counted_apart_from_the_language_decoder(speaking):
    parts = dict(speaking.capabilities.parts)
    model = speaking._model
    head = sum(p.numel() for m in (model.talker, model.token2wav) for p in m.parameters())
    assert parts["speech head"] == head and sum(parts.values()) == sum(p.numel() for p in model.parameters())


def test_in_the_browser_speak_the_answer_uses_the_models_own_voice(browser, tiny, tmp_path):
    from helpers import Server, open_page

    server = Server(tiny["qwen2_5_omni_speech"], tiny["whisper"], tmp_path / "app.log", "--native-voice",
                    "--tts-model", "off", "--max-new-tokens", "12")  # random codes: 25 per token
    try:
        page = open_page(browser, server.url, 1440, 900)
        page.wait_for_selector("#speak", state="visible")  # no separate voice: the switch is the model's
        assert "in the model's own voice" in page.inner_text("#speak")
        page.click("#speak label")
        page.fill("#input textarea", "Say hello.")
        page.click("#send")
        page.wait_for_selector("#chat a[href$='answer.wav']", timeout=30_000)  # kept in the chat after the text
        clip = page.request.get(page.get_attribute("#chat a[href$='answer.wav']", "href")).body()
        assert clip[:4] == b"RIFF" and int.from_bytes(clip[24:28], "little") == 24_000  # the vocoder's rate
    finally:
        server.stop()
