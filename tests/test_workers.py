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

    def recording_prepare(messages: list[dict], *args: object) -> dict:
        seen.append(threading.current_thread().name)
        return prepare(messages, *args)

    monkeypatch.setattr(smolvlm_engine, "_prepare", recording_prepare)
    user = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    list(smolvlm_engine.stream(user, GenerationParams(4, 0.0), threading.Event()))
    assert seen and seen[0].startswith("mmdemo-torch")


def test_models_load_one_at_a_time_even_on_separate_worker_pools(tiny, monkeypatch):
    """from_pretrained sets process-wide state while it builds a model: a second load waits for the first."""
    import transformers

    from mmdemo.engines.local import TransformersEngine

    inside, release, order = threading.Event(), threading.Event(), []
    real = transformers.AutoModelForMultimodalLM.from_pretrained.__func__

    def slow_first(cls, model_id, *args, **kwargs):
        order.append(f"start {model_id}")
        if not inside.is_set():
            inside.set()
            release.wait(10)
        model = real(cls, model_id, *args, **kwargs)
        order.append(f"end {model_id}")
        return model

    monkeypatch.setattr(transformers.AutoModelForMultimodalLM, "from_pretrained", classmethod(slow_first))
    first = threading.Thread(target=TransformersEngine(str(tiny["smolvlm"]), "cpu").load)
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=TransformersEngine(str(tiny["qwen2_5_omni"]), "cpu").load)
    second.start()
    second.join(1.0)
    assert second.is_alive() and order == [f"start {tiny['smolvlm']}"]  # waiting for the first load
    release.set()
    first.join(30)
    second.join(30)
    assert order == [f"start {tiny['smolvlm']}", f"end {tiny['smolvlm']}",
                     f"start {tiny['qwen2_5_omni']}", f"end {tiny['qwen2_5_omni']}"]
