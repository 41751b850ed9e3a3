"""oneDNN on a CPU for many rows only: the language model's one-token decode steps run without it, the encoders
and the prefill with it, and the switch is back on once an answer (or a label's scoring) ends."""

import threading

import torch
from test_fastdecode import MESSAGES

from mmdemo.engines.base import GenerationParams
from mmdemo.engines.cpudecode import choose, decode_without_onednn, onednn_restored


def test_one_token_steps_run_without_onednn_and_longer_inputs_with_it():
    layer, seen = torch.nn.Linear(4, 4), []
    handle = decode_without_onednn(layer)
    layer.register_forward_pre_hook(lambda *_: seen.append(torch.backends.mkldnn.enabled))
    with onednn_restored():
        for length in (5, 1, 1, 3):
            layer(torch.zeros(1, length, 4))
    handle.remove()
    assert seen == [True, False, False, True] and torch.backends.mkldnn.enabled


def test_the_switch_is_kept_only_where_it_decodes_faster():
    layer = torch.nn.Linear(4, 4)
    for with_onednn, without, kept in ((20.0, 40.0, True), (8.0, 1.8, False), (3.1, 3.2, False), (0.0, 5.0, False)):
        speeds = iter((with_onednn, without))
        switch = choose(layer, lambda: next(speeds))  # noqa: B023
        assert (switch is not None) == kept and len(layer._forward_pre_hooks) == kept
        if switch:
            switch.remove()


def test_the_engine_decodes_without_onednn_and_leaves_it_on(smolvlm_engine):
    decoder = smolvlm_engine._generator.get_decoder()
    switch = smolvlm_engine.cpu_decode or decode_without_onednn(decoder)  # whichever warm-up chose
    steps = []
    hook = decoder.register_forward_pre_hook(lambda *_: steps.append(torch.backends.mkldnn.enabled))
    try:
        text = "".join(smolvlm_engine.stream(MESSAGES, GenerationParams(6, 0.0), threading.Event()))
        smolvlm_engine.score(MESSAGES, ["red", "blue"])
    finally:
        hook.remove()
        if switch is not smolvlm_engine.cpu_decode:
            switch.remove()
    assert text and steps[0] and not any(steps[1:6])  # the prefill with oneDNN, the 5 decode steps without
    assert torch.backends.mkldnn.enabled  # the next request's vision encoder gets it back
