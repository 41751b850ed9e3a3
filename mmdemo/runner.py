"""One turn of a task: the chat turn, then the task's result made from the answer (a label, boxes)."""

from __future__ import annotations

import functools
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmdemo import media
from mmdemo.chat import ChatEvent, ChatService, Classification, beside
from mmdemo.conversation import parts_of
from mmdemo.engines.base import GenerationParams, GenerationStats
from mmdemo.grounding import Box, draw_boxes, export_json
from mmdemo.tasks import Task

NO_BOXES = ("No boxes found in the answer. Models trained for grounding (the Qwen2.5-VL presets) write "
            "them; others usually do not.")


@dataclass(frozen=True)
class Grounded:
    """Boxes found in an answer: the image with them drawn, the JSON export, and the boxes."""

    image: Path
    json: Path
    boxes: list[Box]


def last_image(files: Sequence[str], history: Sequence[dict]) -> str | None:
    """The newest image of the turn, or of the conversation before it."""
    paths = [p.value for m in history for p in parts_of(m.get("content")) if p.kind == "image"]
    paths += [f for f in files if media.media_kind(f) == "image"]
    return paths[-1] if paths else None


def label_text(result: Classification) -> str:
    """The label as the chat shows it, with each label's probability when the model gave them."""
    if result.probabilities is None:
        picked = f"**{result.label}**" if result.label else "*(no label matched)*"
        return f"{picked}\n\n(from the answer “{result.answer}”; this engine gives no log-probabilities)"
    ranked = sorted(result.probabilities.items(), key=lambda kv: -kv[1])
    rows = "\n".join(f"| {label} | {p:.1%} |" for label, p in ranked)
    return f"**{result.label}** · {ranked[0][1]:.0%} confidence\n\n| label | probability |\n|---|---|\n{rows}"


def run_task(
    service: ChatService, task: Task, text: str, files: Sequence[str], history: Sequence[dict], system: str,
    params: GenerationParams, labels: list[str], stats: GenerationStats | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[ChatEvent]:
    """The turn's events as :meth:`ChatService.respond` yields them, then a ``label`` or ``boxes`` event."""
    if task.output == "label":
        cancel = cancel or threading.Event()
        result = yield from beside(
            functools.partial(service.classify, text, files, history, system, labels, cancel), cancel)
        yield ChatEvent("label", label_text(result), data=result)
        return
    answer = ""
    for event in service.respond(text, files, history, system, params, stats, cancel):
        answer += event.text if event.kind == "text" else ""
        yield event
    if task.output != "boxes":
        return
    source = last_image(files, history)
    if source is None:
        yield ChatEvent("notice", "Attach an image to find objects in.")
        return
    image, boxes = service.boxes(answer, source)
    if not boxes:
        yield ChatEvent("boxes", NO_BOXES, data=None)
        return
    folder = Path(tempfile.mkdtemp(prefix="mmdemo-boxes-"))
    draw_boxes(image, boxes).save(folder / "boxes.png")
    found = Grounded(folder / "boxes.png", export_json(boxes, image.size, folder / "boxes.json"), boxes)
    names = ", ".join(sorted({b.label for b in boxes}))
    yield ChatEvent("boxes", f"Found {len(boxes)} box(es): {names}.", data=found)


def missing_input(task: Task, files: Sequence[str], history: Sequence[dict]) -> str | None:
    """Why the task cannot run on this turn (it needs an image or a clip that neither the turn nor the
    conversation has), or ``None``."""
    if task.needs is None:
        return None
    kinds = {p.kind for m in history for p in parts_of(m.get("content"))} | {media.media_kind(f) for f in files}
    if task.needs in kinds:
        return None
    what = "an image" if task.needs == "image" else "an audio clip (attach one or record with the microphone)"
    return f"The task “{task.label}” needs {what}. Attach one, then send again."
