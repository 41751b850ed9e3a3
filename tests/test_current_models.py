"""The current families (Qwen3-VL, Qwen3.5, Gemma 4, Qwen3-Omni) through the app's core on tiny twins with their
real files (Qwen3-Omni's assembled): chat with an image, video, audio where the model hears, several turns,
classification with log-probabilities up to each template's end of turn, grounding in each family's own frame."""

import threading

import pytest
from helpers import write_clip
from PIL import Image

from mmdemo.chat import ChatService, Request
from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.local import TransformersEngine
from mmdemo.modalities import Budget
from mmdemo.models import ModelManager
from mmdemo.runner import start
from mmdemo.tasks import TASKS
from mmdemo.turns import Turn

GREEDY = GenerationParams(8, 0.0)


@pytest.fixture(scope="module")
def services(twins):
    made = {}

    def get(name: str) -> ChatService:
        if name not in made:
            made[name] = ChatService(ModelManager(TransformersEngine(str(twins[name]), "cpu")), Budget(), 64)
            made[name].models.engine.load()
        return made[name]

    return get


def run(service: ChatService, request: Request) -> tuple[str, list, GenerationStats]:
    handle = start(service, request)
    events = list(handle)
    return "".join(e.text for e in events if e.kind == "text"), events, handle.stats


CURRENT = ["qwen3-vl-2b-instruct", "qwen3.5-0.8b", "gemma-4-e2b-it", "qwen3-omni-30b-a3b-instruct"]


@pytest.mark.parametrize("name", CURRENT)
def test_each_current_family_answers_images_video_and_several_turns(services, tmp_path, name):
    service = services(name)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (1184, 864), "red").save(photo)
    first = Turn.user("What is this?", [str(photo)])
    assert run(service, Request(first, params=GREEDY))[2].generated_tokens == 8  # the text may be blank lines
    second = Request(Turn.user("And the colour?"), history=(first, Turn("assistant", ())), params=GREEDY)
    assert run(service, second)[2].generated_tokens == 8
    clip = write_clip(tmp_path / "clip.mp4", seconds=3)
    handle = start(service, Request(Turn.user("What happens?", [str(clip)]), params=GREEDY))
    assert list(handle) is not None and handle.stats.generated_tokens == 8
    assert handle.stats.media_tokens.get("video", 0) > 0 and handle.stats.frames == 3
    assert handle.stats.media_tokens.get("image", 0) == 0  # the frames went in as video


def test_qwen3_vl_boxes_are_read_in_0_to_1000_of_the_image(services, tmp_path):
    service = services("qwen3-vl-2b-instruct")
    assert service.models.engine.capabilities.box_frame == "norm1000"
    photo = tmp_path / "photo.png"
    Image.new("RGB", (800, 600), "white").save(photo)
    _, boxes = service.boxes('[{"bbox_2d": [250, 250, 500, 750], "label": "cat"}]', str(photo))
    assert [(b.x1, b.y1, b.x2, b.y2) for b in boxes] == [(200.0, 150.0, 400.0, 450.0)]


def test_qwen2_5_vl_pixel_boxes_are_read_in_the_image_the_cpu_budget_sent(services):
    engine = services("qwen2.5-vl-7b").models.engine
    assert engine.capabilities.box_frame == "pixels"
    width, height = engine.seen_size(2000, 1500)
    assert width * height <= 256 * 28 * 28 and width / height == pytest.approx(4 / 3, rel=0.1)


def test_gemma_4_hears_a_clip_natively_and_thinks_when_asked(services, audio_file):
    service = services("gemma-4-e2b-it")
    engine = service.models.engine
    assert engine.capabilities.audio and engine.capabilities.thinking
    handle = start(service, Request(Turn.user("What is this sound?", [str(audio_file(seconds=2))]), params=GREEDY))
    events = list(handle)
    assert not [e for e in events if e.kind == "transcript"]  # heard, not transcribed
    assert handle.stats.media_tokens.get("audio", 0) > 0
    messages = [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    tokenizer = engine._processor.tokenizer
    on, off = (tokenizer.decode(engine._prepare(messages, think)["input_ids"][0]) for think in (True, False))
    assert "<|turn>system\n<|think|>" in on and "<|think|>" not in off and "Be brief." in on


@pytest.mark.parametrize(("name", "end"), [("qwen3-vl-2b-instruct", "<|im_end|>"), ("qwen3.5-0.8b", "<|im_end|>"),
                                           ("gemma-4-e2b-it", "<turn|>"),
                                           ("qwen3-omni-30b-a3b-instruct", "<|im_end|>"),
                                           ("smolvlm2-256m-video", "<end_of_utterance>")])
def test_labels_are_scored_up_to_the_templates_own_end_of_turn(services, name, end):
    service = services(name)
    engine = service.models.engine
    assert engine._processor.tokenizer.convert_ids_to_tokens(engine._turn_end) == end
    request = Request(Turn.user("I loved it."), task=TASKS["classify"], labels=("positive", "negative"))
    result = service.classify(request, threading.Event())
    assert result.label in ("positive", "negative") and sum(result.probabilities.values()) == pytest.approx(1.0)


def test_qwen3_omni_hears_a_clip_and_reads_boxes_in_0_to_1000(services, tmp_path, audio_file):
    service = services("qwen3-omni-30b-a3b-instruct")
    engine = service.models.engine
    assert engine.capabilities.audio and engine.capabilities.video and not engine.capabilities.speech
    assert engine.capabilities.box_frame == "norm1000"
    handle = start(service, Request(Turn.user("What is this sound?", [str(audio_file(seconds=2))]), params=GREEDY))
    events = list(handle)
    assert not [e for e in events if e.kind == "transcript"]  # heard by its own audio encoder
    assert handle.stats.media_tokens.get("audio", 0) > 0
    text = engine._processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "Hi"}]}], tokenize=False)
    assert "<|audio_start|><|audio_pad|><|audio_end|>Hi" in text
    photo = tmp_path / "photo.png"
    Image.new("RGB", (800, 600), "white").save(photo)
    _, boxes = service.boxes('[{"bbox_2d": [250, 250, 500, 750], "label": "cat"}]', str(photo))
    assert [(b.x1, b.y1, b.x2, b.y2) for b in boxes] == [(200.0, 150.0, 400.0, 450.0)]


def test_a_checkpoint_without_an_end_token_stops_at_its_templates_end_of_turn(services):
    """Qwen3-Omni's twin has no generation config of its own: the answer still ends where a turn ends."""
    service = services("qwen3-omni-30b-a3b-instruct")
    engine = service.models.engine
    end = engine._processor.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def says_end(_module, _inputs, logits):  # stands in for trained weights that close the turn at once
        logits[..., end] += 1e4
        return logits

    hook = engine._generator.lm_head.register_forward_hook(says_end)
    try:
        text, _, stats = run(service, Request(Turn.user("Hi"), params=GenerationParams(32, 0.0)))
    finally:
        hook.remove()
    assert stats.generated_tokens == 1 and text == ""

