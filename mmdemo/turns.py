"""Typed conversation turns: what the core passes around (the UI converts Gradio's chat dicts to these once)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from mmdemo import media


@dataclass(frozen=True)
class Part:
    """A piece of a turn: text, or a file with its kind (a modality name, or ``"other"`` when its content was
    not recognised) and where it came from (the file, the MIME type the upload declared)."""

    kind: str
    text: str = ""
    path: str = ""
    mime: str | None = None

    @property
    def name(self) -> str:
        """The file's own name (never its folder), for messages."""
        return media.display_name(self.path) if self.path else ""

    @classmethod
    def of_text(cls, text: str) -> Part:
        """A text part."""
        return cls("text", text=text)

    @classmethod
    def of_file(cls, path: str, mime: str | None = None) -> Part:
        """A file part, its kind recognised from its content (then the declared MIME type, then its name)."""
        from mmdemo.modalities import detect

        return cls(detect(path, mime), path=str(path), mime=mime)


@dataclass(frozen=True)
class Turn:
    """One message of the conversation; ``note`` titles the page's own messages (a transcript, the speed
    figures), which are shown and exported but never sent to the model."""

    role: Literal["user", "assistant"]
    parts: tuple[Part, ...]
    note: str = ""

    @classmethod
    def user(cls, text: str, files: Sequence[str] = ()) -> Turn:
        """The user's message: its files (paths, recognised by content), then its text."""
        return cls.asked(text, [Part.of_file(f) for f in files])

    @classmethod
    def asked(cls, text: str, files: Iterable[Part]) -> Turn:
        """The user's message: these file parts, then its text (when there is any)."""
        return cls("user", (*files, *((Part.of_text(text),) if text else ())))

    @property
    def text(self) -> str:
        """The turn's text parts, joined."""
        return "\n".join(p.text for p in self.parts if p.kind == "text")

    @property
    def files(self) -> list[Part]:
        """The turn's file parts, in order."""
        return [p for p in self.parts if p.kind != "text"]


def kinds_in(turns: Iterable[Turn]) -> set[str]:
    """Every part kind the turns carry."""
    return {p.kind for turn in turns for p in turn.parts}


def files_of(turns: Iterable[Turn], kind: str) -> list[Part]:
    """Every file part of ``kind`` in the turns, oldest first."""
    return [p for turn in turns for p in turn.parts if p.kind == kind]
