"""Text to speech: a transformers text-to-speech model reads answers aloud, sentence by sentence."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from concurrent.futures import Future

import numpy as np
import soundfile as sf

from mmdemo.engines.lazy import LazyModel

log = logging.getLogger(__name__)

# A sentence ends at . ! ? … followed by a space or the end of a line, or at a CJK full stop.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])|\n+")
MAX_SENTENCE_CHARS = 400  # longer runs without a full stop are cut at a space


def split_sentences(text: str) -> tuple[list[str], str]:
    """Complete sentences at the start of ``text`` and the unfinished rest."""
    pieces = _SENTENCE_END.split(text)
    done, rest = [p.strip() for p in pieces[:-1] if p.strip()], pieces[-1]
    while len(rest) > MAX_SENTENCE_CHARS:
        cut = rest.rfind(" ", 0, MAX_SENTENCE_CHARS)
        cut = cut if cut > 0 else MAX_SENTENCE_CHARS
        done.append(rest[:cut].strip())
        rest = rest[cut:].lstrip()
    return done, rest


def wav_bytes(samples: np.ndarray, sampling_rate: int) -> bytes:
    """A mono float clip as 16-bit WAV bytes."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sampling_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class Speaker(LazyModel):
    """A text-to-speech checkpoint (VITS/MMS, SpeechT5 without speaker input, Bark, ...) loaded once through
    the ``text-to-speech`` pipeline; synthesis runs on the torch worker threads."""

    role = "voice"

    def _open(self) -> object:
        from transformers import pipeline

        return pipeline("text-to-speech", self.model_id, device=self.device)

    def synthesize(self, text: str) -> tuple[int, np.ndarray]:
        """``(sampling rate, mono float32 samples)`` of ``text`` read aloud (empty when it has nothing the
        voice can pronounce, e.g. a script it was not trained on)."""
        self.load()

        def run() -> dict:
            return self._loaded(text)

        try:
            out = self.workers.run(run)
        except (RuntimeError, ValueError, IndexError) as exc:  # nothing pronounceable left after normalising
            log.info("voice skipped %r: %s", text[:40], exc)
            return self._loaded.sampling_rate, np.zeros(0, np.float32)
        return int(out["sampling_rate"]), np.asarray(out["audio"], np.float32).reshape(-1)


class SpokenAnswer:
    """Speech for an answer while it streams: each finished sentence is queued for synthesis at once, and
    its audio comes back in order as soon as it is ready."""

    def __init__(self, speaker: Speaker) -> None:
        self.speaker = speaker
        self._text = ""
        self._pending: list[Future[tuple[int, np.ndarray]]] = []
        self.clips: list[tuple[int, np.ndarray]] = []

    def feed(self, delta: str) -> None:
        """Add answer text; queue every sentence it completes."""
        sentences, self._text = split_sentences(self._text + delta)
        self._pending += [self.speaker.workers.submit(self.speaker.synthesize, s) for s in sentences]

    def ready(self) -> Iterator[tuple[int, np.ndarray]]:
        """Clips finished so far, in sentence order (non-blocking)."""
        while self._pending and self._pending[0].done():
            yield self._take()

    def finish(self) -> Iterator[tuple[int, np.ndarray]]:
        """Queue the last, unfinished sentence and wait for every clip still to come."""
        if self._text.strip():
            self._pending.append(self.speaker.workers.submit(self.speaker.synthesize, self._text.strip()))
            self._text = ""
        while self._pending:
            yield self._take()

    def cancel(self) -> None:
        """Drop the sentences not yet synthesised."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()

    def _take(self) -> tuple[int, np.ndarray]:
        clip = self._pending.pop(0).result()
        self.clips.append(clip)
        return clip

    def whole(self) -> tuple[int, np.ndarray] | None:
        """Every clip so far joined into one, or ``None`` when nothing was spoken."""
        spoken = [c for c in self.clips if c[1].size]
        if not spoken:
            return None
        return spoken[0][0], np.concatenate([c[1] for c in spoken])
