"""The optional models beside the chat model: a voice, an image search index and a drawing pipeline."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmdemo.errors import UserError

if TYPE_CHECKING:  # the UI imports this module and must not import torch
    from mmdemo.engines.drawing import Drawer
    from mmdemo.engines.retrieval import Embedder
    from mmdemo.engines.speech import Voices


@dataclass
class Extras:
    """Each is ``None`` when turned off; ``draw_off`` says why drawing is off."""

    speaker: Voices | None = None
    embedder: Embedder | None = None
    drawer: Drawer | None = None
    draw_off: str | None = None

    def warm_up(self) -> None:
        """Load the voice and the search model in the background, so their first use is quick; a model that
        cannot load is reported when it is used."""
        for model in (self.speaker, self.embedder):
            if model is not None:
                with contextlib.suppress(UserError):  # logged by the model; said again when it is used
                    model.load()
