"""The remote engine: any OpenAI-compatible chat server (vLLM, SGLang, ``transformers serve``...).

Requests go round-robin over one or more replicas; a replica that refuses connections is skipped
until it answers its health check again. Stop closes the HTTP stream, which ends generation there.
"""

from __future__ import annotations

import base64
import io
import itertools
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx
import numpy as np
import openai
import soundfile
from PIL import Image

from mmdemo.engines.base import Capabilities, Engine, EngineStatus, GenerationParams, GenerationStats
from mmdemo.engines.thinking import CLOSE, OPEN
from mmdemo.errors import ContextOverflowError, UserError

log = logging.getLogger(__name__)

AUDIO_RATE = 16000
_OVERFLOW = re.compile(r"context (length|size|window)|maximum .*length|too (long|many tokens)|exceed", re.I)


@dataclass
class _Replica:
    url: str
    client: openai.OpenAI
    down_until: float = 0.0  # monotonic time before which the replica is not tried without a health check


def takes(caps: Capabilities) -> str:
    """What a served model reads, in words: "text, images, audio"."""
    return ", ".join(n for n, ok in (("text", True), ("images", caps.image), ("audio", caps.audio)) if ok)


def to_openai(messages: list[dict]) -> list[dict]:
    """Hugging Face chat messages (PIL images, float32 audio) -> OpenAI chat messages (base64 parts)."""
    return [{"role": m["role"], "content": [_part(p) for p in m["content"]]} for m in messages]


def _part(part: dict) -> dict:
    if part["type"] == "image":
        buffer = io.BytesIO()
        part["image"].save(buffer, format="JPEG", quality=92)
        url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
        return {"type": "image_url", "image_url": {"url": url}}
    if part["type"] == "audio":
        buffer = io.BytesIO()
        soundfile.write(buffer, part["audio"], AUDIO_RATE, format="WAV", subtype="PCM_16")
        return {"type": "input_audio", "input_audio": {"data": base64.b64encode(buffer.getvalue()).decode(),
                                                      "format": "wav"}}
    return {"type": "text", "text": part["text"]}


class OpenAIEngine(Engine):
    """Streams chat completions from OpenAI-compatible servers; same protocol as the local engine."""

    def __init__(self, base_urls: Sequence[str], model: str, api_key: str | None = None, timeout: float = 120.0,
                 retry_after_s: float = 5.0, capabilities: Capabilities | None = None) -> None:
        """``capabilities``: what the model takes, when the caller knows (else probed by :meth:`load`)."""
        self.model = model
        self.retry_after_s = retry_after_s
        self._replicas = [
            _Replica(url.rstrip("/"), openai.OpenAI(base_url=url.rstrip("/"), api_key=api_key or "not-needed",
                                                    timeout=httpx.Timeout(timeout, connect=5.0), max_retries=0))
            for url in base_urls
        ]
        if not self._replicas:
            raise UserError("--engine openai needs at least one --base-url")
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._capabilities = capabilities
        hosts = ", ".join(urlparse(r.url).netloc for r in self._replicas)
        self._device = f"remote server{'s' if len(self._replicas) > 1 else ''} {hosts}"
        self._status = EngineStatus("loading", model, self._device, "connecting")

    def load(self) -> None:
        """Probe the model's inputs on the first reachable server; retried while none answers."""
        if self._capabilities is not None:
            return
        with self._lock:
            if self._capabilities is not None:
                return
            try:
                self._capabilities = self._probe()
            except UserError as exc:
                self._status = EngineStatus("failed", self.model, self._device, str(exc))
                raise
            self._status = EngineStatus("ready", self.model, self._device, f"takes {takes(self._capabilities)}")
            log.info("remote model %s ready: takes %s", self.model, takes(self._capabilities))

    def _probe(self) -> Capabilities:
        base = self._usage([{"type": "text", "text": "Hi"}], strict=True)
        image = {"type": "image", "image": Image.new("RGB", (64, 64), "white")}
        audio = {"type": "audio", "audio": np.zeros(AUDIO_RATE, np.float32)}
        # A server that ignores a part reports the same prompt size; one that refuses it answers with an error
        # (4xx from vLLM; llama.cpp answers 500 "audio input is not supported").
        takes = {kind: self._usage([part, {"type": "text", "text": "Hi"}], strict=False) for kind, part in
                 (("image", image), ("audio", audio))}
        return Capabilities(
            image=takes["image"] is not None and (base is None or takes["image"] > base),
            audio=takes["audio"] is not None and (base is None or takes["audio"] > base),
            audio_sampling_rate=AUDIO_RATE, max_audio_seconds=30.0,
        )

    def _usage(self, content: list[dict], strict: bool) -> int | None:
        """Prompt tokens of a one-token request (None when refused); raise when no server answers, or when a
        ``strict`` request fails on the server (5xx)."""
        messages = to_openai([{"role": "user", "content": content}])
        for replica in self._candidates():
            try:
                response = replica.client.chat.completions.create(model=self.model, messages=messages, max_tokens=1)
            except openai.APIConnectionError:
                self._mark_down(replica)
                continue
            except openai.APIStatusError as exc:
                if strict and exc.status_code >= 500:
                    raise _status_error(exc) from exc
                return None  # this input is refused
            return response.usage.prompt_tokens if response.usage else 0
        raise self._unreachable()

    def _candidates(self) -> Iterator[_Replica]:
        """Replicas in round-robin order: live ones, then downed ones that pass a health check."""
        start = next(self._turn) % len(self._replicas)
        ordered = self._replicas[start:] + self._replicas[:start]
        now = time.monotonic()
        yield from (r for r in ordered if r.down_until <= now)
        for replica in (r for r in ordered if r.down_until > now):
            if self._healthy(replica):
                replica.down_until = 0.0
                yield replica

    def _healthy(self, replica: _Replica) -> bool:
        try:
            replica.client.with_options(timeout=2.0).models.list()
        except openai.OpenAIError:
            return False
        return True

    def _mark_down(self, replica: _Replica) -> None:
        log.warning("model server %s is not answering; skipping it", replica.url)
        replica.down_until = time.monotonic() + self.retry_after_s

    def _unreachable(self) -> UserError:
        urls = ", ".join(r.url for r in self._replicas)
        return UserError(f"The model server ({urls}) is not reachable. It may be starting or down; "
                         "try again in a moment.")

    def stream(
        self, messages: list[dict], params: GenerationParams, cancel: threading.Event,
        stats: GenerationStats | None = None,
    ) -> Iterator[str]:
        """Stream the answer; a replica that refuses the connection is skipped (nothing was generated)."""
        started = time.perf_counter()
        stats = stats if stats is not None else GenerationStats()
        self.load()
        request = dict(model=self.model, messages=to_openai(messages), stream=True, max_tokens=params.max_new_tokens,
                       temperature=params.temperature, top_p=params.top_p, stream_options={"include_usage": True})
        if self.capabilities.thinking:  # the template's switch (llama.cpp, vLLM and SGLang read it from here)
            request["extra_body"] = {"chat_template_kwargs": {"enable_thinking": params.think}}
        for replica in self._candidates():
            try:
                response = replica.client.chat.completions.create(**request)
            except openai.APIConnectionError:
                self._mark_down(replica)
                continue
            except openai.APIStatusError as exc:
                raise _status_error(exc) from exc
            break
        else:
            raise self._unreachable()
        reasoning = False  # inside the reasoning a server sends apart (vLLM's and SGLang's reasoning parsers)
        try:
            for chunk in response:
                if cancel.is_set():
                    stats.cancelled = True
                    break
                if chunk.usage:
                    stats.prompt_tokens = chunk.usage.prompt_tokens
                    details = chunk.usage.prompt_tokens_details
                    stats.cached_tokens = (details.cached_tokens or 0) if details else 0
                delta = chunk.choices[0].delta if chunk.choices else None
                thought = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
                text, reasoning = _marked(thought, delta.content if delta is not None else None, reasoning)
                if text:
                    now = time.perf_counter() - started
                    stats.first_token_s = stats.first_token_s if stats.first_token_s is not None else now
                    stats.generated_tokens += 1
                    stats.thinking_tokens += bool(thought)
                    stats.last_token_s = now
                    yield text
        except (openai.APIError, httpx.HTTPError) as exc:
            log.warning("stream from %s broke: %s", replica.url, exc)
            raise UserError(f"The model server stopped in the middle of the answer ({_reason(exc)}). "
                            "Please send the message again.") from exc
        finally:
            response.close()  # closing the HTTP stream is what stops generation on the server
            stats.total_s = time.perf_counter() - started
            log.info("answer from %s: %d chunks%s, first token %.2f s", replica.url, stats.generated_tokens,
                     " (stopped)" if cancel.is_set() else "", stats.first_token_s or 0.0)


def _reason(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("detail")
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            return str(message)[:300]
    return str(getattr(exc, "message", None) or exc)[:300]


def _status_error(exc: openai.APIStatusError) -> UserError:
    if exc.status_code == 400 and _OVERFLOW.search(_reason(exc)):  # vLLM, SGLang, llama.cpp: the prompt is too long
        return ContextOverflowError(f"The conversation is longer than the model server reads: {_reason(exc)}")
    if exc.status_code >= 500:
        return UserError(f"The model server failed (HTTP {exc.status_code}: {_reason(exc)}). Try again in a moment.")
    return UserError(f"The model server refused the request (HTTP {exc.status_code}): {_reason(exc)}")


def _marked(thought: str | None, content: str | None, reasoning: bool) -> tuple[str, bool]:
    """A chunk's reasoning and answer text in an engine's stream form (reasoning between ``OPEN`` and
    ``CLOSE``), and whether the reasoning is still open after it (``reasoning``: open before it)."""
    text = ""
    if thought:
        text, reasoning = ("" if reasoning else OPEN) + thought, True
    if content:
        text, reasoning = text + (CLOSE if reasoning else "") + content, False
    return text, reasoning
