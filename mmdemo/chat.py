"""One chat turn, from the user's message to a stream of events; shared by the page and the API."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from mmdemo.conversation import Budget, build_messages
from mmdemo.engines.base import Engine, GenerationParams, GenerationStats
from mmdemo.errors import ContextOverflowError

log = logging.getLogger(__name__)


class Transcriber(Protocol):
    """Speech to text for models without an audio encoder."""

    def load(self) -> None:
        """Load the model (blocking, idempotent)."""

    def transcribe(self, samples: np.ndarray) -> str:
        """Text of a mono float32 clip at 16 kHz."""


@dataclass(frozen=True)
class ChatEvent:
    """``notice``: something the user should know; ``transcript``: what a clip said; ``text``: an answer delta."""

    kind: Literal["notice", "transcript", "text"]
    text: str
    title: str = ""


class ChatService:
    """Validates a turn, prepares the model's messages and streams the engine's answer."""

    def __init__(
        self, engine: Engine, transcriber: Transcriber | None, budget: Budget, max_new_tokens: int
    ) -> None:
        self.engine = engine
        self.transcriber = transcriber
        self.budget = budget
        self.max_new_tokens = max_new_tokens

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
        if self.engine.status().state == "loading":
            yield ChatEvent("notice", "The model is still loading; your message will be answered once it is ready.")
        capabilities = self.engine.capabilities  # waits for the model, or raises its load error
        transcribe = self.transcriber.transcribe if self.transcriber is not None else None
        history = list(history)
        dropped = 0
        while True:
            prepared = build_messages(
                history, text, files, system_prompt=system_prompt, capabilities=capabilities, budget=self.budget,
                transcribe=transcribe,
            )
            stream = self.engine.stream(prepared.messages, params, cancel, stats)
            try:
                first = next(stream, None)  # the context is checked before the first token
            except ContextOverflowError:
                if not history:
                    raise
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


def _drop_oldest_turn(history: list[dict]) -> list[dict]:
    """History without its first user message and everything up to the next user message."""
    rest = history[1:]
    while rest and rest[0].get("role") != "user":
        rest = rest[1:]
    return rest
