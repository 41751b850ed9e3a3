"""Hugging Face ZeroGPU support: every job on the torch threads (``engines/workers.py``, the one place all
model work passes through: chat, classification, transcription, voice, search, drawing) runs under
``@spaces.GPU`` when the ``spaces`` package is there, with a GPU-time budget per job."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
DEFAULT_SECONDS = 60  # a job that says nothing about its length


def estimate_seconds(max_new_tokens: int = 0, media: int = 0) -> int:
    """A GPU time budget for one job: a base, the answer length, and the media to encode."""
    return int(min(120, 15 + max_new_tokens / 25 + 3 * media))


def on_zerogpu() -> bool:
    """Whether this is a ZeroGPU Space (its ``spaces`` package is installed)."""
    return importlib.util.find_spec("spaces") is not None


def on_gpu(fn: Callable[..., T], seconds: int = DEFAULT_SECONDS) -> Callable[..., T]:
    """``fn`` under ``spaces.GPU(duration=seconds)`` on ZeroGPU Spaces; ``fn`` itself elsewhere."""
    if not on_zerogpu():
        return fn
    import spaces

    return spaces.GPU(duration=seconds)(fn)
