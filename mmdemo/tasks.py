"""Tasks: each declares the fields it asks for, how it composes the prompt, what it needs and how it runs.

A task is a prompt and the kind of result made of the answer (``output``): plain text (streamed), one label
from a label set (scored by the model's log-probabilities where the engine gives them), or boxes drawn on
the image. The page's task panel and the ``/task`` endpoint are built from these declarations, so adding a
task is one entry in :data:`TASKS` (a new kind of result is one function in ``runner.RUNS`` and its
rendering in ``ui/turn.py``). Every prompt is shown in the page and can be edited before it is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from mmdemo.errors import UserError

MAX_LABELS = 20  # each label costs one forward pass of the model
LANGUAGES = ("English", "Chinese", "French", "German", "Spanish", "Japanese")
LABEL_SETS: dict[str, str] = {
    "Sentiment": "positive, neutral, negative",
    "Topic": "sports, politics, science, technology, business, entertainment",
    "Image kind": "photo, drawing, chart, document, screenshot",
}


@dataclass(frozen=True)
class Field:
    """Something a task asks for besides the message: a blank of its prompt."""

    name: str
    label: str  # as the API schema names it
    default: str
    choices: tuple[str, ...] = ()


FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("labels", "labels, comma-separated (classify)", LABEL_SETS["Sentiment"]),
    Field("target", "what to find (find objects; empty: the message's text, else any object)", ""),
    Field("language", "language to translate into", "English", LANGUAGES),
)}
_NEEDS = {"image": "an image", "audio": "an audio clip (attach one or record with the microphone)",
          "video": "a video (MP4, WebM, MOV or MKV)"}


@dataclass(frozen=True)
class Task:
    """One entry of the task picker."""

    key: str
    label: str
    prompt: str  # its blanks are its fields' names in braces: {labels}, {language}, {target}
    needs: Literal["image", "audio", "video"] | None = None
    output: Literal["text", "label", "boxes"] = "text"
    fields: tuple[str, ...] = ()

    def compose(self, user_text: str, prompt: str | None = None, values: Mapping[str, str] | None = None) -> str:
        """The text sent to the model: the (possibly edited) prompt with its blanks filled, then the user's own
        text. Grounding takes the user's text as what to look for when no target is given."""
        values = {name: FIELDS[name].default for name in self.fields} | dict(values or {})
        user_text = user_text.strip()
        if "labels" in self.fields:
            labels = parse_labels(values["labels"])
            if len(labels) < 2:
                raise UserError("Give at least two labels to choose from, separated by commas (or pick a ready set).")
            if len(labels) > MAX_LABELS:
                raise UserError(f"Give at most {MAX_LABELS} labels: each one is scored by the model separately.")
            values["labels"] = ", ".join(labels)
        if "target" in self.fields:
            values["target"] = values["target"].strip() or user_text or "object"
        filled = (prompt if prompt and prompt.strip() else self.prompt).strip()
        for name, value in values.items():
            filled = filled.replace("{" + name + "}", value)  # other braces (JSON examples) are sent as written
        if self.output == "boxes" or not user_text:
            return filled
        return f"{filled}\n\n{user_text}" if filled else user_text

    def missing(self, kinds: Iterable[str]) -> str | None:
        """Why the task cannot run on a conversation whose parts are of ``kinds`` (it needs an image or a clip
        that it lacks), or ``None``."""
        if self.needs is None or self.needs in set(kinds):
            return None
        return f"The task “{self.label}” needs {_NEEDS[self.needs]}. Attach one, then send again."


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
        Task("video", "Describe the video",
             "Describe what happens in this video, in order, saying at what time each thing happens.", "video"),
        Task("transcribe", "Transcribe speech", "Transcribe exactly what is said in the audio clip.", "audio"),
        Task("translate", "Translate speech",
             "Translate what is said in the audio clip into {language}. Give only the translation.", "audio",
             fields=("language",)),
        Task("spoken_question", "Answer a spoken question", "Answer the question asked in the audio clip.",
             "audio"),
        Task("classify", "Classify / sentiment",
             "Classify the input into exactly one of these labels: {labels}. Answer with the label only.",
             output="label", fields=("labels",)),
        Task("grounding", "Find objects (boxes)",
             "Locate every {target} in the image and output the bounding boxes in JSON, like "
             '[{"bbox_2d": [x1, y1, x2, y2], "label": "name"}].', "image", "boxes", ("target",)),
    )
}


def parse_labels(text: str) -> list[str]:
    """Labels from a comma- or line-separated list, in order, without blanks or repeats."""
    labels: list[str] = []
    for raw in text.replace("\n", ",").split(","):
        label = raw.strip()
        if label and label.lower() not in (seen.lower() for seen in labels):
            labels.append(label)
    return labels


def match_label(answer: str, labels: list[str]) -> str | None:
    """The label a free-text answer names (the earliest mentioned), for engines without log-probabilities."""
    lowered = answer.lower()
    found = [(lowered.find(label.lower()), label) for label in labels if label.lower() in lowered]
    return min(found)[1] if found else None
