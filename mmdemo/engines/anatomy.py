"""What a loaded multimodal model is made of: encoders per modality, projector, language decoder."""

from __future__ import annotations

import torch

# Attribute names the transformers multimodal models give their parts (SmolVLM/Idefics3, Qwen2.5-VL/Omni,
# LLaVA, Gemma 3, ...). Whatever is not an encoder or a projector is the language decoder.
_ROLES = {
    "vision encoder": ("vision_model", "visual", "vision_tower", "vision_encoder", "image_encoder"),
    "audio encoder": ("audio_tower", "audio_model", "audio_encoder"),
    "projector": ("connector", "multi_modal_projector", "mm_projector", "audio_projector", "embed_vision",
                  "embed_audio"),
}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_parts(model: torch.nn.Module) -> tuple[tuple[str, int], ...]:
    """``(role, parameters)`` in data-flow order: encoders → projector → language decoder (and the speech
    head of omni models when it is loaded), counted from the model's own modules."""
    counts = dict.fromkeys(_ROLES, 0)
    seen: set[str] = set()
    for name, module in model.named_modules():
        if any(name.startswith(done + ".") for done in seen):
            continue
        leaf = name.rsplit(".", 1)[-1]
        role = next((r for r, names in _ROLES.items() if leaf in names), None)
        if role and not name.startswith("talker"):
            counts[role] += _count(module)
            seen.add(name)
    talker = getattr(model, "talker", None)
    speech = _count(talker) if isinstance(talker, torch.nn.Module) else 0
    counts["language decoder"] = _count(model) - sum(counts.values()) - speech
    counts["speech head"] = speech
    return tuple((role, n) for role, n in counts.items() if n)
