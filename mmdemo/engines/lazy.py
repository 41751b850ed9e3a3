"""The loading every side model shares: once, on first use or at warm-up, on the torch threads."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from mmdemo.engines.workers import TorchWorkers, interruptible
from mmdemo.errors import UserError, load_failed

log = logging.getLogger(__name__)


class LazyModel:
    """A checkpoint that loads once (blocking, thread-safe) through ``_open``; ``role`` names it in messages."""

    role = "model"

    def __init__(self, model_id: str, device: str = "cpu", workers: TorchWorkers | None = None) -> None:
        """``workers``: the threads that run PyTorch, shared with the chat model (see ``workers``)."""
        self.model_id = model_id
        self.device = device
        self.workers = workers or TorchWorkers()
        self._lock = threading.Lock()
        self._loaded: Any = None  # what ``_open`` returned

    def load(self) -> None:
        """Load the model once; later calls return at once. Raise ``UserError`` when it cannot be loaded."""
        with self._lock:
            if self._loaded is not None:
                return
            started = time.perf_counter()
            try:
                loaded = self.workers.run(self._open)
            except Exception as exc:
                raise self._failed(exc) from exc
            if getattr(loaded, "model", None) is not None:  # a transformers pipeline: its model stops mid-forward
                interruptible(loaded.model)
            self._loaded = loaded
            log.info("loaded %s model %s in %.1f s", self.role, self.model_id, time.perf_counter() - started)

    def _open(self) -> Any:
        """Build the model (runs on a torch thread)."""
        raise NotImplementedError

    def _failed(self, exc: Exception) -> UserError:
        """The error that says the model could not be loaded (and logs why)."""
        return load_failed(self.role, self.model_id, exc)
