"""On a CPU, oneDNN for many rows only: the language model's one-token decode steps run PyTorch's own bf16
kernels, everything else (vision and audio encoders, the prefill) keeps oneDNN.

Measured on this project's 2-core CPU (docs/PERFORMANCE.md): SmolVLM2-256M decodes 1.9× and Qwen3-VL-2B 2.4× as
fast, but Qwen3.5's Gated-DeltaNet layers 4.5× slower; so the engine times a few decode steps both ways at
warm-up and keeps the faster (``choose``). oneDNN off everywhere made the vision encoder 8× slower. The switch
is PyTorch's process-wide flag, set before each forward pass of the language model by a pre-hook and put back
when the answer ends; on a CPU all model work runs on one thread (``workers.py``), so nothing else sees it
(with ``--concurrency`` above 1, another thread may run a step under the other setting: slower, not wrong).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch


def decode_without_onednn(decoder: torch.nn.Module) -> torch.utils.hooks.RemovableHandle:
    """Turn oneDNN off for ``decoder``'s one-token steps and on for longer inputs (the prefill)."""

    def switch(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        tokens = next((kwargs[key] for key in ("input_ids", "inputs_embeds") if kwargs.get(key) is not None),
                      args[0] if args else None)
        torch.backends.mkldnn.enabled = tokens is None or tokens.shape[1] > 1

    return decoder.register_forward_pre_hook(switch, with_kwargs=True)


@contextlib.contextmanager
def onednn_restored() -> Iterator[None]:
    """Whatever the decode steps switched, oneDNN is as it was once the block ends."""
    before = torch.backends.mkldnn.enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def choose(decoder: torch.nn.Module, decode_speed: Callable[[], float]) -> torch.utils.hooks.RemovableHandle | None:
    """Time ``decode_speed()`` (tokens/s of a short answer) with oneDNN, then without it for the decode steps;
    keep the switch (its hook) only when that decodes faster, by 10 % or more (0: the answer was too short to
    tell)."""
    plain = decode_speed()
    switch = decode_without_onednn(decoder)
    if plain and decode_speed() >= 1.1 * plain:
        return switch
    switch.remove()
    return None
