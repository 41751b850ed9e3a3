"""The chat model's own voice (Qwen2.5-Omni's talker and vocoder, and Qwen3-Omni's talker and codec decoder, on
tiny twins that have them): loaded only with ``--native-voice``, it reads the streamed answer aloud after the
text, in chunks as the talker writes its speech codes, and Stop ends it."""

import io
import threading

import numpy as np
import pytest
import torch

from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.local import TransformersEngine
from mmdemo.engines.streaming import Spoken
from mmdemo.engines.talker import VoiceStream

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
    assert quiet.speech == []
    assert len(stats.speech) > 1 and {rate for rate, _ in stats.speech} == {24_000}  # chunks, at the vocoder's rate
    samples = np.concatenate([clip for _, clip in stats.speech])
    assert samples.dtype == np.float32 and samples.ndim == 1 and np.isfinite(samples).all()
    assert 0 < len(samples) <= 25 * 12 * 480 and len(samples) % 480 == 0  # 480 samples a speech code, none lost
    assert "" in spoken  # while the voice is made after the text, the stream still reports


def test_a_spoken_answer_reads_its_prompt_in_one_pass(speaking, monkeypatch):
    monkeypatch.setattr(speaking, "prefill_chunk", 4)  # a text answer's prompt would be read 4 tokens at a time
    passes = []  # the talker reads the hidden states of the whole prompt, which a prefill in chunks does not give

    def record(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        passes.append((kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs["inputs_embeds"]
                       ).shape[1])

    hook = speaking._generator.register_forward_pre_hook(record, with_kwargs=True)
    try:
        _, stats = answer(speaking, SPEAK)
    finally:
        hook.remove()
    assert passes[0] == stats.prompt_tokens > 4 and stats.generated_tokens == 12 and len(stats.speech) > 1


def read(model: torch.nn.Module, codes: list[int]) -> tuple[list[np.ndarray], list[int]]:
    """``codes`` through a ``VoiceStream`` as the talker hands them over: (the chunks, how many codes had
    arrived when each came)."""
    chunks: list[np.ndarray] = []
    arrived: list[int] = []
    with torch.inference_mode():  # as the engine runs it
        voice = VoiceStream(model, "Chelsie", len(codes), [8292, 8294], lambda clip: chunks.append(clip[1]),
                            lambda: False)
        voice.put(torch.tensor([[1, 2, 3]]))  # the talker's prompt first
        for count, code in enumerate(codes, 1):
            voice.put(torch.tensor([code]))
            arrived += [count] * (len(chunks) - len(arrived))
        with pytest.raises(Spoken):  # then the composite's own vocoding of the whole is skipped
            voice.end()
    return chunks, arrived + [len(codes)] * (len(chunks) - len(arrived))


def test_a_short_reading_is_the_vocoders_own_reading_of_the_whole(speaking):
    model, codes = speaking._model, list(range(100, 140))  # 40 codes: less than one streamed chunk needs
    voice = model.speaker_map["Chelsie"]
    torch.manual_seed(0)
    chunks, _ = read(model, codes)
    torch.manual_seed(0)  # the same noise, drawn by transformers' token2wav
    with torch.inference_mode():
        whole = model.token2wav(torch.tensor([codes]), conditioning=voice["cond"].float().reshape(1, -1),
                                reference_mel=voice["ref_mel"].float().reshape(1, *voice["ref_mel"].shape[-2:]))
    assert len(chunks) == 1 and np.allclose(chunks[0], whole.reshape(-1).numpy(), atol=1e-5)


def test_a_long_reading_streams_in_chunks_that_join_without_gaps(speaking):
    codes = [(37 * i) % 8000 for i in range(800)]
    torch.manual_seed(0)
    chunks, arrived = read(speaking._model, codes)
    # chunks of 36, 72, then 144 codes (3, 6, then at most 12 blocks of 24 mel frames), each as soon as the codes
    # of its window, 12 codes beyond it, have come; the vocoder's last 20 frames (10 codes) of each wait for the next
    assert arrived == [48, 120, 264, 408, 552, 696, 800]
    assert [len(c) // 480 for c in chunks] == [26, 72, 144, 144, 144, 144, 126]
    assert sum(map(len, chunks)) == 800 * 480
    torch.manual_seed(0)  # the same noise
    other, _ = read(speaking._model, codes[:48] + [5] * 752)
    assert np.array_equal(other[0], chunks[0])  # the first chunk does not wait for, or depend on, later codes


def test_it_speaks_about_a_photo_too(speaking):
    from PIL import Image

    photo = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (96, 64), "red")},
                                          {"type": "text", "text": "What is this?"}]}]
    stats = GenerationStats()
    text = "".join(speaking.stream(photo, SPEAK, threading.Event(), stats))
    assert text and stats.media_tokens.get("image") and sum(clip.size for _, clip in stats.speech) > 0


def test_it_speaks_about_a_video_and_its_sound_through_the_real_template(tmp_path):
    from helpers import ASSETS
    from tiny_realish import build_speaking_omni

    from mmdemo.conversation import build_messages
    from mmdemo.modalities import Budget
    from mmdemo.turns import Turn

    engine = TransformersEngine(str(build_speaking_omni(tmp_path / "omni")), "cpu", speech=True)
    engine.load()
    asked = Turn.user("What happens?", [str(ASSETS / "clip.mp4")])
    prepared = build_messages([], asked, system_prompt="You are a helpful assistant.",
                              capabilities=engine.capabilities, budget=Budget())
    stats = GenerationStats()
    text = "".join(engine.stream(prepared.messages, GenerationParams(6, 0.0, speak=True), threading.Event(), stats))
    assert text and stats.media_tokens.get("video") and stats.media_tokens.get("audio")  # pictures and sound
    assert sum(clip.size for _, clip in stats.speech) > 0


def test_without_the_switch_the_speech_head_is_not_loaded(tiny):
    engine = TransformersEngine(str(tiny["qwen2_5_omni_speech"]), "cpu")
    engine.load()
    assert not engine.capabilities.speech and not engine._model.has_talker
    assert not any(role == "speech head" for role, _ in engine.capabilities.parts)
    _, stats = answer(engine, SPEAK)  # asked to speak anyway: text only
    assert stats.speech == [] and stats.generated_tokens == 12


def test_stop_while_the_voice_is_made_ends_it(speaking):
    cancel, stats = threading.Event(), GenerationStats()
    for delta in speaking.stream(HELLO, GenerationParams(40, 0.0, speak=True), cancel, stats):
        if delta == "":  # the text is complete, the talker is at work
            cancel.set()
    assert stats.cancelled and stats.generated_tokens == 40
    assert sum(len(clip) for _, clip in stats.speech) < 25 * 40 * 480 // 2  # cut short: up to 1 000 codes were due
    _, after = answer(speaking, SPEAK)  # the engine answers and speaks again
    assert after.speech


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


def test_the_page_plays_each_chunk_as_it_comes_and_keeps_the_whole_reading():
    import soundfile

    from mmdemo.ui.turn import Voice

    first, second = np.full(480, 0.25, np.float32), np.full(960, -0.25, np.float32)
    voice, quiet = Voice(None), Voice(None, live=False)  # the player plays live, or (no ffmpeg) not at all
    played = [voice.take((24_000, first)), voice.take((24_000, second))]
    assert [soundfile.info(io.BytesIO(chunk)).frames for chunk in played] == [480, 960]
    assert quiet.take((24_000, first)) is None and quiet.saved()
    whole, rate = soundfile.read(voice.saved(), dtype="float32")
    assert rate == 24_000 and np.allclose(whole, np.concatenate([first, second]), atol=1e-4)
    assert list(voice.rest(threading.Event())) == []  # nothing is played twice at the end


@pytest.fixture(scope="module")
def speaking_qwen3(tmp_path_factory):
    from tiny_realish import build_speaking_qwen3_omni

    engine = TransformersEngine(str(build_speaking_qwen3_omni(tmp_path_factory.mktemp("qwen3") / "omni")), "cpu",
                                speech=True)
    torch.manual_seed(0)  # the talker samples its codes, as published (random weights: any draw will do)
    engine.load()
    return engine


def test_qwen3_omni_reads_in_chunks_that_join_as_its_own_decoder_reads_the_whole(speaking_qwen3):
    from mmdemo.engines.codec_voice import CHUNK, LEFT_CONTEXT

    assert speaking_qwen3.capabilities.speech and speaking_qwen3.status().state == "ready"
    model = speaking_qwen3._model
    frames: list[torch.Tensor] = []  # what the talker wrote, frame by frame (one code per codebook)
    hook = model.talker.register_forward_hook(
        lambda _m, _a, out: frames.append(out.hidden_states[-1]) if out.hidden_states[-1] is not None else None)
    try:
        torch.manual_seed(0)
        _, stats = answer(speaking_qwen3, GenerationParams(8, 0.0, speak=True))
    finally:
        hook.remove()
    assert stats.generated_tokens == 8 and len(frames) > CHUNK  # several chunks
    assert len(stats.speech) == -(-len(frames) // CHUNK) and {rate for rate, _ in stats.speech} == {24_000}
    with torch.inference_mode():
        whole = model.code2wav.chunked_decode(torch.stack(frames, dim=-1), chunk_size=CHUNK,
                                              left_context_size=LEFT_CONTEXT).reshape(-1).float().numpy()
    # equal but for the last bits: the engine's decode steps may run without oneDNN (chosen by timing at warm-up,
    # cpudecode), and a misjoined chunk would be off by the signal itself
    np.testing.assert_allclose(np.concatenate([clip for _, clip in stats.speech]), whole, rtol=0,
                               atol=1e-3 * np.abs(whole).max())
    parts = dict(speaking_qwen3.capabilities.parts)  # talker and code2wav: the speech head
    assert parts["speech head"] == sum(p.numel() for m in (model.talker, model.code2wav) for p in m.parameters())


def test_stop_while_qwen3_omni_speaks_ends_it(speaking_qwen3):
    cancel, stats = threading.Event(), GenerationStats()
    for delta in speaking_qwen3.stream(HELLO, GenerationParams(30, 0.0, speak=True), cancel, stats):
        if delta == "" or stats.speech:  # the text is complete and the talker is at work
            cancel.set()
    assert stats.cancelled and len(stats.speech) <= 1  # up to 240 frames were due: 20 chunks
    _, after = answer(speaking_qwen3, GenerationParams(4, 0.0, speak=True))  # it answers and speaks again
    assert after.speech


def test_a_voice_that_fails_midway_leaves_the_answer_standing(speaking_qwen3, monkeypatch, caplog):
    decoder = speaking_qwen3._model.code2wav

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")

    monkeypatch.setattr(decoder, "forward", broken)
    spoken, stats = answer(speaking_qwen3, GenerationParams(4, 0.0, speak=True))
    silent, _ = answer(speaking_qwen3, GenerationParams(4, 0.0))
    assert "".join(spoken) == "".join(silent) and stats.generated_tokens == 4 and stats.speech == []
    assert "voice stopped early" in caplog.text
