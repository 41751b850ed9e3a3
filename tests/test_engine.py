import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.local import TransformersEngine
from mmdemo.errors import UserError

GREEDY = GenerationParams(max_new_tokens=64, temperature=0.0)


def user(*parts):
    return [{"role": "user", "content": list(parts)}]


IMAGE = {"type": "image", "image": Image.new("RGB", (96, 64), "red")}
TEXT = {"type": "text", "text": "Describe."}


@pytest.fixture(params=["smolvlm", "omni"])
def engine(request):
    return request.getfixturevalue(f"{request.param}_engine")


def test_capabilities(smolvlm_engine, omni_engine):
    assert smolvlm_engine.capabilities.image and not smolvlm_engine.capabilities.audio
    caps = omni_engine.capabilities
    assert caps.image and caps.audio and caps.audio_sampling_rate == 16000
    assert caps.context_tokens == 4096 and caps.max_audio_seconds == 30
    assert smolvlm_engine.status().state == "ready"
    assert smolvlm_engine.dtype == (torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32)


def test_streams_several_deltas_that_join_to_the_answer(engine):
    stats, params = GenerationStats(), GenerationParams(max_new_tokens=400, temperature=0.0)
    deltas = list(engine.stream(user(IMAGE, TEXT), params, threading.Event(), stats))
    assert len(deltas) >= 5  # ~1 s of tokens, handed over at most every 40 ms
    assert stats.generated_tokens == params.max_new_tokens  # random weights rarely pick EOS; these never do
    assert stats.first_token_s is not None and stats.total_s >= stats.first_token_s
    again = "".join(engine.stream(user(IMAGE, TEXT), params, threading.Event()))
    assert "".join(deltas) == again  # greedy decoding is deterministic: nothing lost between deltas


def test_image_and_audio_reach_the_model_inputs(omni_engine, smolvlm_engine):
    audio = {"type": "audio", "audio": np.zeros(16000, np.float32)}
    inputs = omni_engine._prepare(user(IMAGE, audio, TEXT))
    assert {"pixel_values", "image_grid_thw", "input_features", "feature_attention_mask"} <= set(inputs)
    assert inputs["pixel_values"].dtype == omni_engine.dtype
    tokenizer = omni_engine._processor.tokenizer
    ids = inputs["input_ids"][0].tolist()
    assert tokenizer.convert_tokens_to_ids("<|AUDIO|>") in ids and tokenizer.convert_tokens_to_ids("<|IMAGE|>") in ids
    inputs = smolvlm_engine._prepare(user(IMAGE, TEXT))
    assert inputs["pixel_values"].shape[-2:] == (64, 64)


def test_different_images_change_the_answer(smolvlm_engine):
    answers = {
        "".join(smolvlm_engine.stream(user({"type": "image", "image": Image.new("RGB", (64, 64), c)}, TEXT), GREEDY,
                                      threading.Event()))
        for c in ("red", "blue")
    }
    assert len(answers) == 2


def test_cancel_stops_generation_early(engine):
    cancel, stats = threading.Event(), GenerationStats()
    params = GenerationParams(max_new_tokens=400, temperature=0.0)
    chunks = []
    stream = engine.stream(user(TEXT), params, cancel, stats)
    for chunk in stream:
        chunks.append(chunk)
        if len(chunks) == 3:
            set_at, tokens_at = time.perf_counter(), stats.generated_tokens
            cancel.set()
    stopped_after = time.perf_counter() - set_at
    assert stats.cancelled and stats.generated_tokens < params.max_new_tokens
    assert stats.generated_tokens - tokens_at <= 2  # the token in flight, then the stop
    assert stopped_after < 0.5


def test_closing_the_stream_stops_generation(engine):
    stats = GenerationStats()
    stream = engine.stream(user(TEXT), GenerationParams(max_new_tokens=400, temperature=0.0), threading.Event(), stats)
    next(stream)
    tokens_at = stats.generated_tokens
    stream.close()  # what Gradio does on Stop or disconnect
    deadline = time.monotonic() + 5
    while not stats.total_s and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stats.cancelled and stats.generated_tokens - tokens_at <= 2


def test_special_tokens_typed_by_the_user_are_plain_text(smolvlm_engine):
    answer = "".join(smolvlm_engine.stream(user({"type": "text", "text": "<image><image> <end_of_utterance>"}),
                                           GREEDY, threading.Event()))
    assert answer


def test_sampling_parameters_are_used(smolvlm_engine):
    params = GenerationParams(max_new_tokens=16, temperature=1.5, top_p=0.95)
    answers = {"".join(smolvlm_engine.stream(user(TEXT), params, threading.Event())) for _ in range(3)}
    assert len(answers) > 1


def test_prompt_longer_than_the_context_is_refused(smolvlm_engine):
    long = {"type": "text", "text": "hello world " * 3000}
    with pytest.raises(UserError, match=r"tokens long, but the model reads at most 4096"):
        list(smolvlm_engine.stream(user(long), GREEDY, threading.Event()))


def test_missing_model_fails_with_what_was_tried(tmp_path):
    engine = TransformersEngine(str(tmp_path / "nope"), "cpu")
    with pytest.raises(UserError, match="Could not load the model from local folder 'nope'") as exc:
        engine.check()
    assert str(tmp_path) not in str(exc.value)  # a folder by its name only, even one that does not exist
    with pytest.raises(UserError):
        engine.load()
    assert engine.status().state == "failed"


def test_batching_streamer_hands_text_over_at_most_every_interval(smolvlm_engine):
    from mmdemo.engines.streaming import BatchingStreamer

    streamer = BatchingStreamer(smolvlm_engine._processor.tokenizer, interval=10.0)
    for word in ("one ", "two ", "three "):
        streamer.on_finalized_text(word)
    streamer.on_finalized_text("four", stream_end=True)
    assert list(streamer) == ["one ", "two three four"]  # the first at once, then one hand-over, nothing lost


def test_the_model_card_shows_what_the_model_is_made_of(smolvlm_engine, omni_engine):
    from mmdemo.engines.anatomy import model_parts

    smol = dict(smolvlm_engine.capabilities.parts)
    assert list(smol) == ["vision encoder", "projector", "language decoder"]
    assert smol["vision encoder"] == sum(p.numel() for p in smolvlm_engine._model.model.vision_model.parameters())
    assert sum(smol.values()) == sum(p.numel() for p in smolvlm_engine._model.parameters())
    omni = dict(model_parts(omni_engine._model))
    assert {"vision encoder", "audio encoder", "language decoder"} <= set(omni)
