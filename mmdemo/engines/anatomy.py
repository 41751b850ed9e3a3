"""What a loaded multimodal model is made of: encoders per modality, projector, language decoder."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import torch

from mmdemo.engines.base import Capabilities, GenerationStats
from mmdemo.engines.talker import speaks
from mmdemo.grounding import json_box_frame

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


def _encoders(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    found: dict[str, tuple[str, torch.nn.Module]] = {}
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if name.startswith(_SPEECH) or any(name.startswith(outer + ".") for outer in found):
            continue
        role = next((r for r in ("vision encoder", "audio encoder") if leaf in _ROLES[r]), None)
        if role:
            found[name] = (role, module)
    return list(found.values())


class StageClock:
    """Times each encoder's forward pass for the request running on the current thread."""

    def __init__(self, model: torch.nn.Module, device: str) -> None:
        self._local = threading.local()
        self._sync = device.startswith("cuda")  # GPU work is asynchronous: wait for it to time it
        for role, module in _encoders(model):
            module.register_forward_pre_hook(lambda *_: self._start())
            module.register_forward_hook(lambda *_, role=role: self._stop(role))

    def _now(self) -> float:
        if self._sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _start(self) -> None:
        if getattr(self._local, "stats", None) is not None:
            self._local.started = self._now()

    def _stop(self, role: str) -> None:
        stats = getattr(self._local, "stats", None)
        if stats is not None and getattr(self._local, "started", None) is not None:
            stats.stages[role] = stats.stages.get(role, 0.0) + self._now() - self._local.started
            self._local.started = None

    def kept(self, feature: str) -> None:
        """Note that the request running on this thread took an encoder's output from the cache (``feature``:
        the method, e.g. ``get_image_features``): a stage of no time, so the request's stages say so."""
        stats = getattr(self._local, "stats", None)
        if stats is not None:
            role = "audio encoder" if "audio" in feature else "vision encoder"
            stats.stages.setdefault(f"{role} (encoded before)", 0.0)

    @contextlib.contextmanager
    def measure(self, stats: GenerationStats) -> Iterator[None]:
        """Add the encoders' times to ``stats.stages`` while the block runs on this thread."""
        self._local.stats = stats
        try:
            yield
        finally:
            self._local.stats = None


_SPEECH = ("talker", "token2wav", "code2wav")  # an omni model's speech head: speech codes, then the waveform


def has_audio_encoder(config: object) -> bool:
    """Whether the model (an omni model's thinker) has an audio encoder of its own."""
    thinker = getattr(config, "thinker_config", config)
    return getattr(thinker, "audio_config", None) is not None


def capabilities(model: torch.nn.Module, processor: object, thinking: bool) -> Capabilities:
    """What a loaded transformers model and its processor take and give (``thinking``: its chat template has
    the reasoning switch)."""
    feature_extractor = getattr(processor, "feature_extractor", None)
    rate = getattr(feature_extractor, "sampling_rate", 16000)
    return Capabilities(
        image=getattr(processor, "image_processor", None) is not None,
        audio=feature_extractor is not None and has_audio_encoder(model.config),
        video=getattr(processor, "video_processor", None) is not None,
        logprobs=True,
        audio_sampling_rate=rate,
        max_audio_seconds=getattr(feature_extractor, "n_samples", 30 * rate) / rate,
        context_tokens=getattr(model.config.get_text_config(), "max_position_embeddings", None),
        thinking=thinking,
        speech=speaks(model),
        box_frame=json_box_frame(model.config.model_type),
        parts=model_parts(model),
    )


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
        if role and not name.startswith(_SPEECH):
            counts[role] += _count(module)
            seen.add(name)
    speech = sum(_count(part) for name in _SPEECH if isinstance(part := getattr(model, name, None), torch.nn.Module))
    counts["language decoder"] = _count(model) - sum(counts.values()) - speech
    counts["speech head"] = speech
    return tuple((role, n) for role, n in counts.items() if n)
