"""The Draw tab: text to image with per-step progress (shown only when drawing is on)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import gradio as gr

from mmdemo.errors import UserError
from mmdemo.extras import Extras
from mmdemo.settings import Settings
from mmdemo.ui.guard import session_guard
from mmdemo.ui.page import I18N

MAX_STEPS = 50


def draw_tab(demo: gr.Blocks, extras: Extras, settings: Settings) -> None:
    """Build the Draw tab and its ``/draw`` API endpoint (drawing is on: ``extras.drawer`` is set)."""
    t = I18N
    drawer = extras.drawer
    assert drawer is not None
    stops: dict[str, threading.Event] = {}

    def draw(prompt: str, steps: float, seed: float, request: gr.Request) -> Iterator[tuple[str, object]]:
        cancel = stops[request.session_hash] = threading.Event()
        try:  # Gradio holds API callers to the slider's range; any integer is a seed
            for step in drawer.draw(prompt or "", int(steps), int(seed or 0) % 2**32, cancel):
                bar = "█" * round(20 * step.done / step.total) + "░" * (20 - round(20 * step.done / step.total))
                note = " (stopped)" if cancel.is_set() else ""
                yield f"`{bar}` step {step.done} of {step.total}{note}", step.image if step.image else gr.skip()
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        except GeneratorExit:
            cancel.set()
            raise
        finally:
            if stops.get(request.session_hash) is cancel:
                del stops[request.session_hash]

    def stop(request: gr.Request) -> None:
        if request.session_hash in stops:
            stops[request.session_hash].set()

    prompt = gr.Textbox(label=t("draw_prompt"), placeholder="a lighthouse on a cliff at sunset, watercolour",
                        elem_id="draw-prompt")
    with gr.Row():
        steps = gr.Slider(1, MAX_STEPS, value=20 if drawer.device.startswith("cuda") else 4, step=1, label=t("steps"))
        seed = gr.Number(0, precision=0, label=t("seed"))
    with gr.Row():
        button = gr.Button(t("draw"), variant="primary", elem_id="draw-button")
        stop_button = gr.Button(t("stop"), variant="stop", elem_id="draw-stop")
    progress = gr.Markdown(elem_id="draw-progress")
    image = gr.Image(label=t("tab_draw"), type="pil", format="png", interactive=False, height=512, elem_id="drawn")
    guarded = dict(concurrency_id="model", concurrency_limit=settings.concurrency,
                   validator=session_guard(demo, settings.session_limit))
    with gr.Group(visible=False):  # the endpoint's own components: plain names and defaults in the schema
        gr.Button().click(draw, [gr.Textbox("", label="prompt (what to draw)"),
                                 gr.Slider(1, MAX_STEPS, value=steps.value, step=1, label="denoising steps"),
                                 gr.Number(0, precision=0, label="seed")],
                          [gr.Markdown(label="progress"), gr.Image(type="pil", format="png", label="image")],
                          api_name="draw", api_description="Text to image; the progress streams, then the image.",
                          **guarded)
    button.click(draw, [prompt, steps, seed], [progress, image], api_visibility="undocumented", **guarded)
    stop_button.click(stop, None, None, queue=False, api_visibility="undocumented")
