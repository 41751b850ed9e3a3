"""Known checkpoints: the per-device defaults and the settings chosen for each on each device."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """A published checkpoint: what it is, for the README and the page."""

    model_id: str
    licence: str
    size: str


# Processor settings per architecture (config.model_type) and device, passed at call time as
# ``processor_kwargs``, so a local copy of a checkpoint is treated like its Hub id.
# SmolVLM's published processor upscales every image to 2048 px and cuts it into 17 tiles
# (~1 100 image tokens, ~16 s to first token on a laptop CPU). On CPU one 512 px tile (64 tokens)
# answers in about a second; on a GPU a 1536 px grid keeps detail for documents and charts.
PROCESSOR_KWARGS: dict[str, dict[str, dict]] = {
    "smolvlm": {
        "cpu": {"images_kwargs": {"do_image_splitting": False, "size": {"longest_edge": 512}}},
        "cuda": {"images_kwargs": {"do_image_splitting": True, "size": {"longest_edge": 1536}}},
    },
}

PRESETS: dict[str, Preset] = {
    p.model_id: p
    for p in (
        Preset("Qwen/Qwen2.5-Omni-7B", "Apache-2.0", "10.7B parameters (7B thinker), 22 GB in bf16"),
        Preset("HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "Apache-2.0", "256M parameters, 0.5 GB in bf16"),
        Preset("HuggingFaceTB/SmolVLM2-500M-Video-Instruct", "Apache-2.0", "500M parameters, 1.0 GB in bf16"),
        Preset("openai/whisper-base", "Apache-2.0", "74M parameters, 0.3 GB in fp32"),
        Preset("openai/whisper-small", "Apache-2.0", "244M parameters, 1.0 GB in fp32"),
    )
}

DEFAULT_MODEL = {"cuda": "Qwen/Qwen2.5-Omni-7B", "cpu": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"}
DEFAULT_ASR_MODEL = {"cuda": "openai/whisper-small", "cpu": "openai/whisper-base"}


def default_model(device: str) -> str:
    """The chat model used when ``--model`` is not given."""
    return DEFAULT_MODEL["cuda" if device.startswith("cuda") else "cpu"]


def default_asr_model(device: str) -> str:
    """The Whisper checkpoint used when ``--asr-model`` is not given."""
    return DEFAULT_ASR_MODEL["cuda" if device.startswith("cuda") else "cpu"]


def processor_kwargs(model_type: str, device: str) -> dict:
    """Call-time processor settings for an architecture on ``device`` (empty: the checkpoint's own)."""
    per_device = PROCESSOR_KWARGS.get(model_type, {})
    return dict(per_device.get("cuda" if device.startswith("cuda") else "cpu", {}))
