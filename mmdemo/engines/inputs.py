"""How a request becomes model inputs: the processor's chat template, user text that cannot forge control
tokens, image settings that follow the processor family, an image-token budget that holds for any
checkpoint, and audio padded to the clips' length rather than the feature extractor's maximum."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from PIL import Image

from mmdemo.engines.thinking import detect
from mmdemo.errors import UserError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# Image tokens one image may become, per device: on a 2-core CPU each image token costs ~4 ms of prefill
# for a 256M model, far more for larger ones; on a GPU detail (documents, charts) is worth more tokens.
IMAGE_TOKENS = {"cpu": 256, "cuda": 1280}
_WORD_JOINER = "\u2060"  # invisible; splits a control token typed by a user into plain text
_AUDIO_PAD_S = 2  # clips are padded to a multiple of this (Qwen-Omni's audio encoder reads 2 s windows)
PREFILL_CHUNK = 2048  # prompt tokens per forward pass of a long prompt


def image_settings(processor: object, max_tokens: int) -> dict:
    """Call-time ``images_kwargs`` that keep one image within ``max_tokens`` for the processor families
    whose size knobs mmdemo knows (others are held to the budget by :class:`InputBuilder`'s downscaling)."""
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None:
        return {}
    size = getattr(image_processor, "size", None) or {}
    if hasattr(image_processor, "do_image_splitting") and hasattr(image_processor, "max_image_size"):
        # Idefics3 / SmolVLM: the image is resized to ``size`` and cut into ``max_image_size`` tiles of
        # ``image_seq_len`` tokens each, plus one downscaled global view.
        tile = int(image_processor.max_image_size["longest_edge"])
        per_tile = int(getattr(processor, "image_seq_len", 64))
        side = math.isqrt(max(0, max_tokens // per_tile - 1))  # tiles per side, the global view kept
        if side < 2 or not image_processor.do_image_splitting:
            return {"do_image_splitting": False, "size": {"longest_edge": tile}}
        return {"do_image_splitting": True, "size": {"longest_edge": min(tile * side, size["longest_edge"])}}
    merge = getattr(image_processor, "merge_size", None)
    patch = getattr(image_processor, "patch_size", None)
    if merge and patch and hasattr(image_processor, "temporal_patch_size"):
        # Qwen2-VL family (Qwen2.5-VL, Qwen2.5-Omni, Qwen3-VL, Qwen3.5): one token per merged patch, between
        # the checkpoint's own pixel limits (``size``'s edges are pixel counts here).
        most = min(int(size["longest_edge"]), max_tokens * (patch * merge) ** 2)
        return {"size": {"shortest_edge": min(int(size["shortest_edge"]), most), "longest_edge": most}}
    if hasattr(image_processor, "max_soft_tokens"):  # Gemma 4: a fixed menu of token counts
        allowed = [n for n in (70, 140, 280, 560, 1120) if n <= min(max_tokens, image_processor.max_soft_tokens)]
        return {"max_soft_tokens": allowed[-1]} if allowed else {}
    return {}


class InputBuilder:
    """Turns chat messages into the tensors ``generate`` takes, for one loaded processor."""

    def __init__(self, processor: object, max_image_tokens: int, image_token_id: int | None,
                 processor_kwargs: dict | None = None) -> None:
        """``processor_kwargs`` replace mmdemo's own settings for the processor family when given."""
        self.processor = processor
        self.max_image_tokens = max_image_tokens
        self.image_token_id = image_token_id
        if processor_kwargs is None:
            images = image_settings(processor, max_image_tokens)
            processor_kwargs = {"images_kwargs": images} if images else {}
        self.kwargs = processor_kwargs
        self.sanitize = True  # the library's own control-token guard; off when this processor cannot use it
        self.system_as_text = self._template_prints_lists()  # Gemma's template reads a system prompt as a string
        tokenizer = processor.tokenizer  # type: ignore[attr-defined]
        known = lambda token: tokenizer.convert_tokens_to_ids(token) not in (None, tokenizer.unk_token_id)  # noqa: E731
        self.thinking = detect(getattr(processor, "chat_template", None), known)
        self.marks = (self.thinking.open_token, self.thinking.close) if self.thinking else ()  # open, close
        self.mark_ids = tuple(tokenizer.convert_tokens_to_ids(list(self.marks))) if self.marks else None
        self._control = sorted((t.content for t in tokenizer.added_tokens_decoder.values() if len(t.content) > 1),
                               key=len, reverse=True)

    def check_sanitizer(self, probe: list[dict]) -> None:
        """Try the library's control-token guard on ``probe``; when this processor fails with it (Idefics3 in
        transformers 5.24 needs offsets the marked encoding lacks), escape control tokens here instead."""
        try:
            self._template(probe, True)
        except (ValueError, TypeError) as exc:
            log.info("the processor cannot sanitize control tokens (%s); escaping them in user text instead", exc)
            self.sanitize = False

    def _template_prints_lists(self) -> bool:
        """Whether the chat template prints a system message given as a list of parts as that list (Gemma 4's
        ``| trim`` does: ``[{'type': 'text', ...}]``); SmolVLM's needs the list. The messages then take the
        shape the template reads."""
        marker = "mmdemo-system-probe"
        probe = [{"role": "system", "content": [{"type": "text", "text": marker}]},
                 {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
        try:
            shown = self.processor.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)  # type: ignore
        except Exception:  # a template that refuses a system message: the messages stay as they are
            return False
        return f"'text': '{marker}'" in str(shown)

    def build(self, messages: list[dict], dtype: object, device: str, think: bool = False) -> dict:
        """The model's inputs for ``messages``; images are shrunk until each is within the token budget.
        ``think``: the template's ``enable_thinking`` switch, where it has one (always passed: a template that
        thinks by default does not, unasked)."""
        switch = {"enable_thinking": think} if self.thinking and self.thinking.switch else {}
        try:
            inputs = self._template(messages, self.sanitize, switch)
            for attempt in range(4):
                over = self._image_tokens_per_image(inputs, messages)
                if over is None or over <= self.max_image_tokens:
                    break
                if attempt == 3:
                    raise UserError(
                        f"This model turns each image into {over:.0f} tokens, more than the "
                        f"{self.max_image_tokens} this server allows per image. Send text only, or start the "
                        "app with a larger --max-image-tokens.")
                scale = (self.max_image_tokens / over) ** 0.5 * 0.95
                messages = _map_parts(messages, "image", lambda p, s=scale: {**p, "image": _scaled(p["image"], s)})
                inputs = self._template(messages, self.sanitize, switch)
        except (ValueError, TypeError) as exc:
            log.exception("processor failed on the request")
            raise UserError(f"The model's processor could not prepare this request: {exc}") from exc
        return inputs.to(device, dtype=dtype)

    def opens_reasoning(self, ids: object) -> bool:
        """Whether a prompt of token ``ids`` (batch of one) leaves reasoning open: the model thinks first."""
        tail = self.processor.tokenizer.decode(ids[0, -8:])  # type: ignore[attr-defined,index]
        return bool(self.thinking and self.thinking.opened_by(tail))

    def _template(self, messages: list[dict], sanitize: bool, switch: dict | None = None) -> dict:
        if not sanitize:
            messages = _map_parts(messages, "text", lambda p: {**p, "text": self._escape(p["text"])})
        if self.system_as_text:
            messages = [{**m, "content": "\n".join(p["text"] for p in m["content"] if p.get("type") == "text")}
                        if m["role"] == "system" and isinstance(m.get("content"), list) else m for m in messages]
        kwargs = {**self.kwargs, **self._audio_kwargs(messages), **_video_kwargs(messages)}
        messages = _map_parts(messages, "video", lambda p: {"type": "video", "video": p["video"]})
        return self.processor.apply_chat_template(  # type: ignore[attr-defined]
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
            sanitize_control_tokens=sanitize, processor_kwargs={"return_tensors": "pt", **kwargs}, **(switch or {}),
        )

    def _escape(self, text: str) -> str:
        for token in self._control:
            if token in text:
                text = text.replace(token, token[0] + _WORD_JOINER + token[1:])
        return text

    def _audio_kwargs(self, messages: list[dict]) -> dict:
        """Whisper-style feature extractors pad every clip to their full window (300 s for Qwen2.5-Omni):
        pad to the longest clip of the request instead."""
        extractor = getattr(self.processor, "feature_extractor", None)
        lengths = [len(part["audio"]) for part in content_parts(messages) if part.get("type") == "audio"]
        if not lengths or not hasattr(extractor, "n_samples"):
            return {}
        step = _AUDIO_PAD_S * extractor.sampling_rate
        length = min(extractor.n_samples, -(-max(lengths) // step) * step)
        return {"audio_kwargs": {**self.kwargs.get("audio_kwargs", {}), "max_length": length}}

    def _image_tokens_per_image(self, inputs: dict, messages: list[dict]) -> float | None:
        images = sum(part.get("type") == "image" for part in content_parts(messages))
        if not images or self.image_token_id is None:
            return None
        return int((inputs["input_ids"] == self.image_token_id).sum()) / images


def _video_kwargs(messages: list[dict]) -> dict:
    """Videos arrive as frames already sampled (``mmdemo.video``): the processor samples nothing more and
    learns each frame's time from the metadata (SmolVLM and Qwen3-VL write the times into the prompt,
    Qwen2.5-VL spaces its time positions by them)."""
    videos = [part for part in content_parts(messages) if part.get("type") == "video"]
    if not videos:
        return {}
    from transformers.video_utils import VideoMetadata

    metadata = [VideoMetadata(total_num_frames=max(len(v["video"]), round(v["duration"] * v["fps"])), fps=v["fps"],
                              duration=v["duration"], frames_indices=[round(t * v["fps"]) for t in v["timestamps"]],
                              width=v["video"][0].width, height=v["video"][0].height) for v in videos]
    return {"do_sample_frames": False, "video_metadata": metadata}


def prefill_chunks(messages: list[dict], prompt_tokens: int, chunk: int | None = PREFILL_CHUNK) -> dict:
    """``generate``'s ``prefill_chunk_size`` for a prompt longer than ``chunk`` tokens (None: never), so that the
    prompt is read ``chunk`` tokens at a time and only one chunk's activations are held at once (a long video,
    many pictures). Not where the prompt has sound: transformers encodes pictures and video ahead of the prompt,
    not audio, and cannot split raw inputs."""
    if chunk is None or prompt_tokens <= chunk or any(p.get("type") == "audio" for p in content_parts(messages)):
        return {}
    return {"prefill_chunk_size": chunk}


def content_parts(messages: list[dict]) -> list[dict]:
    """Every typed part of the messages, in order."""
    return [part for m in messages if isinstance(m.get("content"), list) for part in m["content"]]


def _map_parts(messages: list[dict], kind: str, fn: Callable[[dict], dict]) -> list[dict]:
    """``messages`` with every part of type ``kind`` replaced by ``fn(part)``."""
    def part(p: dict) -> dict:
        return fn(p) if p.get("type") == kind else p

    return [{**m, "content": [part(p) for p in m["content"]]} if isinstance(m.get("content"), list) else m
            for m in messages]


def _scaled(image: Image.Image, scale: float) -> Image.Image:
    return image.resize((max(28, int(image.width * scale)), max(28, int(image.height * scale))), Image.BICUBIC)


def placeholder_id(processor: object, name: str) -> int | None:
    """Id of the processor's placeholder token (``image_token``, ``audio_token``), if it has one."""
    token = getattr(processor, name, None)
    token_id = processor.tokenizer.convert_tokens_to_ids(token) if isinstance(token, str) else None
    return token_id if token_id != processor.tokenizer.unk_token_id else None


def media_tokens(ids: torch.Tensor, messages: list[dict], token_ids: dict[str, int]) -> dict[str, int]:
    """Prompt tokens per modality (``token_ids``: each modality's placeholder); SmolVLM's video frames are image
    tokens, counted as the video's."""
    counts = {name: count for name, token in token_ids.items() if (count := int((ids == token).sum()))}
    kinds = {p.get("type") for p in content_parts(messages)}
    if {"video", "image"} & kinds == {"video"} and "image" in counts and "video" not in counts:
        counts["video"] = counts.pop("image")
    return counts


def probe(image: bool) -> list[dict]:
    """A short request with every input the model takes (an image where it reads them): what warm-up answers."""
    content: list[dict] = [{"type": "text", "text": "Hello!"}]
    if image:
        content.insert(0, {"type": "image", "image": Image.new("RGB", (64, 64), "white")})
    return [{"role": "user", "content": content}]
