"""How each kind of task result is made: one run function per ``Task.output`` (streamed text, a label, boxes),
and :func:`start`, which gives back the turn's handle."""

from __future__ import annotations

import functools
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mmdemo.chat import ChatEvent, ChatService, Classification, Request, TurnHandle, beside
from mmdemo.grounding import Box, draw_boxes, export_json
from mmdemo.turns import files_of

NO_BOXES = ("No boxes found in the answer. Models trained for grounding (the Qwen2.5-VL and Qwen3-VL "
            "presets) write them; others usually do not.")


@dataclass(frozen=True)
class Grounded:
    """Boxes found in an answer: the image with them drawn, the JSON export, and the boxes."""

    image: Path
    json: Path
    boxes: list[Box]


def label_text(result: Classification) -> str:
    """The label as the chat shows it, with each label's probability when the model gave them."""
    if result.probabilities is None:
        picked = f"**{result.label}**" if result.label else "*(no label matched)*"
        return f"{picked}\n\n(from the answer “{result.answer}”; this engine gives no log-probabilities)"
    ranked = sorted(result.probabilities.items(), key=lambda kv: -kv[1])
    rows = "\n".join(f"| {label} | {p:.1%} |" for label, p in ranked)
    return f"**{result.label}** · {ranked[0][1]:.0%} confidence\n\n| label | probability |\n|---|---|\n{rows}"


def run_text(service: ChatService, request: Request, handle: TurnHandle) -> Iterator[ChatEvent]:
    """The answer, streamed."""
    return service.respond(request, handle)


def run_label(service: ChatService, request: Request, handle: TurnHandle) -> Iterator[ChatEvent]:
    """One label of the task's set, with its probabilities where the engine gives them."""
    result = yield from beside(functools.partial(service.classify, request, handle.cancel_event), handle.cancel_event)
    yield ChatEvent("label", label_text(result), data=result)


def run_boxes(service: ChatService, request: Request, handle: TurnHandle) -> Iterator[ChatEvent]:
    """The answer, streamed, then the boxes it names drawn on the newest image and exported as JSON."""
    answer = ""
    for event in service.respond(request, handle):
        answer += event.text if event.kind == "text" else ""
        yield event
    images = files_of([*request.history, request.message], "image")
    if not images:
        yield ChatEvent("notice", "Attach an image to find objects in.")
        return
    image, boxes = service.boxes(answer, images[-1].path)
    if not boxes:
        yield ChatEvent("boxes", NO_BOXES, data=None)
        return
    folder = Path(tempfile.mkdtemp(prefix="mmdemo-boxes-"))
    draw_boxes(image, boxes).save(folder / "boxes.png")
    found = Grounded(folder / "boxes.png", export_json(boxes, image.size, folder / "boxes.json"), boxes)
    names = ", ".join(sorted({b.label for b in boxes}))
    yield ChatEvent("boxes", f"Found {len(boxes)} box(es): {names}.", data=found)


RUNS: dict[str, Callable[[ChatService, Request, TurnHandle], Iterator[ChatEvent]]] = {
    "text": run_text, "label": run_label, "boxes": run_boxes,
}


def start(service: ChatService, request: Request, cancel: threading.Event | None = None) -> TurnHandle:
    """The turn for ``request``, run as its task says; iterate the handle for its events."""
    return TurnHandle(lambda handle: RUNS[request.task.output](service, request, handle), cancel)
