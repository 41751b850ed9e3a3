"""All PyTorch work runs on the engine's torch thread(s): see mmdemo/engines/workers.py for why."""

import threading

from mmdemo.engines.base import GenerationParams
from mmdemo.engines.workers import TorchWorkers


def test_one_thread_runs_every_job_and_nested_calls_run_inline():
    workers = TorchWorkers()
    names = {workers.run(lambda: threading.current_thread().name) for _ in range(5)}
    assert len(names) == 1 and names.pop().startswith("mmdemo-torch")
    # a job that itself asks the pool for work must not wait for itself (one thread: that would deadlock)
    assert workers.submit(lambda: workers.run(lambda: 42)).result(timeout=5) == 42


def test_a_forked_process_gets_a_new_pool(monkeypatch):
    workers = TorchWorkers()
    parent = workers.run(threading.current_thread)
    monkeypatch.setattr("os.getpid", lambda: -1)  # as in a ZeroGPU child: the parent's threads are gone
    assert workers.run(threading.current_thread) is not parent  # (thread ids may be reused)


def test_prepare_and_generate_run_on_the_torch_thread(smolvlm_engine, monkeypatch):
    seen: list[str] = []
    prepare = smolvlm_engine._prepare

    def recording_prepare(messages: list[dict]) -> dict:
        seen.append(threading.current_thread().name)
        return prepare(messages)

    monkeypatch.setattr(smolvlm_engine, "_prepare", recording_prepare)
    user = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    list(smolvlm_engine.stream(user, GenerationParams(4, 0.0), threading.Event()))
    assert seen and seen[0].startswith("mmdemo-torch")
