"""The model's own voice: an omni model (thinker, talker, vocoder) reads its answer aloud itself, streamed.
Here Qwen2.5-Omni's (below); Qwen3-Omni's codec voice is in ``codec_voice``, which :func:`spoken_answer` hands
it to.

transformers' composite ``generate`` runs the thinker (the text streams through its streamer as on the text
path), then the talker, whose speech codes reach ``VoiceStream`` one by one. It turns them into audio chunk by
chunk with Qwen's block-wise streaming of Qwen2.5-Omni's token2wav: the DiT (flow matching; some of its layers
attend one block of 24 mel frames behind or ahead) solves each chunk's frames with 2 blocks before and 1 after
as context, every window starting from its slice of one noise tensor, and BigVGAN vocodes the new mel frames
with 20 frames of the previous ones before them; each chunk's audio ends 20 frames short, where the next chunk's
vocoding begins. Qwen's chunks are 3 blocks; here the first is, so the first audio comes after 48 codes (about a
second of speech) instead of after the whole answer, and later ones grow (6, then 12 blocks), since a window
costs a GPU about the same whatever its length (launches; 0.66 s for 3 blocks on an H100). Generation settings
and pixels are the thinker's (``thinker_`` prefix); the processor's other tensors go to both, as the library
routes them; Stop reaches the talker through its stopping criteria and the vocoder through the engine's
per-layer cancel hooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from transformers import StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import RungeKutta4ODESolver

from mmdemo.engines import codec_voice
from mmdemo.engines.streaming import CancelCheck, Clip, Spoken

SAMPLE_RATE = 24_000  # Qwen2.5-Omni's vocoder (BigVGAN at 24 kHz)
CODES_PER_TOKEN = 25  # speech codes (50 a second) per answer token at most: a bound, speech needs ~15
MAX_BLOCKS = 12  # the longest chunk, in DiT blocks (2.88 s of speech)
OVERLAP = 20  # mel frames the vocoder sees on each side of a chunk's edge (Qwen's value for 50 Hz codes)
STEPS, GUIDANCE, SWAY = 10, 0.5, -1.0  # token2wav's own defaults: ODE time points, guidance scale, sway sampling
# the thinker's alone: generation settings, and the pixels (the talker takes the grids, and refuses pixels)
_THINKER_ONLY = ("streamer", "stopping_criteria", "max_new_tokens", "do_sample", "temperature", "top_p",
                 "pad_token_id", "pixel_values", "pixel_values_videos")


def _dit_voices(model: torch.nn.Module) -> list[str]:
    """The voices Qwen2.5-Omni's speech head speaks with (its speaker file's)."""
    return list(getattr(model, "speaker_map", None) or {})


def _dit_answer(model: torch.nn.Module, given: dict, stop: CancelCheck, out: Callable[[Clip], None]) -> None:
    """Qwen2.5-Omni's reading: the talker's codes through :class:`VoiceStream`."""
    speaker = _dit_voices(model)[0]
    codes = min(4096, CODES_PER_TOKEN * given["thinker_max_new_tokens"])
    config = model.talker.config
    eos = [config.tts_codec_pad_token_id, config.tts_codec_end_token_id]  # the composite's default end codes
    voice = VoiceStream(model, speaker, codes, eos, out, stop.cancel.is_set)
    with contextlib.suppress(Spoken):  # raised when the talker ends: the audio has been made already
        model.generate(**given, speaker=speaker, talker_max_new_tokens=codes, talker_eos_token_id=eos,
                       talker_stopping_criteria=StoppingCriteriaList([stop]), talker_streamer=voice)


# The omni architectures whose speech head is streamed: the voices it speaks with, and how it reads an answer.
_HEADS = {"qwen2_5_omni": (_dit_voices, _dit_answer), "qwen3_omni_moe": (codec_voice.voices, codec_voice.spoken_answer)}
SPEAKING = tuple(_HEADS)


def speaks(model: torch.nn.Module) -> bool:
    """Whether ``model`` was loaded with a speech head streamed here and a voice to speak with."""
    head = _HEADS.get(model.config.model_type)
    return bool(getattr(model, "has_talker", False) and head and head[0](model))


def spoken_answer(model: torch.nn.Module, run: dict, stop: CancelCheck, out: Callable[[Clip], None]) -> None:
    """Answer ``run`` (the text path's ``generate`` arguments) in text and in the model's first voice, handing
    each chunk of audio to ``out`` as (sample rate, mono float32 samples) as soon as it is made."""
    given = {(f"thinker_{key}" if key in _THINKER_ONLY else key): value for key, value in run.items()
             if key != "prefill_chunk_size"}  # the talker reads the whole prompt's hidden states: not in chunks
    _HEADS[model.config.model_type][1](model, given, stop, out)


class VoiceStream(BaseStreamer):
    """The talker's streamer: speech codes in, audio chunks out (see the module's docstring)."""

    def __init__(self, model: torch.nn.Module, speaker: str, max_codes: int, eos: list[int],
                 out: Callable[[Clip], None], stopped: Callable[[], bool]) -> None:
        """``max_codes``: the talker's limit (the noise is drawn for that many); ``eos``: the codes that end
        speech; ``out`` receives each chunk; ``stopped``: whether Stop was pressed (nothing more is vocoded)."""
        token2wav = model.token2wav
        if token2wav.dtype != torch.float32:
            token2wav.float()  # as the composite does: the vocoder runs in float32
        self._dit, self._vocoder = token2wav.code2wav_dit_model, token2wav.code2wav_bigvgan_model
        params = model.speaker_map[speaker]
        device = next(token2wav.parameters()).device
        self._cond = params["cond"].to(device).float().reshape(1, -1)
        self._reference = params["ref_mel"].to(device).float().reshape(1, *params["ref_mel"].shape[-2:])
        block, self._repeats = self._dit.config.block_size, self._dit.repeats
        self._block, self._past, self._future = block, 2 * block, block
        self._noise = torch.randn(1, max_codes * self._repeats, self._dit.mel_dim, device=device)
        self._eos, self._out, self._stopped = set(eos), out, stopped
        self._codes: list[int] = []
        self._mel = torch.empty(1, self._dit.mel_dim, 0, device=device)  # every chunk's new frames, in order
        self._prompt, self._ended = True, False

    def put(self, value: torch.Tensor) -> None:
        """The talker's prompt (skipped), then one code a step; a chunk is vocoded once its window's codes exist."""
        if self._prompt:
            self._prompt = False
            return
        code = int(value.reshape(-1)[0])
        self._ended = self._ended or code in self._eos
        if self._ended:
            return
        self._codes.append(code)
        if len(self._codes) * self._repeats >= self._next_end() + self._future:
            self._emit(finished=False)

    def end(self) -> None:
        """The talker has stopped: vocode what is left (unless Stop cut it short), then skip the composite's
        own vocoding of the whole sequence."""
        if len(self._codes) * self._repeats > self._mel.shape[-1] and not self._stopped():
            self._emit(finished=True)
        raise Spoken

    def _next_end(self) -> int:
        """Where the next chunk's mel frames end: the first chunk is 3 blocks, each later one as long as all
        before it and 3 blocks more (3, 6, 12), up to ``MAX_BLOCKS``: a window's cost on a GPU is mostly fixed
        (launches), so longer chunks make more audio for it once the first has started the voice."""
        done = self._mel.shape[-1]
        return done + min(done + 3 * self._block, MAX_BLOCKS * self._block)

    def _emit(self, finished: bool) -> None:
        """Solve the next chunk's window, append its new mel frames, vocode them with their left context."""
        frames, done = len(self._codes) * self._repeats, self._mel.shape[-1]
        new_until = frames if finished else self._next_end()
        start, stop = max(done - self._past, 0), frames if finished else new_until + self._future
        window = self._solve(start, stop)
        self._mel = torch.cat([self._mel, window[:, :, done - start:new_until - start]], dim=-1)
        begin = max(done - 2 * OVERLAP, 0)
        audio = self._vocoder(self._mel[:, :, begin:]).reshape(-1)
        hop = audio.shape[0] // (new_until - begin)
        keep_from = 0 if done == 0 else done - OVERLAP
        keep_to = new_until if finished else new_until - OVERLAP
        self._out((SAMPLE_RATE, audio[(keep_from - begin) * hop:(keep_to - begin) * hop].float().numpy()))

    def _solve(self, start: int, stop: int) -> torch.Tensor:
        """Mel frames [start, stop) (batch, mel bins, frames): the DiT's flow from the noise, given their codes."""
        dit = self._dit
        codes = torch.tensor(self._codes[start // self._repeats:stop // self._repeats], device=self._noise.device)
        codes = codes.masked_fill(codes >= dit.text_embed.codec_embed.num_embeddings, 0)[None]  # as Qwen's code
        speaker = self._cond.unsqueeze(1).repeat(1, stop - start, 1)

        def flow(time: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
            guided, free = dit(hidden_states=mel, quantized_code=codes, speaker_embedding=speaker,
                               condition_vector=self._reference, time_step=time, apply_cfg=True).chunk(2, dim=0)
            return guided + (guided - free) * GUIDANCE

        times = torch.linspace(0, 1, STEPS, device=codes.device)
        times = times + SWAY * (torch.cos(torch.pi / 2 * times) - 1 + times)
        return RungeKutta4ODESolver(flow, self._noise[:, start:stop]).integrate(times)[-1].permute(0, 2, 1)
