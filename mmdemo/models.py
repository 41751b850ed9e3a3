"""The model manager: the one owner of the chat model (and the speech recogniser it may need), its loading,
its retries and its switching. A turn reads :attr:`ModelManager.engine` once and keeps it; a switch stops
every piece of model work in flight before freeing the old model; nothing but an explicit call loads."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from mmdemo.engines.base import Engine
from mmdemo.errors import UserError

log = logging.getLogger(__name__)
# A failed load (a server not up yet, a network down) is tried again after these pauses, then left failed.
RETRY_AFTER_S = (5, 10, 20, 40, 80, 160, 300)
# A remote server is checked with one short request: every 5 s for ten minutes, so /health turns 200 soon after
# the server is back (a request always checks it at once, whatever the schedule).
RETRY_REMOTE_S = (5,) * 120


class Transcriber(Protocol):
    """Speech to text for models without an audio encoder."""

    def load(self) -> None:
        """Load the model (blocking, idempotent)."""

    def transcribe(self, samples: np.ndarray, cancel: threading.Event | None = None) -> str:
        """Text of a mono float32 clip at 16 kHz; raises ``Cancelled`` soon after ``cancel`` is set."""


class ModelManager:
    """Holds the chat model for everyone; loads it in the background, retries and switches it."""

    def __init__(self, engine: Engine, transcriber: Transcriber | None = None,
                 make_engine: Callable[[str], Engine] | None = None,
                 retry_after_s: tuple[float, ...] = RETRY_AFTER_S) -> None:
        """``make_engine`` builds an engine for another checkpoint (the model picker, retries of a failed
        load); without it the model is fixed."""
        self.engine = engine
        self.transcriber = transcriber
        self.make_engine = make_engine
        self.retry_after_s = retry_after_s
        self._active: set[threading.Event] = set()
        self._switching = threading.Lock()
        self._loader: threading.Thread | None = None
        self._generation = 0  # bumped by every switch: a loader of an older model stops retrying

    @contextlib.contextmanager
    def track(self, cancel: threading.Event) -> Iterator[None]:
        """Model work of one request (a turn, a classification, a transcription, a voice): a switch sets
        ``cancel`` and waits for the block to end before freeing the model."""
        self._active.add(cancel)
        try:
            yield
        finally:
            self._active.discard(cancel)

    def warm_up(self) -> None:
        """Load the chat model, then the speech model when the chat model cannot hear (blocking)."""
        self.engine.load()
        if self.transcriber is not None and not self.engine.capabilities.audio:
            self.transcriber.load()

    def start_loading(self, then: Callable[[], None] | None = None) -> None:
        """Load in the background (one loader at a time); a failed load is retried after a pause, each try
        logged in one line; ``then`` runs once the model is ready."""
        if self._loader is not None and self._loader.is_alive():
            return
        self._loader = threading.Thread(target=self._load, args=(self._generation, then), name="mmdemo-load",
                                        daemon=True)
        self._loader.start()

    def _load(self, generation: int, then: Callable[[], None] | None) -> None:
        for attempt, pause in enumerate((0.0, *self.retry_after_s), start=1):
            time.sleep(pause)
            if generation != self._generation:
                return
            try:
                if attempt > 1 and self.engine.status().state == "failed" and self.make_engine is not None:
                    self.engine = self.make_engine(self.engine.status().model)  # a fresh try of the same model
                self.warm_up()
            except UserError as exc:
                more = attempt <= len(self.retry_after_s)
                log.warning("loading the model failed (try %d of %d)%s: %s", attempt, len(self.retry_after_s) + 1,
                            f"; next try in {self.retry_after_s[attempt - 1]:.0f} s" if more else "", exc)
                continue
            if then is not None:
                then()
            return

    def switch(self, model_id: str, wait_s: float = 30.0) -> None:
        """Replace the chat model for everyone: work in flight is stopped, the old model's memory freed and
        the new model loaded in the background. Raises ``UserError`` at once when ``model_id`` names no
        checkpoint (the old model then stays)."""
        if self.make_engine is None:
            raise UserError("This demo serves one fixed model; switching is turned off.")
        with self._switching:
            status = self.engine.status()
            if model_id == status.model and status.state != "failed":
                return
            new = self.make_engine(model_id)
            for cancel in list(self._active):
                cancel.set()
            deadline = time.monotonic() + wait_s
            while self._active and time.monotonic() < deadline:
                time.sleep(0.05)
            old, self.engine = self.engine, new
            self._generation += 1
            old.close()
            log.info("switched the chat model to %s", model_id)
        self._loader = None
        self.start_loading()
