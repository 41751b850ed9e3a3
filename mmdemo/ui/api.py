"""The chat tab's API endpoints: ``/chat`` (a conversation turn), ``/task`` (one task) and ``/speak``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import gradio as gr

from mmdemo.chat import ChatService, Request
from mmdemo.engines.base import GenerationParams
from mmdemo.engines.speech import SpokenAnswer
from mmdemo.errors import UserError
from mmdemo.extras import Extras
from mmdemo.settings import Settings
from mmdemo.showcase import ExampleCache
from mmdemo.tasks import FIELDS, TASKS
from mmdemo.ui.guard import session_guard
from mmdemo.ui.history import shown, split, to_turns
from mmdemo.ui.page import page_defaults
from mmdemo.ui.turn import api_result, prepare, turn_events

log = logging.getLogger(__name__)


class ApiHandlers:
    """What the API endpoints call (their parameter names are the schema's)."""

    def __init__(self, service: ChatService, settings: Settings, extras: Extras,
                 showcase: ExampleCache | None) -> None:
        self.service = service
        self.settings = settings
        self.extras = extras
        self.showcase = showcase

    def chat(self, message: dict | None, history: list[dict], system: str, max_tokens: float, temperature: float,
             top_p: float, think: bool | None = False) -> Iterator[tuple[str, dict, list[dict]]]:
        """One turn of the conversation the session's state holds: the answer streams, beside what else the page
        shows of the turn (``details``: the transcripts of its clips, the model's reasoning, notices)."""
        turn = split(message)
        request = Request(turn, tuple(to_turns(history)), params=self._params(max_tokens, temperature, top_p, think),
                          system=self.settings.system_prompt if system is None else system)
        answer, details = "", {}
        for event in turn_events(self.service, self.showcase, request):
            if event.kind == "notice":
                gr.Info(event.text)
                details.setdefault("notices", []).append(event.text)
            elif event.kind == "transcript":
                details.setdefault("transcripts", []).append(event.text)
            elif event.kind == "thinking":
                details["thinking"] = details.get("thinking", "") + event.text
            answer += event.text if event.kind == "text" else ""
            if event.kind != "notice":  # every other event: a chance to notice a disconnect
                yield answer, details, history
        if "thinking" in details:
            details["thinking"] = details["thinking"].strip()
        yield answer, details, [*history, shown(turn), {"role": "assistant", "content": answer}]

    def task(self, message: dict | None, task_key: str, prompt: str | None, labels: str, target: str, language: str,
             max_tokens: float, temperature: float, think: bool | None = False) -> Iterator[tuple]:
        """One task on one message (no history): the answer, the result as JSON (the model's reasoning apart,
        under ``thinking``), the image with boxes. The fields after ``prompt`` are those of ``tasks.FIELDS``, in
        order."""
        task_key = task_key or "chat"
        if task_key not in TASKS:
            raise gr.Error(f"Unknown task {task_key!r}; the tasks are: {', '.join(TASKS)}.")
        given = {"labels": labels, "target": target, "language": language}  # left out (null): the default
        values = {name: FIELDS[name].default if value is None else str(value) for name, value in given.items()}
        turn, _, labels = prepare(message, [], task_key, prompt, values)
        request = Request(turn, (), TASKS[task_key], self._params(max_tokens, temperature, 1.0, think),
                          self.settings.system_prompt, tuple(labels))
        events = []
        for event in turn_events(self.service, self.showcase, request):
            events.append(event)
            if event.kind in ("progress", "thinking"):  # a chance to notice a disconnect
                yield gr.skip(), gr.skip(), gr.skip()
        yield api_result(task_key, turn.text, events)

    def _params(self, max_tokens: float | None, temperature: float | None, top_p: float | None,
                think: bool | None) -> GenerationParams:
        """Generation settings from the call; a value left out (null) takes the page's default."""
        defaults = page_defaults(self.settings)
        values = [default if value is None else value
                  for value, default in zip((max_tokens, temperature, top_p), defaults, strict=True)]
        return self.service.clamp(*values, bool(think))

    def speak(self, text: str) -> tuple[int, object]:
        """``text`` read aloud by the voice model, as one clip; sentences no voice reads are skipped with a
        notice, and text with nothing to read is refused (never an empty clip)."""
        if not (text or "").strip():
            raise gr.Error("Give the text to read aloud.")
        spoken = SpokenAnswer(self.extras.speaker)
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


def api_endpoints(demo: gr.Blocks, service: ChatService, settings: Settings, extras: Extras,
                  showcase: ExampleCache | None) -> None:
    """Wire the endpoints to hidden components of their own (plain English names and defaults in the schema)."""

    handlers = ApiHandlers(service, settings, extras, showcase)
    model = dict(concurrency_id="model", concurrency_limit=settings.concurrency,
                 validator=session_guard(demo, settings.session_limit))
    tokens0, temperature0, top_p0 = page_defaults(settings)
    with gr.Group(visible=False):  # the endpoints' own inputs and outputs: plain names and defaults in the schema
        message = gr.MultimodalTextbox(label="message", file_count="multiple", max_plain_text_length=100_000)
        system = gr.Textbox(settings.system_prompt, label="system prompt")
        # Numbers, not sliders: a client that leaves one out (null) gets the default instead of an error
        max_tokens = gr.Number(tokens0, minimum=1, maximum=settings.max_new_tokens, precision=0,
                               label="max new tokens")
        temperature = gr.Number(temperature0, minimum=0.0, maximum=2.0, label="temperature (0: greedy)")
        top_p = gr.Number(top_p0, minimum=0.05, maximum=1.0, label="top-p")
        think = gr.Checkbox(False, label="think first (where the model has the switch)")
        api_history = gr.State([])
        task_in = [gr.Dropdown(list(TASKS), value="chat", allow_custom_value=True, label="task"),
                   gr.Textbox("", label="prompt (empty: the task's own)"),
                   *(gr.Dropdown(list(f.choices), value=f.default, label=f.label, allow_custom_value=True) if f.choices
                     else gr.Textbox(f.default, label=f.label) for f in FIELDS.values())]
        task_out = [gr.Textbox(label="answer"), gr.JSON(label="result"),
                    gr.Image(type="filepath", format="png", label="image with boxes")]
        speak_in, speak_out = gr.Textbox(label="text"), gr.Audio(type="numpy", format="wav", label="speech")
        gr.Button().click(handlers.chat, [message, api_history, system, max_tokens, temperature, top_p, think],
                          [gr.Textbox(label="answer"), gr.JSON(label="details"), api_history], api_name="chat",
                          api_description="One turn of the conversation this session holds: the answer streams, "
                          "beside the turn's details (transcripts of its clips, the model's reasoning, notices).",
                          **model)
        gr.Button().click(handlers.task, [message, *task_in, max_tokens, temperature, think], task_out, api_name="task",
                          **model)
        if extras.speaker is not None:
            gr.Button().click(handlers.speak, [speak_in], [speak_out], api_name="speak", **model)
