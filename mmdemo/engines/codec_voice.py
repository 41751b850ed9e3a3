"""Qwen3-Omni's own voice, streamed: its talker writes a frame of codec codes a step (one per codebook, 12.5
frames a second of speech) and its code2wav, a causal ConvNet, turns frames into 24 kHz audio.

transformers' composite ``generate`` runs the thinker (the text streams as on the text path), then the talker;
the first codebook's code is the talker's token, the other codebooks' codes (from its code predictor) ride in
its output's ``hidden_states``. :class:`CodecStream` collects each step's frame from the talker's output and
decodes them ``CHUNK`` frames at a time, each chunk with the ``LEFT_CONTEXT`` frames before it as context: what
transformers' own ``code2wav.chunked_decode`` does (with 300-frame chunks) once the whole answer is spoken, so
the first audio comes about a second of speech after the talker starts instead of after it ends. Stop reaches
the talker through its stopping criteria and the decoder through the engine's per-layer cancel hooks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch
from transformers import StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from mmdemo.engines.streaming import CancelCheck, Clip, Spoken
from mmdemo.errors import Cancelled

SAMPLE_RATE = 24_000  # code2wav's output
CHUNK = 12  # frames decoded at a time (0.96 s of speech)
LEFT_CONTEXT = 25  # frames before a chunk that code2wav sees again, as its own chunked_decode
FRAMES_PER_TOKEN = 8  # codec frames per answer token at most: a bound (speech needs about 4)
log = logging.getLogger(__name__)


def voices(model: torch.nn.Module) -> list[str]:
    """The voices Qwen3-Omni's talker speaks with (its config's speakers)."""
    return list(getattr(getattr(model.config, "talker_config", None), "speaker_id", None) or {})


def spoken_answer(model: torch.nn.Module, given: dict, stop: CancelCheck, out: Callable[[Clip], None]) -> None:
    """Answer with ``given`` (the composite ``generate``'s arguments, the thinker's settings prefixed) in text
    and in the model's first voice, handing each chunk of audio to ``out`` as soon as it is decoded."""
    frames = min(4096, FRAMES_PER_TOKEN * given.get("thinker_max_new_tokens", 512))
    stream = CodecStream(model, out, stop.cancel.is_set)
    try:
        with contextlib.suppress(Spoken):  # raised when the talker ends: the audio has been made already
            model.generate(**given, speaker=voices(model)[0], return_audio=True, talker_max_new_tokens=frames,
                           talker_stopping_criteria=StoppingCriteriaList([stop]), talker_streamer=stream)
    except Cancelled:  # Stop, inside a layer: the engine ends the answer there
        raise
    except Exception:
        if not stream.started:  # the text itself failed: the answer fails
            raise
        log.exception("the model's voice stopped early: its talker or decoder failed; the answer stands")
    finally:
        stream.close()


class CodecStream(BaseStreamer):
    """The talker's streamer (its end) and a hook on its output (its frames): frames in, audio chunks out."""

    def __init__(self, model: torch.nn.Module, out: Callable[[Clip], None], stopped: Callable[[], bool]) -> None:
        """``out`` receives each chunk as (sample rate, mono float32 samples); ``stopped``: whether Stop was
        pressed (nothing more is decoded)."""
        self._decoder = model.code2wav
        self._frames: list[torch.Tensor] = []  # (batch, codebooks) each
        self._done = 0  # frames decoded so far
        self._out, self._stopped = out, stopped
        self.started = False  # the talker has begun (the text is complete)
        self._hook = model.talker.register_forward_hook(self._step)

    def _step(self, module: torch.nn.Module, args: object, output: object) -> None:
        frame = output.hidden_states[-1]  # the frame of the talker's previous token; none at its prompt
        if frame is not None:
            self._frames.append(frame)
            if len(self._frames) - self._done >= CHUNK and not self._stopped():
                self._decode(self._done + CHUNK)

    def put(self, value: torch.Tensor) -> None:
        """The talker's prompt, then its tokens (their frames come through the hook)."""
        self.started = True

    def end(self) -> None:
        """The talker has stopped: decode what is left (unless Stop cut it short), then skip the composite's
        own decoding of the whole answer."""
        if len(self._frames) > self._done and not self._stopped():
            self._decode(len(self._frames))
        raise Spoken

    def close(self) -> None:
        """Take the hook off the talker."""
        self._hook.remove()

    def _decode(self, end: int) -> None:
        start = self._done
        context = LEFT_CONTEXT if start - LEFT_CONTEXT > 0 else start  # as code2wav.chunked_decode
        codes = torch.stack(self._frames[start - context:end], dim=-1)  # (batch, codebooks, frames)
        audio = self._decoder(codes)[..., context * self._decoder.total_upsample:]
        self._done = end
        self._out((SAMPLE_RATE, audio.reshape(-1).float().cpu().numpy()))
