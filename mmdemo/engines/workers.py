"""The threads that run PyTorch: every model call in the process goes through one small pool.

Why: PyTorch's CPU kernels run on an OpenMP team that belongs to the thread that calls them. Once
more than one thread owns a team, GNU OpenMP has more threads than cores and throttles its
spin-waits, and every kernel pays a sleep/wake-up: measured on a 2-core CPU, a 576×1536 bf16
matmul took 0.13 ms instead of 0.07 ms, and SmolVLM2-256M decoded 16–18 instead of 23–27 tok/s.
Running model loading, preprocessing and generation on the same thread(s) keeps a single team.

Every job may carry a ``cancel`` event. A job whose event is set before it starts is skipped, and
a model made :func:`interruptible` stops inside its forward pass (at the next layer) once the event
of the job running it is set: one visitor's Stop frees the thread for the next within a layer's time.
A *speculative* job (work done ahead in case it is wanted) starts only while no other job is queued or
running, and any job submitted after it cancels it: it never holds up a request by more than a layer.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from mmdemo.errors import Cancelled
from mmdemo.zerogpu import DEFAULT_SECONDS, on_gpu

T = TypeVar("T")
THREAD_PREFIX = "mmdemo-torch"
_LOADS = threading.Lock()


def one_load_at_a_time(load: Callable[[], T]) -> T:
    """``load()`` (a model load) while no other model loads in this process. transformers' ``from_pretrained``
    sets process-wide state while it builds a model (the default dtype, weight tying off, patched torch
    functions): two loads on two threads at once (a model switch beside a side model's load, or several
    worker threads on a GPU) left one model's tied output layer on the meta device, answering garbage."""
    with _LOADS:
        return load()
_job = threading.local()  # .cancel: the event of the job running on this thread


def check_cancel() -> None:
    """Raise :class:`Cancelled` when the job running on this thread has been stopped."""
    cancel = getattr(_job, "cancel", None)
    if cancel is not None and cancel.is_set():
        raise Cancelled


@contextlib.contextmanager
def cancelling(cancel: threading.Event | None) -> Iterator[None]:
    """Make ``cancel`` the stop signal of the model work this thread does inside the block."""
    outer = getattr(_job, "cancel", None)
    _job.cancel = cancel or outer
    try:
        check_cancel()
        yield
    finally:
        _job.cancel = outer


def interruptible(model: object) -> None:
    """Let ``model`` (a ``torch.nn.Module``) stop mid-forward: every layer of its layer stacks (each
    ``ModuleList``) checks the running job's cancel event before it runs."""
    import torch

    for module in model.modules():  # type: ignore[attr-defined]
        if isinstance(module, torch.nn.ModuleList):
            for layer in module:
                layer.register_forward_pre_hook(_check_hook)


def _check_hook(module: object, args: object) -> None:
    check_cancel()


class TorchWorkers:
    """A fixed pool of ``size`` threads (1 on a CPU; one per concurrent generation on a GPU)."""

    def __init__(self, size: int = 1) -> None:
        self.size = max(1, size)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._pending = 0  # jobs queued or running, speculative ones left out
        self._speculative: set[threading.Event] = set()  # the cancel events of the speculative jobs

    def submit(self, fn: Callable[..., T], *args: object, cancel: threading.Event | None = None,
               seconds: int = DEFAULT_SECONDS) -> Future[T]:
        """Queue ``fn(*args)`` on the pool; the future carries its result or exception (:class:`Cancelled`
        when ``cancel`` was set before or while it ran). On ZeroGPU the job borrows the GPU for at most
        ``seconds``. Any speculative job is cancelled."""
        with self._lock:
            self._pending += 1
            for speculative in self._speculative:
                speculative.set()
            return self._queue(self._counted, cancel, on_gpu(fn, seconds), *args)

    @property
    def idle(self) -> bool:
        """Whether no job (but speculative ones) is queued or running."""
        return not self._pending

    def speculate(self, fn: Callable[..., T], *args: object) -> Future[T] | None:
        """Queue ``fn(*args)`` as speculative work: only while the pool is idle (``None`` when it is not), and
        cancelled by the next job submitted."""
        with self._lock:
            if self._pending:
                return None
            cancel = threading.Event()
            self._speculative.add(cancel)
            job = self._queue(_guarded, cancel, on_gpu(fn), *args)
        job.add_done_callback(lambda _: self._forget(cancel))
        return job

    def _queue(self, job: Callable[..., T], *args: object) -> Future[T]:
        # Threads do not survive fork() (ZeroGPU runs each GPU call in a forked process): new pool.
        if self._pool is None or self._pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.size, thread_name_prefix=THREAD_PREFIX)
            self._pid = os.getpid()
        return self._pool.submit(job, *args)

    def _counted(self, cancel: threading.Event | None, fn: Callable[..., T], *args: object) -> T:
        try:  # (inside the job: it is no longer pending by the time its caller has the result)
            return _guarded(cancel, fn, *args)
        finally:
            with self._lock:
                self._pending -= 1

    def _forget(self, speculative: threading.Event) -> None:
        with self._lock:
            self._speculative.discard(speculative)

    def run(self, fn: Callable[..., T], *args: object, cancel: threading.Event | None = None,
            seconds: int = DEFAULT_SECONDS) -> T:
        """``fn(*args)`` on the pool, waiting for it; runs inline when already on a pool thread."""
        if threading.current_thread().name.startswith(THREAD_PREFIX):
            return _guarded(cancel, fn, *args)
        return self.submit(fn, *args, cancel=cancel, seconds=seconds).result()


def _guarded(cancel: threading.Event | None, fn: Callable[..., T], *args: object) -> T:
    with cancelling(cancel):
        return fn(*args)
