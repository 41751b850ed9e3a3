"""How generation reports back while it runs: a per-token watch (counts, times, cancels) and a streamer."""

from __future__ import annotations

import threading
import time

import torch
from transformers import StoppingCriteria, TextIteratorStreamer

from mmdemo.engines.base import GenerationStats

STREAM_INTERVAL_S = 0.04  # on CPU, text is handed to the consumer at most 25 times a second


class Watch(StoppingCriteria):
    """Called after every generated token: counts and times them, and stops once ``cancel`` is set."""

    def __init__(self, cancel: threading.Event, stats: GenerationStats, started: float) -> None:
        self.cancel = cancel
        self.stats = stats
        self.started = started

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> torch.BoolTensor:
        now = time.perf_counter() - self.started
        self.stats.generated_tokens += 1
        self.stats.last_token_s = now
        if self.stats.first_token_s is None:
            self.stats.first_token_s = now
        stop = self.cancel.is_set()
        self.stats.cancelled |= stop
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class BatchingStreamer(TextIteratorStreamer):
    """A ``TextIteratorStreamer`` that hands text over at most every ``interval`` seconds (the first piece
    at once, the rest joined; nothing lost). Each hand-over wakes the consuming thread, and on a small
    CPU a thread that wakes per token steals a core from the model's kernels: measured 17 vs 26 tok/s."""

    def __init__(self, tokenizer: object, interval: float) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.interval = interval
        self._pending: list[str] = []
        self._last = 0.0

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        """Buffer ``text``; hand the buffer over when the interval has passed or the stream ends (without the
        replacement characters an unfinished multi-byte character decodes to)."""
        self._pending.append(text)
        now = time.monotonic()
        if stream_end or now - self._last >= self.interval:
            self._last = now
            joined, self._pending = "".join(self._pending), []
            if stream_end:  # an answer cut at the token limit inside a character: drop its incomplete bytes
                joined = joined.rstrip("\ufffd")
            super().on_finalized_text(joined, stream_end)
