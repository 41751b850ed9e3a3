"""The model presets: published checkpoints per role, what each takes and gives, and per-device settings.

``--model`` (and the page's model picker) accept a preset name or any checkpoint id/path; for the latter
what the model takes is read from its config and processor when it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmdemo.errors import UserError

Role = Literal["chat", "asr", "tts", "search", "draw"]


@dataclass(frozen=True)
class Preset:
    """A published checkpoint: what it is, for the model picker, the README and the model card."""

    name: str
    model_id: str
    role: Role
    licence: str
    size: str
    takes: tuple[str, ...] = ("text",)
    gives: tuple[str, ...] = ("text",)
    cpu_speed: str = ""  # measured on a 2-core CPU (bench/models.py, docs/PERFORMANCE.md), shown in the picker
    gguf: str = ""  # its llama.cpp build (--engine llamacpp): a Hub repo of GGUF weights and projector


PRESETS_LIST: tuple[Preset, ...] = (
    # The current generation (late 2026). "thinking": reasons before answering when "Think first" is on.
    Preset("qwen3-omni-30b-a3b", "Qwen/Qwen3-Omni-30B-A3B-Instruct", "chat", "Apache-2.0",
           "35.3B parameters (31.7B thinker; experts: about 3B active per token), 63 GB in bf16 without its speech "
           "head: one 80 GB GPU", ("text", "image", "audio", "video"), ("text", "speech", "boxes"),
           gguf="ggml-org/Qwen3-Omni-30B-A3B-Instruct-GGUF"),
    Preset("gemma-4-e4b", "google/gemma-4-E4B-it", "chat", "Apache-2.0",
           "4B effective parameters (more with per-layer embeddings), about 16 GB in bf16",
           ("text", "image", "audio", "video"), ("text", "thinking"), gguf="ggml-org/gemma-4-E4B-it-GGUF"),
    Preset("gemma-4-e2b", "google/gemma-4-E2B-it", "chat", "Apache-2.0",
           "2B effective, 5.1B with per-layer embeddings, 10 GB in bf16", ("text", "image", "audio", "video"),
           ("text", "thinking"), "2-core CPU: 2.8 s to first token with a photo, 4.6 tok/s",
           gguf="ggml-org/gemma-4-E2B-it-GGUF"),
    Preset("qwen3.5-9b", "Qwen/Qwen3.5-9B", "chat", "Apache-2.0", "9B parameters, about 19 GB in bf16",
           ("text", "image", "video"), ("text", "thinking", "boxes")),
    Preset("qwen3.5-4b", "Qwen/Qwen3.5-4B", "chat", "Apache-2.0", "4B parameters, about 9 GB in bf16",
           ("text", "image", "video"), ("text", "thinking", "boxes")),
    Preset("qwen3.5-2b", "Qwen/Qwen3.5-2B", "chat", "Apache-2.0", "2B parameters, about 4.5 GB in bf16",
           ("text", "image", "video"), ("text", "thinking", "boxes")),
    Preset("qwen3.5-0.8b", "Qwen/Qwen3.5-0.8B", "chat", "Apache-2.0", "0.9B parameters, about 1.8 GB in bf16",
           ("text", "image", "video"), ("text", "thinking", "boxes"),
           "2-core CPU: 3.7 s to first token with a photo, 13.7 tok/s"),
    Preset("qwen3-vl-8b", "Qwen/Qwen3-VL-8B-Instruct", "chat", "Apache-2.0", "8.8B parameters, 17.5 GB in bf16",
           ("text", "image", "video"), ("text", "boxes")),
    Preset("qwen3-vl-4b", "Qwen/Qwen3-VL-4B-Instruct", "chat", "Apache-2.0", "4.4B parameters, 8.9 GB in bf16",
           ("text", "image", "video"), ("text", "boxes")),
    Preset("qwen3-vl-2b", "Qwen/Qwen3-VL-2B-Instruct", "chat", "Apache-2.0", "2.1B parameters, 4.3 GB in bf16",
           ("text", "image", "video"), ("text", "boxes"), "2-core CPU: 4.8 s to first token with a photo, 8.0 tok/s"),
    Preset("qwen2.5-omni-7b", "Qwen/Qwen2.5-Omni-7B", "chat", "Apache-2.0",
           "10.7B parameters (7B thinker), 22 GB in bf16", ("text", "image", "audio", "video"), ("text", "speech"),
           gguf="ggml-org/Qwen2.5-Omni-7B-GGUF"),
    Preset("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct", "chat", "Apache-2.0", "8.3B parameters, 17 GB in bf16",
           ("text", "image", "video"), ("text", "boxes"), gguf="ggml-org/Qwen2.5-VL-7B-Instruct-GGUF"),
    Preset("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct", "chat", "Qwen Research License (non-commercial)",
           "3.8B parameters, 7.5 GB in bf16", ("text", "image", "video"), ("text", "boxes"),
           gguf="ggml-org/Qwen2.5-VL-3B-Instruct-GGUF"),
    Preset("smolvlm2-2.2b", "HuggingFaceTB/SmolVLM2-2.2B-Instruct", "chat", "Apache-2.0",
           "2.2B parameters, 4.5 GB in bf16", ("text", "image", "video"), gguf="ggml-org/SmolVLM2-2.2B-Instruct-GGUF"),
    Preset("smolvlm2-500m", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct", "chat", "Apache-2.0",
           "500M parameters, 1.0 GB in bf16", ("text", "image", "video"),
           gguf="ggml-org/SmolVLM2-500M-Video-Instruct-GGUF"),
    Preset("smolvlm2-256m", "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "chat", "Apache-2.0",
           "256M parameters, 0.5 GB in bf16", ("text", "image", "video"), ("text",),
           "2-core CPU: 1.0 s to first token with a photo, 48 tok/s",
           gguf="ggml-org/SmolVLM2-256M-Video-Instruct-GGUF"),
    Preset("whisper-small", "openai/whisper-small", "asr", "Apache-2.0", "244M parameters, 1.0 GB in fp32",
           ("audio",)),
    Preset("whisper-base", "openai/whisper-base", "asr", "Apache-2.0", "74M parameters, 0.3 GB in fp32", ("audio",)),
    Preset("mms-tts-eng", "facebook/mms-tts-eng", "tts", "CC-BY-NC-4.0 (non-commercial)",
           "36M parameters, 0.15 GB", ("text",), ("speech",)),
    Preset("clip-large", "openai/clip-vit-large-patch14", "search", "MIT", "428M parameters, 1.7 GB",
           ("text", "image"), ("vectors",)),
    Preset("clip-base", "openai/clip-vit-base-patch32", "search", "MIT", "151M parameters, 0.6 GB",
           ("text", "image"), ("vectors",)),
    Preset("sd-1.5", "stable-diffusion-v1-5/stable-diffusion-v1-5", "draw", "CreativeML OpenRAIL-M",
           "1.1B parameters, 2 GB in fp16", ("text",), ("image",)),
)
PRESETS: dict[str, Preset] = {p.model_id: p for p in PRESETS_LIST}
BY_NAME: dict[str, Preset] = {p.name: p for p in PRESETS_LIST}
BY_GGUF: dict[str, Preset] = {p.gguf: p for p in PRESETS_LIST if p.gguf}

# The default checkpoint per role and device (None: off by default there).
DEFAULTS: dict[Role, dict[str, str | None]] = {
    "chat": {"cuda": "Qwen/Qwen2.5-Omni-7B", "cpu": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"},
    "asr": {"cuda": "openai/whisper-small", "cpu": "openai/whisper-base"},
    "tts": {"cuda": "facebook/mms-tts-eng", "cpu": "facebook/mms-tts-eng"},
    "search": {"cuda": "openai/clip-vit-large-patch14", "cpu": "openai/clip-vit-base-patch32"},
    "draw": {"cuda": "stable-diffusion-v1-5/stable-diffusion-v1-5", "cpu": None},
}

def device_kind(device: str) -> str:
    """``cuda`` for any CUDA device, else ``cpu``: the key of per-device defaults."""
    return "cuda" if device.startswith("cuda") else "cpu"


def default(role: Role, device: str) -> str | None:
    """The checkpoint used for ``role`` when its flag is not given (``None``: off on this device)."""
    return DEFAULTS[role][device_kind(device)]


def resolve(name_or_id: str | None, role: Role, device: str) -> str | None:
    """A flag's value as a checkpoint: a preset name becomes its id, ``off`` turns the role off, nothing
    means the device's default; any other value is a Hub id or a local path."""
    if name_or_id is None or name_or_id == "":
        return default(role, device)
    if name_or_id.lower() == "off":
        return None
    preset = BY_NAME.get(name_or_id.lower())
    return preset.model_id if preset else name_or_id


def gguf(name_or_id: str | None, device: str) -> str:
    """``--model`` for the llama.cpp engine: a preset (by name or checkpoint id; nothing means the device's
    default) becomes its GGUF build; any other value is a Hub repo of GGUF files or a local ``.gguf`` file."""
    checkpoint = resolve(name_or_id, "chat", device) or ""
    preset = PRESETS.get(checkpoint)
    if preset is None:
        return checkpoint
    if not preset.gguf:
        raise UserError(f"{preset.name} has no llama.cpp build among the presets; name a Hub repo of GGUF files "
                        "or a .gguf file, or use --engine local.")
    return preset.gguf


def choices(role: Role) -> list[Preset]:
    """The presets of one role, in picker order."""
    return [p for p in PRESETS_LIST if p.role == role]
