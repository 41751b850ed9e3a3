"""What the benchmarks share: the prompt (one photo and a question) and a clock on every generated token.

Needs only torch and transformers, so ``openvino_compare.py`` can use it from its own environment.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import StoppingCriteria

IMAGE = Path(__file__).resolve().parent.parent / "assets" / "scene.png"
QUESTION = "Describe this picture in detail."


class Clock(StoppingCriteria):
    """Timestamps every generated token when it exists (waits for a GPU to finish it; never stops generation)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> torch.BoolTensor:
        if input_ids.is_cuda:
            torch.cuda.synchronize(input_ids.device)
        self.times.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
