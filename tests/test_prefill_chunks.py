"""A long prompt is read in chunks (``generate``'s ``prefill_chunk_size``), so a long video or many pictures never
hold the whole prompt's activations at once: the same greedy answer as in one pass, on each family that reads
pictures and video; prompts with sound and spoken answers are read in one pass, and so is every prompt on a
CPU (faster there, for little memory)."""

import threading

import numpy as np
import pytest
import torch
from helpers import write_clip
from PIL import Image

from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.inputs import PREFILL_CHUNK, prefill_chunks
from mmdemo.engines.local import TransformersEngine
from mmdemo.video import load_video

# the GPU default (multimodal rotary positions; it hears), Qwen3-VL (its deepstack adds picture features inside
# the decoder), Qwen3.5 (recurrent layers beside attention); Gemma 4 gave the same answers too (session 13)
FAMILIES = ["qwen2.5-omni-7b", "qwen3-vl-2b-instruct", "qwen3.5-0.8b"]
CHUNK = 16


def answer(engine: TransformersEngine, parts: list[dict]) -> tuple[str, GenerationStats]:
    stats = GenerationStats()
    messages = [{"role": "user", "content": [*parts, {"type": "text", "text": "Describe it."}]}]
    text = "".join(engine.stream(messages, GenerationParams(12, 0.0), threading.Event(), stats))
    return text, stats


def test_only_prompts_longer_than_a_chunk_and_without_sound_are_read_in_chunks():
    picture = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
    sound = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "Hi"}]}]
    assert prefill_chunks(picture, PREFILL_CHUNK) == {}
    assert prefill_chunks(picture, PREFILL_CHUNK + 1) == {"prefill_chunk_size": PREFILL_CHUNK}
    assert prefill_chunks(sound, 10 * PREFILL_CHUNK) == {}  # transformers cannot split raw audio features
    assert prefill_chunks(picture, 10 * PREFILL_CHUNK, None) == {}
    assert TransformersEngine("m", "cpu").prefill_chunk is None  # one pass was faster on a CPU (bench/prefill.py)
    assert TransformersEngine("m", "cuda").prefill_chunk == PREFILL_CHUNK


@pytest.mark.parametrize("name", FAMILIES)
def test_a_long_prompt_is_read_in_chunks_and_answered_as_in_one_pass(twins, tmp_path, name):
    engine = TransformersEngine(str(twins[name]), "cpu")
    engine.dtype = torch.float32  # bf16's roundings depend on the shapes of the products
    engine.load()
    passes = []  # the tokens each forward pass of the language model reads

    def record(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        tokens = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs.get("inputs_embeds")
        passes.append(tokens.shape[1])

    engine._generator.register_forward_pre_hook(record, with_kwargs=True)
    clip = load_video(write_clip(tmp_path / "clip.mp4", seconds=3), 1.0, 8, 60, 160 * 120).data
    video = {"type": "video", "video": clip.frames, "timestamps": clip.timestamps, "duration": clip.duration,
             "fps": clip.fps}
    for parts in [{"type": "image", "image": Image.new("RGB", (320, 240), "teal")}], [video]:
        engine.prefill_chunk = 10_000
        passes.clear()
        whole, stats = answer(engine, parts)
        assert passes[0] == stats.prompt_tokens > 3 * CHUNK  # one pass over the prompt
        engine.prefill_chunk = CHUNK
        passes.clear()
        chunked, chunked_stats = answer(engine, parts)
        full, rest = divmod(stats.prompt_tokens, CHUNK)
        assert passes[: full + bool(rest)] == [CHUNK] * full + ([rest] if rest else [])
        assert (chunked, chunked_stats.generated_tokens) == (whole, stats.generated_tokens)
    if engine.capabilities.audio:
        passes.clear()
        _, stats = answer(engine, [{"type": "audio", "audio": np.zeros(32000, np.float32)}])
        assert passes[0] == stats.prompt_tokens > CHUNK and stats.generated_tokens  # one pass, answered
