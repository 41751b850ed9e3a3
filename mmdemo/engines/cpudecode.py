"""On a CPU, oneDNN for many rows only: the language model's linear layers (its head included) multiply a
single row (a one-token decode step) with PyTorch's own bf16 kernels; everything else (vision and audio
encoders, the prefill, convolutions, attention) keeps oneDNN.

Measured on this project's 2-core CPU (docs/PERFORMANCE.md): SmolVLM2-256M decodes 1.7× and Qwen3.5-0.8B 1.8×
as fast. Only the linear layers: with oneDNN off for the whole decode step, Qwen3.5's Gated-DeltaNet layers
were 4.5× slower (their depthwise convolution takes 38 ms instead of 0.07 ms without oneDNN), and oneDNN off
everywhere made the vision encoder 8× slower. The engine still times a few decode steps both ways at warm-up
and keeps the faster (``choose``). The switch is PyTorch's process-wide flag, set by a pre-hook on each linear
layer and put back by a hook after it; on a CPU all model work runs on one thread (``workers.py``), so nothing
else sees it (with ``--concurrency`` above 1, another thread may run a step under the other setting: slower,
not wrong).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch


class Switch:
    """The hooks that turn oneDNN off around one-row products; ``remove`` takes them all away."""

    def __init__(self, handles: list[torch.utils.hooks.RemovableHandle]) -> None:
        self.handles = handles

    def remove(self) -> None:
        """Take the hooks away: every product runs with oneDNN again."""
        for handle in self.handles:
            handle.remove()


def decode_without_onednn(generator: torch.nn.Module) -> Switch:
    """Turn oneDNN off while a linear layer of ``generator``'s language model or its head multiplies one row,
    and back to what it was after it."""
    before: list[bool] = []

    def off(module: torch.nn.Module, args: tuple) -> None:
        before[:] = [torch.backends.mkldnn.enabled]
        rows = args[0] if args else None
        torch.backends.mkldnn.enabled = rows is None or rows.numel() != rows.shape[-1]

    def back(module: torch.nn.Module, args: tuple, output: object) -> None:
        torch.backends.mkldnn.enabled = before[0] if before else True

    layers = [m for m in generator.get_decoder().modules() if isinstance(m, torch.nn.Linear)]
    layers.append(generator.get_output_embeddings())
    return Switch([hook for layer in layers for hook in (layer.register_forward_pre_hook(off),
                                                         layer.register_forward_hook(back))])


@contextlib.contextmanager
def onednn_restored() -> Iterator[None]:
    """Whatever the decode steps switched, oneDNN is as it was once the block ends."""
    before = torch.backends.mkldnn.enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def choose(generator: torch.nn.Module, decode_speed: Callable[[], float]) -> Switch | None:
    """Time ``decode_speed()`` (tokens/s of a short answer) with oneDNN, then without it for the one-row
    products; keep the switch (its hooks) only when that decodes faster, by 10 % or more (0: the answer was too
    short to tell)."""
    plain = decode_speed()
    switch = decode_without_onednn(generator)
    if plain and decode_speed() >= 1.1 * plain:
        return switch
    switch.remove()
    return None
