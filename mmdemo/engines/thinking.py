"""Reasoning before the answer: how a chat template marks it, and one canonical form for everything above.

Models mark their reasoning with their own tokens: Qwen3/Qwen3.5 with ``<think>`` … ``</think>``, Gemma 4 with
``<|channel>thought`` … ``<channel|>`` (special tokens a decoder would drop). An engine's text stream always
carries reasoning between :data:`OPEN` and :data:`CLOSE`; :class:`Splitter` separates it from the answer.
Whether the model may think is the template's ``enable_thinking`` switch, found by reading the template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"  # the canonical marks in an engine's text stream


@dataclass(frozen=True)
class ThinkingFormat:
    """How one chat template marks reasoning: its open and close tokens, the open mark as the model writes it
    (with the channel name Gemma writes after its channel token), and whether it has an ``enable_thinking``
    switch."""

    open_token: str
    close: str
    open: str
    switch: bool

    def canonical(self, deltas: Iterable[str]) -> Iterator[str]:
        """``deltas`` with this template's marks replaced by :data:`OPEN` / :data:`CLOSE`, also a mark cut
        across two deltas (the possible start of one is held back until the next)."""
        if (self.open, self.close) == (OPEN, CLOSE):  # the template's marks are the canonical ones
            yield from deltas
            return
        held = ""
        for delta in deltas:
            text = (held + delta).replace(self.open, OPEN).replace(self.close, CLOSE)
            keep = max(_partial_mark(text, self.open), _partial_mark(text, self.close))
            text, held = text[: len(text) - keep], text[len(text) - keep:]
            if text:
                yield text
        if held:
            yield held

    def opened_by(self, prompt_tail: str) -> bool:
        """Whether a prompt ending in ``prompt_tail`` leaves reasoning open (the model thinks first)."""
        tail = prompt_tail.rstrip()
        return tail.rfind(self.open.rstrip()) > tail.rfind(self.close)


# (open token, close token, the open mark as the model writes it: Gemma names its channel)
_FORMATS = (("<think>", "</think>", "<think>"), ("<|channel>", "<channel|>", "<|channel>thought"))


def detect(chat_template: str | None, has_token: Callable[[str], bool]) -> ThinkingFormat | None:
    """The reasoning format of a template whose tokenizer has its marks (``has_token``), or ``None`` (a model
    that does not think)."""
    if not chat_template:
        return None
    for open_token, close_token, open_mark in _FORMATS:
        if has_token(open_token) and has_token(close_token) and close_token in chat_template:
            switch = re.search(r"\benable_thinking\b", chat_template) is not None
            return ThinkingFormat(open_token, close_token, open_mark, switch)
    return None


class Splitter:
    """Splits a canonical text stream into ``("thinking", text)`` and ``("text", text)`` pieces, marks
    removed, also when a mark arrives cut across two deltas."""

    def __init__(self, thinking: bool = False) -> None:
        """``thinking``: the stream starts inside reasoning (the prompt opened it)."""
        self.thinking = thinking
        self._held = ""
        self._fresh = True  # right after a mark (or at the start): the newlines templates put there are dropped

    def feed(self, delta: str) -> Iterator[tuple[str, str]]:
        """The pieces ``delta`` completes (a possible start of a mark is held back until the next delta)."""
        text, self._held = self._held + delta, ""
        while text:
            mark = CLOSE if self.thinking else OPEN
            at = text.find(mark)
            if at < 0:
                keep = _partial_mark(text, mark)
                text, self._held = text[: len(text) - keep], text[len(text) - keep:]
                yield from self._piece(text)
                return
            yield from self._piece(text[:at])
            self.thinking, self._fresh = not self.thinking, True
            text = text[at + len(mark):]

    def end(self) -> Iterator[tuple[str, str]]:
        """What is still held back when the stream ends."""
        held, self._held = self._held, ""
        yield from self._piece(held)

    def _piece(self, text: str) -> Iterator[tuple[str, str]]:
        if self._fresh:
            text = text.lstrip("\n")
            self._fresh = not text
        if text:
            yield ("thinking" if self.thinking else "text"), text


def _partial_mark(text: str, mark: str) -> int:
    """Length of the longest end of ``text`` that begins ``mark``."""
    for size in range(min(len(mark) - 1, len(text)), 0, -1):
        if mark.startswith(text[-size:]):
            return size
    return 0
