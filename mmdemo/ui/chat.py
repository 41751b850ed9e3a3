"""The chat tab: the conversation, the task panel and the model panel."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator

import gradio as gr

from mmdemo.chat import ChatService, Request
from mmdemo.export import export_conversation
from mmdemo.extras import Extras
from mmdemo.locales import language
from mmdemo.runner import start
from mmdemo.settings import Settings
from mmdemo.showcase import ExampleCache
from mmdemo.tasks import TASKS
from mmdemo.ui.api import api_endpoints
from mmdemo.ui.controls import model_picker, task_controls
from mmdemo.ui.history import shown as shown_turn
from mmdemo.ui.history import to_turns
from mmdemo.ui.page import I18N, page_defaults
from mmdemo.ui.turn import Voice, prepare, result_messages, turn_events
from mmdemo.views import banner_markdown, how_it_works, model_card, model_name, speed_strip, status_markdown

log = logging.getLogger(__name__)
UPDATE_INTERVAL_S = 0.04  # at most ~25 page updates a second, however fast tokens come


def attach_recording(video: str | None, message: dict | None) -> tuple[dict, dict]:
    """A webcam recording joins the files of the input box (beside what is typed); the camera is freed."""
    if not video:
        return gr.skip(), gr.skip()
    message = message or {}
    files = [f if isinstance(f, str) else f["path"] for f in message.get("files") or []]
    return gr.MultimodalTextbox(value={"text": message.get("text") or "", "files": [*files, video]}), gr.Video(None)


def chat_tab(demo: gr.Blocks, service: ChatService, settings: Settings, examples: list[dict] | None,
             examples_zh: list[dict] | None, task_examples: list[tuple[dict, str]] | None,
             showcase: ExampleCache | None, extras: Extras) -> None:
    """Build the chat tab inside ``demo``. With ``showcase``, clicking an example sends it, and its answer
    comes from the cache when it matches."""
    t = I18N
    stops: dict[str, threading.Event] = {}  # per browser session: set by Stop, read by the running turn

    def add_user_message(message: dict | None, chat: list[dict], task_key: str, prompt: str, labels: str,
                         language: str, request: gr.Request) -> tuple[dict, list[dict], dict]:
        turn, _, label_list = prepare(message, chat, task_key, prompt, {"labels": labels, "language": language})
        stops[request.session_hash] = threading.Event()
        pending = {"turn": turn, "typed": message, "task": task_key, "labels": label_list,
                   "submitted": time.monotonic()}
        return gr.MultimodalTextbox(value=None, interactive=False), [*chat, shown_turn(turn)], pending

    def check_turn(message: dict | None, chat: list[dict], task_key: str, prompt: str, labels: str,
                   language: str) -> list[dict]:
        """Say under the input box why a message cannot be sent (it stays there to be fixed)."""
        try:
            prepare(message, chat, task_key, prompt, {"labels": labels, "language": language})
        except gr.Error as exc:
            return [gr.validate(False, exc.message)] + [gr.validate(True, "")] * 5
        return [gr.validate(True, "")] * 6

    def bot_turn(pending: dict, chat: list[dict], system: str, max_tokens: float, temperature: float,
                 top_p: float, speak: bool, request: gr.Request) -> Iterator[tuple]:
        """Stream one answer into the chat (and read it aloud when asked); a turn that fails or is stopped
        before it starts leaves the chat and goes back into the input box, so nothing typed is lost. A model
        switch stops all of it, the voice included."""
        stop = stops.setdefault(request.session_hash, threading.Event())
        with service.models.track(stop):
            yield from answer_turn(pending, chat, system, max_tokens, temperature, top_p, speak, request, stop)

    def answer_turn(pending: dict, chat: list[dict], system: str, max_tokens: float, temperature: float,
                    top_p: float, speak: bool, request: gr.Request, stop: threading.Event) -> Iterator[tuple]:
        queue_wait = time.monotonic() - pending["submitted"]
        lang = language(request.headers.get("accept-language"))
        history, shown, keep = chat[:-1], list(chat), gr.skip()
        give_back = gr.MultimodalTextbox(value=pending.get("typed"), interactive=True)
        turn = Request(pending["turn"], tuple(to_turns(history)), TASKS[pending["task"]],
                       service.clamp(max_tokens, temperature, top_p), system, tuple(pending["labels"]))
        handle = start(service, turn, stop)
        stats = handle.stats
        voice = Voice(extras.speaker if speak else None, live)
        answer: dict | None = None
        last = 0.0
        try:
            if stop.is_set():  # Stop was pressed while this turn waited in the queue
                yield history, give_back, None, keep
                return
            for event in turn_events(service, showcase, turn, handle):
                if event.kind == "notice":
                    gr.Info(event.text)
                elif event.kind == "progress":  # long work on the way: a chance to notice a disconnect
                    yield shown, keep, None, keep
                elif event.kind == "transcript":
                    shown.append({"role": "assistant", "content": event.text, "metadata": {"title": event.title}})
                    yield shown, keep, None, keep
                elif event.kind in ("label", "boxes"):
                    shown += result_messages(event)
                    voice.feed(getattr(event.data, "label", None) or "")  # a label is read out, not its table
                else:
                    if answer is None:
                        answer = {"role": "assistant", "content": ""}
                        shown += [answer, speed_strip(stats, queue_wait, False, lang)]
                    answer["content"] += event.text
                    voice.feed(event.text)
                    if time.monotonic() - last >= UPDATE_INTERVAL_S:
                        last = time.monotonic()
                        shown[-1] = speed_strip(stats, queue_wait, False, lang)
                        yield shown, keep, voice.ready(), keep
        except gr.Error:
            voice.cancel()
            yield history, give_back, None, keep  # the failed message leaves the chat; the next turn is clean
            raise
        finally:
            if stops.get(request.session_hash) is stop:
                del stops[request.session_hash]
        if answer is None and stop.is_set() and len(shown) == len(chat):  # stopped before anything came back
            yield history, give_back, None, keep
            return
        if answer is not None:
            shown[shown.index(answer) + 1] = speed_strip(stats, queue_wait, True, lang)
        elif not any(m.get("role") == "assistant" for m in shown[len(chat):]):
            shown.append({"role": "assistant", "content": "*(the model gave an empty answer)*"})
        yield shown, keep, None, how_it_works(service, stats)
        for chunk in voice.rest(stop):
            yield shown, keep, chunk, keep
        if voice.saved():
            shown.append({"role": "assistant", "content": {"path": voice.saved()}})
            yield shown, keep, None, keep

    def request_stop(request: gr.Request) -> dict:
        """Stop this session's answer: generation ends at the next token and the turn finishes normally."""
        if request.session_hash in stops:
            stops[request.session_hash].set()
        return gr.MultimodalTextbox(interactive=True)

    def status(request: gr.Request) -> tuple[str, gr.Timer, str, dict]:
        current, lang = service.models.engine.status(), language(request.headers.get("accept-language"))
        banner = banner_markdown(current, showcase, lang)
        return (status_markdown(current, lang), gr.Timer(active=current.state == "loading" or bool(banner)),
                model_card(service), gr.Markdown(banner, visible=bool(banner)))

    def export_chat(chat: list[dict]) -> dict:
        if not chat:
            raise gr.Error("There is nothing to export yet: the chat is empty.")
        archive = export_conversation(to_turns(chat, notes=True), model_name(service.models.engine.status()))
        return gr.File(value=str(archive), visible=True)

    banner = gr.Markdown(visible=False, elem_id="banner")
    status_line = gr.Markdown(status_markdown(service.models.engine.status()), elem_id="status")
    timer = gr.Timer(1.0)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):
            chatbot = gr.Chatbot(label=t("chat"), elem_id="chat", scale=1, min_height=420, layout="bubble",
                                 buttons=["copy"], placeholder=t("chat_placeholder"))
            textbox = gr.MultimodalTextbox(
                placeholder=t("input_placeholder"),
                file_count="multiple", sources=["upload", "microphone"],  # any file: we explain what is unsupported
                show_label=False, submit_btn=False, elem_id="input", max_plain_text_length=100_000,
            )
            gr.Markdown(t("mic_notice"), elem_id="mic-notice")
            with gr.Row():
                send = gr.Button(t("send"), variant="primary", elem_id="send")
                stop = gr.Button(t("stop"), variant="stop", elem_id="stop")
                clear = gr.Button(t("clear"), elem_id="clear")
                export = gr.Button(t("export"), elem_id="export")
            exported = gr.File(label=t("exported"), visible=False, elem_id="exported")
        with gr.Column(scale=1, min_width=260):
            controls = task_controls(t)
            speak = gr.Checkbox(False, label=t("speak"), visible=extras.speaker is not None, elem_id="speak")
            # Gradio streams audio through the ffmpeg program: without it each answer's clip comes at its end
            live = shutil.which("ffmpeg") is not None
            spoken = gr.Audio(label=t("spoken"), streaming=live, autoplay=True, interactive=False, visible=False,
                              elem_id="spoken")
            speak.change(lambda on: gr.Audio(visible=on and live), [speak], [spoken], queue=False,
                         api_visibility="undocumented")
            with gr.Accordion(t("record_video"), open=False, elem_id="record-video"):
                # not mirrored: the model sees the scene as it is (and Gradio need not re-encode the clip to flip it)
                camera = gr.Video(sources=["webcam"], include_audio=True, show_label=False, elem_id="webcam",
                                  webcam_options=gr.WebcamOptions(mirror=False))
            camera.change(attach_recording, [camera, textbox], [textbox, camera], queue=False,
                          api_visibility="undocumented")
    with gr.Accordion(t("settings"), open=False):
        system = gr.Textbox(label=t("system_prompt"), value=settings.system_prompt, lines=2)
        tokens0, temperature0, top_p0 = page_defaults(settings)
        max_tokens = gr.Slider(1, settings.max_new_tokens, value=tokens0, step=1, label=t("max_tokens"))
        temperature = gr.Slider(0.0, 2.0, value=temperature0, step=0.05, label=t("temperature"))
        top_p = gr.Slider(0.05, 1.0, value=top_p0, step=0.05, label=t("top_p"))
    with gr.Accordion(t("about"), open=False):
        if service.models.make_engine is not None:
            model_picker(service, t, timer)
        card = gr.Markdown(model_card(service), elem_id="model-card")
        how = gr.Markdown(how_it_works(service, None), elem_id="how-it-works")
    example_lists = [  # clicking an example fills the input box (and in showcase mode sends it)
        gr.Examples(examples=[[e] for e in group], inputs=[textbox], label=t(key + ("_showcase" if showcase else "")))
        for key, group in (("examples", examples), ("examples_zh", examples_zh)) if group
    ]
    if task_examples:  # each fills the input and picks its task
        picks = gr.Examples(examples=[[message, key] for message, key in task_examples],
                            inputs=[textbox, controls.task], label=t("examples_tasks"))
        picks.dataset.headers = ["", "Task · 任务"]  # Gradio shows a table's headers untranslated
    pending = gr.State()

    def answer(turn: gr.events.Dependency) -> gr.events.Dependency:
        """Once ``turn`` has put the user's message in the chat: stream the answer, then free the input."""
        answering = turn.success(bot_turn, [pending, chatbot, system, max_tokens, temperature, top_p, speak],
                                 [chatbot, textbox, spoken, how], concurrency_id="model",
                                 concurrency_limit=settings.concurrency, api_visibility="undocumented")
        answering.then(lambda: gr.MultimodalTextbox(interactive=True), None, [textbox], queue=False,
                       api_visibility="undocumented")
        return answering

    turn_io = dict(fn=add_user_message, inputs=[textbox, chatbot, *controls.inputs],
                   outputs=[textbox, chatbot, pending], validator=check_turn, api_visibility="undocumented",
                   concurrency_limit=None)
    answering = [answer(gr.on([textbox.submit, send.click], **turn_io))]
    if showcase:  # a click on an example sends it
        answering += [answer(group.load_input_event.then(**turn_io)) for group in example_lists]
    stop.click(request_stop, None, [textbox], queue=False, api_visibility="undocumented")
    clear.click(request_stop, None, [textbox], queue=False, api_visibility="undocumented").then(
        lambda: ([], gr.MultimodalTextbox(value=None, interactive=True)), None, [chatbot, textbox],
        cancels=answering, queue=False, api_visibility="undocumented")
    api_endpoints(demo, service, settings, extras, showcase)
    status_outputs = [status_line, timer, card, banner]
    timer.tick(status, None, status_outputs, queue=False, api_visibility="undocumented")
    demo.load(status, None, status_outputs, queue=False, api_visibility="undocumented")
    export.click(export_chat, [chatbot], [exported], api_visibility="undocumented")

