import sys
import types

from mmdemo.engines.base import GenerationParams
from mmdemo.zerogpu import estimate_seconds, on_gpu


def respond(text, files, history, system_prompt, params):
    yield from text.split()


def test_without_spaces_nothing_changes():
    assert "spaces" not in sys.modules
    assert on_gpu(respond) is respond


def test_with_spaces_the_turn_runs_under_spaces_gpu(monkeypatch):
    seen = {}

    def gpu(duration):  # the decorator's documented form: spaces.GPU(duration=callable)
        def wrap(fn):
            def run(*args, **kwargs):
                seen["duration"] = duration(*args, **kwargs)
                yield from fn(*args, **kwargs)
            return run
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    wrapped = on_gpu(respond)
    assert list(wrapped("a b c", ["x.png"], [], "", GenerationParams(max_new_tokens=250))) == ["a", "b", "c"]
    assert seen["duration"] == 15 + 10 + 3


def test_estimate_grows_with_the_answer_and_the_media():
    short = estimate_seconds("hi", [], [], "", GenerationParams(max_new_tokens=64))
    long = estimate_seconds("hi", ["a.png", "b.wav"], [{"content": [{"path": "c.png"}]}], "",
                            GenerationParams(max_new_tokens=2000))
    assert short < long <= 120
