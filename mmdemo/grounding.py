"""Boxes in a model's answer: parse the formats grounding models write, draw them, export them as JSON.

Formats: Qwen2.5-VL's JSON (``[{"bbox_2d": [x1, y1, x2, y2], "label": ...}]``, pixels of the image the
model saw; Qwen3-VL and Qwen3.5 write the same JSON in 0–1000 of the image), Qwen-VL's tokens
(``<|object_ref_start|>cat<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>``, 0–1000) and bare
``[x1, y1, x2, y2]`` lists.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

_TOKEN_BOX = re.compile(r"(?:<\|object_ref_start\|>(?P<label>.*?)<\|object_ref_end\|>)?\s*<\|box_start\|>"
                        r"\((?P<x1>[\d.]+),\s*(?P<y1>[\d.]+)\),\s*\((?P<x2>[\d.]+),\s*(?P<y2>[\d.]+)\)<\|box_end\|>")
_NUMBER = r"-?\d+(?:\.\d+)?"
_LIST_BOX = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")
_JSON = re.compile(r"\[.*\]|\{.*\}", re.S)
# Families whose JSON boxes are in 0–1000 of the image rather than pixels of the image they saw.
NORM1000_JSON = ("qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe", "qwen3_omni_moe")
COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324")


@dataclass(frozen=True)
class Box:
    """A labelled box in the coordinates of the image the user gave (pixels)."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float


def json_box_frame(model_type: str) -> str:
    """The frame a model family writes its JSON boxes in: ``norm1000`` or ``pixels``."""
    return "norm1000" if model_type in NORM1000_JSON else "pixels"


def parse_boxes(answer: str, json_frame: str = "pixels") -> tuple[list[Box], str]:
    """Boxes as the model wrote them (its own coordinate frame) and the frame: ``pixels`` or ``norm1000``
    (``json_frame``, the model family's, for JSON and bare lists; Qwen-VL's box tokens are always 0–1000)."""
    tokens = [Box(m["label"] or "object", *(float(m[k]) for k in ("x1", "y1", "x2", "y2")))
              for m in _TOKEN_BOX.finditer(answer)]
    if tokens:
        return tokens, "norm1000"
    boxes: list[Box] = []
    for item in _json_items(answer):
        coords = next((item[k] for k in ("bbox_2d", "bbox", "box") if k in item), None)
        if isinstance(coords, list) and len(coords) == 4 and all(isinstance(c, int | float) for c in coords):
            boxes.append(Box(str(item.get("label", "object")), *map(float, coords)))
    if not boxes:
        boxes = [Box("object", *map(float, m.groups())) for m in _LIST_BOX.finditer(answer)]
    return boxes, json_frame


def _json_items(answer: str) -> list[dict]:
    text = answer.replace("```json", "").replace("```", "")
    match = _JSON.search(text)
    if not match:
        return []
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return []
    items = data if isinstance(data, list) else [data]
    return [item for item in items if isinstance(item, dict)]


def to_image(boxes: list[Box], frame: str, seen: tuple[int, int], size: tuple[int, int]) -> list[Box]:
    """Boxes mapped to an image of ``size`` (w, h): from 0–1000, or from the ``seen`` size the model's
    processor resized the image to; clipped to the image, empty boxes dropped."""
    w, h = size
    fw, fh = (1000, 1000) if frame == "norm1000" else seen
    out = []
    for b in boxes:
        x1, x2 = sorted((min(max(b.x1 * w / fw, 0), w), min(max(b.x2 * w / fw, 0), w)))
        y1, y2 = sorted((min(max(b.y1 * h / fh, 0), h), min(max(b.y2 * h / fh, 0), h)))
        if x2 - x1 >= 1 and y2 - y1 >= 1:
            out.append(Box(b.label, round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)))
    return out


def processed_size(image_processor: object, width: int, height: int, size: dict | None = None) -> tuple[int, int]:
    """The size a Qwen2-VL-family image processor resizes a ``width``×``height`` image to (multiples of its
    patch × merge size within its pixel budget: ``size``, the call-time one, else its own); other processors'
    models write no pixel boxes: unchanged."""
    merge, patch = getattr(image_processor, "merge_size", None), getattr(image_processor, "patch_size", None)
    if not (merge and patch):
        return width, height
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    size = size or image_processor.size
    h, w = smart_resize(height, width, patch * merge, size["shortest_edge"], size["longest_edge"])
    return w, h


def draw_boxes(image: Image.Image, boxes: list[Box]) -> Image.Image:
    """A copy of ``image`` with each box outlined and labelled, one colour per label."""
    out = image.convert("RGB")
    pen = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(14, out.width // 28))
    colours: dict[str, str] = {}
    for b in boxes:
        colour = colours.setdefault(b.label, COLOURS[len(colours) % len(COLOURS)])
        pen.rectangle((b.x1, b.y1, b.x2, b.y2), outline=colour, width=max(2, out.width // 200))
        left, top, right, bottom = pen.textbbox((b.x1, b.y1), b.label, font=font)
        label_top = max(0, b.y1 - (bottom - top) - 4)
        pen.rectangle((left, label_top, right + 4, label_top + bottom - top + 4), fill=colour)
        pen.text((b.x1 + 2, label_top + 1), b.label, fill="white", font=font)
    return out


def export_json(boxes: list[Box], size: tuple[int, int], path: Path) -> Path:
    """Write the boxes (pixels of the user's image) to ``path`` as JSON."""
    payload = {"image_size": {"width": size[0], "height": size[1]}, "boxes": [asdict(b) for b in boxes]}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    return path
