"""The small interface every engine implements, in the spirit of ``llm``'s model plugins."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class Capabilities:
    """What a loaded model takes as input."""

    image: bool
    audio: bool
    audio_sampling_rate: int = 16000
    max_audio_seconds: float = 30.0
    context_tokens: int | None = None
    parts: tuple[tuple[str, int], ...] = ()  # (role, parameters), e.g. ("vision encoder", 93_000_000)


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings for one answer; ``temperature == 0`` means greedy decoding."""

    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.9


@dataclass
class GenerationStats:
    """Filled in by an engine while it answers (readable live, from another thread); times are seconds
    from the start of the request."""

    prompt_tokens: int = 0
    image_tokens: int = 0
    audio_tokens: int = 0
    generated_tokens: int = 0
    first_token_s: float | None = None
    last_token_s: float = 0.0
    total_s: float = 0.0  # set when generation has ended
    cancelled: bool = False
    replayed: bool = False  # a showcase answer computed at start, shown again
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage, in the order they ran

    def finish_stages(self) -> None:
        """Complete ``stages`` once generation has ended: the prefill is the time to first token not spent
        preparing or in the encoders; the decode is everything after the first token."""
        if self.first_token_s is None:
            return
        self.stages["prefill"] = max(0.0, self.first_token_s - sum(self.stages.values()))
        self.stages["decode"] = max(0.0, self.total_s - self.first_token_s)

    @property
    def text_tokens(self) -> int:
        """Prompt tokens that are neither image nor audio placeholders."""
        return self.prompt_tokens - self.image_tokens - self.audio_tokens

    @property
    def tokens_per_s(self) -> float | None:
        """Decode speed after the first token, so far."""
        decode_s = self.last_token_s - (self.first_token_s or 0.0)
        return (self.generated_tokens - 1) / decode_s if self.generated_tokens > 1 and decode_s > 0 else None


@dataclass(frozen=True)
class EngineStatus:
    """Where the engine stands, for the status line and health checks."""

    state: Literal["loading", "ready", "degraded", "failed"]  # degraded: loaded, but its test answer failed
    model: str
    device: str = ""
    detail: str = ""


class EngineBase:
    """Bookkeeping shared by the engines: ``status()`` and ``capabilities`` (which loads first).
    Subclasses set ``_status`` and ``_capabilities`` and implement ``load()`` and ``stream()``."""

    _status: EngineStatus
    _capabilities: Capabilities | None = None

    def load(self) -> None:
        """Load the model or reach the server; set ``_capabilities`` or raise ``UserError``."""
        raise NotImplementedError

    def status(self) -> EngineStatus:
        """Current state, for the status line and ``/health``; never blocks."""
        return self._status

    @property
    def capabilities(self) -> Capabilities:
        """Inputs the model takes; loads it first if needed."""
        self.load()
        assert self._capabilities is not None
        return self._capabilities


class Engine(Protocol):
    """A model that turns chat messages into a stream of text.

    ``messages`` use the Hugging Face chat format: ``{"role", "content": [parts]}`` where a part is
    ``{"type": "text", "text": str}``, ``{"type": "image", "image": PIL.Image}`` or
    ``{"type": "audio", "audio": numpy float32 array at capabilities.audio_sampling_rate}``.
    """

    def load(self) -> None:
        """Load the model (blocking, idempotent, thread-safe); raise ``UserError`` when it cannot."""

    def status(self) -> EngineStatus:
        """Current loading state; never blocks."""

    @property
    def capabilities(self) -> Capabilities:
        """Inputs the model takes; loads the model first if needed."""

    def stream(
        self, messages: list[dict], params: GenerationParams, cancel: threading.Event,
        stats: GenerationStats | None = None,
    ) -> Iterator[str]:
        """Yield the answer in text deltas; stop generating soon after ``cancel`` is set; fill ``stats``."""
