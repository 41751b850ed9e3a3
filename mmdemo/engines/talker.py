"""The model's own voice: an omni model (thinker, talker, vocoder) reads its answer aloud itself.

transformers' composite ``generate`` runs the thinker (the text streams through its streamer as on the text
path), then the talker (speech codes) and the vocoder (a waveform), in one piece: the audio comes once the
text is complete. Generation settings and pixels are the thinker's (``thinker_`` prefix); the processor's
other tensors go to both, as the library routes them; Stop reaches the talker through its stopping criteria
and the vocoder through the engine's per-layer cancel hooks.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

SAMPLE_RATE = 24_000  # Qwen2.5-Omni's vocoder (BigVGAN at 24 kHz)
CODES_PER_TOKEN = 25  # speech codes (50 a second) per answer token at most: a bound, speech needs ~15
# the thinker's alone: generation settings, and the pixels (the talker takes the grids, and refuses pixels)
_THINKER_ONLY = ("streamer", "stopping_criteria", "max_new_tokens", "do_sample", "temperature", "top_p",
                 "pad_token_id", "pixel_values", "pixel_values_videos")


def speaks(model: torch.nn.Module) -> bool:
    """Whether ``model`` was loaded with its speech head and a voice to speak with."""
    return bool(getattr(model, "has_talker", False) and getattr(model, "speaker_map", None))


def spoken_answer(model: torch.nn.Module, run: dict, stop: StoppingCriteria) -> tuple[int, np.ndarray]:
    """Answer ``run`` (the text path's ``generate`` arguments) in text and in the model's first voice:
    (sample rate, mono float32 samples)."""
    given = {(f"thinker_{key}" if key in _THINKER_ONLY else key): value for key, value in run.items()}
    speaker = next(iter(model.speaker_map))
    codes = min(4096, CODES_PER_TOKEN * run["max_new_tokens"])
    _, wave = model.generate(**given, speaker=speaker, talker_max_new_tokens=codes,
                             talker_stopping_criteria=StoppingCriteriaList([stop]))
    return SAMPLE_RATE, wave.reshape(-1).float().cpu().numpy()
