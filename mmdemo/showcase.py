"""Showcase mode: the examples' answers computed once at start, so a presenter's first click answers at once.

A cached answer is only replayed for exactly what was computed: the same text and files (by content),
no earlier turns, the default system prompt and generation settings. Anything else runs live.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from mmdemo.chat import ChatEvent, ChatService, Request, TurnHandle
from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.turns import Turn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedAnswer:
    """What the model answered to one example at start, with the speed it answered at."""

    events: tuple[ChatEvent, ...]
    stats: GenerationStats


def _key(message: Turn, system: str, params: GenerationParams) -> str:
    digest = hashlib.sha1()
    for part in (message.text, system, repr(params)):
        digest.update(part.encode() + b"\0")
    for file in message.files:
        digest.update(hashlib.sha1(Path(file.path).read_bytes()).digest())
    return digest.hexdigest()


def replay(answer: CachedAnswer, stats: GenerationStats) -> tuple[ChatEvent, ...]:
    """The cached events; ``stats`` (the live object the page shows) gets the original speed figures."""
    for field in fields(GenerationStats):
        setattr(stats, field.name, getattr(answer.stats, field.name))
    stats.replayed = True
    return answer.events


class ExampleCache:
    """Answers to the page's examples, filled in a background thread once the model is ready."""

    def __init__(self, service: ChatService, examples: Sequence[dict], system: str, params: GenerationParams) -> None:
        self.service = service
        self.examples = list(examples)
        self.system = system
        self.params = params
        self.state: Literal["waiting", "filling", "ready"] = "waiting"
        self.done = 0
        self._answers: dict[str, CachedAnswer] = {}

    def fill(self) -> None:
        """Answer every example (blocking; call after the model has loaded). Failures are logged and skipped."""
        self.state = "filling"
        for example in self.examples:
            message = Turn.user(example.get("text") or "", list(example.get("files") or []))
            request = Request(message, params=self.params, system=self.system)
            handle = TurnHandle(lambda h, r=request: self.service.respond(r, h))
            try:
                events = tuple(e for e in handle if e.kind != "progress")
            except Exception:  # the example will simply be answered live
                log.exception("showcase: example %r not cached", message.text)
                continue
            self._answers[_key(message, self.system, self.params)] = CachedAnswer(events, handle.stats)
            self.done += 1
        self.state = "ready"
        log.info("showcase: %d of %d example answers cached", self.done, len(self.examples))

    def lookup(self, request: Request) -> CachedAnswer | None:
        """The cached answer for exactly this first turn, if there is one."""
        if request.history or not self._answers or request.system != self.system or request.params != self.params:
            return None
        try:
            return self._answers.get(_key(request.message, request.system, request.params))
        except OSError:  # an upload that vanished: answer live
            return None
