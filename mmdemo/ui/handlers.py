"""The chat tab's handlers, at module level and apart from the layout (``ui/chat.py`` wires them): a message
into the chat, its answer streamed (with the voice), Stop, the status line, export, a webcam recording."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator

import gradio as gr

from mmdemo.chat import ChatService, Request
from mmdemo.engines.base import GenerationParams
from mmdemo.export import export_conversation
from mmdemo.extras import Extras
from mmdemo.locales import language
from mmdemo.runner import start
from mmdemo.showcase import ExampleCache
from mmdemo.tasks import TASKS
from mmdemo.ui.answer import LiveAnswer
from mmdemo.ui.history import file_paths, to_turns
from mmdemo.ui.history import shown as shown_turn
from mmdemo.ui.turn import Voice, prepare, result_messages, turn_events
from mmdemo.views import SERVING, banner_markdown, how_it_works, model_card, model_name, status_markdown, takes

log = logging.getLogger(__name__)
UPDATE_INTERVAL_S = 0.04  # at most ~25 page updates a second, however fast tokens come


def attach_recording(video: str | None, message: dict | None) -> tuple[dict, dict]:
    """A webcam recording joins the files of the input box (beside what is typed); the camera is freed."""
    if not video:
        return gr.skip(), gr.skip()
    message = message or {}
    files = file_paths(message.get("files") or [])
    return gr.MultimodalTextbox(value={"text": message.get("text") or "", "files": [*files, video]}), gr.Video(None)


def fill_example(selected: gr.SelectData) -> dict:
    """An example card clicked in the empty chat fills the input box with its text and files."""
    example = selected.value or {}
    return gr.MultimodalTextbox(value={"text": example.get("text") or "",
                                       "files": file_paths(example.get("files") or [])})


class ChatHandlers:
    """What the chat tab's events call; holds the service, the optional models and each session's Stop."""

    def __init__(self, service: ChatService, showcase: ExampleCache | None, extras: Extras) -> None:
        self.service = service
        self.showcase = showcase
        self.extras = extras
        self.stops: dict[str, threading.Event] = {}  # per browser session: set by Stop, read by the running turn
        # Gradio streams audio through the ffmpeg program: without it each answer's clip comes at its end
        self.live = shutil.which("ffmpeg") is not None

    def prefetch(self, message: dict | None, chat: list[dict], system: str) -> None:
        """The files attached to the message being written are encoded ahead, in the conversation it will be
        sent in (``ChatService.prefetch``)."""
        self.service.prefetch(file_paths((message or {}).get("files") or []), to_turns(chat or []), system or "")

    def add_user_message(self, message: dict | None, chat: list[dict], task_key: str, prompt: str, labels: str,
                         language: str, request: gr.Request) -> tuple[dict, list[dict], dict]:
        turn, _, label_list = prepare(message, chat, task_key, prompt, {"labels": labels, "language": language})
        self.stops[request.session_hash] = threading.Event()
        pending = {"turn": turn, "typed": message, "task": task_key, "labels": label_list,
                   "submitted": time.monotonic()}
        return gr.MultimodalTextbox(value=None, interactive=False), [*chat, shown_turn(turn)], pending

    def check_turn(self, message: dict | None, chat: list[dict], task_key: str, prompt: str, labels: str,
                   language: str) -> list[dict]:
        """Say under the input box why a message cannot be sent (it stays there to be fixed)."""
        try:
            prepare(message, chat, task_key, prompt, {"labels": labels, "language": language})
        except gr.Error as exc:
            return [gr.validate(False, exc.message)] + [gr.validate(True, "")] * 5
        return [gr.validate(True, "")] * 6

    def bot_turn(self, pending: dict, chat: list[dict], system: str, max_tokens: float, temperature: float,
                 top_p: float, speak: bool, think: bool, request: gr.Request) -> Iterator[tuple]:
        """Stream one answer into the chat (and read it aloud when asked); a turn that fails or is stopped
        before it starts leaves the chat and goes back into the input box, so nothing typed is lost. A model
        switch stops all of it, the voice included."""
        stop = self.stops.setdefault(request.session_hash, threading.Event())
        with self.service.models.track(stop):
            own = speak and self._speaks()  # the chat model reads the answer itself
            params = self.service.clamp(max_tokens, temperature, top_p, think, own)
            yield from self._answer_turn(pending, chat, system, params, speak and not own, request, stop)

    def _answer_turn(self, pending: dict, chat: list[dict], system: str, params: GenerationParams, speak: bool,
                     request: gr.Request, stop: threading.Event) -> Iterator[tuple]:
        """``speak``: with the separate voice (``params.speak``: the chat model reads the answer itself)."""
        queue_wait = time.monotonic() - pending["submitted"]
        lang = language(request.headers.get("accept-language"))
        history, shown, keep = chat[:-1], list(chat), gr.skip()
        give_back = gr.MultimodalTextbox(value=pending.get("typed"), interactive=True)
        turn = Request(pending["turn"], tuple(to_turns(history)), TASKS[pending["task"]], params, system,
                       tuple(pending["labels"]))
        handle = start(self.service, turn, stop)
        stats = handle.stats
        voice = Voice(self.extras.speaker if speak else None, self.live)
        answer = LiveAnswer(shown, stats, queue_wait, lang)
        last = 0.0
        try:
            if stop.is_set():  # Stop was pressed while this turn waited in the queue
                yield history, give_back, None, keep
                return
            for event in turn_events(self.service, self.showcase, turn, handle):
                if event.kind == "notice":
                    gr.Info(event.text)
                elif event.kind == "progress":  # long work on the way: a chance to notice a disconnect
                    yield shown, keep, None, keep
                elif event.kind == "speech":  # the chat model reads the answer itself, chunk by chunk
                    yield shown, keep, voice.take(event.data), keep
                elif event.kind == "transcript":
                    shown.append({"role": "assistant", "content": event.text, "metadata": {"title": event.title}})
                    yield shown, keep, None, keep
                elif event.kind in ("label", "boxes"):
                    shown += result_messages(event)
                    voice.feed(getattr(event.data, "label", None) or "")  # a label is read out, not its table
                else:  # the reasoning or the answer
                    answer.add(event.kind, event.text)
                    voice.feed(event.text if event.kind == "text" else "")
                    if time.monotonic() - last >= UPDATE_INTERVAL_S:
                        last = time.monotonic()
                        answer.refresh()
                        yield shown, keep, voice.ready(), keep
        except gr.Error:
            voice.cancel()
            yield history, give_back, None, keep  # the failed message leaves the chat; the next turn is clean
            raise
        finally:
            if self.stops.get(request.session_hash) is stop:
                del self.stops[request.session_hash]
        if not answer.started and stop.is_set() and len(shown) == len(chat):  # stopped before anything came back
            yield history, give_back, None, keep
            return
        if answer.started:
            answer.refresh(done=True)
        elif not any(m.get("role") == "assistant" for m in shown[len(chat):]):
            shown.append({"role": "assistant", "content": "*(the model gave an empty answer)*"})
        yield shown, keep, None, how_it_works(self.service, stats)
        for chunk in voice.rest(stop):
            yield shown, keep, chunk, keep
        if voice.saved():
            shown.append({"role": "assistant", "content": {"path": voice.saved()}})
            yield shown, keep, None, keep

    def request_stop(self, request: gr.Request) -> dict:
        """Stop this session's answer: generation ends at the next token and the turn finishes normally."""
        if request.session_hash in self.stops:
            self.stops[request.session_hash].set()
        return gr.MultimodalTextbox(interactive=True)

    def status(self, request: gr.Request) -> tuple[dict, gr.Timer, str, dict, dict, dict]:
        """The status line (its dot coloured by the state, what the model reads), the banner, the card,
        "Speak the answer" (in the chat model's own voice where it has one; else off, with the reason, when the
        voice could not be loaded) and "Think first" (shown where the model's template has the switch)."""
        current, lang = self.service.models.engine.status(), language(request.headers.get("accept-language"))
        banner = banner_markdown(current, self.showcase, lang)
        line = status_markdown(current, lang, takes(self.service, lang))
        serving = self.service.models.engine.capabilities if current.state in SERVING else None
        own = bool(serving and serving.speech)  # the chat model reads its answers itself
        separate = self.extras.speaker
        mute = separate.unavailable if separate is not None and not own else None
        return (gr.Markdown(line, elem_classes=[f"state-{current.state}"]),
                gr.Timer(active=current.state == "loading" or bool(banner)), model_card(self.service),
                gr.Markdown(banner, visible=bool(banner)),
                gr.Checkbox(visible=separate is not None or own, interactive=mute is None,
                            info=mute or ("in the model's own voice" if own else None)),
                gr.Checkbox(visible=bool(serving and serving.thinking)))

    def _speaks(self) -> bool:
        """Whether the chat model, loaded, reads its answers in its own voice (never waits for a load)."""
        engine = self.service.models.engine
        return engine.status().state in SERVING and engine.capabilities.speech

    def export_chat(self, chat: list[dict]) -> dict:
        if not chat:
            raise gr.Error("There is nothing to export yet: the chat is empty.")
        archive = export_conversation(to_turns(chat, notes=True), model_name(self.service.models.engine.status()))
        return gr.File(value=str(archive), visible=True)
