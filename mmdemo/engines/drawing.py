"""Text to image through ``diffusers`` (an optional extra: ``pip install -r requirements-extra.txt``)."""

from __future__ import annotations

import importlib.util
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from PIL import Image

from mmdemo.engines.lazy import LazyModel
from mmdemo.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """Progress of one drawing: ``done`` of ``total`` denoising steps, and the image at the end."""

    done: int
    total: int
    image: Image.Image | None = None


def unavailable(model_id: str | None, device: str) -> str | None:
    """Why the Draw tab is off (the message it shows), or ``None`` when drawing is on."""
    if importlib.util.find_spec("diffusers") is None:
        return ("Drawing needs the optional `diffusers` package: `pip install -r requirements-extra.txt`, "
                "then restart the app.")
    if model_id is None and device.startswith("cuda"):
        return "Drawing is turned off (`--draw-model off`). Start the app without it to draw."
    if model_id is None:
        return ("Drawing is off on this machine: there is no GPU, and a diffusion model on a CPU takes minutes "
                "per image. Start the app with `--draw-model <checkpoint>` to draw anyway.")
    return None


class Drawer(LazyModel):
    """A text-to-image pipeline loaded once with ``AutoPipelineForText2Image``; runs on the torch threads."""

    role = "drawing"

    def _open(self) -> object:
        from diffusers import AutoPipelineForText2Image

        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        pipe = AutoPipelineForText2Image.from_pretrained(self.model_id, dtype=dtype).to(self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def draw(self, prompt: str, steps: int, seed: int, cancel: threading.Event, size: int | None = None
             ) -> Iterator[Step]:
        """Yield a :class:`Step` after each denoising step and the image at the end; setting ``cancel``
        interrupts the pipeline at the next step."""
        if not prompt.strip():
            raise UserError("Describe the picture to draw.")
        self.load()
        updates: queue.Queue[Step | BaseException] = queue.Queue()

        def on_step(pipe: object, step: int, _timestep: object, kwargs: dict) -> dict:
            updates.put(Step(step + 1, steps))
            if cancel.is_set():
                pipe._interrupt = True  # diffusers' own interruption flag, checked before each step
            return kwargs

        def run() -> None:
            try:
                size_kwargs = {"height": size, "width": size} if size else {}
                image = self._loaded(prompt, num_inference_steps=steps, callback_on_step_end=on_step,
                                   generator=torch.Generator("cpu").manual_seed(seed), **size_kwargs).images[0]
                updates.put(Step(steps, steps, image))
            except BaseException as exc:
                updates.put(exc)

        self.workers.submit(run)
        while True:
            update = updates.get()
            if isinstance(update, BaseException):
                log.error("drawing failed", exc_info=update)
                raise UserError("Drawing failed on the server; the error is in the server log.") from update
            yield update
            if update.image is not None:
                return
