"""Gradio's chat formats <-> the core's typed turns: converted here once on the way in and once on the way out.

History items are dicts as ``gr.Chatbot`` holds them: ``{"role", "content", "metadata"?}`` where content is
a string, a file dict (``{"path": ...}``) or a list of those or of typed parts (``{"type": "text", "text"}``
/ ``{"type": "file", "file": {"path", "mime_type"}}``). Messages with a metadata title are the page's own
notes (transcripts, speed figures, notices) and never reach the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mmdemo.turns import Part, Turn


def parts_of(content: object) -> tuple[Part, ...]:
    """Any Gradio message content as typed parts."""
    items = content if isinstance(content, list | tuple) else [content]
    parts = []
    for item in items:
        if isinstance(item, str):
            parts.append(Part.of_text(item))
        elif isinstance(item, dict) and item.get("type") == "text":
            parts.append(Part.of_text(item.get("text", "")))
        elif isinstance(item, dict) and ("path" in item or "file" in item):
            file = item.get("file", item)
            parts.append(Part.of_file(file["path"], file.get("mime_type")))
    return tuple(parts)


def to_turns(chat: Sequence[dict], notes: bool = False) -> list[Turn]:
    """The conversation's turns; the page's own notes (messages with a metadata title) only with ``notes``."""
    turns = [Turn(m["role"], parts_of(m.get("content")), (m.get("metadata") or {}).get("title") or "")
             for m in chat if m.get("role") in ("user", "assistant")]
    return [t for t in turns if notes or not t.note]


def split(message: dict | None) -> Turn:
    """A MultimodalTextbox value (``{"text", "files"}``) as the user's turn."""
    message = message or {}
    files = [Part.of_file(f) if isinstance(f, str) else Part.of_file(f["path"], f.get("mime_type"))
             for f in message.get("files") or []]
    return Turn.asked(message.get("text") or "", files)


def file_paths(files: Iterable[object]) -> list[str]:
    """The paths of a Gradio file list (paths, or file dicts with a ``path``)."""
    paths = [f if isinstance(f, str) else f.get("path") if isinstance(f, dict) else None for f in files]
    return [p for p in paths if p]


def shown(turn: Turn) -> dict:
    """A turn as the chat shows it."""
    texts = [p.text for p in turn.parts if p.kind == "text" and p.text.strip()]
    return {"role": turn.role, "content": [{"path": p.path} for p in turn.files] + texts}
