"""Media encoded once: a picture, clip or recording the model has encoded is not encoded again, and the media
attached to a message still being written are encoded while the model is idle, so its answer starts sooner
(``engines/encoders.py``; ``TorchWorkers.speculate``)."""

import threading
import time

import pytest
import torch
from helpers import write_clip
from PIL import Image

from mmdemo.chat import ChatService, Request
from mmdemo.engines.anatomy import _encoders
from mmdemo.engines.base import GenerationParams
from mmdemo.engines.encoders import EncoderCache
from mmdemo.engines.local import TransformersEngine
from mmdemo.engines.workers import TorchWorkers, check_cancel
from mmdemo.errors import Cancelled
from mmdemo.modalities import Budget
from mmdemo.models import ModelManager
from mmdemo.runner import start
from mmdemo.turns import Turn

GREEDY = GenerationParams(8, 0.0)


def service(path) -> ChatService:
    made = ChatService(ModelManager(TransformersEngine(str(path), "cpu")), Budget(), 64)
    made.models.engine.load()
    return made


def encodings(engine: TransformersEngine) -> list[str]:
    """The encoders' forward passes from now on, by role ("vision encoder", "audio encoder")."""
    calls: list[str] = []
    for role, module in _encoders(engine._generator):
        module.register_forward_hook(lambda *_, role=role: calls.append(role))
    return calls


def answer(chat: ChatService, text: str, files: list[str]) -> str:
    handle = start(chat, Request(Turn.user(text, files), params=GREEDY))
    return "".join(e.text for e in handle if e.kind == "text")


def test_a_picture_sent_again_is_not_encoded_again(tiny, tmp_path):
    chat = service(tiny["smolvlm"])
    calls = encodings(chat.models.engine)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (640, 480), "red").save(photo)
    first = answer(chat, "What is this?", [str(photo)])
    assert calls == ["vision encoder"]
    assert answer(chat, "What is this?", [str(photo)]) == first and calls == ["vision encoder"]
    Image.new("RGB", (640, 480), "blue").save(photo)  # the same name, other pixels: encoded anew
    answer(chat, "What is this?", [str(photo)])
    assert calls == ["vision encoder"] * 2


@pytest.mark.parametrize("name", ["smolvlm2-256m-video", "qwen3.5-0.8b"])
def test_a_follow_up_question_does_not_encode_the_earlier_picture_again(twins, tmp_path, name):
    chat = service(twins[name])
    calls = encodings(chat.models.engine)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (800, 600), "orange").save(photo)
    first = Turn.user("What is this?", [str(photo)])
    answer(chat, "What is this?", [str(photo)])
    follow_up = Request(Turn.user("And its colour?"), history=(first, Turn("assistant", ())), params=GREEDY)
    handle = start(chat, follow_up)
    list(handle)
    assert handle.stats.generated_tokens == 8 and handle.stats.media_tokens["image"] > 0  # it saw the picture,
    assert calls == ["vision encoder"]  # as encoded for the first question


@pytest.mark.parametrize(("name", "kind"), [("smolvlm2-256m-video", "image"), ("qwen3-vl-2b-instruct", "video"),
                                            ("qwen2.5-omni-7b", "audio"), ("gemma-4-e2b-it", "image")])
def test_media_attached_before_sending_are_encoded_ahead_and_answered_alike(twins, tmp_path, audio_file, name, kind):
    if kind == "image":
        attached = tmp_path / "photo.png"
        Image.new("RGB", (800, 600), "green").save(attached)
    else:
        attached = write_clip(tmp_path / "clip.mp4", seconds=2) if kind == "video" else audio_file(seconds=2)
    chat = service(twins[name])
    calls = encodings(chat.models.engine)
    chat.prefetch([str(attached)]).result(timeout=120)
    assert calls and chat.prefetch([str(attached)]) is None  # encoded once; asking again does nothing
    encoded_ahead = len(calls)
    ahead = answer(chat, "What is in it?", [str(attached)])
    assert len(calls) == encoded_ahead  # the answer started without encoding
    assert ahead == answer(service(twins[name]), "What is in it?", [str(attached)])  # as a fresh model answers


def test_speculative_work_waits_for_an_idle_pool_and_yields_to_any_request():
    workers = TorchWorkers()
    started, release = threading.Event(), threading.Event()

    def speculative() -> None:
        started.set()
        while True:  # model work, layer after layer, until a request wants the thread
            check_cancel()
            time.sleep(0.01)

    job = workers.speculate(speculative)
    assert job is not None and started.wait(5)
    request = workers.submit(lambda: "answered")
    assert request.result(timeout=5) == "answered"
    with pytest.raises(Cancelled):
        job.result(timeout=5)
    busy = workers.submit(release.wait, 5)
    assert workers.speculate(speculative) is None  # a request is running: nothing speculative starts
    release.set()
    busy.result(timeout=5)
    assert workers.speculate(lambda: "idle again").result(timeout=5) == "idle again"
    stopped = threading.Event()
    stopped.set()
    with pytest.raises(Cancelled):  # a request stopped before it started
        workers.submit(lambda: "never", cancel=stopped).result(timeout=5)
    assert workers.idle  # it does not keep the pool busy


def test_the_kept_encodings_stay_within_their_bytes():
    encoder = torch.nn.Linear(4, 256)

    class Model(torch.nn.Module):
        def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return encoder(pixel_values)

    model = Model()
    cache = EncoderCache(model, max_bytes=4 * 256 * 4 * 10)  # ten encodings of one row
    for i in range(30):
        model.get_image_features(torch.full((1, 4), float(i)))
    assert 0 < cache.size <= cache.max_bytes and cache.hits == 0
    model.get_image_features(torch.full((1, 4), 29.0))  # the latest are kept
    model.get_image_features(pixel_values=torch.full((1, 4), 28.0))  # by name or by position alike
    assert cache.hits == 2


def test_nothing_is_encoded_ahead_while_the_model_is_busy_and_it_is_asked_again_later(tiny, tmp_path):
    chat = service(tiny["smolvlm"])
    engine = chat.models.engine
    calls = encodings(engine)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (640, 480), "purple").save(photo)
    release = threading.Event()
    busy = engine.workers.submit(release.wait, 10)  # another visitor's answer
    assert chat.prefetch([str(photo)]) is None and not engine.idle()
    release.set()
    busy.result(timeout=10)
    chat.prefetch([str(photo)]).result(timeout=60)  # the visitor typed on: asked again, now idle
    assert calls == ["vision encoder"]


@pytest.mark.parametrize("name", ["smolvlm2-256m-video", "qwen3-vl-2b-instruct", "qwen3.5-0.8b", "gemma-4-e2b-it"])
def test_a_second_picture_does_not_encode_the_first_again(twins, tmp_path, name):
    """Pictures are kept one by one: a message with the earlier picture and a new one encodes only the new one,
    and the answer is the one an engine without kept encodings gives."""
    chat = service(twins[name])
    rows: list[int] = []  # what each pass of the vision encoder read: tiles (SmolVLM) or patches (Qwen)
    for role, module in _encoders(chat.models.engine._generator):
        if role == "vision encoder":
            module.register_forward_hook(lambda _, args, kwargs, out: rows.append(
                len(args[0] if args else kwargs.get("pixel_values", kwargs.get("hidden_states")))), with_kwargs=True)
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    Image.new("RGB", (800, 600), "orange").save(first)
    Image.new("RGB", (600, 800), "teal").save(second)
    answer(chat, "What is this?", [str(first)])
    both = answer(chat, "Compare them.", [str(first), str(second)])
    assert len(rows) == 2 and rows[1] == rows[0]  # one picture's worth: the new one
    fresh = ChatService(ModelManager(TransformersEngine(str(twins[name]), "cpu", encoder_cache_mb=0)), Budget(), 64)
    assert both == answer(fresh, "Compare them.", [str(first), str(second)])
    assert answer(chat, "And the second?", [str(second)]) == answer(fresh, "And the second?", [str(second)])
    assert len(rows) == 2  # the second picture, encoded in a pair, was kept on its own
