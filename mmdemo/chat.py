"""One chat turn, from the user's message to a stream of events; shared by the page and the API."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

import numpy as np
from PIL import Image

from mmdemo import media
from mmdemo.conversation import Budget, Prepared, build_messages
from mmdemo.engines.base import Engine, GenerationParams, GenerationStats
from mmdemo.errors import ContextOverflowError, UserError
from mmdemo.grounding import Box, parse_boxes, to_image
from mmdemo.tasks import match_label

log = logging.getLogger(__name__)
T = TypeVar("T")
HEARTBEAT_S = 0.25  # while a turn waits for long work (transcription, label scoring), it reports this often
# Threads that wait for that work on a turn's behalf, so the turn itself keeps reporting and notices a Stop
# or a disconnect; the model work itself still runs on the torch threads.
_HELPERS = ThreadPoolExecutor(64, thread_name_prefix="mmdemo-turn")


class Transcriber(Protocol):
    """Speech to text for models without an audio encoder."""

    def load(self) -> None:
        """Load the model (blocking, idempotent)."""

    def transcribe(self, samples: np.ndarray, cancel: threading.Event | None = None) -> str:
        """Text of a mono float32 clip at 16 kHz; raises ``Cancelled`` soon after ``cancel`` is set."""


@dataclass(frozen=True)
class ChatEvent:
    """``notice``: something the user should know; ``transcript``: what a clip said; ``text``: an answer delta;
    ``label`` / ``boxes``: a task's result, as text and as ``data``; ``progress``: still working (nothing new)."""

    kind: Literal["notice", "transcript", "text", "label", "boxes", "progress"]
    text: str
    title: str = ""
    data: object = None  # a task's parsed result: a Classification, or the boxes drawn (runner.Grounded)


@dataclass(frozen=True)
class Classification:
    """The label picked, and each label's probability among the labels when the engine gives log-probs."""

    label: str | None
    probabilities: dict[str, float] | None
    answer: str = ""  # the free-text answer, when the label was parsed from it


class ChatService:
    """Validates a turn, prepares the model's messages and streams the engine's answer."""

    def __init__(
        self, engine: Engine, transcriber: Transcriber | None, budget: Budget, max_new_tokens: int,
        make_engine: Callable[[str], Engine] | None = None,
    ) -> None:
        self.engine = engine
        self.transcriber = transcriber
        self.budget = budget
        self.max_new_tokens = max_new_tokens
        self.make_engine = make_engine  # builds an engine for another checkpoint (the model picker)
        self._active: set[threading.Event] = set()
        self._switching = threading.Lock()

    def switch(self, model_id: str, wait_s: float = 30.0) -> None:
        """Replace the chat model for everyone: answers in flight are stopped and the old model's memory is
        freed; the new model loads on the next :meth:`warm_up` or request. Raises ``UserError`` at once when
        ``model_id`` names no checkpoint (the old model then stays)."""
        if self.make_engine is None:
            raise UserError("This demo serves one fixed model; switching is turned off.")
        with self._switching:
            if model_id == self.engine.status().model and self.engine.status().state != "failed":
                return
            new = self.make_engine(model_id)
            for cancel in list(self._active):
                cancel.set()
            deadline = time.monotonic() + wait_s
            while self._active and time.monotonic() < deadline:
                time.sleep(0.05)
            old, self.engine = self.engine, new
            close = getattr(old, "close", None)
            if close is not None:
                close()
            log.info("switched the chat model to %s", model_id)

    def warm_up(self) -> None:
        """Load the chat model, then the speech model when the chat model cannot hear."""
        self.engine.load()
        if self.transcriber is not None and not self.engine.capabilities.audio:
            self.transcriber.load()

    def clamp(self, max_new_tokens: float, temperature: float, top_p: float) -> GenerationParams:
        """Generation parameters from UI/API values, within sane bounds."""
        return GenerationParams(
            max_new_tokens=int(min(max(1, max_new_tokens or 1), self.max_new_tokens)),
            temperature=float(min(max(0.0, temperature or 0.0), 2.0)),
            top_p=float(min(max(0.01, top_p or 1.0), 1.0)),
        )

    def respond(
        self,
        text: str,
        files: Sequence[str],
        history: Sequence[dict],
        system_prompt: str,
        params: GenerationParams,
        stats: GenerationStats | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[ChatEvent]:
        """Yield notices, transcripts and answer deltas. Setting ``cancel`` ends the answer early (the
        stream then finishes normally); closing the iterator stops generation too."""
        cancel = cancel or threading.Event()
        with self._running(cancel):
            yield from self._respond(text, files, history, system_prompt, params, stats, cancel)

    @contextlib.contextmanager
    def _running(self, cancel: threading.Event) -> Iterator[None]:
        """Model work for one request: a model switch stops it (through ``cancel``) before freeing the model."""
        self._active.add(cancel)
        try:
            yield
        finally:
            self._active.discard(cancel)

    def _respond(
        self, text: str, files: Sequence[str], history: Sequence[dict], system_prompt: str,
        params: GenerationParams, stats: GenerationStats | None, cancel: threading.Event,
    ) -> Iterator[ChatEvent]:
        if self.engine.status().state == "loading":
            yield ChatEvent("notice", "The model is still loading; your message will be answered once it is ready.")
        history = list(history)
        dropped = 0
        while True:
            prepared = yield from beside(
                functools.partial(self._messages, history, text, files, system_prompt, cancel), cancel)
            stream = self.engine.stream(prepared.messages, params, cancel, stats)
            try:
                first = next(stream, None)  # the context is checked before the first token
            except ContextOverflowError:
                if not history:
                    raise
                for _ in range(max(1, dropped)):  # 1, 1, 2, 4... turns: a long history fits in few tries
                    history, dropped = _drop_oldest_turn(history), dropped + 1
                continue
            break
        if dropped:
            log.info("dropped the %d oldest turn(s) to fit the context", dropped)
            yield ChatEvent("notice", f"The oldest {dropped} turn(s) were left out so the conversation fits the "
                                      "model's context.")
        for notice in prepared.notices:
            yield ChatEvent("notice", notice)
        for name, transcript in prepared.transcripts:
            yield ChatEvent("transcript", transcript or "(no speech heard)", title=f"🎙️ Transcript of {name}")
        try:
            if first is not None:
                yield ChatEvent("text", first)
            for delta in stream:
                yield ChatEvent("text", delta)
        finally:
            cancel.set()
            stream.close()

    def _messages(self, history: Sequence[dict], text: str, files: Sequence[str], system_prompt: str,
                  cancel: threading.Event) -> Prepared:
        """The model's messages for this turn, media within the budget, clips transcribed when it cannot hear
        (waits for the model first, or raises its load error)."""
        transcribe = (functools.partial(self.transcriber.transcribe, cancel=cancel)
                      if self.transcriber is not None else None)
        return build_messages(history, text, files, system_prompt=system_prompt,
                              capabilities=self.engine.capabilities, budget=self.budget, transcribe=transcribe)

    def classify(self, text: str, files: Sequence[str], history: Sequence[dict], system_prompt: str,
                 labels: list[str], cancel: threading.Event | None = None) -> Classification:
        """One label for the message: the most likely under the model (log-probabilities of each label as
        the whole answer, normalised over the labels), or, for engines without them, parsed from a greedy
        answer. Raises ``Cancelled`` soon after ``cancel`` is set (Stop, a model switch)."""
        cancel = cancel or threading.Event()
        with self._running(cancel):
            return self._classify(text, files, history, system_prompt, labels, cancel)

    def _classify(self, text: str, files: Sequence[str], history: Sequence[dict], system_prompt: str,
                  labels: list[str], cancel: threading.Event) -> Classification:
        prepared = self._messages(history, text, files, system_prompt, cancel)
        score = getattr(self.engine, "score", None)
        if score is None:
            answer = "".join(self.engine.stream(prepared.messages, GenerationParams(32, 0.0), cancel))
            return Classification(match_label(answer, labels), None, answer.strip())
        logps = np.array(score(prepared.messages, labels, cancel))
        probs = np.exp(logps - logps.max())
        probs /= probs.sum()
        return Classification(labels[int(probs.argmax())], {k: float(p) for k, p in zip(labels, probs, strict=True)})

    def boxes(self, answer: str, image_path: str) -> tuple[Image.Image, list[Box]]:
        """The image as the model saw it (normalised) and the answer's boxes in its pixels."""
        image = media.load_image(image_path, self.budget.max_image_pixels).data
        raw, frame = parse_boxes(answer)
        seen_size = getattr(self.engine, "seen_size", None)
        seen = seen_size(*image.size) if seen_size is not None else image.size
        return image, to_image(raw, frame, seen, image.size)


def beside(fn: Callable[[], T], cancel: threading.Event) -> Generator[ChatEvent, None, T]:
    """Run ``fn`` on a helper thread and return its result, yielding a ``progress`` event every
    ``HEARTBEAT_S`` meanwhile: the consumer (Gradio) gets the chance to notice a disconnect and close the
    turn, which sets ``cancel`` and so stops the work."""
    future = _HELPERS.submit(fn)
    try:
        while True:
            try:
                return future.result(timeout=HEARTBEAT_S)
            except FutureTimeout:
                yield ChatEvent("progress", "")
    except GeneratorExit:
        cancel.set()
        raise


def _drop_oldest_turn(history: list[dict]) -> list[dict]:
    """History without its first user message and everything up to the next user message."""
    rest = history[1:]
    while rest and rest[0].get("role") != "user":
        rest = rest[1:]
    return rest
