"""Hugging Face ZeroGPU support: GPU work runs under ``@spaces.GPU`` when the ``spaces`` package is there."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def estimate_seconds(text: str, files: Sequence[str], history: Sequence[dict], system_prompt: str,
                     params: object, *args: object, **kwargs: object) -> int:
    """A GPU time budget for one chat turn: a base, the answer length, and the media to encode."""
    media = len(files) + sum(isinstance(m.get("content"), list | dict) for m in history)
    return int(min(120, 15 + getattr(params, "max_new_tokens", 512) / 25 + 3 * media))


def on_gpu(fn: F) -> F:
    """``fn`` under ``spaces.GPU`` with a per-request duration on ZeroGPU Spaces; ``fn`` itself elsewhere."""
    if importlib.util.find_spec("spaces") is None:
        return fn
    import spaces

    return spaces.GPU(duration=estimate_seconds)(fn)
