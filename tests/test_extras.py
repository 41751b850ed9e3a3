"""The optional models and task machinery on tiny random-weight checkpoints, through the real code paths."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ASSETS
from PIL import Image

from mmdemo.chat import ChatService, Request
from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.drawing import Drawer, unavailable
from mmdemo.engines.local import TransformersEngine
from mmdemo.engines.retrieval import Embedder
from mmdemo.engines.speech import Speaker, SpokenAnswer, Unsayable
from mmdemo.errors import Cancelled
from mmdemo.modalities import Budget
from mmdemo.models import ModelManager
from mmdemo.runner import start
from mmdemo.turns import Turn
from mmdemo.views import how_it_works


@pytest.fixture(scope="module")
def speaker(tiny_extras):
    return Speaker(str(tiny_extras["vits"]))


def test_voice_reads_text_at_its_sampling_rate(speaker):
    rate, samples = speaker.synthesize("Hello there, how are you?")
    assert rate == 16000 and samples.dtype == np.float32 and samples.size > 0
    with pytest.raises(Unsayable, match="The voice reads English"):  # nothing this voice can pronounce
        speaker.synthesize("你好")


def test_spoken_answer_queues_each_sentence_as_it_completes(speaker):
    spoken = SpokenAnswer(speaker)
    spoken.feed("Hello there. How")
    assert len(spoken._pending) == 1  # the first sentence is being read while the answer goes on
    spoken.feed(" are you? Fine")
    clips = list(spoken.finish())
    assert len(clips) == 3 and all(rate == 16000 and audio.size for rate, audio in clips)
    _, whole = spoken.whole()
    assert whole.size == sum(audio.size for _, audio in clips)


def test_image_vectors_are_computed_once_and_search_ranks_the_same_image_first(tiny_extras, tmp_path):
    embedder = Embedder(str(tiny_extras["clip"]))
    gallery = {"scene": ASSETS / "scene.png", "chart": ASSETS / "chart.png"}
    vectors = embedder.image_vectors(gallery)
    assert embedder.computed == 2 and all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors.values())
    again = embedder.image_vectors(gallery)
    assert embedder.computed == 2 and all(np.array_equal(again[k], vectors[k]) for k in gallery)
    query = embedder.image_vectors({"q": Image.open(ASSETS / "chart.png")})["q"]
    matches = embedder.search(query, vectors)
    assert matches[0].key == "chart" and matches[0].score == pytest.approx(1.0, abs=1e-4)
    text = embedder.text_vector("a bar chart")
    assert text.shape == query.shape and len(embedder.search(text, vectors)) == 2


def test_drawing_reports_every_step_and_stops_when_asked(tiny_extras):
    drawer = Drawer(str(tiny_extras["sd"]))
    steps = list(drawer.draw("a red square", 4, seed=1, cancel=threading.Event()))
    assert [s.done for s in steps] == [1, 2, 3, 4, 4] and steps[-1].image is not None
    assert steps[-1].image.size == (32, 32) and all(s.image is None for s in steps[:-1])
    cancel = threading.Event()
    cancel.set()
    stopped = list(drawer.draw("a red square", 10, seed=1, cancel=cancel))
    assert stopped[-1].image is not None and len(stopped) < 11  # interrupted after the first step


def test_drawing_says_how_to_turn_it_on():
    assert "--draw-model" in unavailable(None, "cpu")


def test_classification_uses_the_models_label_probabilities(smolvlm_engine):
    service = ChatService(ModelManager(smolvlm_engine), Budget(), 64)
    labels = ["positive", "neutral", "negative"]
    result = service.classify(Request(Turn.user("Classify: great film!"), labels=tuple(labels)), threading.Event())
    assert result.label in labels and set(result.probabilities) == set(labels)
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.label == max(result.probabilities, key=result.probabilities.get)
    logps = smolvlm_engine.score([{"role": "user", "content": [{"type": "text", "text": "Classify: great film!"}]}],
                                 labels)
    expected = np.exp(np.array(logps) - max(logps))
    assert result.probabilities["neutral"] == pytest.approx(expected[1] / expected.sum(), rel=1e-4)


def test_stage_timings_add_up_to_the_request(smolvlm_engine):
    stats = GenerationStats()
    image = {"type": "image", "image": Image.new("RGB", (96, 64), (17, 171, 71))}  # a picture no other test sends
    messages = [{"role": "user", "content": [image, {"type": "text", "text": "Describe."}]}]
    "".join(smolvlm_engine.stream(messages, GenerationParams(16, 0.0), threading.Event(), stats))
    assert list(stats.stages) == ["prepare", "vision encoder", "prefill", "decode"]
    assert sum(stats.stages.values()) == pytest.approx(stats.total_s, abs=0.02)
    again = GenerationStats()  # the same picture again: its encoding was kept
    "".join(smolvlm_engine.stream(messages, GenerationParams(16, 0.0), threading.Event(), again))
    assert list(again.stages) == ["prepare", "vision encoder (encoded before)", "prefill", "decode"]
    assert sum(again.stages.values()) == pytest.approx(again.total_s, abs=0.02)
    service = ChatService(ModelManager(smolvlm_engine), Budget(), 64)
    panel = how_it_works(service, stats)
    assert "vision encoder" in panel and f"{stats.prompt_tokens} prompt tokens" in panel and "decode" in panel


def test_switching_models_stops_answers_frees_the_old_model_and_loads_the_new(tiny):
    def make(model_id: str) -> TransformersEngine:
        return TransformersEngine(model_id, "cpu")

    old = make(str(tiny["smolvlm"]))
    models = ModelManager(old, None, make)
    service = ChatService(models, Budget(), 3000)
    models.warm_up()
    handle = start(service, Request(Turn.user("Tell me a long story."), params=GenerationParams(3000, 0.0)))
    stats, answer = handle.stats, iter(handle)
    next(answer)  # an answer is streaming
    switcher = threading.Thread(target=models.switch, args=(str(tiny["qwen2_5_omni"]),))
    switcher.start()
    for _ in answer:  # the running answer is stopped so the switch can go on
        pass
    switcher.join(timeout=30)
    assert not switcher.is_alive() and stats.cancelled and stats.generated_tokens < 3000
    assert old._model is None and old.status().detail == "unloaded"
    assert models.engine is not old and Path(models.engine.model_id).name == "qwen2_5_omni"
    models.warm_up()
    assert models.engine.status().state == "ready" and models.engine.capabilities.audio


def test_a_model_switch_during_a_classification_stops_it_before_freeing_the_model(tiny):
    old = TransformersEngine(str(tiny["smolvlm"]), "cpu")
    models = ModelManager(old, None, lambda model_id: TransformersEngine(model_id, "cpu"))
    service = ChatService(models, Budget(), 64)
    models.warm_up()
    entered = threading.Event()

    def slow_layer(module, args):  # each decoder layer takes 20 ms: twenty labels take seconds
        entered.set()
        time.sleep(0.02)

    for layer in old._model.model.text_model.layers:
        layer.register_forward_pre_hook(slow_layer)
    outcome: list[object] = []

    def classify() -> None:
        try:
            labels = tuple(f"label {i}" for i in range(20))
            outcome.append(service.classify(Request(Turn.user("Which?"), labels=labels), threading.Event()))
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=classify)
    worker.start()
    assert entered.wait(10)
    started = time.monotonic()
    models.switch(str(tiny["qwen2_5_omni"]))
    worker.join(timeout=10)
    assert isinstance(outcome[0], Cancelled) and time.monotonic() - started < 2.0
    assert old._model is None and models.engine is not old


def test_grounding_preset_architecture_scores_labels_and_maps_its_pixel_boxes(tiny_extras, tmp_path):
    engine = TransformersEngine(str(tiny_extras["qwen2_5_vl"]), "cpu")
    service = ChatService(ModelManager(engine), Budget(), 64)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (1000, 500), "white").save(photo)
    request = Request(Turn.user("Is there a cat?", [str(photo)]), labels=("yes", "no"))
    result = service.classify(request, threading.Event())
    assert result.label in ("yes", "no") and sum(result.probabilities.values()) == pytest.approx(1.0)
    assert engine.seen_size(1000, 500) == (140, 56)  # the tiny processor's pixel budget, as the model sees it
    image, boxes = service.boxes('```json\n[{"bbox_2d": [14, 7, 70, 28], "label": "cat"}]\n```', str(photo))
    assert image.size == (1000, 500)
    assert [(b.label, b.x1, b.y1, b.x2, b.y2) for b in boxes] == [("cat", 100.0, 62.5, 500.0, 250.0)]


@pytest.mark.parametrize(("make", "use"), [
    (lambda path: Speaker(path), lambda model: model.synthesize("Hello.")),
    (lambda path: Embedder(path), lambda model: model.text_vector("a cat")),
    (lambda path: Drawer(path), lambda model: list(model.draw("a cat", 2, 0, threading.Event()))),
])
def test_an_optional_model_that_cannot_load_says_so_without_a_server_path(tmp_path, make, use):
    from mmdemo.errors import UserError

    missing = tmp_path / "no-such-model"
    missing.mkdir()
    with pytest.raises(UserError, match="'no-such-model' is unavailable") as exc:
        use(make(str(missing)))
    assert str(tmp_path) not in str(exc.value)


def test_loading_reports_the_weights_progress_in_the_status(tiny):
    engine = TransformersEngine(str(tiny["smolvlm"]), "cpu")
    details: list[str] = []
    engine._progress = lambda detail: details.append(detail)  # what the status line shows while loading
    engine.load()
    assert details and details[-1].startswith("loading weights: ") and details[-1].endswith("(100 %)")
    assert engine.status().state == "ready"


def test_a_side_model_that_failed_is_not_tried_again_on_every_request(tmp_path, monkeypatch):
    from mmdemo.errors import UserError

    missing = tmp_path / "no-such-voice"
    missing.mkdir()
    speaker, tries = Speaker(str(missing)), []
    opened = speaker._open
    monkeypatch.setattr(speaker, "_open", lambda: tries.append(1) or opened())
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(UserError, match="is unavailable"):
            speaker.synthesize("Hello.")
    assert len(tries) == 1 and time.monotonic() - started < 0.1  # remembered: answered at once
    assert "is unavailable" in speaker.unavailable


def test_a_hub_model_that_cannot_be_reached_fails_in_seconds_off_the_torch_thread(monkeypatch):
    from mmdemo.errors import UserError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    speaker = Speaker("nobody/not-downloaded-voice")
    monkeypatch.setattr(speaker.workers, "run", lambda *a, **k: pytest.fail("the torch thread was used"))
    with pytest.raises(UserError, match="Hugging Face Hub cannot be reached"):
        speaker.load()
