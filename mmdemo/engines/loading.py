"""Loading a transformers checkpoint for the local engine: config, processor and model once, the speech head only
when asked, the inputs' and the stream's settings read from the processor, a warm-up answer through the whole
path (compiling the decode step on a GPU, timing the CPU's decode paths), the status line, and freeing it all."""

from __future__ import annotations

import logging
import threading
import time

from transformers import AutoConfig, AutoModelForMultimodalLM, AutoProcessor

from mmdemo.engines.anatomy import StageClock, capabilities
from mmdemo.engines.base import EngineStatus, GenerationParams, GenerationStats
from mmdemo.engines.cpudecode import choose
from mmdemo.engines.device import free_memory
from mmdemo.engines.encoders import EncoderCache
from mmdemo.engines.failures import load_error
from mmdemo.engines.fastdecode import CompiledDecode
from mmdemo.engines.inputs import InputBuilder, placeholder_id, probe
from mmdemo.engines.progress import reporting
from mmdemo.engines.scoring import turn_end
from mmdemo.engines.streaming import specials_except
from mmdemo.engines.talker import SPEAKING
from mmdemo.engines.workers import interruptible, one_load_at_a_time
from mmdemo.errors import UserError, one_line
from mmdemo.modalities import MODALITIES
from mmdemo.presets import device_kind

log = logging.getLogger("mmdemo.engines.local")  # one logger for the engine's load and its answers


class Loading:
    """The loading half of :class:`~mmdemo.engines.local.TransformersEngine` (whose ``__init__`` sets the state
    these methods fill in, and whose ``stream`` the warm-up answers through)."""

    def check(self) -> None:
        """Fail fast, before any weights load, when ``model_id`` names no checkpoint."""
        try:
            AutoConfig.from_pretrained(self.model_id)
        except Exception as exc:
            raise UserError(load_error(self.model_id, exc)) from exc

    def load(self) -> None:
        """Load processor and model once; later calls return at once (or wait for the first)."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            if self._status.state == "failed":
                raise UserError(self._status.detail)
            started = time.perf_counter()
            try:
                self.workers.run(one_load_at_a_time, self._load)
            except Exception as exc:
                detail = load_error(self.model_id, exc)
                log.error("loading %s failed: %s", self.model_id, exc, exc_info=not isinstance(exc, OSError))
                self._status = EngineStatus("failed", self.model_id, self.device, detail)
                raise UserError(detail) from exc
            loaded = time.perf_counter() - started
            warming = "warming up" + (": compiling the decode step (a minute or two)" if self._compile else "")
            self._status = EngineStatus("loading", self.model_id, self.device, warming)
            state, detail = "ready", ""
            try:
                self._warm_up()
            except Exception as exc:  # loaded, but a test answer with an image failed: say so, keep serving
                log.exception("warm-up of %s failed", self.model_id)
                state, detail = "degraded", f"its test answer failed ({one_line(exc)}); some requests may fail"
            warm = time.perf_counter() - started - loaded
            dtype = str(self.dtype).removeprefix("torch.")
            fast = f", {(self.fast or self.cpu_decode).description}" if self.fast or self.cpu_decode else ""
            detail = detail or f"{dtype}{fast}, loaded in {loaded:.1f} s, warmed up in {warm:.1f} s"
            self._status = EngineStatus(state, self.model_id, self.device, detail)
            log.info("loaded %s on %s: %s", self.model_id, self.device, detail)

    def _progress(self, detail: str) -> None:
        self._status = EngineStatus("loading", self.model_id, self.device, detail)

    def close(self) -> None:
        """Free the model's memory (host and GPU); the engine does not answer afterwards."""
        with self._lock:
            self._model = self._generator = self._processor = self._clock = self._inputs = None
            self.fast = None  # it holds the model too
            self._status = EngineStatus("failed", self.model_id, self.device, "unloaded")
        self.workers.run(free_memory)

    def _load(self) -> None:
        # transformers' progress hook is process-wide: set inside the one-load-at-a-time lock, so two engines
        # loading one after the other never report into each other's status
        with reporting(self._progress):
            self._build()

    def _build(self) -> None:
        config = AutoConfig.from_pretrained(self.model_id)
        if getattr(config, "enable_audio_output", False) and not (self._speech and config.model_type in SPEAKING):
            config.enable_audio_output = False  # text out: the speech head stays unloaded (its memory saved)
        processor = AutoProcessor.from_pretrained(self.model_id)
        # Weights go straight to the device (no second copy in host memory on the way to a GPU).
        model = AutoModelForMultimodalLM.from_pretrained(self.model_id, config=config, dtype=self.dtype,
                                                         device_map=self.device)
        model.eval()
        interruptible(model)
        self._token_ids = {name: token for name, m in MODALITIES.items()
                           if (token := placeholder_id(processor, m.token)) is not None}
        self._inputs = InputBuilder(processor, self.max_image_tokens, self._token_ids.get("image"),
                                    self.processor_kwargs)
        marks = self._inputs.thinking
        self._capabilities = capabilities(model, processor, thinking=bool(marks and marks.switch))
        self._clock = StageClock(model, self.device)
        self._inputs.check_sanitizer(probe(self._capabilities.image))
        # Omni models (thinker + talker) generate their text with the thinker.
        generator = getattr(model, "thinker", model)
        EncoderCache(generator, self._encoder_cache_bytes, on_hit=self._clock.kept)  # wraps its encoders
        self._drop = specials_except(processor.tokenizer, self._inputs.marks)
        self._turn_end = turn_end(processor, generator.generation_config.eos_token_id)
        if generator.generation_config.eos_token_id is None:  # a checkpoint without an end token of its own:
            generator.generation_config.eos_token_id = self._turn_end  # it ends where its template ends a turn
        self._processor = processor
        self._model, self._generator = model, generator
        if self._compile:
            self.fast = CompiledDecode(generator, all_devices=device_kind(self.device) == "cpu")

    def _warm_up(self) -> None:
        """One short answer through the whole path (and one spoken, where the model speaks), so the first user
        does not pay for first-call costs; on a CPU, then the decode steps timed with oneDNN and with each way
        of turning it off (``cpudecode.choose``)."""
        tokens = 8 if self.fast else 2  # the compiled path captures its graphs in the first decode steps

        def answer(tokens: int = tokens, speak: bool = False) -> float:
            stats = GenerationStats()
            params = GenerationParams(tokens, 0.0, speak=speak)
            for _ in self.stream(probe(self._capabilities.image), params, threading.Event(), stats):
                pass
            return stats.tokens_per_s or 0.0

        if self.fast:
            self.fast.warm_up(answer)
        else:
            answer()
        if self._capabilities.speech:  # the talker's and the vocoder's first call (16 s on an H100) too
            answer(2, speak=True)
        if device_kind(self.device) == "cpu":
            self.cpu_decode = choose(self._generator, lambda: answer(6))
