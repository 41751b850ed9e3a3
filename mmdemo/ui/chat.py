"""The chat tab's layout and wiring: the conversation, the task panel and the model panel (the handlers are in
``ui/handlers.py``)."""

from __future__ import annotations

import gradio as gr

from mmdemo.chat import ChatService
from mmdemo.extras import Extras
from mmdemo.settings import Settings
from mmdemo.showcase import ExampleCache
from mmdemo.ui.api import api_endpoints
from mmdemo.ui.controls import TaskControls, model_picker, task_controls
from mmdemo.ui.handlers import ChatHandlers, attach_recording, fill_example
from mmdemo.ui.page import I18N, page_defaults
from mmdemo.views import how_it_works, model_card, status_markdown


def chat_tab(demo: gr.Blocks, service: ChatService, settings: Settings, examples: list[dict] | None,
             examples_zh: list[dict] | None, task_examples: list[tuple[dict, str]] | None,
             showcase: ExampleCache | None, extras: Extras) -> None:
    """Build the chat tab inside ``demo``. With ``showcase``, clicking an example sends it, and its answer
    comes from the cache when it matches."""
    t = I18N
    handlers = ChatHandlers(service, showcase, extras)
    banner = gr.Markdown(visible=False, elem_id="banner")
    current = service.models.engine.status()
    status_line = gr.Markdown(status_markdown(current), elem_id="status", elem_classes=[f"state-{current.state}"])
    timer = gr.Timer(1.0)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):
            chatbot = gr.Chatbot(label=t("chat"), elem_id="chat", scale=1, min_height=420, layout="bubble",
                                 buttons=["copy"], placeholder=t("chat_placeholder"),
                                 examples=[_card(e) for e in examples or []] or None)
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
            controls, speak, think, spoken = _side_panel(t, extras.speaker is not None, handlers.live, textbox)
    system, max_tokens, temperature, top_p = _settings_panel(t, settings)
    with gr.Accordion(t("about"), open=False):
        if service.models.make_engine is not None:
            model_picker(service, t, timer)
        card = gr.Markdown(model_card(service), elem_id="model-card")
        how = gr.Markdown(how_it_works(service, None), elem_id="how-it-works")
    example_lists = _examples(t, textbox, controls.task, examples, examples_zh, task_examples, showcase is not None)
    pending = gr.State()

    def answer(turn: gr.events.Dependency) -> gr.events.Dependency:
        """Once ``turn`` has put the user's message in the chat: stream the answer, then free the input."""
        answering = turn.success(handlers.bot_turn, [pending, chatbot, system, max_tokens, temperature, top_p, speak,
                                                    think],
                                 [chatbot, textbox, spoken, how], concurrency_id="model",
                                 concurrency_limit=settings.concurrency, api_visibility="undocumented")
        answering.then(lambda: gr.MultimodalTextbox(interactive=True), None, [textbox], queue=False,
                       api_visibility="undocumented")
        return answering

    turn_io = dict(fn=handlers.add_user_message, inputs=[textbox, chatbot, *controls.inputs],
                   outputs=[textbox, chatbot, pending], validator=handlers.check_turn, api_visibility="undocumented",
                   concurrency_limit=None)
    answering = [answer(gr.on([textbox.submit, send.click], **turn_io))]
    # files attached (or an example picked) are encoded while the visitor writes; no queue, nothing shown
    textbox.change(handlers.prefetch, [textbox, chatbot, system], None, queue=False, show_progress="hidden",
                   trigger_mode="always_last", api_visibility="undocumented")
    picked = chatbot.example_select(fill_example, None, [textbox], queue=False,
                                    api_visibility="undocumented")  # an example card in the empty chat
    if showcase:  # a click on an example sends it
        answering += [answer(event.then(**turn_io)) for event in
                      [picked, *(group.load_input_event for group in example_lists)]]
    stop.click(handlers.request_stop, None, [textbox], queue=False, api_visibility="undocumented")
    clear.click(handlers.request_stop, None, [textbox], queue=False, api_visibility="undocumented").then(
        lambda: ([], gr.MultimodalTextbox(value=None, interactive=True)), None, [chatbot, textbox],
        cancels=answering, queue=False, api_visibility="undocumented")
    api_endpoints(demo, service, settings, extras, showcase)
    status_outputs = [status_line, timer, card, banner, speak, think]
    timer.tick(handlers.status, None, status_outputs, queue=False, api_visibility="undocumented")
    demo.load(handlers.status, None, status_outputs, queue=False, api_visibility="undocumented")
    export.click(handlers.export_chat, [chatbot], [exported], api_visibility="undocumented")


def _settings_panel(t: gr.I18n, settings: Settings) -> tuple[gr.Textbox, gr.Slider, gr.Slider, gr.Slider]:
    """The generation settings: system prompt, max new tokens, temperature, top-p."""
    with gr.Accordion(t("settings"), open=False):
        system = gr.Textbox(label=t("system_prompt"), value=settings.system_prompt, lines=2)
        tokens0, temperature0, top_p0 = page_defaults(settings)
        max_tokens = gr.Slider(1, settings.max_new_tokens, value=tokens0, step=1, label=t("max_tokens"))
        temperature = gr.Slider(0.0, 2.0, value=temperature0, step=0.05, label=t("temperature"))
        top_p = gr.Slider(0.05, 1.0, value=top_p0, step=0.05, label=t("top_p"))
    return system, max_tokens, temperature, top_p


def _examples(t: gr.I18n, textbox: gr.MultimodalTextbox, task: gr.Dropdown, examples: list[dict] | None,
              examples_zh: list[dict] | None, task_examples: list[tuple[dict, str]] | None,
              showcase: bool) -> list[gr.Examples]:
    """The example lists (clicking one fills the input box; in showcase mode the caller sends it), and the
    examples of each task (each fills the input and picks its task)."""
    suffix = "_showcase" if showcase else ""
    lists = [gr.Examples(examples=[[e] for e in group], inputs=[textbox], label=t(key + suffix))
             for key, group in (("examples", examples), ("examples_zh", examples_zh)) if group]
    if task_examples:
        picks = gr.Examples(examples=[[message, key] for message, key in task_examples], inputs=[textbox, task],
                            label=t("examples_tasks"))
        picks.dataset.headers = ["", "Task · 任务"]  # Gradio shows a table's headers untranslated
    return lists


def _side_panel(t: gr.I18n, has_voice: bool, live: bool,
                textbox: gr.MultimodalTextbox) -> tuple[TaskControls, gr.Checkbox, gr.Checkbox, gr.Audio]:
    """The task panel, "Think first" (shown once a model with the switch is ready), "Speak the answer" with its
    player (live when ``live``), and the webcam recorder."""
    controls = task_controls(t)
    think = gr.Checkbox(False, label=t("think"), info=t("think_info"), visible=False, elem_id="think")
    speak = gr.Checkbox(False, label=t("speak"), visible=has_voice, elem_id="speak")
    spoken = gr.Audio(label=t("spoken"), streaming=live, autoplay=True, interactive=False, visible=False,
                      elem_id="spoken")
    speak.change(lambda on: gr.Audio(visible=on and live), [speak], [spoken], queue=False,
                 api_visibility="undocumented")
    with gr.Accordion(t("record_video"), open=False, elem_id="record-video"):
        # not mirrored: the model sees the scene as it is (and Gradio need not re-encode the clip to flip it)
        camera = gr.Video(sources=["webcam"], include_audio=True, show_label=False, elem_id="webcam",
                          webcam_options=gr.WebcamOptions(mirror=False))
    camera.change(attach_recording, [camera, textbox], [textbox, camera], queue=False, api_visibility="undocumented")
    return controls, speak, think, spoken


def _card(example: dict) -> dict:
    """An example as a card in the empty chat: its text (or what its clip asks) and its files as thumbnails."""
    text = example.get("text") or ""
    shown = text or "Listen to the clip and answer it."
    return {"text": text, "files": list(example.get("files") or []), "display_text": shown}
