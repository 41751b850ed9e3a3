"""The chat messages of one answer while it streams: the reasoning (folded once the answer starts), the answer,
and the speed strip under them."""

from __future__ import annotations

from mmdemo.engines.base import GenerationStats
from mmdemo.views import speed_strip, thinking_title


class LiveAnswer:
    """Appends one answer's messages to the chat ``shown`` as its pieces arrive."""

    def __init__(self, shown: list[dict], stats: GenerationStats, queue_wait: float, lang: str) -> None:
        self.shown, self.stats, self.queue_wait, self.lang = shown, stats, queue_wait, lang
        self.thought: dict | None = None
        self.answer: dict | None = None
        self._strip: dict | None = None

    @property
    def started(self) -> bool:
        """Whether anything (reasoning or answer) came back."""
        return self._strip is not None

    def add(self, kind: str, text: str) -> None:
        """A delta of the reasoning (``kind`` "thinking") or of the answer ("text")."""
        if self._strip is None:
            self._strip = speed_strip(self.stats, self.queue_wait, False, self.lang)
            self.shown.append(self._strip)
        if kind == "thinking":
            if self.thought is None:
                self.thought = {"role": "assistant", "content": "", "metadata": thinking_title(self.stats, False,
                                                                                               self.lang)}
                self.shown.insert(self._at(self._strip), self.thought)
            self.thought["content"] += text
            return
        if self.answer is None:
            self.answer = {"role": "assistant", "content": ""}
            self.shown.insert(self._at(self._strip), self.answer)
            self._fold()
        self.answer["content"] += text

    def refresh(self, done: bool = False) -> None:
        """The speed strip with the figures so far (final when ``done``)."""
        if self._strip is not None:
            index = self._at(self._strip)
            self._strip = self.shown[index] = speed_strip(self.stats, self.queue_wait, done, self.lang)
        if done:
            self._fold()

    def _at(self, message: dict) -> int:
        return next(i for i, shown in enumerate(self.shown) if shown is message)

    def _fold(self) -> None:
        if self.thought is not None:
            self.thought["content"] = self.thought["content"].strip()
            self.thought["metadata"] = thinking_title(self.stats, True, self.lang)
