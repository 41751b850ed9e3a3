"""One turn, from a typed request to a stream of events; shared by the page and the API."""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
from PIL import Image

from mmdemo import media
from mmdemo.conversation import Prepared, build_messages
from mmdemo.engines.base import Engine, GenerationParams, GenerationStats
from mmdemo.engines.thinking import Splitter
from mmdemo.errors import Cancelled, ContextOverflowError, one_line
from mmdemo.grounding import Box, parse_boxes, to_image
from mmdemo.modalities import Budget
from mmdemo.models import ModelManager
from mmdemo.tasks import TASKS, Task, match_label
from mmdemo.turns import Turn

log = logging.getLogger(__name__)
T = TypeVar("T")
HEARTBEAT_S = 0.25  # while a turn waits for long work (transcription, label scoring), it reports this often
# Threads that wait for that work on a turn's behalf, so the turn itself keeps reporting and notices a Stop
# or a disconnect; the model work itself still runs on the torch threads.
_HELPERS = ThreadPoolExecutor(64, thread_name_prefix="mmdemo-turn")
PREFETCHED = 64  # sets of files remembered as encoded ahead (typing in the box asks again and again)


@dataclass(frozen=True)
class ChatEvent:
    """``notice``: something the user should know; ``transcript``: what a clip said; ``thinking``: a delta of
    the model's reasoning before its answer; ``text``: an answer delta; ``label`` / ``boxes``: a task's result,
    as text and as ``data``; ``speech``: the next chunk of the answer in the model's own voice, ``data`` =
    (sample rate, samples); ``progress``: still working (nothing new)."""

    kind: Literal["notice", "transcript", "thinking", "text", "label", "boxes", "speech", "progress"]
    text: str
    title: str = ""
    data: object = None  # a task's parsed result: a Classification, or the boxes drawn (runner.Grounded)


@dataclass(frozen=True)
class Classification:
    """The label picked, and each label's probability among the labels when the engine gives log-probs."""

    label: str | None
    probabilities: dict[str, float] | None
    answer: str = ""  # the free-text answer, when the label was parsed from it


@dataclass(frozen=True)
class Request:
    """One turn asked of the model: the new message, the conversation before it, the task (its prompt already
    composed into the message), the generation settings, the system prompt and, to classify, the labels."""

    message: Turn
    history: tuple[Turn, ...] = ()
    task: Task = TASKS["chat"]
    params: GenerationParams = field(default_factory=GenerationParams)
    system: str = ""
    labels: tuple[str, ...] = ()


class TurnHandle:
    """A running turn: iterate it for its events; it owns its statistics (readable live) and its cancel."""

    def __init__(self, events: Callable[[TurnHandle], Iterator[ChatEvent]],
                 cancel: threading.Event | None = None) -> None:
        """``cancel``: an event that stops the turn when set elsewhere (the page's Stop); default: its own."""
        self.stats = GenerationStats()
        self.cancel_event = cancel or threading.Event()
        self._events = events(self)

    def __iter__(self) -> Iterator[ChatEvent]:
        return self._events

    def cancel(self) -> None:
        """Stop the turn: the answer ends at the next token (or layer), and the stream finishes normally."""
        self.cancel_event.set()


class ChatService:
    """Prepares the model's messages for a request and streams, scores or grounds the answer."""

    def __init__(self, models: ModelManager, budget: Budget, max_new_tokens: int) -> None:
        self.models = models
        self.budget = budget
        self.max_new_tokens = max_new_tokens
        self._prefetched: OrderedDict[tuple[str, ...], None] = OrderedDict()  # the latest files encoded ahead
        self._prefetching = threading.Lock()

    def prefetch(self, files: Sequence[str], history: Sequence[Turn] = (), system_prompt: str = "") -> Future | None:
        """Have the model encode the media of a message that is still being written (attached, not sent), in
        the background and only while it is idle: the answer then starts without encoding them. ``history`` and
        ``system_prompt``: the conversation it will be sent in (a server that keeps prompts, like llama.cpp's,
        then reuses all of it). The job (done when they are encoded, or given up), or ``None`` when there is
        nothing to do."""
        files, engine = tuple(files), self.models.engine
        key = (files, len(history), system_prompt)
        with self._prefetching:
            if not files or key in self._prefetched or not engine.idle():  # (busy: asked again as the visitor types)
                return None
            self._prefetched[key] = None
            while len(self._prefetched) > PREFETCHED:
                self._prefetched.popitem(last=False)
        return _HELPERS.submit(self._prefetch, engine, key, tuple(history))

    def _prefetch(self, engine: Engine, key: tuple, history: tuple[Turn, ...]) -> None:
        files, _, system_prompt = key
        try:  # the conversation with the new message's media, as the request will carry them
            prepared = build_messages(history, Turn.user("", files), system_prompt=system_prompt,
                                      capabilities=engine.capabilities, budget=self.budget)
            job = engine.prefetch(prepared.messages)
            if job is None:
                raise Cancelled
            job.result()
        except Cancelled:  # a request came first: the next change of the message asks again
            with self._prefetching:
                self._prefetched.pop(key, None)
        except Exception as exc:  # a file the request itself will explain
            log.debug("nothing encoded ahead for %d file(s): %s", len(files), one_line(exc))

    def clamp(self, max_new_tokens: float, temperature: float, top_p: float, think: bool = False,
              speak: bool = False) -> GenerationParams:
        """Generation parameters from UI/API values, within sane bounds (``speak``: in the model's own voice)."""
        return GenerationParams(
            max_new_tokens=int(min(max(1, max_new_tokens or 1), self.max_new_tokens)),
            temperature=float(min(max(0.0, temperature or 0.0), 2.0)),
            top_p=float(min(max(0.01, top_p or 1.0), 1.0)),
            think=bool(think),
            speak=bool(speak),
        )

    def respond(self, request: Request, handle: TurnHandle) -> Iterator[ChatEvent]:
        """Yield notices, transcripts and answer deltas. ``handle.cancel()`` ends the answer early (the
        stream then finishes normally); closing the iterator stops generation too."""
        with self.models.track(handle.cancel_event):
            yield from self._respond(self.models.engine, request, handle)

    def _respond(self, engine: Engine, request: Request, handle: TurnHandle) -> Iterator[ChatEvent]:
        if engine.status().state == "loading":
            yield ChatEvent("notice", "The model is still loading; your message will be answered once it is ready.")
        history, dropped, cancel = list(request.history), 0, handle.cancel_event
        while True:
            prepared = yield from beside(functools.partial(self._messages, engine, request, history, cancel), cancel)
            stream = engine.stream(prepared.messages, request.params, cancel, handle.stats)
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
            yield ChatEvent("transcript", transcript or "(no speech heard)", title=f"Transcript of {name}")
        split, spoken = Splitter(), 0  # reasoning (between the canonical marks) apart from the answer
        try:
            for delta in itertools.chain([first] if first is not None else [], stream):
                for kind, text in split.feed(delta) if delta else [("progress", "")]:
                    yield ChatEvent(kind, text)  # type: ignore[arg-type]
                for clip in handle.stats.speech[spoken:]:  # the model's own voice, chunk by chunk
                    spoken += 1
                    yield ChatEvent("speech", "", data=clip)
            for kind, text in split.end():
                yield ChatEvent(kind, text)  # type: ignore[arg-type]
            for clip in handle.stats.speech[spoken:]:
                yield ChatEvent("speech", "", data=clip)
        finally:
            cancel.set()
            stream.close()

    def _messages(self, engine: Engine, request: Request, history: Sequence[Turn],
                  cancel: threading.Event) -> Prepared:
        """The model's messages for this turn, media within the budget, clips transcribed when it cannot hear
        (waits for the model first, or raises its load error)."""
        transcriber = self.models.transcriber
        transcribe = functools.partial(transcriber.transcribe, cancel=cancel) if transcriber is not None else None
        return build_messages(history, request.message, system_prompt=request.system,
                              capabilities=engine.capabilities, budget=self.budget, transcribe=transcribe)

    def classify(self, request: Request, cancel: threading.Event) -> Classification:
        """One of ``request.labels`` for the message: the most likely under the model (log-probabilities of
        each label as the whole answer, normalised over the labels), or, for engines without them, parsed from
        a greedy answer. Raises ``Cancelled`` soon after ``cancel`` is set (Stop, a model switch)."""
        labels = list(request.labels)
        with self.models.track(cancel):
            engine = self.models.engine
            prepared = self._messages(engine, request, request.history, cancel)
            if not engine.capabilities.logprobs:
                answer = "".join(engine.stream(prepared.messages, GenerationParams(32, 0.0), cancel))
                return Classification(match_label(answer, labels), None, answer.strip())
            logps = np.array(engine.score(prepared.messages, labels, cancel))
        probs = np.exp(logps - logps.max())
        probs /= probs.sum()
        return Classification(labels[int(probs.argmax())], {k: float(p) for k, p in zip(labels, probs, strict=True)})

    def boxes(self, answer: str, image_path: str) -> tuple[Image.Image, list[Box]]:
        """The image as the model saw it (normalised) and the answer's boxes in its pixels."""
        image = media.load_image(image_path, self.budget.max_image_pixels).data
        raw, frame = parse_boxes(answer, self.models.engine.capabilities.box_frame)
        return image, to_image(raw, frame, self.models.engine.seen_size(*image.size), image.size)


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


def _drop_oldest_turn(history: list[Turn]) -> list[Turn]:
    """History without its first user message and everything up to the next user message."""
    rest = history[1:]
    while rest and rest[0].role != "user":
        rest = rest[1:]
    return rest
