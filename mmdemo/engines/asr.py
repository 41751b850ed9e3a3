"""Speech recognition with a Whisper checkpoint, for chat models that have no audio encoder."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict

import numpy as np

from mmdemo.engines.local import pick_dtype
from mmdemo.engines.workers import TorchWorkers
from mmdemo.errors import UserError

log = logging.getLogger(__name__)


class WhisperTranscriber:
    """A transformers ``automatic-speech-recognition`` pipeline, loaded once, with a transcript cache.

    Earlier clips of a conversation are sent again on every turn; the cache (keyed by the samples'
    hash) keeps them from being transcribed again.
    """

    sampling_rate = 16000

    def __init__(
        self, model_id: str, device: str = "cpu", cache_size: int = 128, workers: TorchWorkers | None = None
    ) -> None:
        """``workers``: the threads that run PyTorch, shared with the chat model (see ``workers``)."""
        self.model_id = model_id
        self.device = device
        self.workers = workers or TorchWorkers()
        self._pipeline = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size

    def load(self) -> None:
        """Build the pipeline (blocking, idempotent, thread-safe)."""
        with self._lock:
            if self._pipeline is not None:
                return
            from transformers import pipeline

            started = time.perf_counter()
            try:
                self._pipeline = self.workers.run(
                    lambda: pipeline("automatic-speech-recognition", model=self.model_id, device=self.device,
                                     dtype=pick_dtype(self.device))
                )
            except Exception as exc:
                log.exception("loading ASR model %s failed", self.model_id)
                raise UserError(
                    f"The speech-recognition model '{self.model_id}' could not be loaded, so voice clips "
                    "cannot be used with this chat model. Check --asr-model."
                ) from exc
            log.info("loaded ASR %s in %.1f s", self.model_id, time.perf_counter() - started)

    def transcribe(self, samples: np.ndarray) -> str:
        """Text of a mono float32 clip at 16 kHz (clips over 30 s are read in 30 s chunks)."""
        key = hashlib.sha1(samples.tobytes()).hexdigest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        self.load()
        started = time.perf_counter()
        with self._lock:
            result = self.workers.run(
                lambda: self._pipeline({"raw": samples, "sampling_rate": self.sampling_rate}, chunk_length_s=30)
            )
        text = result["text"].strip()
        log.info("transcribed %.1f s of audio in %.2f s", samples.size / self.sampling_rate,
                 time.perf_counter() - started)
        self._cache[key] = text
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return text
