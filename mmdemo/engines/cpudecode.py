"""On a CPU, oneDNN for many rows only: the language model's one-token decode steps run PyTorch's own bf16
matrix-vector kernels, everything else (vision and audio encoders, the prefill) keeps oneDNN.

Measured on this project's 2-core CPU with full-size SmolVLM2-256M (docs/PERFORMANCE.md): decode 23.2 → 42.8
tokens/s with the same time to first token; oneDNN off everywhere made the vision encoder 8× slower. The switch is
PyTorch's process-wide flag, set before each forward pass of the language model by a pre-hook and put back when
the answer ends; on a CPU all model work runs on one thread (``workers.py``), so nothing else sees it meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
