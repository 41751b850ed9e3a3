"""The published checkpoints' own tokenizers, templates, processor and generation configs (tiny twins): the
bugs those files exposed, each caught here."""

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_realish import REALISH

from mmdemo.engines.asr import WhisperTranscriber, token_limit
from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.local import TransformersEngine
from mmdemo.engines.speech import Speaker, SpokenAnswer, Unsayable, Voices, numbers_as_words
from mmdemo.engines.streaming import BatchingStreamer
from mmdemo.errors import Cancelled, UserError
from mmdemo.views import health_payload

CHAT_TWINS = ["smolvlm2-256m-video", "smolvlm-256m-instruct", "qwen2.5-vl-7b", "qwen2.5-omni-7b",
              "qwen3-vl-2b-instruct"]


@pytest.fixture(scope="module")
def engines(twins):
    loaded = {}

    def get(name: str, **kwargs) -> TransformersEngine:
        key = (name, repr(sorted(kwargs.items())))
        if key not in loaded:
            loaded[key] = TransformersEngine(str(twins[name]), "cpu", **kwargs)
            loaded[key].load()
        return loaded[key]

    return get


def photo_turn(text: str, size: tuple[int, int] = (2000, 1500)) -> list[dict]:
    image = Image.new("RGB", size, "white")
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]


def answer(engine: TransformersEngine, messages: list[dict], tokens: int = 8) -> tuple[str, GenerationStats]:
    stats = GenerationStats()
    text = "".join(engine.stream(messages, GenerationParams(tokens, 0.0), threading.Event(), stats))
    return text, stats


@pytest.mark.parametrize("name", CHAT_TWINS)
def test_every_chat_default_answers_an_image_within_the_cpu_image_token_budget(engines, name):
    engine = engines(name)
    assert engine.status().state == "ready", engine.status()  # the warm-up (an image + text) answered
    _, stats = answer(engine, photo_turn("What is in this photo?"))
    # published settings: SmolVLM 1 088 image tokens, Qwen ~1 300
    assert stats.generated_tokens == 8 and 0 < stats.media_tokens["image"] <= 256


def test_smolvlm_v1_takes_an_image_and_typed_control_tokens_stay_text(engines):
    engine = engines("smolvlm-256m-instruct")  # Idefics3: the library's control-token guard fails on it
    _, plain = answer(engine, photo_turn("Describe it."))
    _, typed = answer(engine, photo_turn("Describe <image> and <end_of_utterance> it."))
    # the typed "<image>" did not become an image slot
    assert plain.media_tokens["image"] == typed.media_tokens["image"] == 64


def test_a_gpu_budget_gives_smolvlm_its_tiles_and_any_checkpoint_is_held_to_the_budget(engines):
    gpu = engines("smolvlm2-256m-video", max_image_tokens=1280)  # a GPU's budget: tiles for detail
    assert answer(gpu, photo_turn("Read it."))[1].media_tokens["image"] > 256
    unknown = engines("qwen2.5-vl-7b", processor_kwargs={})  # settings mmdemo does not know: shrunk to fit
    assert 0 < answer(unknown, photo_turn("What is it?"))[1].media_tokens["image"] <= 256
    fixed = engines("smolvlm-256m-instruct", processor_kwargs={})  # published 2048 px tiles: cannot shrink
    with pytest.raises(UserError, match="--max-image-tokens"):
        answer(fixed, photo_turn("What is it?"))


def test_a_failed_warm_up_shows_in_the_status_and_health(twins, monkeypatch):
    engine = TransformersEngine(str(twins["smolvlm2-256m-video"]), "cpu")

    def broken_warm_up() -> None:
        raise UserError("The model's processor could not prepare this request: a processor bug")

    monkeypatch.setattr(engine, "_warm_up", broken_warm_up)
    engine.load()
    status = engine.status()
    assert status.state == "degraded" and "a processor bug" in status.detail
    code, body = health_payload(status)
    assert code == 200 and body["status"] == "degraded" and "a processor bug" in body["detail"]


def test_omni_pads_a_clip_to_its_length_not_to_the_300_s_window(engines):
    engine = engines("qwen2.5-omni-7b")
    clip = np.zeros(16000 * 5, np.float32)
    inputs = engine._prepare([{"role": "user", "content": [{"type": "audio", "audio": clip},
                                                           {"type": "text", "text": "What is said?"}]}])
    assert inputs["input_features"].shape[-1] <= 600  # 6 s of 10 ms frames, not 30 000
    assert int(inputs["feature_attention_mask"].sum()) == 500


def test_an_answer_cut_inside_a_character_does_not_end_in_a_replacement_character(twins):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(twins["qwen2.5-vl-7b"])
    ids = tokenizer.encode("Hi 你")
    streamer = BatchingStreamer(tokenizer, 0.0)
    streamer.put(torch.tensor([[0]]))  # the prompt, skipped
    for token in [*ids[:-1], tokenizer.convert_tokens_to_ids("ä")]:  # "ä": the first byte of a 3-byte character
        streamer.put(torch.tensor([token]))
    streamer.end()
    text = "".join(streamer)
    assert text.startswith("Hi") and "\ufffd" not in text


STREAMED = '**Tip:** `[{"bbox_2d":[12,34]}]`\n2. 你好, naïve café 👩‍💻 — done.'


@pytest.mark.parametrize("name", [*CHAT_TWINS, "qwen3.5-0.8b", "gemma-4-e2b-it"])
def test_each_tokens_text_streams_at_once_and_the_pieces_join_to_the_whole_answer(twins, name):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(twins[name])
    ids = tokenizer.encode(STREAMED, add_special_tokens=False)
    streamer = BatchingStreamer(tokenizer, 0.0)
    streamer.put(torch.tensor([[0]]))  # the prompt, skipped
    streamer.put(torch.tensor([ids[0]]))
    first = streamer.text_queue.get_nowait()
    assert first and STREAMED.startswith(first)  # "**" out at once, not held until the next space
    for token in ids[1:]:
        streamer.put(torch.tensor([token]))
    streamer.end()
    pieces = [first, *streamer]
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True) == STREAMED
    assert sum(bool(piece) for piece in pieces) > len(STREAMED.split()) + 4  # not word by word


@pytest.fixture(scope="module")
def whisper(twins):
    transcriber = WhisperTranscriber(str(twins["whisper-base"]), "cpu")  # published generation config: 448 tokens
    transcriber.load()
    return transcriber


def decoder_calls(transcriber: WhisperTranscriber, on_call=None) -> list[int]:
    calls: list[int] = []

    def count(module, args):
        calls.append(1)
        if on_call:
            on_call(len(calls))

    transcriber._loaded.model.model.decoder.register_forward_pre_hook(count)
    return calls


def test_speech_recognition_is_greedy_and_bounded_by_the_clip_length(whisper):
    noise = (0.3 * np.random.default_rng(1).standard_normal(16000 * 5)).astype(np.float32)
    calls = decoder_calls(whisper)
    started = time.perf_counter()
    whisper.transcribe(noise)
    # before: 5 beams × up to 448 positions (889 decoder passes for one real clip)
    assert len(calls) <= token_limit(5) + 4 and time.perf_counter() - started < 30


def test_stopping_a_transcription_ends_it_at_the_next_decoder_layer(whisper):
    clip = (0.3 * np.random.default_rng(2).standard_normal(16000 * 20)).astype(np.float32)
    cancel = threading.Event()
    calls = decoder_calls(whisper, lambda n: n == 5 and cancel.set())
    with pytest.raises(Cancelled):
        whisper.transcribe(clip, cancel)
    assert len(calls) == 5


def test_a_clip_asked_for_by_many_requests_at_once_is_transcribed_once(whisper, monkeypatch):
    clip = (0.3 * np.random.default_rng(3).standard_normal(16000 * 3)).astype(np.float32)
    runs = []
    original = whisper._run

    def slow_run(samples, cancel):
        runs.append(1)
        time.sleep(0.3)
        return original(samples, cancel)

    monkeypatch.setattr(whisper, "_run", slow_run)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(whisper.transcribe(clip))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(runs) == 1 and len(results) == 4 and len(set(results)) == 1


@pytest.fixture(scope="module")
def voices(twins, tiny_extras):
    return Voices({"en": Speaker(str(twins["mms-tts-eng"])), "zh": Speaker(str(tiny_extras["vits_zh"]),
                                                                            language="zh")})


def test_the_voice_never_gives_an_empty_clip_and_says_what_it_skipped(twins):
    english = Voices({"en": Speaker(str(twins["mms-tts-eng"]))})  # the published 38-symbol vocabulary
    with pytest.raises(Unsayable, match="The voice reads English; this sentence was not read"):
        english.synthesize("你好，世界。")
    with pytest.raises(Unsayable):
        english.synthesize("!!! ??? ...")
    spoken = SpokenAnswer(english)
    spoken.feed("Hello there. 你好，世界。 Goodbye now.")
    clips = list(spoken.finish())
    assert len(clips) == 2 and all(audio.size for _, audio in clips)
    assert len(spoken.notes) == 1 and "你好" in spoken.notes[0]


class Recording:
    """A voice's pipeline that records the text it is given."""

    def __init__(self, pipeline) -> None:
        self.pipeline, self.tokenizer, self.said = pipeline, pipeline.tokenizer, []

    def __call__(self, text: str) -> dict:
        self.said.append(text)
        return self.pipeline(text)


def test_numbers_are_read_as_words(twins):
    assert numbers_as_words("In 1987 we had 3.5 cats.", "en") == (
        "In one thousand, nine hundred and eighty-seven we had three point five cats.")
    voice = Speaker(str(twins["mms-tts-eng"]))  # its alphabet has no 7, 8 or 9
    voice.load()
    voice._loaded = recording = Recording(voice._loaded)
    voice.synthesize("It was 1987.")
    assert recording.said == ["It was one thousand, nine hundred and eighty-seven."]


def test_a_chinese_sentence_goes_to_the_chinese_voice(voices):
    rate, audio = voices.synthesize("你好，世界。今天天气很不错。")
    assert rate == 16000 and audio.size > 0
    rate, audio = voices.synthesize("Hello world.")
    assert audio.size > 0


def test_a_system_prompt_takes_the_shape_each_template_reads(twins):
    """Gemma 4's template trims the system content as a string (a list would print as its repr); SmolVLM's
    iterates the list. The published Gemma 4 template on a real processor and tokenizer (SmolVLM2's)."""
    from transformers import AutoProcessor

    from mmdemo.engines.inputs import InputBuilder

    messages = [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": [{"type": "text", "text": "Hello!"}]}]
    smolvlm = InputBuilder(AutoProcessor.from_pretrained(twins["smolvlm2-256m-video"]), 256, None)
    processor = AutoProcessor.from_pretrained(twins["smolvlm2-256m-video"])
    processor.chat_template = (REALISH / "gemma-4-e2b-it" / "chat_template.jinja").read_text()
    gemma = InputBuilder(processor, 256, None)
    assert gemma.system_as_text and not smolvlm.system_as_text
    prompt = processor.tokenizer.decode(gemma.build(messages, None, "cpu")["input_ids"][0])
    assert "<|turn>system\nBe brief.<turn|>" in prompt and "'type'" not in prompt
    prompt = smolvlm.processor.tokenizer.decode(smolvlm.build(messages, None, "cpu")["input_ids"][0])
    assert "Be brief." in prompt and "'type'" not in prompt
