"""Many users at once, and many cancelled requests: nothing deadlocks, nothing is lost, nothing leaks."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.utils import Status
from helpers import ASSETS, Server

from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.errors import UserError

CLIENTS = 32


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    srv = Server(tiny["smolvlm"], tiny["whisper"], tmp_path_factory.mktemp("load") / "app.log")
    yield srv
    srv.stop()


def test_concurrent_clients_all_complete_queued_visibly(server):
    def one(i: int) -> tuple[str, float, int]:
        client = Client(server.url, verbose=False)
        started = time.monotonic()
        job = client.submit({"text": f"Question {i}: what is this?", "files": [handle_file(ASSETS / "scene.png")]},
                            max_tokens=16, temperature=0, api_name="/chat")
        rank = 0
        while not job.done():
            status = job.status()
            if status.code == Status.IN_QUEUE and status.rank:
                rank = max(rank, status.rank)
            time.sleep(0.02)
        return job.result(timeout=10)[0], time.monotonic() - started, rank

    Client(server.url, verbose=False).predict({"text": "warm up", "files": []}, max_tokens=4, api_name="/chat")
    before = rss_mb(server.proc.pid)
    before_answers = len(server.answers())
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(one, range(CLIENTS), timeout=300))
    wall = time.monotonic() - started
    time.sleep(1)
    after = rss_mb(server.proc.pid)
    answers, latencies, ranks = zip(*results, strict=True)
    assert all(isinstance(a, str) and a for a in answers)
    assert len(server.answers()) - before_answers == CLIENTS  # no answer lost, none run twice
    assert max(ranks) > 0  # the others saw their place in the queue
    assert after < before + 300, f"RSS grew from {before:.0f} MB to {after:.0f} MB"
    print(f"\n{CLIENTS} clients: all answered in {wall:.1f} s, max latency {max(latencies):.1f} s, "
          f"deepest queue position {max(ranks)}, RSS {before:.0f} -> {after:.0f} MB")


def _torch_threads() -> int:
    return sum(t.name.startswith("mmdemo-torch") for t in threading.enumerate())


def test_hundred_cancelled_requests_leave_no_threads(smolvlm_engine):
    smolvlm_engine.load()  # its torch thread exists from here on
    baseline, torch_baseline = threading.active_count(), _torch_threads()
    params = GenerationParams(max_new_tokens=2000, temperature=0.0)
    # "Hi": the twin's first token is a word, so its first text comes at once (symbols wait for the next space)
    user = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    latencies = []
    for _ in range(100):
        stats = GenerationStats()
        stream = smolvlm_engine.stream(user, params, threading.Event(), stats)
        next(stream)
        stopped_at = time.perf_counter()
        stream.close()
        ends = time.monotonic() + 5
        while not stats.total_s and time.monotonic() < ends:
            time.sleep(0.001)
        latencies.append(time.perf_counter() - stopped_at)
        assert stats.cancelled
    deadline = time.monotonic() + 10
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= baseline
    assert _torch_threads() == torch_baseline  # requests reuse the engine's torch thread
    assert smolvlm_engine.workers.submit(lambda: True).result(timeout=5)  # the torch thread is free again
    assert max(latencies) < 0.5
    median, worst = sorted(latencies)[50] * 1000, max(latencies) * 1000
    print(f"\nStop → generation ended: median {median:.1f} ms, max {worst:.1f} ms")


def test_out_of_memory_is_reported_and_the_next_request_works(smolvlm_engine, monkeypatch):
    model = smolvlm_engine._model
    user = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]

    def exhausted(**kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(model, "generate", exhausted)
    with pytest.raises(UserError, match="ran out of memory") as exc:
        list(smolvlm_engine.stream(user, GenerationParams(8, 0.0), threading.Event()))
    assert "20.00 GiB" not in str(exc.value)
    monkeypatch.undo()
    assert "".join(smolvlm_engine.stream(user, GenerationParams(8, 0.0), threading.Event()))
