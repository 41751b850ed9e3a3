"""Speech recognition with a Whisper checkpoint, for chat models that have no audio encoder.

Every transcription is bounded: greedy decoding (beams only when configured), new tokens in proportion
to the clip's length, a time limit per 30 s window, each window its own job on the torch thread (other
requests run between windows), and a stop at the next decoder layer once its request is stopped.
Whisper with a published ``generation_config`` (``max_length`` 448, five beams in the pipeline) otherwise
loops on music, noise or a random-weight model until 448 tokens per beam. Silent windows are not read at all:
Whisper invents text for silence ("Thank you for watching."), and a long pause would cost a full window.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from mmdemo.engines.device import pick_dtype
from mmdemo.engines.lazy import LazyModel
from mmdemo.engines.workers import TorchWorkers
from mmdemo.errors import Cancelled, UserError

log = logging.getLogger(__name__)

WINDOW_S = 30  # Whisper reads 30 s at a time; longer clips are cut into windows
TOKENS_PER_S = 6  # fast speech is ~4 tokens a second; more than this is a decoding loop
MIN_TOKENS = 16
MAX_TOKENS = 440  # Whisper's decoder holds 448 positions, a few of them the prompt's
TIME_PER_AUDIO_S = 0.25  # decoding time allowed per second of audio (plus TIME_BASE_S), per window
TIME_BASE_S = 2.0
SILENCE_RMS = 10 ** (-55 / 20)  # -55 dBFS: below a quiet room's hum in a recording, far below any speech


def windows(samples: np.ndarray, rate: int) -> list[np.ndarray]:
    """The clip cut into windows of at most ``WINDOW_S``, each cut at the quietest 100 ms of its last fifth
    (a pause between words, where there is one)."""
    size, frame, parts, start = WINDOW_S * rate, rate // 10, [], 0
    while samples.size - start > size:
        tail = samples[start + size * 4 // 5: start + size]
        cut = start + size * 4 // 5 + int(_power(tail, frame).argmin()) * frame
        parts.append(samples[start:cut])
        start = cut
    return [*parts, samples[start:]]


def silent(samples: np.ndarray, rate: int) -> bool:
    """Whether no 100 ms of ``samples`` is louder than ``SILENCE_RMS`` (digital silence, a muted microphone)."""
    frame = max(1, min(rate // 10, samples.size))
    return bool(np.sqrt(_power(samples.astype(np.float64), frame)).max(initial=0.0) < SILENCE_RMS)


def _power(samples: np.ndarray, frame: int) -> np.ndarray:
    """The mean square of each whole ``frame`` samples (a partial frame at the end is left out)."""
    return np.square(samples[: samples.size // frame * frame]).reshape(-1, frame).mean(axis=1)


def token_limit(seconds: float) -> int:
    """New tokens allowed for one window of ``seconds`` of audio."""
    return min(MAX_TOKENS, MIN_TOKENS + math.ceil(TOKENS_PER_S * min(seconds, WINDOW_S)))


class WhisperTranscriber(LazyModel):
    """A transformers ``automatic-speech-recognition`` pipeline, loaded once, with a transcript cache.

    Earlier clips of a conversation are sent again on every turn; the cache (keyed by the samples'
    hash) keeps them from being transcribed again, and requests for a clip that is being transcribed
    wait for that transcription instead of starting another.
    """

    sampling_rate = 16000

    role = "speech-recognition"

    def __init__(
        self, model_id: str, device: str = "cpu", cache_size: int = 128, workers: TorchWorkers | None = None,
        beams: int = 1,
    ) -> None:
        """``workers``: the threads that run PyTorch, shared with the chat model (see ``workers``);
        ``beams``: beam-search width (1: greedy, the fastest and the default)."""
        super().__init__(model_id, device, workers)
        self.beams = max(1, beams)
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size
        self._guard = threading.Lock()  # the cache and the clips in flight
        self._in_flight: dict[str, threading.Lock] = {}

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

    def transcribe(self, samples: np.ndarray, cancel: threading.Event | None = None) -> str:
        """Text of a mono float32 clip at 16 kHz (clips over 30 s are read in 30 s windows). Raises
        ``Cancelled`` soon after ``cancel`` is set."""
        key = hashlib.sha1(samples.tobytes()).hexdigest()
        with self._claim(key, cancel):
            with self._guard:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
            self.load()
            text = self._run(samples, cancel)
            with self._guard:
                self._cache[key] = text
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return text

    def _run(self, samples: np.ndarray, cancel: threading.Event | None) -> str:
        """Each window is its own job on the torch thread, so another visitor's request waits for at most one
        window, not the whole clip."""
        seconds = samples.size / self.sampling_rate
        started = time.perf_counter()
        log.info("transcribing %.1f s of audio", seconds)
        texts, parts = [], windows(samples, self.sampling_rate)
        speech = [part for part in parts if not silent(part, self.sampling_rate)]
        try:
            for window in speech:
                texts.append(self.workers.run(self._window, window, cancel=cancel))
        except Cancelled:
            log.info("transcription of %.1f s of audio stopped after %.2f s", seconds, time.perf_counter() - started)
            raise
        skipped = f" ({len(parts) - len(speech)} of {len(parts)} windows silent)" if len(speech) < len(parts) else ""
        log.info("transcribed %.1f s of audio in %.2f s%s", seconds, time.perf_counter() - started, skipped)
        return " ".join(t for t in texts if t)

    def _window(self, samples: np.ndarray) -> str:
        seconds = samples.size / self.sampling_rate
        limits = {"num_beams": self.beams, "max_new_tokens": token_limit(seconds),
                  "max_time": TIME_BASE_S + TIME_PER_AUDIO_S * seconds}
        result = self._loaded({"raw": samples, "sampling_rate": self.sampling_rate}, generate_kwargs=limits)
        return result["text"].strip()

    @contextlib.contextmanager
    def _claim(self, key: str, cancel: threading.Event | None) -> Iterator[None]:
        """Hold the right to transcribe the clip ``key``: one request at a time per clip; the others wait
        (and stop waiting when their own request is stopped), then find its text in the cache."""
        with self._guard:
            lock = self._in_flight.setdefault(key, threading.Lock())
        while not lock.acquire(timeout=0.05):
            if cancel is not None and cancel.is_set():
                raise Cancelled
        try:
            yield
        finally:
            with self._guard:
                lock.release()
                if self._in_flight.get(key) is lock and not lock.locked():
                    del self._in_flight[key]
