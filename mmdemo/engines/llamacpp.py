"""The llama.cpp engine: mmdemo starts llama.cpp's own OpenAI-compatible server (``llama-server``) on this
machine, talks to it through the remote engine, and stops it with the model.

llama.cpp is the engine people run small models with on a laptop CPU: GGUF weights (quantised), native kernels,
images and audio through a multimodal projector. ``--model`` names a preset that has a GGUF build
(``presets.Preset.gguf``), a Hub repository of GGUF files (``owner/name`` or ``owner/name:Q8_0``; llama-server
downloads the weights and the projector the first time, like any checkpoint) or a local ``.gguf`` file (its
projector, a ``mmproj*.gguf`` beside it, is found).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
from PIL import Image

from mmdemo.engines.base import Capabilities, Engine, EngineStatus, GenerationParams, GenerationStats
from mmdemo.engines.llamaserver import LlamaServer, find_server
from mmdemo.engines.remote import AUDIO_RATE, OpenAIEngine, takes
from mmdemo.errors import UserError

log = logging.getLogger(__name__)


class LlamaCppEngine(Engine):
    """A GGUF model served by a local llama-server; requests go through :class:`OpenAIEngine`."""

    def __init__(self, model: str, binary: str | None = None, context: int = 8192, parallel: int = 1,
                 max_image_tokens: int = 256, start_timeout_s: float = 1800.0) -> None:
        """``context``: tokens per conversation (each of ``parallel`` slots); ``max_image_tokens``: what one image
        may become (models that resize: llama-server's own limit; models that tile, like SmolVLM: images are sent
        at most ``image_edge`` pixels on their long side, the same budget at 32 px a token)."""
        self.model = model
        self.start_timeout_s = start_timeout_s
        self.image_edge = int(max_image_tokens**0.5 * 32)
        self._server = LlamaServer(find_server(binary), model, context, parallel, max_image_tokens)
        self._remote: OpenAIEngine | None = None
        self._lock = threading.Lock()
        self._answering, self._counting = 0, threading.Lock()  # requests in flight
        self._reads_ahead, self._read, self._misses = True, False, 0  # reading ahead: on, just done, in vain
        self._ahead = ThreadPoolExecutor(1, thread_name_prefix="llama-ahead")
        self._closed = threading.Event()
        self._device = "a local llama.cpp server"
        self._status = EngineStatus("loading", model, self._device, "starting llama.cpp")

    def load(self) -> None:
        """Start llama-server (it downloads the GGUF files the first time) and read what the model takes."""
        with self._lock:
            if self._remote is not None and self._server.alive():
                return
            if self._closed.is_set():
                raise UserError("This model was unloaded.")
            self._status = EngineStatus("loading", self.model, self._device,
                                        "starting llama.cpp (downloading the model the first time)")
            try:
                self._server.start()
                self._server.wait_ready(self.start_timeout_s, self._closed)
                self._capabilities = capabilities(self._server.props())
            except (UserError, httpx.HTTPError, OSError) as exc:
                self._server.stop()
                message = str(exc) if isinstance(exc, UserError) else f"llama.cpp did not start ({type(exc).__name__})"
                self._status = EngineStatus("failed", self.model, self._device, message)
                raise UserError(message) from exc
            self._remote = OpenAIEngine([f"{self._server.url}/v1"], self.model, self._server.key,
                                        capabilities=self._capabilities)
            reads = takes(self._capabilities)
            self._status = EngineStatus("ready", self.model, self._device, f"takes {reads}")
            log.info("llama.cpp serves %s: takes %s, %s tokens of context", self._server.label, reads,
                     self._capabilities.context_tokens)

    def stream(
        self, messages: list[dict], params: GenerationParams, cancel: threading.Event,
        stats: GenerationStats | None = None,
    ) -> Iterator[str]:
        """The answer from llama-server (started again first if it has died)."""
        self.load()
        assert self._remote is not None
        stats = stats if stats is not None else GenerationStats()
        with self._counting:
            self._answering += 1
            after_reading, self._read = self._read, False
        try:
            yield from self._remote.stream(self._fit(messages), params, cancel, stats)
        finally:
            with self._counting:
                self._answering -= 1
        if after_reading:
            self._judge_reading(stats)

    def _judge_reading(self, stats: GenerationStats) -> None:
        """Stop reading ahead for a model whose server could not reuse what it read twice in a row (recurrent or
        sliding-window layers cannot be rolled back to the end of an image; the read was work for nothing)."""
        self._misses = 0 if stats.cached_tokens * 2 >= stats.prompt_tokens else self._misses + 1
        if self._misses >= 2:
            self._reads_ahead = False
            log.info("llama.cpp could not reuse the prompts it read ahead for %s: reading ahead is off",
                     self._server.label)

    def idle(self) -> bool:
        """Whether the server is up and answering nobody."""
        return self._status.state == "ready" and self._answering == 0

    def prefetch(self, messages: list[dict]) -> Future | None:
        """Have llama-server read ``messages`` (the conversation with the media of a message still being written)
        while it is idle: it keeps the prompt it read, so the request that follows, the same conversation with
        the question added, starts after its media."""
        if not self.idle() or not self._reads_ahead:
            return None

        def read() -> None:
            started = time.perf_counter()
            assert self._remote is not None
            list(self._remote.stream(self._fit(messages), GenerationParams(1, 0.0), threading.Event()))
            self._read = True
            log.info("read ahead by llama.cpp in %.2f s", time.perf_counter() - started)

        return self._ahead.submit(read)

    def _fit(self, messages: list[dict]) -> list[dict]:
        """``messages`` with every image at most ``image_edge`` pixels on its long side."""
        def fit(part: dict) -> dict:
            image = part.get("image")
            if part["type"] != "image" or max(image.size) <= self.image_edge:
                return part
            return {**part, "image": image.resize(self.seen_size(*image.size), Image.Resampling.LANCZOS)}

        return [{**m, "content": [fit(p) for p in m["content"]]} for m in messages]

    def seen_size(self, width: int, height: int) -> tuple[int, int]:
        """The size an image is sent at (the frame of the pixel boxes a model writes)."""
        scale = min(1.0, self.image_edge / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))

    def close(self) -> None:
        """Stop llama-server (also one still starting)."""
        self._closed.set()
        self._ahead.shutdown(wait=False, cancel_futures=True)
        self._server.stop()
        self._status = EngineStatus("failed", self.model, self._device, "unloaded")


def capabilities(props: dict) -> Capabilities:
    """What the loaded model takes, from llama-server's ``/props``."""
    modalities = props.get("modalities") or {}
    template = props.get("chat_template") or ""
    return Capabilities(
        image=bool(modalities.get("vision")), audio=bool(modalities.get("audio")),
        audio_sampling_rate=AUDIO_RATE, max_audio_seconds=30.0,
        context_tokens=(props.get("default_generation_settings") or {}).get("n_ctx"),
        thinking="enable_thinking" in template,
    )
