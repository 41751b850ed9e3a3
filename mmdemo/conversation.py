"""Chat history (Gradio messages) plus the new message -> the model's chat messages.

History items are plain dicts as ``gr.Chatbot`` holds them: ``{"role", "content", "metadata"?}``
where content is a string, a file dict (``{"path": ...}``) or a list of those or of typed parts
(``{"type": "text", "text"}`` / ``{"type": "file", "file": {"path", "mime_type"}}``). Messages with
a metadata title are the UI's own notes (transcripts, notices) and never reach the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mmdemo import media
from mmdemo.engines.base import Capabilities
from mmdemo.errors import UserError

MAX_FILES = 16  # files one message may carry (each is decoded; the budget keeps at most a few in the context)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Budget:
    """How much media one request may carry into the model."""

    max_image_pixels: int = 1024 * 1024
    max_audio_seconds: float = 60.0
    max_images: int = 4
    max_audio: int = 4


@dataclass
class Prepared:
    """The model's messages and what the user should be told about them."""

    messages: list[dict]
    notices: list[str] = field(default_factory=list)
    transcripts: list[tuple[str, str]] = field(default_factory=list)  # (clip name, text) of the new message


@dataclass
class Part:
    """A piece of a message: text, or a file with its kind."""

    kind: str  # "text", "image", "audio" or "other"
    value: str  # the text, or the file path
    new: bool = False
    dropped: bool = False


def clean_text(text: str) -> str:
    """Strip control characters (keeping newlines and tabs) and surrounding whitespace."""
    return _CONTROL.sub("", text or "").strip()


def check_file_count(files: Sequence[str]) -> None:
    """Refuse a message with more files than :data:`MAX_FILES`."""
    if len(files) > MAX_FILES:
        raise UserError(f"This message has {len(files)} files; send at most {MAX_FILES} at a time.")


def parts_of(content: object, new: bool = False) -> list[Part]:
    """Normalise any Gradio message content into text and file parts."""
    items = content if isinstance(content, list | tuple) else [content]
    parts = []
    for item in items:
        if isinstance(item, str):
            parts.append(Part("text", item, new))
        elif isinstance(item, dict) and item.get("type") == "text":
            parts.append(Part("text", item.get("text", ""), new))
        elif isinstance(item, dict) and ("path" in item or "file" in item):
            file = item.get("file", item)
            path = file["path"]
            parts.append(Part(media.media_kind(path, file.get("mime_type")), path, new))
    return parts


def _turns(history: Sequence[dict], text: str, files: Sequence[str]) -> list[tuple[str, list[Part]]]:
    turns: list[tuple[str, list[Part]]] = []

    def add(role: str, parts: list[Part]) -> None:
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(parts)  # chat templates expect roles to alternate
        else:
            turns.append((role, parts))

    for message in history:
        if (message.get("metadata") or {}).get("title") or message.get("role") not in ("user", "assistant"):
            continue
        add(message["role"], parts_of(message.get("content")))
    new_parts = parts_of([{"path": f} for f in files], new=True)
    if text:
        new_parts.append(Part("text", text, True))
    add("user", new_parts)
    while turns and turns[0][0] != "user":
        turns.pop(0)
    return turns


def _apply_budget(turns: list[tuple[str, list[Part]]], budget: Budget) -> list[str]:
    """Keep the newest images and clips within the budget; mark older ones dropped."""
    notices = []
    for kind, limit, label in (("image", budget.max_images, "image"), ("audio", budget.max_audio, "audio clip")):
        found = [p for _, parts in reversed(turns) for p in reversed(parts) if p.kind == kind]
        for part in found[limit:]:
            part.dropped = True
        if len(found) > limit:
            dropped = len(found) - limit
            notices.append(
                f"Only the newest {limit} {label}s stay in the model's context; "
                f"{dropped} older {label}{'s were' if dropped > 1 else ' was'} left out."
            )
    return notices


def build_messages(
    history: Sequence[dict],
    text: str,
    files: Sequence[str],
    *,
    system_prompt: str,
    capabilities: Capabilities,
    budget: Budget,
    transcribe: Callable[[np.ndarray], str] | None = None,
) -> Prepared:
    """Turn history and the new message into chat-template messages with decoded media."""
    text = clean_text(text)
    if not text and not files:
        raise UserError("The message is empty. Type a question, or attach an image or an audio clip.")
    check_file_count(files)
    turns = _turns(history, text, files)
    prepared = Prepared(messages=[], notices=_apply_budget(turns, budget))
    if system_prompt.strip():
        prepared.messages.append({"role": "system", "content": [{"type": "text", "text": clean_text(system_prompt)}]})
    for role, parts in turns:
        content = [c for part in parts if (c := _safe_convert(part, capabilities, budget, transcribe, prepared))]
        if content:
            prepared.messages.append({"role": role, "content": content})
    return prepared


def _safe_convert(
    part: Part, caps: Capabilities, budget: Budget, transcribe: Callable[[np.ndarray], str] | None,
    prepared: Prepared,
) -> dict | None:
    """Convert a part; a history item that no longer loads becomes a placeholder instead of failing the turn."""
    try:
        return _convert(part, caps, budget, transcribe, prepared)
    except UserError:
        if part.new:
            raise
        return {"type": "text", "text": f"[an earlier {part.kind} could not be read]"}


def _convert(
    part: Part, caps: Capabilities, budget: Budget, transcribe: Callable[[np.ndarray], str] | None,
    prepared: Prepared,
) -> dict | None:
    name = media.display_name(part.value)
    if part.kind == "text":
        text = clean_text(part.value)
        return {"type": "text", "text": text} if text else None
    if part.kind == "other":
        if part.new:
            raise UserError(
                f"'{name}' is neither an image nor an audio file (its content was not recognised). Attach "
                f"images ({media.IMAGE_FORMATS}) or audio ({media.AUDIO_FORMATS})."
            )
        return None
    if part.dropped:
        return {"type": "text", "text": f"[an earlier {part.kind} was removed to save context]"}
    if part.kind == "image":
        if not caps.image:
            raise UserError("This model does not take images. Send text or audio, or start it with another --model.")
        loaded = media.load_image(part.value, budget.max_image_pixels)
        _note(prepared, part, loaded.notes)
        return {"type": "image", "image": loaded.data}
    if caps.audio:
        seconds = min(budget.max_audio_seconds, caps.max_audio_seconds)
        loaded = media.load_audio(part.value, caps.audio_sampling_rate, seconds)
        _note(prepared, part, loaded.notes)
        return {"type": "audio", "audio": loaded.data}
    if transcribe is None:
        raise UserError("This model does not take audio and no speech-recognition model is set (--asr-model).")
    loaded = media.load_audio(part.value, 16000, budget.max_audio_seconds)
    _note(prepared, part, loaded.notes)
    transcript = transcribe(loaded.data)
    if part.new:
        prepared.transcripts.append((name, transcript))
    return {"type": "text", "text": f'[Voice clip "{name}", transcribed: {transcript or "(no speech heard)"}]'}


def _note(prepared: Prepared, part: Part, notes: list[str]) -> None:
    if part.new:
        prepared.notices.extend(notes)
