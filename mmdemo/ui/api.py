"""The chat tab's API endpoints: ``/chat`` (a conversation turn), ``/task`` (one task) and ``/speak``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import gradio as gr

from mmdemo.chat import ChatService
from mmdemo.engines.speech import SpokenAnswer
from mmdemo.errors import UserError
from mmdemo.extras import Extras
from mmdemo.settings import Settings
from mmdemo.showcase import ExampleCache
from mmdemo.tasks import TASKS
from mmdemo.ui.guard import session_guard
from mmdemo.ui.turn import api_result, prepare, split, turn_events, user_message

log = logging.getLogger(__name__)


def api_endpoints(demo: gr.Blocks, service: ChatService, settings: Settings, extras: Extras,
                  showcase: ExampleCache | None, textbox: gr.MultimodalTextbox,
                  generation: list[gr.components.Component]) -> None:
    """Wire the endpoints to hidden components; ``generation`` is [system, max tokens, temperature, top-p]."""
    _, max_tokens, temperature, _ = generation

    def chat_api(message: dict | None, history: list[dict], system: str, max_tokens: float, temperature: float,
                 top_p: float) -> Iterator[tuple[str, list[dict]]]:
        text, files = split(message)
        answer = ""
        for event in turn_events(service, showcase, "chat", text, files, history, system, max_tokens, temperature,
                                 top_p, []):
            if event.kind == "notice":
                gr.Info(event.text)
            elif event.kind in ("text", "progress"):  # progress: a chance to notice a disconnect
                answer += event.text
                yield answer, history
        yield answer, [*history, user_message(text, files), {"role": "assistant", "content": answer}]

    def task_api(message: dict | None, task_key: str, prompt: str | None, labels: str, target: str,
                 max_tokens: float, temperature: float) -> Iterator[tuple]:
        """One task on one message (no history): the answer, the result as JSON, the image with boxes."""
        if task_key not in TASKS:
            raise gr.Error(f"Unknown task {task_key!r}; the tasks are: {', '.join(TASKS)}.")
        text, files, label_list = prepare(message, [], task_key, prompt, labels, target)
        events = []
        for event in turn_events(service, showcase, task_key, text, files, [], settings.system_prompt, max_tokens,
                                 temperature, 1.0, label_list):
            events.append(event)
            if event.kind == "progress":  # long work on the way: a chance to notice a disconnect
                yield gr.skip(), gr.skip(), gr.skip()
        yield api_result(task_key, text, events)

    def speak_api(text: str) -> tuple[int, object]:
        """``text`` read aloud by the voice model, as one clip; sentences no voice reads are skipped with a
        notice, and text with nothing to read is refused (never an empty clip)."""
        if not (text or "").strip():
            raise gr.Error("Give the text to read aloud.")
        spoken = SpokenAnswer(extras.speaker)
        try:
            spoken.feed(text.strip()[:2000])
            for _ in spoken.finish():
                pass
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        whole = spoken.whole()
        if whole is None:
            raise gr.Error(spoken.notes[0] if spoken.notes else "There was nothing to read aloud.",
                           print_exception=False)
        if spoken.notes:
            gr.Info(f"{len(spoken.notes)} sentence(s) were not read: {spoken.notes[0]}")
        return whole

    model = dict(concurrency_id="model", concurrency_limit=settings.concurrency,
                 validator=session_guard(demo, settings.session_limit))
    with gr.Group(visible=False):
        api_history = gr.State([])
        chat_out = gr.Textbox()
        task_in = [gr.Textbox(), gr.Textbox(), gr.Textbox(), gr.Textbox()]
        task_out = [gr.Textbox(), gr.JSON(), gr.Image(type="filepath", format="png")]
        speak_in, speak_out = gr.Textbox(), gr.Audio(type="numpy", format="wav")
        gr.Button().click(chat_api, [textbox, api_history, *generation], [chat_out, api_history], api_name="chat",
                          **model)
        gr.Button().click(task_api, [textbox, *task_in, max_tokens, temperature], task_out, api_name="task", **model)
        if extras.speaker is not None:
            gr.Button().click(speak_api, [speak_in], [speak_out], api_name="speak", **model)
