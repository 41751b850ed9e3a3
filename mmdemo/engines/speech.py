"""Text to speech: a transformers text-to-speech model reads answers aloud, sentence by sentence."""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import numpy as np
import soundfile as sf

from mmdemo.engines.lazy import LazyModel
from mmdemo.engines.workers import TorchWorkers
from mmdemo.errors import UserError

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


LANGUAGES = {"en": "English", "zh": "Chinese"}
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def language_of(text: str) -> str:
    """``zh`` for text written mostly in Chinese characters, else ``en``."""
    cjk = len(_CJK.findall(text))
    latin = sum(c.isascii() and c.isalpha() for c in text)
    return "zh" if cjk > latin else "en"


def numbers_as_words(text: str, language: str) -> str:
    """Digits spelled out ("1987" → "one thousand, nine hundred and eighty-seven"): a voice trained on
    letters drops digits it has no symbol for."""
    from num2words import num2words

    def spell(match: re.Match) -> str:
        number = match.group().replace(",", "")
        try:
            words = num2words(float(number) if "." in number else int(number), lang=language)
        except (NotImplementedError, OverflowError, ValueError):
            return match.group()
        before, after = text[match.start() - 1: match.start()], text[match.end(): match.end() + 1]
        return (" " if before.isalnum() else "") + words + (" " if after.isalnum() else "")

    return _NUMBER.sub(spell, text)


class Unsayable(UserError):
    """The text has nothing the voice can pronounce (another script, only symbols)."""


class Speaker(LazyModel):
    """A text-to-speech checkpoint (VITS/MMS, SpeechT5 without speaker input, Bark, ...) loaded once through
    the ``text-to-speech`` pipeline; synthesis runs on the torch worker threads. ``language`` is what it reads."""

    role = "voice"

    def __init__(self, model_id: str, device: str = "cpu", workers: TorchWorkers | None = None,
                 language: str = "en") -> None:
        super().__init__(model_id, device, workers)
        self.language = language

    def _open(self) -> object:
        from transformers import pipeline

        return pipeline("text-to-speech", self.model_id, device=self.device)

    def synthesize(self, text: str, cancel: threading.Event | None = None) -> tuple[int, np.ndarray]:
        """``(sampling rate, mono float32 samples)`` of ``text`` read aloud; ``Unsayable`` when it holds nothing
        this voice can pronounce (never an empty clip)."""
        self.load()
        said = self._sayable(numbers_as_words(text, self.language))
        if not said:
            raise Unsayable(_not_read(text, self.language))

        def run() -> dict:
            return self._loaded(said)

        try:
            out = self.workers.run(run, cancel=cancel)
        except (RuntimeError, ValueError, IndexError) as exc:  # nothing pronounceable left after normalising
            log.info("voice skipped %r: %s", text[:40], exc)
            raise Unsayable(_not_read(text, self.language)) from exc
        samples = np.asarray(out["audio"], np.float32).reshape(-1)
        if not samples.size:
            raise Unsayable(_not_read(text, self.language))
        return int(out["sampling_rate"]), samples

    def _sayable(self, text: str) -> str:
        """``text`` if this voice can read most of its letters ('' if not). Only character-level voices
        (VITS/MMS) can be checked: their vocabulary is their alphabet."""
        vocab = self._loaded.tokenizer.get_vocab()
        letters = [c for c in text.lower() if c.isalnum()]
        if not letters:
            return ""
        if sum(len(token) == 1 for token in vocab) < 0.9 * len(vocab):  # not a character-level voice
            return text
        known = sum(c in vocab for c in letters)
        return text if known >= 0.5 * len(letters) else ""


def _not_read(text: str, language: str) -> str:
    short = text if len(text) <= 40 else text[:39] + "…"
    return f"The voice reads {LANGUAGES.get(language, language)}; this sentence was not read: “{short}”"


class Voices:
    """The voices that read answers, one per language (the first is the default): each sentence is read by
    the voice of its language, and skipped with a notice when there is none."""

    def __init__(self, voices: dict[str, Speaker]) -> None:
        self.voices = voices
        self.default = next(iter(voices.values()))
        self.workers = self.default.workers

    def load(self) -> None:
        """Load every voice (raises ``UserError`` when one cannot be loaded)."""
        for voice in self.voices.values():
            voice.load()

    @property
    def unavailable(self) -> str | None:
        """Why the default voice cannot read now (it could not be loaded), or ``None``."""
        return self.default.unavailable

    def synthesize(self, text: str, cancel: threading.Event | None = None) -> tuple[int, np.ndarray]:
        """``text`` read by the voice of its language; ``Unsayable`` when no voice reads it."""
        language = language_of(text)
        voice = self.voices.get(language)
        if voice is None and language == "zh":
            raise Unsayable(_not_read(text, self.default.language))
        return (voice or self.default).synthesize(text, cancel)


class SpokenAnswer:
    """Speech for an answer while it streams: each finished sentence is queued for synthesis at once, and
    its audio comes back in order as soon as it is ready. Sentences no voice can read are skipped; why is
    in ``notes``."""

    def __init__(self, voices: Voices | Speaker) -> None:
        self.voices = voices
        self._text = ""
        self._pending: list[Future[tuple[int, np.ndarray]]] = []
        self._cancel = threading.Event()
        self.clips: list[tuple[int, np.ndarray]] = []
        self.notes: list[str] = []

    def feed(self, delta: str) -> None:
        """Add answer text; queue every sentence it completes."""
        sentences, self._text = split_sentences(self._text + delta)
        self._pending += [self._queue(s) for s in sentences]

    def ready(self) -> Iterator[tuple[int, np.ndarray]]:
        """Clips finished so far, in sentence order (non-blocking; a skipped sentence gives none)."""
        while self._pending and self._pending[0].done():
            yield from self._take()

    def finish(self) -> Iterator[tuple[int, np.ndarray]]:
        """Queue the last, unfinished sentence and wait for every clip still to come."""
        if self._text.strip():
            self._pending.append(self._queue(self._text.strip()))
            self._text = ""
        while self._pending:
            yield from self._take()

    def cancel(self) -> None:
        """Drop the sentences not yet synthesised and stop the one being read."""
        self._cancel.set()
        for future in self._pending:
            future.cancel()
        self._pending.clear()

    def _queue(self, sentence: str) -> Future[tuple[int, np.ndarray]]:
        return self.voices.workers.submit(self.voices.synthesize, sentence, self._cancel, cancel=self._cancel)

    def _take(self) -> Iterator[tuple[int, np.ndarray]]:
        try:
            clip = self._pending.pop(0).result()
        except Unsayable as exc:
            self.notes.append(str(exc))
            return
        self.clips.append(clip)
        yield clip

    def whole(self) -> tuple[int, np.ndarray] | None:
        """Every clip so far joined into one, or ``None`` when nothing was spoken."""
        if not self.clips:
            return None
        return self.clips[0][0], np.concatenate([c[1] for c in self.clips])
