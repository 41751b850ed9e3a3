"""A conversation as a zip: Markdown to read, JSON to process, and the images and clips it used."""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from mmdemo.turns import Turn


def export_conversation(history: list[Turn], model: str) -> Path:
    """Write ``conversation.zip`` (conversation.md, conversation.json, media/) into a new temp folder."""
    folder = Path(tempfile.mkdtemp(prefix="mmdemo-export-"))
    media_dir = folder / "media"
    media_dir.mkdir()
    messages, lines = [], [f"# Conversation with {model}", ""]
    for turn in history:
        entry: dict = {"role": turn.role, "content": []}
        if turn.note:
            entry["note"] = turn.note
        for part in turn.parts:
            if part.kind == "text":
                entry["content"].append({"type": "text", "text": part.text})
                continue
            source = Path(part.path)
            name = f"{len(list(media_dir.iterdir())) + 1:02d}-{source.name}"
            if source.is_file():
                shutil.copyfile(source, media_dir / name)
            entry["content"].append({"type": part.kind, "file": f"media/{name}"})
        messages.append(entry)
        lines += [_markdown(entry), ""]
    (folder / "conversation.json").write_text(json.dumps({"model": model, "messages": messages}, indent=2,
                                                         ensure_ascii=False))
    (folder / "conversation.md").write_text("\n".join(lines))
    archive = folder / "conversation.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path != archive:
                zf.write(path, path.relative_to(folder))
    return archive


def _markdown(entry: dict) -> str:
    who = {"user": "**You**", "assistant": "**Model**"}.get(entry["role"], f"**{entry['role']}**")
    if "note" in entry:
        who += f" — *{entry['note']}*"
    body = []
    for item in entry["content"]:
        if item["type"] == "text":
            body.append(item["text"])
        elif item["type"] == "image":
            body.append(f"![image]({item['file']})")
        else:
            body.append(f"[{item['type']}: {item['file']}]({item['file']})")
    return f"{who}: " + "\n\n".join(body)
