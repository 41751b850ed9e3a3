"""Cross-modal search: an image-text embedding model (CLIP or SigLIP family) and a cache of image vectors."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmdemo.engines.lazy import LazyModel
from mmdemo.engines.workers import TorchWorkers
from mmdemo.errors import UserError

CACHE_SIZE = 4096  # image vectors kept (a few MB)
BATCH = 8  # images embedded in one job on the torch thread


@dataclass(frozen=True)
class Match:
    """A gallery image and how well it matches the query."""

    key: str
    score: float


class Embedder(LazyModel):
    """Puts images and texts in one vector space; each image's vector is computed once and cached."""

    role = "search"

    def __init__(self, model_id: str, device: str = "cpu", workers: TorchWorkers | None = None) -> None:
        super().__init__(model_id, device, workers)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.computed = 0  # image vectors computed so far (the cache's misses)

    def _open(self) -> tuple[object, torch.nn.Module]:
        from transformers import AutoModel, AutoProcessor

        processor = AutoProcessor.from_pretrained(self.model_id)
        return processor, AutoModel.from_pretrained(self.model_id, device_map=self.device).eval()

    def image_vectors(self, keyed: dict[str, Image.Image | Path]) -> dict[str, np.ndarray]:
        """Unit vectors of images by key (their digest); only images not seen before go through the model."""
        self.load()
        with self._lock:
            found = {k: self._cache[k] for k in keyed if k in self._cache}
        missing = [k for k in keyed if k not in found]
        if missing:
            images = [_image(keyed[k]) for k in missing]
            vectors = [v for start in range(0, len(images), BATCH)  # other requests' work runs between batches
                       for v in self.workers.run(self._embed_images, images[start:start + BATCH])]
            with self._lock:
                for key, vector in zip(missing, vectors, strict=True):
                    self._cache[key] = found[key] = vector
                    self.computed += 1
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return {k: found[k] for k in keyed}

    def text_vector(self, text: str) -> np.ndarray:
        """The unit vector of a text query."""
        self.load()
        return self.workers.run(self._embed_text, text)

    def search(self, query: np.ndarray, gallery: dict[str, np.ndarray], top_k: int = 6) -> list[Match]:
        """Gallery keys ranked by cosine similarity to ``query``, best first."""
        keys = list(gallery)
        if not keys:
            return []
        scores = np.stack([gallery[k] for k in keys]) @ query
        order = np.argsort(-scores)[:top_k]
        return [Match(keys[i], float(scores[i])) for i in order]

    @torch.inference_mode()
    def _embed_images(self, images: list[Image.Image]) -> np.ndarray:
        processor, model = self._loaded
        inputs = processor(images=images, return_tensors="pt").to(self.device)
        return _unit(_tensor(model.get_image_features(**inputs)))

    @torch.inference_mode()
    def _embed_text(self, text: str) -> np.ndarray:
        if not text.strip():
            raise UserError("Type what to look for, or give an image to search with.")
        # SigLIP was trained on texts padded to 64 tokens; CLIP pads to the longest (one text: no padding).
        processor, model = self._loaded
        padding = "max_length" if "siglip" in type(model).__name__.lower() else True
        inputs = processor(text=[text], padding=padding, truncation=True, return_tensors="pt").to(self.device)
        return _unit(_tensor(model.get_text_features(**inputs)))[0]


def _image(source: Image.Image | Path) -> Image.Image:
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    with Image.open(source) as opened:
        return opened.convert("RGB")


def _tensor(out: object) -> torch.Tensor:
    """The embedding tensor from ``get_*_features`` (a tensor, or an output object with a pooled output)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _unit(vectors: torch.Tensor) -> np.ndarray:
    vectors = vectors.float()
    return (vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu().numpy()
