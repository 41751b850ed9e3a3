"""The local engine: a transformers checkpoint loaded once and shared by every request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, wait

import torch
from transformers import StoppingCriteriaList

from mmdemo.engines.base import Capabilities, Engine, EngineStatus, GenerationParams, GenerationStats
from mmdemo.engines.cpudecode import Switch, onednn_restored
from mmdemo.engines.device import pick_dtype
from mmdemo.engines.failures import generate_error
from mmdemo.engines.fastdecode import CompiledDecode
from mmdemo.engines.inputs import IMAGE_TOKENS, PREFILL_CHUNK, InputBuilder, content_parts, media_tokens, prefill_chunks
from mmdemo.engines.loading import Loading
from mmdemo.engines.scoring import answer_ids, answer_logprobs
from mmdemo.engines.streaming import HEARTBEAT_S, STREAM_INTERVAL_S, BatchingStreamer, CancelCheck, Watch
from mmdemo.engines.talker import spoken_answer
from mmdemo.engines.thinking import OPEN
from mmdemo.engines.workers import TorchWorkers
from mmdemo.errors import Cancelled, UserError
from mmdemo.grounding import processed_size
from mmdemo.presets import device_kind
from mmdemo.zerogpu import estimate_seconds, on_zerogpu

log = logging.getLogger(__name__)


class TransformersEngine(Loading, Engine):
    """Runs any image/audio-text-to-text checkpoint that ``AutoModelForMultimodalLM`` knows."""

    def __init__(
        self, model_id: str, device: str = "cpu", processor_kwargs: dict | None = None,
        workers: TorchWorkers | None = None, max_image_tokens: int | None = None, compile_decode: bool | None = None,
        speech: bool = False, encoder_cache_mb: int = 256,
    ) -> None:
        """``processor_kwargs`` default to mmdemo's per-device settings for the processor family (inputs);
        ``workers`` are the threads that run the model (shared with the speech model; default: one);
        ``max_image_tokens``: tokens one image may become (default: per device, ``inputs.IMAGE_TOKENS``);
        ``compile_decode``: the compiled decode path (``fastdecode``; default: on a GPU); ``speech``: load an
        omni model's speech head, so it reads answers aloud in its own voice (``talker``); ``encoder_cache_mb``:
        the media encodings kept for reuse (``encoders``; 0: none)."""
        self.model_id = model_id
        self.device = device
        self.dtype = pick_dtype(device)
        self.processor_kwargs = processor_kwargs
        self.max_image_tokens = max_image_tokens or IMAGE_TOKENS[device_kind(device)]
        self._inputs: InputBuilder | None = None
        self.workers = workers or TorchWorkers()
        self._lock = threading.Lock()
        self._compile = device_kind(device) == "cuda" if compile_decode is None else compile_decode
        self._speech = speech
        self._encoder_cache_bytes = encoder_cache_mb * 2**20
        # a longer prompt is read this many tokens at a time (``inputs``): on a GPU, whose memory is the limit
        self.prefill_chunk = PREFILL_CHUNK if device_kind(device) == "cuda" else None
        self.fast: CompiledDecode | None = None
        self.cpu_decode: Switch | None = None  # where the CPU decodes without oneDNN (``cpudecode``)
        self._model = None
        self._generator = None  # what generates the text: the model, or an omni model's thinker
        self._processor = None
        self._capabilities: Capabilities | None = None
        self._token_ids: dict[str, int] = {}  # each modality's placeholder token
        self._status = EngineStatus("loading", model_id, device)

    def stream(
        self, messages: list[dict], params: GenerationParams, cancel: threading.Event,
        stats: GenerationStats | None = None,
    ) -> Iterator[str]:
        """Prepare and generate on a torch worker thread; yield text deltas as the streamer produces them (and
        empty ones while the model's voice is made after the text)."""
        started = time.perf_counter()
        stats = stats if stats is not None else GenerationStats()
        self.load()
        marks = self._inputs.thinking
        streamer = BatchingStreamer(self._processor.tokenizer, STREAM_INTERVAL_S if self.device == "cpu" else 0.0,
                                    self._drop)
        failure: list[BaseException] = []

        def run() -> None:
            if cancel.is_set():  # stopped while waiting for a worker: nothing to do
                streamer.end()
                return
            try:
                self._generate(messages, params, cancel, stats, streamer, started)
            except BaseException as exc:  # surfaced in the consumer below
                failure.append(exc)
                streamer.end()

        media = sum(p.get("type") != "text" for p in content_parts(messages))
        job = self.workers.submit(run, cancel=cancel, seconds=estimate_seconds(params.max_new_tokens, media))
        try:
            for text in marks.canonical(streamer) if marks else streamer:
                if text:
                    yield text
            while wait([job], timeout=HEARTBEAT_S).not_done:  # the text is complete, the model's voice is not
                yield ""  # still working: a consumer can notice a Stop or a disconnect meanwhile
        except GeneratorExit:
            cancel.set()  # a consumer that stops early (Stop, disconnect) ends the generation too
            raise
        job.result()
        if failure and isinstance(failure[0], UserError):
            raise failure[0]
        if failure:
            raise generate_error(failure[0]) from failure[0]

    def _generate(
        self, messages: list[dict], params: GenerationParams, cancel: threading.Event, stats: GenerationStats,
        streamer: BatchingStreamer, started: float,
    ) -> None:
        inputs = self._prepare(messages, params.think)
        stats.stages["prepare"] = time.perf_counter() - started
        ids = inputs["input_ids"]
        opened = self._inputs.opens_reasoning(ids)
        if opened:  # the prompt opened the reasoning: the stream says so
            streamer.on_finalized_text(OPEN)
        stats.prompt_tokens = int(ids.shape[-1])
        stats.media_tokens = media_tokens(ids, messages, self._token_ids)
        stats.frames = sum(len(p["video"]) for p in content_parts(messages) if p.get("type") == "video")
        max_new_tokens = self.check_context(stats.prompt_tokens, params.max_new_tokens)
        streamer.watch = Watch(stats, started, self._inputs.mark_ids, opened)
        stop = CancelCheck(cancel, stats)
        run = dict(inputs, **params.sampling(), **prefill_chunks(messages, stats.prompt_tokens, self.prefill_chunk),
                   streamer=streamer, max_new_tokens=max_new_tokens,
                   stopping_criteria=StoppingCriteriaList([stop]),
                   pad_token_id=self._processor.tokenizer.pad_token_id)
        try:
            with torch.inference_mode(), self._clock.measure(stats), onednn_restored():
                if params.speak and self._capabilities.speech:  # the plain path, then the model's own voice
                    spoken_answer(self._model, run, stop, stats.speech.append)
                elif self.fast:
                    self.fast.generate(self._generator, run, stats)
                else:
                    self._generator.generate(**run)
        except Cancelled:  # stopped inside a forward pass (a long prefill, an encoder): the answer ends here
            stats.cancelled = True
            streamer.end()
        finally:
            stats.total_s = time.perf_counter() - started
            stats.finish_stages()
            log.info("answer: %s", stats.summary())

    def idle(self) -> bool:
        """Whether the model is loaded and its torch threads have nothing to do."""
        return self.status().state == "ready" and self.workers.idle

    def prefetch(self, messages: list[dict]) -> Future | None:
        """Encode the media of ``messages`` on the torch thread while it is idle (``EncoderCache``); the next
        request cancels it. Not on ZeroGPU, where each GPU call runs in a process of its own."""
        if not self.idle() or not self._encoder_cache_bytes or on_zerogpu():
            return None

        def run() -> None:
            started = time.perf_counter()
            inputs = self._prepare(messages)
            with torch.inference_mode(), onednn_restored():  # the prompt read too (no cache; one row of logits)
                self._generator(**inputs, use_cache=False, logits_to_keep=1)
            kinds = ", ".join(sorted({p["type"] for p in content_parts(messages) if p["type"] != "text"}))
            log.info("encoded ahead (%s) in %.2f s", kinds, time.perf_counter() - started)

        return self.workers.speculate(run)

    def score(self, messages: list[dict], answers: list[str], cancel: threading.Event | None = None) -> list[float]:
        """log P(answer | messages) of each answer as the model's whole reply (end of turn included); raises
        ``Cancelled`` soon after ``cancel`` is set."""
        self.load()

        def run() -> list[float]:
            inputs = self._prepare(messages)
            ids = answer_ids(self._processor.tokenizer, inputs["input_ids"][0].tolist(), answers, self._turn_end)
            with onednn_restored():
                return answer_logprobs(self._generator, inputs, ids)

        return self.workers.run(run, cancel=cancel)

    def seen_size(self, width: int, height: int) -> tuple[int, int]:
        """The size an image of ``width``×``height`` has once the processor has resized it: the frame of
        the pixel coordinates Qwen2.5-VL-style models write boxes in."""
        self.load()
        size = self._inputs.kwargs.get("images_kwargs", {}).get("size")  # the budget's, as images are sent
        return processed_size(getattr(self._processor, "image_processor", None), width, height, size)

    def _prepare(self, messages: list[dict], think: bool = False) -> dict:
        return self._inputs.build(messages, self.dtype, self.device, think)

