"""The threads that run PyTorch: every model call in the process goes through one small pool.

Why: PyTorch's CPU kernels run on an OpenMP team that belongs to the thread that calls them. Once
more than one thread owns a team, GNU OpenMP has more threads than cores and throttles its
spin-waits, and every kernel pays a sleep/wake-up: measured on a 2-core CPU, a 576×1536 bf16
matmul took 0.13 ms instead of 0.07 ms, and SmolVLM2-256M decoded 16–18 instead of 23–27 tok/s.
Running model loading, preprocessing and generation on the same thread(s) keeps a single team.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
THREAD_PREFIX = "mmdemo-torch"


class TorchWorkers:
    """A fixed pool of ``size`` threads (1 on a CPU; one per concurrent generation on a GPU)."""

    def __init__(self, size: int = 1) -> None:
        self.size = max(1, size)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        """Queue ``fn(*args)`` on the pool; the future carries its result or exception."""
        with self._lock:
            # Threads do not survive fork() (ZeroGPU runs each GPU call in a forked process): new pool.
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.size, thread_name_prefix=THREAD_PREFIX)
                self._pid = os.getpid()
            return self._pool.submit(fn, *args)

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on the pool, waiting for it; runs inline when already on a pool thread."""
        if threading.current_thread().name.startswith(THREAD_PREFIX):
            return fn(*args)
        return self.submit(fn, *args).result()
