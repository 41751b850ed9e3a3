"""Speech recognition with a Whisper checkpoint, for chat models that have no audio encoder."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict

import numpy as np

from mmdemo.engines.lazy import LazyModel
from mmdemo.engines.local import pick_dtype
from mmdemo.engines.workers import TorchWorkers
from mmdemo.errors import UserError

log = logging.getLogger(__name__)


class WhisperTranscriber(LazyModel):
    """A transformers ``automatic-speech-recognition`` pipeline, loaded once, with a transcript cache.

    Earlier clips of a conversation are sent again on every turn; the cache (keyed by the samples'
    hash) keeps them from being transcribed again.
    """

    sampling_rate = 16000

    role = "speech-recognition"

    def __init__(
        self, model_id: str, device: str = "cpu", cache_size: int = 128, workers: TorchWorkers | None = None
    ) -> None:
        """``workers``: the threads that run PyTorch, shared with the chat model (see ``workers``)."""
        super().__init__(model_id, device, workers)
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size

    def _open(self) -> object:
        from transformers import pipeline

        return pipeline("automatic-speech-recognition", model=self.model_id, device=self.device,
                        dtype=pick_dtype(self.device))

    def _failed(self, exc: Exception) -> UserError:
        log.exception("loading ASR model %s failed", self.model_id)
        return UserError(
            f"The speech-recognition model '{self.model_id}' could not be loaded, so voice clips "
            "cannot be used with this chat model. Check --asr-model."
        )

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
                lambda: self._loaded({"raw": samples, "sampling_rate": self.sampling_rate}, chunk_length_s=30)
            )
        text = result["text"].strip()
        log.info("transcribed %.1f s of audio in %.2f s", samples.size / self.sampling_rate,
                 time.perf_counter() - started)
        self._cache[key] = text
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return text
