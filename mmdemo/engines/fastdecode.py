"""The compiled decode path: static KV caches and the one-token decoder step compiled.

On a GPU, ``generate`` spends most of a decode step launching small kernels; with a static cache (fixed
shapes, fixed addresses) transformers compiles the decoder step with ``torch.compile`` and captures it as CUDA
graphs (``mode="reduce-overhead"``). Attention reads the whole static cache at every step, so there are two
sizes (a photo and a question with its answer fit the small one), each compiled at warm-up. The graphs belong
to one worker thread (PyTorch keeps CUDA graph trees per thread, and capturing in one thread while another runs
kernels failed on an H200 with torch 2.11), the first that answers, at warm-up: that thread's requests take
the compiled path, the other workers' (``--concurrency`` above 1) the plain path. So do a request whose prompt
and answer fit no cache and every request after a failed compilation.

Sliding-window attention layers (Gemma 4) keep their keys and values at the cache's full length here, the
mask keeping each query to its window: transformers' own static sliding-window layer counts its length in a
Python integer, so the compiled step was recompiled at every token until the window filled (Gemma 4 E2B on an
H100: warm-up 167 s, then torch's recompile limit and eager steps).

On the compiled path ``generate`` also learns of a finished answer one step late (transformers'
``DeferredStopCheck``, which it uses on Apple GPUs only), so the host queues the next step while the GPU runs
this one instead of waiting for each token.

In the compiled step, one token's attention takes the query heads that share a key/value head as a group
(``packed_attention``) instead of copying each key/value head once per query head, as transformers does while
compiling: 1.05× the decode speed of Qwen2.5-Omni-7B on an H100.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import torch
from transformers import AttentionInterface, CompileConfig, StaticCache
from transformers.cache_utils import StaticLayer
from transformers.generation import utils as generation_utils
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from mmdemo.engines.base import GenerationStats
from mmdemo.errors import Cancelled

log = logging.getLogger(__name__)

CACHE_SIZES = (2048, 8192)  # tokens of prompt + answer; the largest bounds the requests the compiled path takes
_deferring = threading.local()  # .on: this thread's ``generate`` runs on the compiled path


_DeferredStopCheck = generation_utils.DeferredStopCheck


class _DeferredOnGpus(_DeferredStopCheck):
    """transformers' one-step-late stop check, used on CUDA too while the calling thread is on the compiled path."""

    @staticmethod
    def is_supported(device: torch.device, cache: object, cache_is_returned: bool, is_assistant: bool) -> bool:
        if getattr(_deferring, "on", False) and device.type == "cuda" and not is_assistant:
            return cache is None or cache.is_croppable or not cache_is_returned  # type: ignore[attr-defined]
        return _DeferredStopCheck.is_supported(device, cache, cache_is_returned, is_assistant)


def packed_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     **kwargs: object) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, except for one token in a compiled step: there the query heads that share a
    key/value head go to it as a group, in two matrix products and a softmax. transformers copies each key/value
    head once per query head while compiling (``repeat_kv``: 0.56 ms of a 7.2 ms step of Qwen2.5-Omni-7B on an
    H100), and SDPA on the grouped heads picked a slower cuDNN kernel (docs/PERFORMANCE.md)."""
    groups = getattr(module, "num_key_value_groups", 1)
    if (not torch.compiler.is_compiling() or groups == 1 or query.shape[2] != 1 or attention_mask is None
            or attention_mask.shape[1] != 1 or dropout or kwargs.get("position_bias") is not None
            or kwargs.get("softcap") is not None):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    batch, heads, _, size = query.shape
    scores = torch.matmul(query.reshape(batch, heads // groups, groups, size), key.transpose(2, 3))
    scores = scores * (size**-0.5 if scaling is None else scaling)
    if attention_mask.dtype == torch.bool:  # one row for all heads: it broadcasts over each group
        scores = scores.masked_fill(~attention_mask, float("-inf"))
    else:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    output = torch.matmul(weights, value)
    return output.reshape(output.shape[0], 1, heads, value.shape[-1]), None


class _WindowAtFullLength(StaticLayer):
    """A sliding-window layer's cache held at the static cache's full length, with nothing but tensors changing
    from step to step; the sliding-window mask (sized by the first sliding layer) keeps queries to the window."""

    is_sliding = True


def static_cache(config: object, size: int) -> StaticCache:
    """A static cache of ``size`` tokens for a model's text config, its sliding-window layers at full length."""
    cache = StaticCache(config=config, max_cache_len=size)
    cache.layers = [_WindowAtFullLength(max_cache_len=size) if getattr(layer, "is_sliding", False) else layer
                    for layer in cache.layers]
    return cache


class CompiledDecode:
    """Generate kwargs for the compiled path of one model, and whether it is on."""

    def __init__(self, model: torch.nn.Module, sizes: tuple[int, ...] = CACHE_SIZES, all_devices: bool = False) -> None:
        """``model``: the module whose ``generate`` answers; ``sizes``: the static caches' lengths, ascending;
        ``all_devices``: compile off a GPU too (tests)."""
        self.model = model
        self.sizes = sizes
        self.config = CompileConfig(mode="reduce-overhead" if not all_devices else "default", dynamic=False)
        self.config._compile_all_devices = all_devices or None
        self.state = "on"  # "on" until a compiled run fails, then "failed"
        self._owner: int | None = None  # the worker thread whose graphs these are
        self._caches: dict[int, StaticCache] = {}
        self._warming: int | None = None  # the size a warm-up request takes
        self.defer = True  # learn of the end one step late (on a GPU); off: wait for every token (benchmarks)
        generation_utils.DeferredStopCheck = _DeferredOnGpus  # consulted only on the compiled path (above)
        AttentionInterface.register("sdpa", packed_attention)  # transformers' own outside a compiled step

    @property
    def max_tokens(self) -> int:
        """Prompt + answer of the longest request the compiled path takes."""
        return self.sizes[-1]

    def kwargs(self, prompt_tokens: int, max_new_tokens: int) -> dict:
        """What ``generate`` gets for this request: the smallest cache it fits, emptied, or nothing (plain path)."""
        self._owner = self._owner or threading.get_ident()
        size = self._warming or next((n for n in self.sizes if prompt_tokens + max_new_tokens <= n), None)
        if self.state != "on" or size is None or self._owner != threading.get_ident():
            return {}
        cache = self._caches.get(size)
        if cache is None:
            cache = self._caches[size] = static_cache(self.model.config.get_text_config(decoder=True), size)
        else:
            with torch.inference_mode():  # its tensors were made in inference mode
                cache.reset()
        return {"cache": cache, "compile_config": self.config}

    def warm_up(self, answer: Callable[[], object]) -> None:
        """Compile the step for every cache size: ``answer`` a short request once per size."""
        for size in self.sizes:
            self._warming = size
            try:
                answer()
            finally:
                self._warming = None

    def generate(self, generator: torch.nn.Module, run: dict, stats: GenerationStats) -> None:
        """``generator.generate(**run)`` on the compiled path when the request fits; if that fails before its
        first token, the path is turned off and the request answered plainly."""
        fast = self.kwargs(stats.prompt_tokens, run["max_new_tokens"])
        try:
            _deferring.on = bool(fast) and self.defer
            if fast:  # a prompt read in chunks would go through the compiled step, compiled anew for their shapes
                run = {**run, "prefill_chunk_size": None}
            generator.generate(**run, **fast)
        except (Cancelled, torch.OutOfMemoryError):
            raise
        except Exception as exc:
            if not fast or stats.generated_tokens:
                raise
            self.failed(exc)
            run["streamer"].next_tokens_are_prompt = True  # the retry hands the prompt over again: skipped
            _deferring.on = False
            generator.generate(**run)
        finally:
            _deferring.on = False

    def failed(self, exc: BaseException) -> None:
        """Turn the compiled path off for good after ``exc``; later requests take the plain path."""
        self.state = "failed"
        self._caches.clear()
        log.warning("the compiled decode path failed, answers take the plain path from now on: %s", exc)

    @property
    def description(self) -> str:
        """A few words for the status line."""
        graphs = ", CUDA graphs" if self.config.mode == "reduce-overhead" else ""
        sizes = " and ".join(f"{n // 1024}K" for n in self.sizes)
        return f"compiled decode (static caches of {sizes} tokens{graphs})" if self.state == "on" else "plain decode"
