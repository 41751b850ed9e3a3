"""Typed turns (the history plus the new message) -> the model's chat-template messages, media decoded.

Each file part is converted by its modality's entry in :mod:`mmdemo.modalities`; the newest media stay in
the context within the budget, older ones become short placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mmdemo.engines.base import Capabilities
from mmdemo.errors import UserError
from mmdemo.modalities import MODALITIES, Budget, Context, unrecognised
from mmdemo.turns import Part, Turn

MAX_FILES = 16  # files one message may carry (each is decoded; the budget keeps at most a few in the context)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
EMPTY = "The message is empty. Type a question, or attach an image, a video or an audio clip."


@dataclass
class Prepared:
    """The model's messages and what the user should be told about them."""

    messages: list[dict]
    notices: list[str] = field(default_factory=list)
    transcripts: list[tuple[str, str]] = field(default_factory=list)  # (clip name, text) of the new message


def clean_text(text: str) -> str:
    """Strip control characters (keeping newlines and tabs) and surrounding whitespace."""
    return _CONTROL.sub("", text or "").strip()


def check_file_count(count: int) -> None:
    """Refuse a message with more files than :data:`MAX_FILES`."""
    if count > MAX_FILES:
        raise UserError(f"This message has {count} files; send at most {MAX_FILES} at a time.")


def _merged(history: Sequence[Turn], new: Turn) -> list[tuple[str, list[tuple[Part, bool]]]]:
    """Turns whose roles alternate (chat templates expect it), starting with the user; each part with
    whether it belongs to the new message."""
    turns: list[tuple[str, list[tuple[Part, bool]]]] = []
    for turn, is_new in [*((t, False) for t in history), (new, True)]:
        parts = [(p, is_new) for p in turn.parts]
        if turns and turns[-1][0] == turn.role:
            turns[-1][1].extend(parts)
        else:
            turns.append((turn.role, parts))
    while turns and turns[0][0] != "user":
        turns.pop(0)
    return turns


def _over_budget(turns: list[tuple[str, list[tuple[Part, bool]]]], budget: Budget) -> tuple[set[int], list[str]]:
    """Ids of the older media parts beyond each modality's context limit, and what to tell the user."""
    dropped: set[int] = set()
    notices = []
    for modality in MODALITIES.values():
        limit = getattr(budget, modality.context_limit)
        found = [p for _, parts in reversed(turns) for p, _ in reversed(parts) if p.kind == modality.name]
        dropped |= {id(p) for p in found[limit:]}
        if len(found) > limit:
            count, noun = len(found) - limit, modality.noun
            notices.append(f"Only the newest {limit} {noun}s stay in the model's context; "
                           f"{count} older {noun}{'s were' if count > 1 else ' was'} left out.")
    return dropped, notices


def build_messages(
    history: Sequence[Turn],
    new: Turn,
    *,
    system_prompt: str,
    capabilities: Capabilities,
    budget: Budget,
    transcribe: Callable[[np.ndarray], str] | None = None,
) -> Prepared:
    """Turn the history and the new message into chat-template messages with decoded media."""
    new = Turn("user", tuple(p for p in new.parts if p.kind != "text" or clean_text(p.text)))
    if not new.parts:
        raise UserError(EMPTY)
    check_file_count(len(new.files))
    turns = _merged(history, new)
    dropped, notices = _over_budget(turns, budget)
    prepared = Prepared(messages=[], notices=notices)
    if system_prompt.strip():
        prepared.messages.append({"role": "system", "content": [{"type": "text", "text": clean_text(system_prompt)}]})
    for role, parts in turns:
        content = []
        for part, is_new in parts:
            ctx = Context(capabilities, budget, transcribe, is_new, prepared.notices, prepared.transcripts)
            content += _convert(part, ctx, id(part) in dropped)
        if content:
            prepared.messages.append({"role": role, "content": content})
    return prepared


def _convert(part: Part, ctx: Context, dropped: bool) -> list[dict]:
    """A part's content parts; a history item that no longer loads becomes a placeholder instead of failing
    the turn."""
    if part.kind == "text":
        text = clean_text(part.text)
        return [{"type": "text", "text": text}] if text else []
    if part.kind not in MODALITIES:
        if ctx.new:
            raise UserError(unrecognised(part.name))
        return []
    if dropped:
        return [{"type": "text", "text": f"[an earlier {part.kind} was removed to save context]"}]
    try:
        return MODALITIES[part.kind].convert(part, ctx)
    except UserError:
        if ctx.new:
            raise
        return [{"type": "text", "text": f"[an earlier {part.kind} could not be read]"}]
