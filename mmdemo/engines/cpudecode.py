"""On a CPU, oneDNN for many rows only: the language model's one-token decode steps run PyTorch's own bf16
kernels where that is faster, everything else (vision and audio encoders, the prefill) keeps oneDNN.

Two ways, both timed at warm-up against oneDNN everywhere, the fastest kept (``choose``; 10 % margin):
``whole_steps`` turns oneDNN off for the language model's whole one-token step, ``one_row_products`` only while
a linear layer or the head multiplies one row. Measured on this project's 2-core CPU (docs/PERFORMANCE.md):
SmolVLM2-256M decodes 1.8× as fast with the first, 1.7× with the second; Qwen3.5-0.8B 4.5× slower with the
first (its Gated-DeltaNet's depthwise convolution takes 38 ms instead of 0.07 ms without oneDNN) and 1.8× as
fast with the second. oneDNN off everywhere made the vision encoder 8× slower. The switch is PyTorch's
process-wide flag, set by hooks; on a CPU all model work runs on one thread (``workers.py``), so nothing else
sees it (with ``--concurrency`` above 1, another thread may run a step under the other setting: slower, not
wrong).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch


class Switch:
    """The hooks of one way of turning oneDNN off (``make``: what made them); ``remove`` takes them all away."""

    def __init__(self, handles: list[torch.utils.hooks.RemovableHandle], description: str,
                 make: Callable[[torch.nn.Module], Switch]) -> None:
        self.handles, self.description, self.make = handles, description, make

    def remove(self) -> None:
        """Take the hooks away: every product runs with oneDNN again."""
        for handle in self.handles:
            handle.remove()


def whole_steps(generator: torch.nn.Module) -> Switch:
    """oneDNN off for ``generator``'s one-token decode steps (its head's product too), on for longer inputs."""

    def switch(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        tokens = next((kwargs[key] for key in ("input_ids", "inputs_embeds") if kwargs.get(key) is not None),
                      args[0] if args else None)
        torch.backends.mkldnn.enabled = tokens is None or tokens.shape[1] > 1

    hook = generator.get_decoder().register_forward_pre_hook(switch, with_kwargs=True)
    return Switch([hook], "decode steps without oneDNN", whole_steps)


def one_row_products(generator: torch.nn.Module) -> Switch:
    """oneDNN off while a linear layer of ``generator``'s language model or its head multiplies one row, and
    back to what it was after it."""
    before: list[bool] = []

    def off(module: torch.nn.Module, args: tuple) -> None:
        before[:] = [torch.backends.mkldnn.enabled]
        rows = args[0] if args else None
        torch.backends.mkldnn.enabled = rows is None or rows.numel() != rows.shape[-1]

    def back(module: torch.nn.Module, args: tuple, output: object) -> None:
        torch.backends.mkldnn.enabled = before[0] if before else True

    layers = [*generator.get_decoder().modules(), generator.get_output_embeddings()]
    layers = [layer for layer in layers if isinstance(layer, torch.nn.Linear)]  # a model may have no linear head
    hooks = [hook for layer in layers for hook in (layer.register_forward_pre_hook(off),
                                                   layer.register_forward_hook(back))]
    return Switch(hooks, "decode matrix products without oneDNN", one_row_products)


SWITCHES = (whole_steps, one_row_products)


@contextlib.contextmanager
def onednn_restored() -> Iterator[None]:
    """Whatever the decode steps switched, oneDNN is as it was once the block ends."""
    before = torch.backends.mkldnn.enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def choose(generator: torch.nn.Module, decode_speed: Callable[[], float]) -> Switch | None:
    """Time ``decode_speed()`` (tokens/s of a short answer) with oneDNN, then with each of ``SWITCHES``; keep the
    fastest switch (its hooks) when it decodes faster than oneDNN by 10 % or more (0: too short to tell)."""
    plain = decode_speed()
    best, fastest = None, 1.1 * plain
    for make in SWITCHES if plain else ():
        switch = make(generator)
        speed = decode_speed()
        if speed < fastest:
            switch.remove()
            continue
        if best:
            best.remove()
        best, fastest = switch, speed
    return best
