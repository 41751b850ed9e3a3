"""The page: its tabs built around a :class:`ChatService` and the optional models, and how it is served."""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from mmdemo.chat import ChatService
from mmdemo.extras import Extras
from mmdemo.locales import UI
from mmdemo.settings import Settings, credentials
from mmdemo.showcase import ExampleCache
from mmdemo.ui.guard import PlainRefusals
from mmdemo.views import health_payload

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
CSS = """
#status { font-size: 0.9em; opacity: 0.9; }
/* the state as a coloured dot drawn by CSS: no emoji font needed */
#status p::before { content: ""; display: inline-block; width: 0.65em; height: 0.65em; border-radius: 50%;
                    margin-right: 0.45em; vertical-align: 0.05em; background: #9ca3af; }
#status.state-ready p::before { background: #16a34a; }
#status.state-degraded p::before { background: #d97706; }
#status.state-failed p::before { background: #dc2626; }
#status.state-loading p::before { background: #2563eb; animation: mmdemo-pulse 1s ease-in-out infinite alternate; }
@keyframes mmdemo-pulse { from { opacity: 0.3; } to { opacity: 1; } }
#title h1 { margin-bottom: 0.1em; }
#banner { border: 1px solid var(--color-accent); border-radius: var(--radius-lg); padding: 0.4em 0.9em;
          background: var(--color-accent-soft); }
#mic-notice { display: none; font-size: 0.9em; }
body.insecure #mic-notice { display: block !important; }
#chat img { max-width: 100%; max-height: 320px; width: auto; height: auto; object-fit: contain; }
/* phones: the description folds away and the chat shrinks, so the input box and Send stay on the screen */
@media (max-width: 640px) {
  #description { display: none; }
  #title h1 { font-size: 1.35em; }
  #chat { min-height: 260px !important; height: 45vh !important; }
  /* the empty chat's example cards two by two and compact, so all of them show without scrolling */
  /* (the tab above already says "Chat": the box's own label goes) */
  #chat [data-testid="block-label"] { display: none; }
  #chat .placeholder-content .placeholder { flex-grow: 0; height: auto; font-size: 0.9em; }
  #chat .examples { grid-template-columns: 1fr 1fr; padding: var(--spacing-sm); gap: var(--spacing-sm); }
  #chat .example { padding: var(--spacing-sm) var(--spacing-md); }
}
"""
PAGE_JS = """() => {
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") document.querySelectorAll("#stop, #draw-stop").forEach((b) => b.click());
  });
  // Browsers only record from the microphone on https:// or localhost pages.
  if (!window.isSecureContext) document.body.classList.add("insecure");
}"""
I18N = gr.I18n(**UI)


def page_defaults(settings: Settings) -> tuple[int, float, float]:
    """The page's initial max new tokens, temperature and top-p (showcase answers are computed with them)."""
    return min(256, settings.max_new_tokens), 0.7, 0.9


def build_demo(service: ChatService, settings: Settings, examples: list[dict] | None = None,
               examples_zh: list[dict] | None = None, showcase: ExampleCache | None = None,
               extras: Extras | None = None, task_examples: list[tuple[dict, str]] | None = None) -> gr.Blocks:
    """The page, wired to ``service`` and ``extras``; also exposes the ``/chat``, ``/task``, ``/speak``,
    ``/search`` and ``/draw`` API endpoints (those of the models that are on)."""
    from mmdemo.ui.chat import chat_tab
    from mmdemo.ui.draw import draw_tab
    from mmdemo.ui.search import search_tab

    extras = extras or Extras()
    t = I18N
    with gr.Blocks(title="mmdemo · multimodal chat", fill_height=True) as demo:
        gr.Markdown(t("title"), elem_id="title")
        gr.Markdown(t("description"), elem_id="description")
        uploads = gr.BrowserState([], storage_key="mmdemo-gallery")  # the visitor's images in the Search tab
        with gr.Tabs():
            with gr.Tab(t("tab_chat"), id="chat"):
                chat_tab(demo, service, settings, examples, examples_zh, task_examples, showcase, extras)
            if extras.embedder is not None:
                with gr.Tab(t("tab_search"), id="search"):
                    search_tab(demo, extras.embedder, settings, uploads)
            if extras.drawer is not None:  # off: no tab for visitors; the operator's log says why and how
                with gr.Tab(t("tab_draw"), id="draw"):
                    draw_tab(demo, extras, settings)
            else:
                log.info("the Draw tab is hidden: %s", extras.draw_off)
    return demo


def launch(demo: gr.Blocks, settings: Settings, service: ChatService) -> None:
    """Serve the page and ``/health``: queue sized by the settings, uploads capped, only assets/ readable
    besides uploads."""
    from fastapi.responses import JSONResponse
    from starlette.middleware import Middleware

    demo.queue(default_concurrency_limit=settings.concurrency, max_size=256)
    demo.launch(
        server_name=settings.host, server_port=settings.port, max_file_size=f"{settings.max_file_mb}mb",
        allowed_paths=[str(ASSETS)], share=False, theme=gr.themes.Soft(), css=CSS, js=PAGE_JS,
        auth=credentials(settings), i18n=I18N,
        footer_links=["api", "settings"], prevent_thread_lock=True,
        app_kwargs={"middleware": [Middleware(PlainRefusals)]},
    )

    def health() -> JSONResponse:  # reports only: loading and retrying belong to the model manager
        code, body = health_payload(service.models.engine.status())
        return JSONResponse(body, status_code=code)

    demo.app.add_api_route("/health", health, methods=["GET"])  # for load balancers; open even with --auth
    demo.block_thread()
