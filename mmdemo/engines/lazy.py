"""The loading every side model shares: once, on first use or at warm-up, on the torch threads."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from mmdemo.engines.workers import TorchWorkers, interruptible, one_load_at_a_time
from mmdemo.errors import UserError, load_failed

log = logging.getLogger(__name__)
RETRY_AFTER_S = 300.0  # a model that could not be loaded is tried again only this long after the last try
_MARKERS = ("config.json", "model_index.json")  # a checkpoint in the local cache has one of these


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
        self._failure: UserError | None = None  # why the last try failed, remembered for RETRY_AFTER_S
        self._failed_at = 0.0

    @property
    def unavailable(self) -> str | None:
        """Why the model cannot be used now (its last load failed), or ``None``."""
        return str(self._failure) if self._failure is not None and self._loaded is None else None

    def load(self) -> None:
        """Load the model once; later calls return at once. Raise ``UserError`` when it cannot be loaded: at
        once, without trying again, for ``RETRY_AFTER_S`` after a failed try (so a model that cannot be
        reached never holds the torch thread, and so everyone else, on every request)."""
        with self._lock:
            if self._loaded is not None:
                return
            if self._failure is not None and time.monotonic() - self._failed_at < RETRY_AFTER_S:
                raise self._failure
            started = time.perf_counter()
            try:
                self._check_source()  # here, not on the torch thread: an unreachable Hub fails in seconds
                loaded = self.workers.run(one_load_at_a_time, self._open)
            except Exception as exc:
                self._failure, self._failed_at = self._failed(exc), time.monotonic()
                raise self._failure from exc
            if getattr(loaded, "model", None) is not None:  # a transformers pipeline: its model stops mid-forward
                interruptible(loaded.model)
            self._loaded = loaded
            log.info("loaded %s model %s in %.1f s", self.role, self.model_id, time.perf_counter() - started)

    def _check_source(self) -> None:
        """A Hub checkpoint that is not in the local cache needs the Hub: raise at once when it cannot be
        reached (or does not exist) instead of letting the load retry on the torch thread."""
        if os.path.isdir(self.model_id):
            return
        from huggingface_hub import model_info, try_to_load_from_cache

        if any(isinstance(try_to_load_from_cache(self.model_id, name), str) for name in _MARKERS):
            return
        model_info(self.model_id, timeout=5)

    def _open(self) -> Any:
        """Build the model (runs on a torch thread)."""
        raise NotImplementedError

    def _failed(self, exc: Exception) -> UserError:
        """The error that says the model could not be loaded (and logs why)."""
        return load_failed(self.role, self.model_id, exc)
