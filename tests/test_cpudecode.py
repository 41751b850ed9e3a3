"""oneDNN on a CPU for many rows only: the language model's linear layers run one-token decode steps without it;
the encoders, the prefill and every other operation (a convolution, attention) with it; the switch is back on
once an answer (or a label's scoring) ends."""

import threading

import torch
from test_fastdecode import MESSAGES

from mmdemo.engines.base import GenerationParams
from mmdemo.engines.cpudecode import choose, decode_without_onednn


class Generator(torch.nn.Module):
    """A language model's shape: a decoder with a linear layer and a convolution, and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.linear, self.conv, self.head = torch.nn.Linear(4, 4), torch.nn.Conv1d(4, 4, 1), torch.nn.Linear(4, 8)
        self.decoder = torch.nn.ModuleList([self.linear, self.conv])

    def get_decoder(self) -> torch.nn.Module:
        return self.decoder

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        return self.head(self.conv(x.transpose(1, 2)).transpose(1, 2))


def test_one_row_products_run_without_onednn_and_everything_else_with_it():
    model, seen = Generator(), []
    switch = decode_without_onednn(model)
    for name in ("linear", "conv", "head"):
        note = lambda *_, n=name: seen.append((n, torch.backends.mkldnn.enabled))  # noqa: E731
        getattr(model, name).register_forward_pre_hook(note)
    for length in (5, 1):
        model(torch.zeros(1, length, 4))
        seen.append(("after", torch.backends.mkldnn.enabled))
    switch.remove()
    assert seen == [("linear", True), ("conv", True), ("head", True), ("after", True),  # the prefill
                    ("linear", False), ("conv", True), ("head", False), ("after", True)]  # a decode step
    model(torch.zeros(1, 1, 4))
    assert seen[-3:] == [("linear", True), ("conv", True), ("head", True)]  # removed: oneDNN everywhere


def test_the_switch_is_kept_only_where_it_decodes_faster():
    model = Generator()
    for with_onednn, without, kept in ((20.0, 40.0, True), (8.0, 1.8, False), (3.1, 3.2, False), (0.0, 5.0, False)):
        speeds = iter((with_onednn, without))
        switch = choose(model, lambda: next(speeds))  # noqa: B023
        assert (switch is not None) == kept and len(model.head._forward_pre_hooks) == kept
        if switch:
            switch.remove()


def test_the_engine_decodes_without_onednn_and_leaves_it_on(smolvlm_engine):
    generator = smolvlm_engine._generator
    switch = smolvlm_engine.cpu_decode or decode_without_onednn(generator)  # whichever warm-up chose
    decoder = generator.get_decoder()
    first = next(module for module in decoder.modules() if isinstance(module, torch.nn.Linear))
    linear, head, norm = [], [], []
    hooks = [module.register_forward_pre_hook(lambda *_, seen=seen: seen.append(torch.backends.mkldnn.enabled))
             for module, seen in ((first, linear), (generator.get_output_embeddings(), head), (decoder.norm, norm))]
    try:
        text = "".join(smolvlm_engine.stream(MESSAGES, GenerationParams(6, 0.0), threading.Event()))
        smolvlm_engine.score(MESSAGES, ["red", "blue"])
    finally:
        for hook in hooks:
            hook.remove()
        if switch is not smolvlm_engine.cpu_decode:
            switch.remove()
    assert text and linear[0] and not any(linear[1:6])  # the prefill with oneDNN, the 5 decode steps without
    assert not any(head[:6])  # the head multiplies one row in the prefill too: the last token's
    assert all(norm)  # what is not a matrix product keeps oneDNN
    assert torch.backends.mkldnn.enabled  # the next request's vision encoder gets it back
