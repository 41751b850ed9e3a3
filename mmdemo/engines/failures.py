"""What the local engine tells a visitor when a model does not load or an answer fails (never a path or a
stack trace; the details go to the server log)."""

from __future__ import annotations

import logging

import torch

from mmdemo.errors import UserError, one_line, shown_name

log = logging.getLogger(__name__)


def load_error(model_id: str, exc: Exception) -> str:
    """Why the model did not load and what to do, naming a local folder by its name only."""
    name = shown_name(model_id)
    where = "model id" if name == model_id else "local folder"
    if isinstance(exc, OSError):
        return (f"Could not load the model from {where} '{name}': no usable checkpoint there, or the Hugging Face "
                "Hub could not be reached. Check the name and the network; offline, set `HF_HUB_OFFLINE=1` and "
                "give a downloaded checkpoint's folder with `--model`. To try the demo without any download: "
                "`python tests/tiny_models.py tiny`, then "
                "`python app.py --model tiny/smolvlm --asr-model tiny/whisper`.")
    return f"Could not load the model from {where} '{name}': {one_line(exc)}"


def generate_error(exc: BaseException) -> Exception:
    """What a visitor is told when generation failed: out of memory (what to do), or a generic error."""
    if isinstance(exc, torch.OutOfMemoryError):
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return UserError(
            "The model ran out of memory on this request. Lower 'Max new tokens', send fewer or smaller "
            "images, or press Clear to shorten the conversation."
        )
    log.error("generation failed", exc_info=exc)
    return RuntimeError("Generation failed on the server; the error is in the server log.")
