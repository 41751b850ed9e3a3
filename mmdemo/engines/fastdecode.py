"""The compiled decode path: a static KV cache per worker thread and the one-token decoder step compiled.

On a GPU, ``generate`` spends most of a decode step launching small kernels; with a static cache (fixed
shapes, fixed addresses) transformers compiles the decoder step with ``torch.compile`` and captures it as CUDA
graphs (``mode="reduce-overhead"``). The graphs belong to one worker thread (PyTorch keeps CUDA graph trees per
thread, and capturing in one thread while another runs kernels failed on an H200 with torch 2.11), the first
that answers, at warm-up: that thread's requests take the compiled path with its one cache, the other workers'
(``--concurrency`` above 1) the plain path. So do a request whose prompt and answer do not fit the cache and every
request after a failed compilation.
"""

from __future__ import annotations

import logging
import threading

import torch
from transformers import CompileConfig, StaticCache

from mmdemo.engines.base import GenerationStats
from mmdemo.errors import Cancelled

log = logging.getLogger(__name__)

MAX_CACHE_TOKENS = 8192  # prompt + answer of the longest request the compiled path takes


class CompiledDecode:
    """Generate kwargs for the compiled path of one model, and whether it is on."""

    def __init__(self, model: torch.nn.Module, max_tokens: int = MAX_CACHE_TOKENS, all_devices: bool = False) -> None:
        """``model``: the module whose ``generate`` answers; ``all_devices``: compile off a GPU too (tests)."""
        self.model = model
        self.max_tokens = max_tokens
        self.config = CompileConfig(mode="reduce-overhead" if not all_devices else "default")
        self.config._compile_all_devices = all_devices or None
        self.state = "on"  # "on" until a compiled run fails, then "failed"
        self._owner: int | None = None  # the worker thread whose graphs these are
        self._cache: StaticCache | None = None

    def kwargs(self, prompt_tokens: int, max_new_tokens: int) -> dict:
        """What ``generate`` gets for this request: the cache, emptied, or nothing (plain path)."""
        self._owner = self._owner or threading.get_ident()
        if self.state != "on" or prompt_tokens + max_new_tokens > self.max_tokens or \
                self._owner != threading.get_ident():
            return {}
        if self._cache is None:
            self._cache = StaticCache(config=self.model.config.get_text_config(decoder=True),
                                      max_cache_len=self.max_tokens)
        else:
            with torch.inference_mode():  # its tensors were made in inference mode
                self._cache.reset()
        return {"cache": self._cache, "compile_config": self.config}

    def generate(self, generator: torch.nn.Module, run: dict, stats: GenerationStats) -> None:
        """``generator.generate(**run)`` on the compiled path when the request fits; if that fails before its
        first token, the path is turned off and the request answered plainly."""
        fast = self.kwargs(stats.prompt_tokens, run["max_new_tokens"])
        try:
            generator.generate(**run, **fast)
        except (Cancelled, torch.OutOfMemoryError):
            raise
        except Exception as exc:
            if not fast or stats.generated_tokens:
                raise
            self.failed(exc)
            run["streamer"].next_tokens_are_prompt = True  # the retry hands the prompt over again: skipped
            generator.generate(**run)

    def failed(self, exc: BaseException) -> None:
        """Turn the compiled path off for good after ``exc``; later requests take the plain path."""
        self.state = "failed"
        self._cache = None
        log.warning("the compiled decode path failed, answers take the plain path from now on: %s", exc)

    @property
    def description(self) -> str:
        """A few words for the status line."""
        graphs = ", CUDA graphs" if self.config.mode == "reduce-overhead" else ""
        return f"compiled decode (static cache{graphs})" if self.state == "on" else "plain decode"
