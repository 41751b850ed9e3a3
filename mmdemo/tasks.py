"""Task presets: the instruction each task sends to the model, filled in from the page's controls.

A task is a prompt and the kind of result the page makes of the answer: plain text, one label from a
label set (scored by the model's log-probabilities where the engine gives them), or boxes drawn on the
image. Every prompt is shown in the page and can be edited before it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmdemo.errors import UserError


@dataclass(frozen=True)
class Task:
    """One entry of the task picker."""

    key: str
    label: str
    prompt: str  # its blanks {labels}, {language} and {target} are filled in
    needs: Literal["image", "audio"] | None = None
    output: Literal["text", "label", "boxes"] = "text"


TASKS: dict[str, Task] = {
    t.key: t
    for t in (
        Task("chat", "Chat (free question)", ""),
        Task("caption_short", "Caption (short)", "Describe this image in one short sentence.", "image"),
        Task("caption_detailed", "Caption (detailed)",
             "Describe this image in detail: the main subject, the setting, the colours and any text in it.",
             "image"),
        Task("vqa", "Visual question", "Look at the image carefully and answer the question.", "image"),
        Task("ocr", "Read the text (OCR)",
             "Read all the text in this image and write it out exactly as it appears, line by line.", "image"),
        Task("document", "Chart or document question",
             "This image is a chart or a document. Read its title, axes, labels and numbers, then answer the "
             "question.", "image"),
        Task("transcribe", "Transcribe speech", "Transcribe exactly what is said in the audio clip.", "audio"),
        Task("translate", "Translate speech",
             "Translate what is said in the audio clip into {language}. Give only the translation.", "audio"),
        Task("spoken_question", "Answer a spoken question", "Answer the question asked in the audio clip.",
             "audio"),
        Task("classify", "Classify / sentiment",
             "Classify the input into exactly one of these labels: {labels}. Answer with the label only.",
             output="label"),
        Task("grounding", "Find objects (boxes)",
             "Locate every {target} in the image and output the bounding boxes in JSON, like "
             '[{"bbox_2d": [x1, y1, x2, y2], "label": "name"}].', "image", "boxes"),
    )
}

LABEL_SETS: dict[str, str] = {
    "Sentiment": "positive, neutral, negative",
    "Topic": "sports, politics, science, technology, business, entertainment",
    "Image kind": "photo, drawing, chart, document, screenshot",
}
MAX_LABELS = 20  # each label costs one forward pass of the model
LANGUAGES = ("English", "Chinese", "French", "German", "Spanish", "Japanese")


def parse_labels(text: str) -> list[str]:
    """Labels from a comma- or line-separated list, in order, without blanks or repeats."""
    labels: list[str] = []
    for raw in text.replace("\n", ",").split(","):
        label = raw.strip()
        if label and label.lower() not in (seen.lower() for seen in labels):
            labels.append(label)
    return labels


def compose(task: Task, prompt: str, user_text: str, labels: list[str] | None = None,
            language: str = "English") -> str:
    """The text sent to the model: the task's (possibly edited) prompt with its blanks filled, then the
    user's own text. Grounding takes the user's text as what to look for."""
    if task.output == "label" and len(labels or []) < 2:
        raise UserError("Give at least two labels to choose from, separated by commas (or pick a ready set).")
    if task.output == "label" and len(labels or []) > MAX_LABELS:
        raise UserError(f"Give at most {MAX_LABELS} labels: each one is scored by the model separately.")
    user_text = user_text.strip()
    target = user_text if task.output == "boxes" and user_text else "object"
    filled = prompt.strip()
    for blank, value in (("labels", ", ".join(labels or [])), ("language", language), ("target", target)):
        filled = filled.replace("{" + blank + "}", value)  # other braces (JSON examples) are sent as written
    if task.output == "boxes" or not user_text:
        return filled
    return f"{filled}\n\n{user_text}" if filled else user_text


def match_label(answer: str, labels: list[str]) -> str | None:
    """The label a free-text answer names (the earliest mentioned), for engines without log-probabilities."""
    lowered = answer.lower()
    found = [(lowered.find(label.lower()), label) for label in labels if label.lower() in lowered]
    return min(found)[1] if found else None
