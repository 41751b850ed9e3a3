"""The compiled decode path (static cache + torch.compile), forced on the CPU: same answers as the plain path,
plain path for what does not fit, a failed compilation turns it off without failing the request."""

import threading
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from transformers import GPT2Config

from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.engines.local import TransformersEngine

MESSAGES = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (96, 64), "red")},
                                         {"type": "text", "text": "Describe."}]}]


def answer(engine: TransformersEngine, tokens: int = 24) -> tuple[str, GenerationStats]:
    stats = GenerationStats()
    text = "".join(engine.stream(MESSAGES, GenerationParams(tokens, 0.0), threading.Event(), stats))
    return text, stats


@pytest.fixture(scope="module")
def engines(tiny):
    plain = TransformersEngine(str(tiny["smolvlm"]), "cpu")
    compiled = TransformersEngine(str(tiny["smolvlm"]), "cpu", compile_decode=True)
    plain.load()
    compiled.load()  # compiles at warm-up
    return plain, compiled


def test_compiled_path_is_off_on_a_cpu_by_default_and_said_on_the_status_line(engines):
    plain, compiled = engines
    assert plain.fast is None and "compiled" not in plain.status().detail
    assert compiled.fast.state == "on" and "compiled decode" in compiled.status().detail


def test_compiled_path_gives_the_plain_paths_greedy_answer_with_its_static_cache(engines, monkeypatch):
    plain, compiled = engines
    used = []
    kwargs = compiled.fast.kwargs
    monkeypatch.setattr(compiled.fast, "kwargs", lambda *a: used.append(kwargs(*a)) or used[-1])
    expected, _ = answer(plain)
    for _ in range(2):  # the second answer reuses the emptied cache
        text, stats = answer(compiled)
        assert text == expected and stats.generated_tokens == 24
    assert all(type(u["cache"]).__name__ == "StaticCache" for u in used) and used[0]["cache"] is used[1]["cache"]


def test_one_tokens_attention_in_a_compiled_step_groups_query_heads_instead_of_copying_keys(engines, monkeypatch):
    from transformers.integrations import sdpa_attention
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    widened = []
    repeat = sdpa_attention.repeat_kv
    monkeypatch.setattr(sdpa_attention, "repeat_kv", lambda states, n: widened.append(n) or repeat(states, n))
    module = SimpleNamespace(num_key_value_groups=3, is_causal=True)
    torch.manual_seed(0)
    query = torch.randn(2, 1, 6, 16).transpose(1, 2)  # 6 query heads, one token, as a model's attention makes it
    key, value = torch.randn(2, 2, 40, 16), torch.randn(2, 2, 40, 16)  # 2 key/value heads, a 40-token cache
    mask = torch.ones(2, 1, 1, 40, dtype=torch.bool)
    mask[:, :, :, 30:] = mask[1, :, :, :5] = False  # the static cache's empty end; left padding
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, repeat(key, 3), repeat(value, 3), attn_mask=mask).transpose(1, 2)
    ours = ALL_ATTENTION_FUNCTIONS["sdpa"]  # as the compiled path registered it
    for attention in ours, sdpa_attention.sdpa_attention_forward:  # ours, then transformers' own
        compiled = torch.compile(lambda *args: attention(module, *args)[0], fullgraph=True)  # noqa: B023
        torch.testing.assert_close(compiled(query, key, value, mask), expected)
    assert widened == [3, 3]  # transformers' own copied the keys and the values three times over; ours did not
    assert torch.equal(ours(module, query, key, value, mask)[0],  # not compiled: transformers' own
                       sdpa_attention.sdpa_attention_forward(module, query, key, value, mask)[0])


def test_the_compiled_path_reads_a_long_prompt_in_one_pass_and_the_plain_path_in_chunks(engines, monkeypatch):
    compiled = engines[1]
    monkeypatch.setattr(compiled, "prefill_chunk", 8)  # chunks would go through the step, compiled anew per shape
    chunks = []
    generate = compiled._generator.generate
    monkeypatch.setattr(compiled._generator, "generate",
                        lambda **run: chunks.append(run.get("prefill_chunk_size")) or generate(**run))
    answer(compiled, 4)
    monkeypatch.setattr(compiled.fast, "kwargs", lambda *args: {})  # the request fits no cache: the plain path
    answer(compiled, 4)
    assert chunks == [None, 8]


def test_each_request_gets_the_smallest_cache_it_fits_and_warm_up_compiled_them_all(engines):
    fast = engines[1].fast
    assert sorted(fast._caches) == list(fast.sizes) == [2048, 8192]  # both warmed up at load
    length = lambda prompt: engines[1].workers.run(fast.kwargs, prompt, 512)["cache"].get_max_length()  # noqa: E731
    assert [length(1000), length(1536), length(1537), length(7680)] == [2048, 2048, 8192, 8192]
    assert "static caches of 2K and 8K tokens" in engines[1].status().detail


def test_requests_that_outgrow_the_cache_or_run_on_another_thread_take_the_plain_path(engines):
    engine = engines[1]
    fast = engine.fast
    assert engine.workers.run(fast.kwargs, 10, 24)  # the worker thread that compiled it at warm-up
    assert engine.workers.run(fast.kwargs, fast.max_tokens - 10, 24) == {}
    assert fast.kwargs(10, 24) == {}  # any other thread


def test_only_the_compiled_path_on_a_gpu_learns_of_the_end_one_step_late():
    from transformers import StaticCache
    from transformers.generation import utils

    from mmdemo.engines import fastdecode

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    supported = utils.DeferredStopCheck.is_supported  # the engine's, installed when a compiled path is made
    cache = StaticCache(config=GPT2Config(n_layer=2), max_cache_len=64)
    assert utils.DeferredStopCheck is fastdecode._DeferredOnGpus
    assert not supported(cuda, cache, True, False)  # any other generate on a GPU: as transformers does it
    fastdecode._deferring.on = True
    try:
        assert supported(cuda, cache, True, False) and supported(cuda, None, False, False)
        assert not supported(cpu, cache, True, False)  # the CPU has no events to defer with
        assert not supported(cuda, cache, True, True)  # an assistant model's loop
    finally:
        fastdecode._deferring.on = False


def test_a_failed_compiled_run_answers_plainly_and_turns_the_path_off(tiny, monkeypatch):
    engine = TransformersEngine(str(tiny["smolvlm"]), "cpu", compile_decode=True)
    engine.load()
    expected, _ = answer(engine)
    monkeypatch.setattr(engine.fast.config, "backend", "no-such-backend")  # the next compilation fails
    monkeypatch.delattr(engine.fast.model, "_compiled_call")
    text, stats = answer(engine)
    assert text == expected and stats.generated_tokens == 24
    assert engine.fast.state == "failed" and engine.fast.kwargs(10, 24) == {}


def test_closing_the_engine_lets_go_of_the_compiled_paths_model(tiny):
    import gc
    import weakref

    engine = TransformersEngine(str(tiny["smolvlm"]), "cpu", compile_decode=True)
    engine.load()
    model = weakref.ref(engine.fast.model)
    engine.close()
    gc.collect()
    assert engine.fast is None and model() is None  # a model switch frees the old model's memory



def test_sliding_window_layers_compile_once_and_answer_as_the_plain_path(twins):
    from torch._dynamo.utils import counters

    plain = TransformersEngine(str(twins["gemma-4-e2b-it"]), "cpu")  # Gemma 4: sliding layers, a 16-token window
    compiled = TransformersEngine(str(twins["gemma-4-e2b-it"]), "cpu", compile_decode=True)
    for engine in plain, compiled:
        engine.dtype = torch.float32  # bf16's roundings differ once inductor fuses them (token 23 of 40 here)
    plain.load()
    graphs = counters["stats"]["unique_graphs"]
    compiled.load()  # with transformers' own sliding layer: a graph per token, up to torch's limit (8)
    assert counters["stats"]["unique_graphs"] - graphs == len(compiled.fast.sizes)  # one per cache size
    graphs = counters["stats"]["unique_graphs"]
    expected, stats = answer(plain, 40)
    assert stats.prompt_tokens > 16  # the answer reaches past the window
    assert answer(compiled, 40)[0] == expected and compiled.fast.state == "on"
    assert counters["stats"]["unique_graphs"] == graphs  # nothing compiled after warm-up
    assert "compiled decode" in compiled.status().detail
