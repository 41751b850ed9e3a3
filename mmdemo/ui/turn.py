"""What a chat turn adds besides the streamed text: task results as chat messages, and the spoken answer."""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from mmdemo.chat import ChatEvent, ChatService, Classification, Request, TurnHandle
from mmdemo.conversation import EMPTY, check_file_count
from mmdemo.engines.base import GenerationStats
from mmdemo.engines.speech import SpokenAnswer, Voices, wav_bytes
from mmdemo.errors import Cancelled, UserError
from mmdemo.runner import Grounded, start
from mmdemo.showcase import ExampleCache, replay
from mmdemo.tasks import TASKS, parse_labels
from mmdemo.turns import Turn, kinds_in
from mmdemo.ui.history import split, to_turns

log = logging.getLogger(__name__)
FAILED = "Something went wrong while answering; the details are in the server log. Please try again."


def prepare(message: dict | None, chat: list[dict], task_key: str, prompt: str | None,
            values: dict[str, str]) -> tuple[Turn, list[Turn], list[str]]:
    """The message as the task composes it, the history, and the labels to choose from; a gr.Error (what was
    wrong, what to do) when the task cannot run."""
    typed = split(message)
    task = TASKS.get(task_key) or TASKS["chat"]
    history = to_turns(chat)
    try:
        check_file_count(len(typed.files))
        composed = task.compose(typed.text, prompt, values)
    except UserError as exc:
        raise gr.Error(str(exc), print_exception=False) from exc
    if not composed.strip() and not typed.files:
        raise gr.Error(EMPTY)
    reason = task.missing(kinds_in([*history, typed]))
    if reason:
        raise gr.Error(reason, print_exception=False)
    turn = Turn.asked(composed if composed.strip() else "", typed.files)
    labels = parse_labels(values.get("labels", "")) if "labels" in task.fields else []
    return turn, history, labels


def turn_events(service: ChatService, showcase: ExampleCache | None, request: Request,
                handle: TurnHandle | None = None) -> Iterator[ChatEvent]:
    """Run one turn (a showcase answer when one matches), turning UserError into a gr.Error and anything
    else into a logged generic error. ``handle``: the turn's handle (its stats and cancel), made by the caller
    with ``runner.start`` when it wants them."""
    try:
        cached = showcase.lookup(request) if showcase and request.task.key == "chat" else None
        if cached:
            yield from replay(cached, handle.stats if handle else GenerationStats())
        else:
            yield from handle or start(service, request)
    except Cancelled:  # stopped before the answer began (during transcription or label scoring)
        log.info("turn stopped before its answer")
    except UserError as exc:
        log.info("refused: %s", exc)
        raise gr.Error(str(exc), print_exception=False) from exc
    except gr.Error:
        raise
    except Exception as exc:
        log.exception("chat turn failed")
        raise gr.Error(FAILED, print_exception=False) from exc


def result_messages(event: ChatEvent) -> list[dict]:
    """Chat messages for a task's result: the label with its probabilities, or the image with its boxes
    drawn and the boxes as a JSON file."""
    messages = [{"role": "assistant", "content": event.text}]
    if isinstance(event.data, Grounded):
        messages += [{"role": "assistant", "content": {"path": str(event.data.image)}},
                     {"role": "assistant", "content": {"path": str(event.data.json)}}]
    return messages


def api_result(task_key: str, prompt: str, events: list[ChatEvent]) -> tuple[str, dict, str | None]:
    """The ``/task`` endpoint's answer text, its result as JSON, and the image with boxes (when any)."""
    answer = "".join(e.text for e in events if e.kind == "text")
    result: dict = {"task": task_key, "prompt": prompt, "answer": answer}
    thinking = "".join(e.text for e in events if e.kind == "thinking").strip()
    if thinking:
        result["thinking"] = thinking
    image = None
    for event in events:
        if isinstance(event.data, Classification):
            result.update(label=event.data.label, probabilities=event.data.probabilities)
            answer = answer or event.data.answer or (event.data.label or "")
        elif event.kind == "boxes":
            grounded = event.data if isinstance(event.data, Grounded) else None
            result["boxes"] = [vars(b) for b in grounded.boxes] if grounded else []
            image = str(grounded.image) if grounded else None
        elif event.kind == "transcript":
            result.setdefault("transcripts", []).append(event.text)
    result["answer"] = answer  # what the page shows: the answer, or the label picked
    return answer, result, image


class Voice:
    """The spoken answer of one turn: sentences are read aloud as they complete (a stream of WAV chunks
    for the page's player), then the whole answer is saved as one clip for the chat."""

    def __init__(self, voices: Voices | None, live: bool = True) -> None:
        """``voices``: the separate voice model (``None``: none, or the chat model speaks itself: ``take``);
        ``live``: the page plays sentences as they are read (else only the whole answer is kept)."""
        self._spoken = SpokenAnswer(voices) if voices is not None else None
        self._own: list[tuple[int, object]] = []  # the chat model's own voice, chunk by chunk
        self._live = live
        self._path: str | None = None
        self._told = 0  # notes about skipped sentences already shown

    def take(self, clip: tuple[int, object]) -> bytes | None:
        """The next chunk of the answer read by the chat model itself (after the text, as it is made): kept for
        the whole clip, and returned for the player (``None`` when the page does not play live)."""
        self._own.append(clip)
        return self._join([clip]) if self._live else None

    def feed(self, text: str) -> None:
        """Answer text as it streams."""
        if self._spoken is not None and text:
            self._spoken.feed(text)

    def ready(self) -> bytes | None:
        """Audio of the sentences finished so far and not yet played (``None``: nothing new)."""
        if self._spoken is None or not self._live:
            return None
        try:
            return self._join(list(self._spoken.ready()))
        except UserError as exc:
            return self._fail(exc)
        finally:
            self._tell()

    def rest(self, stop: threading.Event) -> Iterator[bytes]:
        """The remaining sentences' audio once the text is complete, each as soon as it is ready."""
        if self._spoken is None:
            return
        try:
            for clip in self._spoken.finish():
                if stop.is_set():
                    self.cancel()
                    return
                chunk = self._join([clip]) if self._live else None
                if chunk:
                    yield chunk
        except UserError as exc:
            self._fail(exc)
        self._tell()

    def saved(self) -> str | None:
        """The whole spoken answer as a WAV file (``None`` when nothing was spoken)."""
        whole = self._own_whole() or (self._spoken.whole() if self._spoken is not None else None)
        if whole is None or self._path is not None:
            return self._path
        path = Path(tempfile.mkdtemp(prefix="mmdemo-voice-")) / "answer.wav"
        path.write_bytes(wav_bytes(whole[1], whole[0]))
        self._path = str(path)
        return self._path

    def cancel(self) -> None:
        """Drop the sentences not yet read."""
        if self._spoken is not None:
            self._spoken.cancel()

    def _own_whole(self) -> tuple[int, object] | None:
        """The chat model's own reading as one clip (``None``: it did not read)."""
        import numpy as np

        return (self._own[0][0], np.concatenate([c[1] for c in self._own])) if self._own else None

    @staticmethod
    def _join(clips: list[tuple[int, object]]) -> bytes | None:
        import numpy as np

        audible = [c for c in clips if len(c[1])]
        return wav_bytes(np.concatenate([c[1] for c in audible]), audible[0][0]) if audible else None

    def _tell(self) -> None:
        """Say once per turn that sentences were skipped (the voice cannot read their language)."""
        notes = self._spoken.notes if self._spoken is not None else []
        if len(notes) > self._told:
            self._told = len(notes)
            gr.Info(notes[-1] if len(notes) == 1 else f"{notes[-1]} ({len(notes)} sentences were not read.)")

    def _fail(self, exc: UserError) -> None:
        """The voice model could not load: keep the text, say why once."""
        gr.Warning(str(exc))
        self.cancel()
        self._spoken = None
