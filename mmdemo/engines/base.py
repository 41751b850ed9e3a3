"""The one contract every engine implements, in the spirit of ``llm``'s model plugins: what a model can do is
data (:class:`Capabilities`), and everything optional has a default in :class:`Engine`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal

from mmdemo.errors import ContextOverflowError, UserError


@dataclass(frozen=True)
class Capabilities:
    """What a loaded model takes and gives: a flag per modality it reads natively (the names of
    ``modalities.MODALITIES``), whether it gives log-probabilities (label scoring), its limits and parts."""

    image: bool
    audio: bool
    video: bool = False
    logprobs: bool = False
    audio_sampling_rate: int = 16000
    max_audio_seconds: float = 30.0
    context_tokens: int | None = None
    thinking: bool = False  # its template has a switch to think before answering (GenerationParams.think)
    speech: bool = False  # it reads its answers aloud in its own voice (GenerationParams.speak)
    box_frame: str = "pixels"  # the frame of the JSON boxes it writes: "pixels" (of the image it saw) or "norm1000"
    parts: tuple[tuple[str, int], ...] = ()  # (role, parameters), e.g. ("vision encoder", 93_000_000)


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings for one answer; ``temperature == 0`` means greedy decoding."""

    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.9
    think: bool = False  # reason before answering, where the model's template has the switch
    speak: bool = False  # read the answer aloud in the model's own voice, where it has one (Capabilities.speech)

    def sampling(self) -> dict:
        """The sampling arguments of transformers' ``generate``: greedy, or sampled with temperature and top-p."""
        if self.temperature > 0:
            return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}
        return {"do_sample": False}


@dataclass
class GenerationStats:
    """Filled in by an engine while it answers (readable live, from another thread); times are seconds
    from the start of the request."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # of the prompt tokens, those a server reused from an earlier request (its prompt cache)
    media_tokens: dict[str, int] = field(default_factory=dict)  # prompt tokens per modality, e.g. {"image": 64}
    frames: int = 0  # video frames the model saw
    generated_tokens: int = 0
    thinking_tokens: int = 0  # of the generated tokens, those spent reasoning
    thinking_s: float | None = None  # when the reasoning ended
    first_token_s: float | None = None
    last_token_s: float = 0.0
    total_s: float = 0.0  # set when generation has ended
    cancelled: bool = False
    replayed: bool = False  # a showcase answer computed at start, shown again
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage, in the order they ran
    speech: list[tuple[int, object]] = field(default_factory=list)  # the model's own voice, chunks as they come

    def finish_stages(self) -> None:
        """Complete ``stages`` once generation has ended: the prefill is the time to first token not spent
        preparing or in the encoders; the decode is everything after the first token."""
        if self.first_token_s is None:
            return
        self.stages["prefill"] = max(0.0, self.first_token_s - sum(self.stages.values()))
        self.stages["decode"] = max(0.0, self.total_s - self.first_token_s)

    def summary(self) -> str:
        """One line for the server log: tokens in and out, whether stopped, first token and speed."""
        speed = self.tokens_per_s
        return (f"{self.prompt_tokens} prompt tokens, {self.generated_tokens} generated"
                f"{' (stopped)' if self.cancelled else ''}, first token {self.first_token_s or 0.0:.2f} s, "
                f"{f'{speed:.1f}' if speed else '-'} tok/s")

    @property
    def text_tokens(self) -> int:
        """Prompt tokens that are no media placeholders."""
        return self.prompt_tokens - sum(self.media_tokens.values())

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


class Engine:
    """A model that turns chat messages into a stream of text.

    ``messages`` use the Hugging Face chat format: ``{"role", "content": [parts]}`` where a part is
    ``{"type": "text", "text": str}``, ``{"type": "image", "image": PIL.Image}``, ``{"type": "audio", "audio":
    numpy float32 array at capabilities.audio_sampling_rate}`` or ``{"type": "video", "video": [PIL.Image],
    "timestamps": [seconds], "duration": seconds, "fps": the clip's frame rate}``.
    Subclasses set ``_status`` and ``_capabilities`` and implement :meth:`load` and :meth:`stream`.
    """

    _status: EngineStatus
    _capabilities: Capabilities | None = None

    def load(self) -> None:
        """Load the model or reach the server (blocking, idempotent, thread-safe); set ``_capabilities`` or
        raise ``UserError``."""
        raise NotImplementedError

    def stream(
        self, messages: list[dict], params: GenerationParams, cancel: threading.Event,
        stats: GenerationStats | None = None,
    ) -> Iterator[str]:
        """Yield the answer in text deltas; stop generating soon after ``cancel`` is set; fill ``stats``. A
        prompt longer than the context raises :class:`ContextOverflowError` before the first token."""
        raise NotImplementedError

    def status(self) -> EngineStatus:
        """Current state, for the status line and ``/health``; never blocks."""
        return self._status

    @property
    def capabilities(self) -> Capabilities:
        """What the model takes and gives; loads it first if needed."""
        self.load()
        assert self._capabilities is not None
        return self._capabilities

    def score(self, messages: list[dict], answers: list[str], cancel: threading.Event | None = None) -> list[float]:
        """log P(answer | messages) of each answer as the model's whole reply (``capabilities.logprobs``)."""
        raise UserError("This model gives no log-probabilities.")

    def seen_size(self, width: int, height: int) -> tuple[int, int]:
        """The size an image of ``width``×``height`` had when the model saw it (the frame of pixel boxes)."""
        return width, height

    def idle(self) -> bool:
        """Whether the model has nothing to do now (work done ahead may start). Default: never."""
        return False

    def prefetch(self, messages: list[dict]) -> Future | None:
        """Prepare for a request with the media of ``messages`` (a message still being written) while the model
        has nothing else to do, so its answer starts sooner; never delays other work. The job, if one was
        started (default: none)."""
        return None

    def close(self) -> None:
        """Free the model's memory; the engine does not answer afterwards."""

    def check_context(self, prompt_tokens: int, max_new_tokens: int) -> int:
        """The tokens left to answer in: at most ``max_new_tokens``, within the context; raises
        :class:`ContextOverflowError` when the prompt alone fills it (so the oldest turns can be dropped)."""
        limit = self._capabilities.context_tokens if self._capabilities else None
        if limit is None:
            return max_new_tokens
        if prompt_tokens >= limit:
            raise ContextOverflowError(
                f"This conversation is {prompt_tokens} tokens long, but the model reads at most {limit}. "
                "Press Clear to start over, or send a shorter message or fewer images and clips."
            )
        return min(max_new_tokens, limit - prompt_tokens)
