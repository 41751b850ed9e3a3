"""The model manager: loading in the background with bounded retries, switching, and nothing else loads."""

from __future__ import annotations

import threading
import time

import pytest

from mmdemo.engines.base import Capabilities, Engine, EngineStatus
from mmdemo.errors import UserError
from mmdemo.models import ModelManager
from mmdemo.views import health_payload


class Flaky(Engine):
    """An engine whose first ``failures`` loads fail (a server that is not up yet)."""

    def __init__(self, model: str = "m", failures: int = 0) -> None:
        self.model, self.failures, self.loads, self.closed = model, failures, 0, False
        self._status = EngineStatus("loading", model)

    def load(self) -> None:
        if self._capabilities is not None:
            return
        self.loads += 1
        if self.loads <= self.failures:
            self._status = EngineStatus("failed", self.model, detail="not reachable")
            raise UserError("not reachable")
        self._capabilities = Capabilities(image=True, audio=True)
        self._status = EngineStatus("ready", self.model)

    def close(self) -> None:
        self.closed = True


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_failed_load_is_retried_a_bounded_number_of_times_each_in_one_log_line(caplog):
    engine = Flaky(failures=10)
    manager = ModelManager(engine, retry_after_s=(0.01, 0.01))
    manager.start_loading()
    assert wait_for(lambda: not manager._loader.is_alive())
    assert engine.loads == 3 and engine.status().state == "failed"  # the first try and two retries, then it rests
    tries = [r.getMessage() for r in caplog.records if "loading the model failed" in r.getMessage()]
    assert len(tries) == 3 and "try 1 of 3" in tries[0] and "next try in" in tries[0] and "next try" not in tries[2]


def test_a_model_that_comes_up_later_is_loaded_and_then_the_side_models(caplog):
    engine, after = Flaky(failures=1), threading.Event()
    manager = ModelManager(engine, retry_after_s=(0.01, 0.01))
    manager.start_loading(then=after.set)
    assert after.wait(5) and engine.status().state == "ready" and engine.loads == 2


def test_health_only_reports_it_never_starts_a_load():
    engine = Flaky(failures=10)
    manager = ModelManager(engine, retry_after_s=())
    with pytest.raises(UserError):
        manager.warm_up()
    for _ in range(5):
        code, body = health_payload(manager.engine.status())
    assert code == 503 and body["status"] == "failed" and engine.loads == 1


def test_a_switch_stops_the_work_in_flight_then_frees_the_old_model():
    old, new = Flaky("old"), Flaky("new")
    manager = ModelManager(old, make_engine=lambda model_id: new, retry_after_s=())
    manager.warm_up()
    cancels = [threading.Event() for _ in range(3)]  # a turn, a classification, a voice
    closed_while_working: list[bool] = []

    def work(cancel: threading.Event) -> None:
        with manager.track(cancel):
            cancel.wait(5)
            time.sleep(0.05)  # the work takes a moment to wind down
            closed_while_working.append(old.closed)

    workers = [threading.Thread(target=work, args=(c,)) for c in cancels]
    for worker in workers:
        worker.start()
    assert wait_for(lambda: len(manager._active) == 3)
    manager.switch("new")
    assert all(c.is_set() for c in cancels) and old.closed and manager.engine is new
    assert closed_while_working == [False, False, False]  # freed only once all the work had ended
    assert wait_for(lambda: new.status().state == "ready")  # loaded in the background
    for worker in workers:
        worker.join(1)


def test_without_a_factory_the_model_is_fixed():
    with pytest.raises(UserError, match="one fixed model"):
        ModelManager(Flaky()).switch("other")
