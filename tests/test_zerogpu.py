import sys
import types

from mmdemo.engines.workers import TorchWorkers
from mmdemo.zerogpu import estimate_seconds, on_gpu


def answer(text):
    return text.upper()


def test_without_spaces_nothing_changes():
    assert "spaces" not in sys.modules
    assert on_gpu(answer) is answer


def test_with_spaces_every_torch_job_runs_under_spaces_gpu(monkeypatch):
    seen = []

    def gpu(duration):  # the decorator's documented form: spaces.GPU(duration=...)
        def wrap(fn):
            def run(*args, **kwargs):
                seen.append(duration)
                return fn(*args, **kwargs)
            return run
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    workers = TorchWorkers()
    assert workers.run(answer, "hi", seconds=25) == "HI"  # e.g. a classification or a voice sentence
    assert workers.submit(answer, "yo").result() == "YO"  # e.g. a search batch: the default budget
    assert seen == [25, 60]


def test_estimate_grows_with_the_answer_and_the_media():
    short = estimate_seconds(64)
    long = estimate_seconds(2000, media=3)
    assert short < long <= 120
