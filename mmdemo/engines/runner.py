"""Where ``generate`` runs. On CPU the process's first thread matters: PyTorch's OpenMP kernels run
about 40 % faster from it than from any other thread (measured: bench/overhead.py, docs/PERFORMANCE.md),
and web servers call us from worker threads. So the app hands generation jobs to its main thread."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[], None]


def run_in_thread(job: Job) -> None:
    """The default: each job in a new daemon thread."""
    threading.Thread(target=job, name="mmdemo-generate", daemon=True).start()


class MainThreadRunner:
    """Jobs submitted from any thread run one at a time on the thread that calls :meth:`serve`."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Job] = queue.Queue()

    def submit(self, job: Job) -> None:
        """Queue ``job``; it runs once the serving thread is free."""
        self._jobs.put(job)

    def serve(self, stop: threading.Event) -> None:
        """Run jobs until ``stop`` is set (checked twice a second)."""
        while not stop.is_set():
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                job()
            except Exception:  # jobs report their own errors; this keeps the loop alive regardless
                log.exception("generation job failed")
