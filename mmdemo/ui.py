"""The Gradio page and the ``/chat`` API, built around a :class:`ChatService` (no torch here)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from mmdemo.chat import ChatService
from mmdemo.engines.base import GenerationStats
from mmdemo.errors import UserError
from mmdemo.export import export_conversation
from mmdemo.locales import UI, language
from mmdemo.settings import Settings, credentials
from mmdemo.showcase import ExampleCache, replay
from mmdemo.views import banner_markdown, health_payload, model_card, model_name, speed_strip, status_markdown

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
UPDATE_INTERVAL_S = 0.04  # at most ~25 page updates a second, however fast tokens come
CSS = """
#status { font-size: 0.9em; opacity: 0.85; }
#banner { border: 1px solid var(--color-accent); border-radius: var(--radius-lg); padding: 0.4em 0.9em;
          background: var(--color-accent-soft); }
#mic-notice { display: none; font-size: 0.9em; }
body.insecure #mic-notice { display: block !important; }
#chat img { max-width: 100%; max-height: 320px; width: auto; height: auto; object-fit: contain; }
"""
FAILED = "Something went wrong while answering; the details are in the server log. Please try again."
PAGE_JS = """() => {
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") document.querySelector("#stop")?.click();
  });
  // Browsers only record from the microphone on https:// or localhost pages.
  if (!window.isSecureContext) document.body.classList.add("insecure");
}"""


I18N = gr.I18n(**UI)


def page_defaults(settings: Settings) -> tuple[int, float, float]:
    """The page's initial max new tokens, temperature and top-p (showcase answers are computed with them)."""
    return min(256, settings.max_new_tokens), 0.7, 0.9


def _user_message(text: str, files: list[str]) -> dict:
    return {"role": "user", "content": [{"path": f} for f in files] + ([text] if text.strip() else [])}


def _split(message: dict | None) -> tuple[str, list[str]]:
    message = message or {}
    files = [f if isinstance(f, str) else f["path"] for f in message.get("files") or []]
    return message.get("text") or "", files


def build_demo(service: ChatService, settings: Settings, examples: list[dict] | None = None,
               examples_zh: list[dict] | None = None, showcase: ExampleCache | None = None) -> gr.Blocks:
    """The chat page, wired to ``service``; also exposes the ``/chat`` API endpoint. With ``showcase``,
    clicking an example sends it, and its answer comes from the cache when it matches."""

    t = I18N

    stops: dict[str, threading.Event] = {}  # per browser session: set by Stop, read by the running turn

    def respond(text: str, files: list[str], history: list[dict], system: str, max_tokens: float,
                temperature: float, top_p: float, stats: GenerationStats | None = None,
                cancel: threading.Event | None = None) -> Iterator[tuple[str, str, str]]:
        """Run one turn, turning UserError into a gr.Error and anything else into a logged generic error."""
        try:
            params = service.clamp(max_tokens, temperature, top_p)
            cached = showcase.lookup(text, files, history, system, params) if showcase else None
            events = (replay(cached, stats or GenerationStats()) if cached
                      else service.respond(text, files, history, system, params, stats, cancel))
            for event in events:
                yield event.kind, event.text, event.title
        except UserError as exc:
            log.info("refused: %s", exc)
            raise gr.Error(str(exc), print_exception=False) from exc
        except gr.Error:
            raise
        except Exception as exc:
            log.exception("chat turn failed")
            raise gr.Error(FAILED, print_exception=False) from exc

    def add_user_message(message: dict | None, chat: list[dict], request: gr.Request) -> tuple[dict, list[dict], dict]:
        text, files = _split(message)
        if not text.strip() and not files:
            raise gr.Error("The message is empty. Type a question, or attach an image or an audio clip.")
        stops[request.session_hash] = threading.Event()
        pending = {**(message or {}), "submitted": time.monotonic()}
        return gr.MultimodalTextbox(value=None, interactive=False), [*chat, _user_message(text, files)], pending

    def bot_turn(message: dict, chat: list[dict], system: str, max_tokens: float, temperature: float,
                 top_p: float, request: gr.Request) -> Iterator[tuple[list[dict], dict]]:
        """Stream one answer into the chat; a turn that fails or is stopped before it starts leaves the chat
        and goes back into the input box, so nothing typed is lost."""
        queue_wait = time.monotonic() - message["submitted"]
        lang = language(request.headers.get("accept-language"))
        text, files = _split(message)
        history, shown, keep = chat[:-1], list(chat), gr.skip()
        give_back = gr.MultimodalTextbox(value={"text": text, "files": files}, interactive=True)
        stats, stop = GenerationStats(), stops.setdefault(request.session_hash, threading.Event())
        answer: dict | None = None
        last = 0.0
        try:
            if stop.is_set():  # Stop was pressed while this turn waited in the queue
                yield history, give_back
                return
            for kind, delta, title in respond(text, files, history, system, max_tokens, temperature, top_p, stats,
                                              stop):
                if kind == "notice":
                    gr.Info(delta)
                elif kind == "transcript":
                    shown.append({"role": "assistant", "content": delta, "metadata": {"title": title}})
                    yield shown, keep
                else:
                    if answer is None:
                        answer = {"role": "assistant", "content": ""}
                        shown += [answer, speed_strip(stats, queue_wait, False, lang)]
                    answer["content"] += delta
                    if time.monotonic() - last >= UPDATE_INTERVAL_S:
                        last = time.monotonic()
                        shown[-1] = speed_strip(stats, queue_wait, False, lang)
                        yield shown, keep
        except gr.Error:
            yield history, give_back  # the failed message leaves the chat, so the next turn is not poisoned
            raise
        finally:
            if stops.get(request.session_hash) is stop:
                del stops[request.session_hash]
        if answer is None:
            shown.append({"role": "assistant", "content": "*(the model gave an empty answer)*"})
        else:
            shown[-1] = speed_strip(stats, queue_wait, True, lang)
        yield shown, keep

    def request_stop(request: gr.Request) -> dict:
        """Stop this session's answer: generation ends at the next token and the turn finishes normally."""
        if request.session_hash in stops:
            stops[request.session_hash].set()
        return gr.MultimodalTextbox(interactive=True)

    def chat_api(message: dict | None, history: list[dict], system: str, max_tokens: float, temperature: float,
                 top_p: float) -> Iterator[tuple[str, list[dict]]]:
        text, files = _split(message)
        answer = ""
        for kind, delta, _ in respond(text, files, history, system, max_tokens, temperature, top_p):
            if kind == "notice":
                gr.Info(delta)
            elif kind == "text":
                answer += delta
                yield answer, history
        yield answer, [*history, _user_message(text, files), {"role": "assistant", "content": answer}]

    def session_limit(message: dict | None, history: list[dict], system: str, max_tokens: float,
                      temperature: float, top_p: float, request: gr.Request) -> list[dict]:
        """Refuse a request when its session already has ``settings.session_limit`` running or queued."""
        busy = _session_events(demo, request.session_hash)  # validators run before the event is queued
        if busy >= settings.session_limit:
            log.info("session over its limit of %d requests in flight", settings.session_limit)
        message_check = gr.validate(busy < settings.session_limit,
                                    f"You already have {busy} requests in flight (the limit is "
                                    f"{settings.session_limit}). Wait for them to finish or stop them.")
        return [message_check] + [gr.validate(True, "")] * 5

    def status(request: gr.Request) -> tuple[str, gr.Timer, str, dict]:
        current, lang = service.engine.status(), language(request.headers.get("accept-language"))
        banner = banner_markdown(current, showcase, lang)
        return (status_markdown(current, lang), gr.Timer(active=current.state == "loading" or bool(banner)),
                model_card(service), gr.Markdown(banner, visible=bool(banner)))

    def export_chat(chat: list[dict]) -> dict:
        if not chat:
            raise gr.Error("There is nothing to export yet: the chat is empty.")
        return gr.File(value=str(export_conversation(chat, model_name(service.engine.status()))), visible=True)

    with gr.Blocks(title="mmdemo · multimodal chat", fill_height=True) as demo:
        gr.Markdown(t("title"))
        gr.Markdown(t("description"))
        banner = gr.Markdown(visible=False, elem_id="banner")
        status_line = gr.Markdown(status_markdown(service.engine.status()), elem_id="status")
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
        with gr.Accordion(t("settings"), open=False):
            system = gr.Textbox(label=t("system_prompt"), value=settings.system_prompt, lines=2)
            tokens0, temperature0, top_p0 = page_defaults(settings)
            max_tokens = gr.Slider(1, settings.max_new_tokens, value=tokens0, step=1, label=t("max_tokens"))
            temperature = gr.Slider(0.0, 2.0, value=temperature0, step=0.05, label=t("temperature"))
            top_p = gr.Slider(0.05, 1.0, value=top_p0, step=0.05, label=t("top_p"))
        with gr.Accordion(t("about"), open=False):
            card = gr.Markdown(model_card(service), elem_id="model-card")
        example_lists = [  # clicking an example fills the input box (and in showcase mode sends it)
            gr.Examples(examples=[[e] for e in group], inputs=[textbox],
                        label=t(key + ("_showcase" if showcase else "")))
            for key, group in (("examples", examples), ("examples_zh", examples_zh)) if group
        ]
        pending = gr.State()
        api_history = gr.State([])
        api_answer = gr.Textbox(visible=False)
        api_button = gr.Button(visible=False)
        timer = gr.Timer(1.0)

        settings_inputs = [system, max_tokens, temperature, top_p]
        def answer(turn: gr.events.Dependency) -> gr.events.Dependency:
            """Once ``turn`` has put the user's message in the chat: stream the answer, then free the input."""
            answering = turn.success(bot_turn, [pending, chatbot, *settings_inputs], [chatbot, textbox],
                                     concurrency_id="model", concurrency_limit=settings.concurrency,
                                     api_visibility="undocumented")
            answering.then(lambda: gr.MultimodalTextbox(interactive=True), None, [textbox], queue=False,
                           api_visibility="undocumented")
            return answering

        turn_io = dict(fn=add_user_message, inputs=[textbox, chatbot], outputs=[textbox, chatbot, pending],
                       queue=False, api_visibility="undocumented")
        answering = [answer(gr.on([textbox.submit, send.click], **turn_io))]
        if showcase:  # a click on an example sends it
            answering += [answer(group.load_input_event.then(**turn_io)) for group in example_lists]
        stop.click(request_stop, None, [textbox], queue=False, api_visibility="undocumented")
        clear.click(request_stop, None, [textbox], queue=False, api_visibility="undocumented").then(
            lambda: ([], gr.MultimodalTextbox(value=None, interactive=True), []), None, [chatbot, textbox, api_history],
            cancels=answering, queue=False, api_visibility="undocumented")
        api_button.click(chat_api, [textbox, api_history, *settings_inputs], [api_answer, api_history],
                         api_name="chat", concurrency_id="model", concurrency_limit=settings.concurrency,
                         validator=session_limit)
        status_outputs = [status_line, timer, card, banner]
        timer.tick(status, None, status_outputs, queue=False, api_visibility="undocumented")
        demo.load(status, None, status_outputs, queue=False, api_visibility="undocumented")
        export.click(export_chat, [chatbot], [exported], api_visibility="undocumented")
    return demo


def _session_events(demo: gr.Blocks, session_hash: str | None) -> int:
    """Events of one session waiting in or being run by Gradio's queue."""
    queue = demo._queue
    waiting = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
    running = [e for job in queue.active_jobs if job for e in job]
    return sum(e.session_hash == session_hash for e in waiting + running)


def launch(demo: gr.Blocks, settings: Settings, service: ChatService) -> None:
    """Serve the page and ``/health``: queue sized by the settings, uploads capped, only assets/ readable
    besides uploads."""
    from fastapi.responses import JSONResponse

    demo.queue(default_concurrency_limit=settings.concurrency, max_size=256)
    demo.launch(
        server_name=settings.host, server_port=settings.port, max_file_size=f"{settings.max_file_mb}mb",
        allowed_paths=[str(ASSETS)], share=False, theme=gr.themes.Soft(), css=CSS, js=PAGE_JS,
        auth=credentials(settings), i18n=I18N,
        footer_links=["api", "settings"], prevent_thread_lock=True,
    )

    retrying = threading.Lock()

    def retry_load() -> None:
        with retrying, contextlib.suppress(UserError):  # the status says why
            service.warm_up()

    def health() -> JSONResponse:
        status = service.engine.status()
        if status.state == "failed" and not retrying.locked():  # a remote server may be back: look again
            threading.Thread(target=retry_load, name="mmdemo-health-retry", daemon=True).start()
        code, body = health_payload(status)
        return JSONResponse(body, status_code=code)

    demo.app.add_api_route("/health", health, methods=["GET"])  # for load balancers; open even with --auth
    demo.block_thread()
