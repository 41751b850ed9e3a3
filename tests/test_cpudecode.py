"""oneDNN on a CPU for many rows only: the language model's linear layers run one-token decode steps without it;
the encoders, the prefill and every other operation (a convolution, attention) with it; the switch is back on
once an answer (or a label's scoring) ends."""

import threading

import torch
from test_fastdecode import MESSAGES

from mmdemo.engines.base import GenerationParams
from mmdemo.engines.cpudecode import SWITCHES, choose, one_row_products, onednn_restored, whole_steps
from mmdemo.engines.local import TransformersEngine


class Decoder(torch.nn.Module):
    """A language model's layers: a linear layer and a convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.linear, self.conv = torch.nn.Linear(4, 4), torch.nn.Conv1d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.linear(x).transpose(1, 2)).transpose(1, 2)


class Generator(torch.nn.Module):
    """A language model's shape: its decoder and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.decoder, self.head = Decoder(), torch.nn.Linear(4, 8)
        self.linear, self.conv = self.decoder.linear, self.decoder.conv

    def get_decoder(self) -> torch.nn.Module:
        return self.decoder

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(x))


def test_whole_steps_of_one_token_run_without_onednn_and_longer_inputs_with_it():
    model, seen = Generator(), []
    switch = whole_steps(model)
    model.head.register_forward_pre_hook(lambda *_: seen.append(torch.backends.mkldnn.enabled))
    with onednn_restored():
        for length in (5, 1, 1, 3):
            model(torch.zeros(1, length, 4))
    switch.remove()
    assert seen == [True, False, False, True] and torch.backends.mkldnn.enabled


def test_one_row_products_run_without_onednn_and_everything_else_with_it():
    model, seen = Generator(), []
    switch = one_row_products(model)
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


def test_the_fastest_switch_is_kept_when_it_beats_onednn_by_a_tenth():
    model = Generator()
    assert (whole_steps, one_row_products) == SWITCHES
    for speeds, kept in (((20.0, 40.0, 38.0), whole_steps), ((8.0, 1.8, 14.0), one_row_products),
                         ((3.1, 3.2, 3.3), None), ((0.0, 5.0, 5.0), None)):
        times = iter(speeds)
        switch = choose(model, lambda: next(times))  # noqa: B023
        assert (switch and switch.make) is kept
        hooks = len(model.decoder._forward_pre_hooks) + len(model.head._forward_pre_hooks)
        assert hooks == {None: 0, whole_steps: 1, one_row_products: 1}[kept]  # the others' hooks are gone
        if switch:
            switch.remove()


def test_the_engine_decodes_without_onednn_and_leaves_it_on(tiny):
    engine = TransformersEngine(str(tiny["smolvlm"]), "cpu")
    engine.load()
    if engine.cpu_decode:  # whichever warm-up chose, this test looks at one_row_products
        engine.cpu_decode.remove()
    generator = engine._generator
    engine.cpu_decode = one_row_products(generator)
    decoder = generator.get_decoder()
    first = next(module for module in decoder.modules() if isinstance(module, torch.nn.Linear))
    linear, head, norm = [], [], []
    for module, seen in ((first, linear), (generator.get_output_embeddings(), head), (decoder.norm, norm)):
        module.register_forward_pre_hook(lambda *_, seen=seen: seen.append(torch.backends.mkldnn.enabled))
    text = "".join(engine.stream(MESSAGES, GenerationParams(6, 0.0), threading.Event()))
    engine.score(MESSAGES, ["red", "blue"])
    assert text and linear[0] and not any(linear[1:6])  # the prefill with oneDNN, the 5 decode steps without
    assert not any(head[:6])  # the head multiplies one row in the prefill too: the last token's
    assert all(norm)  # what is not a matrix product keeps oneDNN
    assert torch.backends.mkldnn.enabled  # the next request's vision encoder gets it back
