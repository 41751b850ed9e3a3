"""The Search tab: find images by text or by an example image, in the demo's gallery plus the visitor's own.

The visitor's images are kept on the server under their content hash; the browser remembers which ones
are theirs (``gr.BrowserState``), so the gallery survives a page reload. Each image's vector is computed
once (the embedder caches it by hash).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from mmdemo import media
from mmdemo.errors import UserError
from mmdemo.modalities import detect
from mmdemo.settings import Settings
from mmdemo.ui.guard import session_guard
from mmdemo.ui.page import ASSETS, I18N

if TYPE_CHECKING:
    from mmdemo.engines.retrieval import Embedder

STORE = Path(tempfile.gettempdir()) / "mmdemo-gallery"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
MAX_UPLOADS = 200  # images one visitor can add
MAX_ADD = 16  # images one upload adds (each is decoded and embedded on the model's thread)


def _demo_images() -> dict[str, tuple[str, str]]:
    """digest → (name, path) of the images shipped in assets/."""
    images = [p for p in sorted(ASSETS.iterdir()) if detect(str(p)) == "image"]
    return {media.file_digest(p): (p.stem, str(p)) for p in images}


def _entries(demo: dict[str, tuple[str, str]], uploads: list[dict] | None) -> dict[str, tuple[str, str]]:
    """The gallery: the demo's images and the visitor's (entries from the browser are checked: a digest
    names a file in the store or it is ignored)."""
    found = dict(demo)
    for item in (uploads if isinstance(uploads, list) else [])[-MAX_UPLOADS:]:  # the browser's list: any size
        digest = str(item.get("digest", "")) if isinstance(item, dict) else ""
        path = STORE / f"{digest}.png"
        if _DIGEST.match(digest) and path.is_file():
            found[digest] = (str(item.get("name", "image"))[:80], str(path))
    return found


class SearchHandlers:
    """What the Search tab and its endpoints call."""

    def __init__(self, embedder: Embedder, settings: Settings) -> None:
        self.embedder = embedder
        self.settings = settings
        self.demo_images = _demo_images()

    def notice(self) -> dict:
        """Why search does not work now (the model could not be loaded), shown above the tab; else hidden."""
        reason = self.embedder.unavailable
        return gr.Markdown(reason or "", visible=reason is not None)

    def view(self, uploads: list[dict] | None) -> list[tuple[str, str]]:
        """The gallery's images with their names."""
        return [(path, name) for name, path in _entries(self.demo_images, uploads).values()]

    def add_images(self, files: list[str] | None, uploads: list[dict] | None) -> tuple[list[dict], list, None]:
        """Add images to the visitor's gallery (their vectors computed now); the new list of uploads."""
        uploads = list(uploads or [])
        files = list(files or [])
        if len(files) > MAX_ADD:
            gr.Warning(f"Only the first {MAX_ADD} of {len(files)} images were added; add the others in another upload.")
            files = files[:MAX_ADD]
        for file in files:
            try:
                image = media.load_image(file, self.settings.max_image_pixels).data
            except UserError as exc:
                gr.Warning(str(exc))
                continue
            digest = media.file_digest(file)
            STORE.mkdir(parents=True, exist_ok=True)
            path = STORE / f"{digest}.png"
            if not path.exists():
                image.save(path)
            if all(u.get("digest") != digest for u in uploads):
                uploads.append({"digest": digest, "name": media.display_name(file)})
        uploads = uploads[-MAX_UPLOADS:]
        try:
            self.embedder.image_vectors({d: Path(p) for d, (_, p) in _entries(self.demo_images, uploads).items()})
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        return uploads, self.view(uploads), None

    def search(self, query: str, query_image: str | None, uploads: list[dict] | None) -> tuple[list, list[dict]]:
        """The gallery's images most like ``query`` (or ``query_image``), best first, with their scores."""
        try:
            if query_image:
                image = media.load_image(query_image, self.settings.max_image_pixels).data
                vector = self.embedder.image_vectors({media.file_digest(query_image): image})
                target = next(iter(vector.values()))
            elif (query or "").strip():
                target = self.embedder.text_vector(query)
            else:
                raise UserError("Type what to look for, or give an image to search with.")
            entries = _entries(self.demo_images, uploads)
            vectors = self.embedder.image_vectors({d: Path(p) for d, (_, p) in entries.items()})
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        matches = self.embedder.search(target, vectors)
        shown = [(entries[m.key][1], f"{entries[m.key][0]} · {m.score:.3f}") for m in matches]
        return shown, [{"name": entries[m.key][0], "score": round(m.score, 4)} for m in matches]


def search_tab(demo: gr.Blocks, embedder: Embedder, settings: Settings, uploads: gr.BrowserState) -> None:
    """Build the Search tab (and the ``/search`` and ``/add_images`` API endpoints); ``uploads`` is the
    browser's list of the visitor's images (made outside the tabs, which Gradio renders only when opened)."""
    t = I18N
    handlers = SearchHandlers(embedder, settings)
    off = gr.Markdown(visible=False, elem_id="search-off")  # says so when the search model is unavailable
    with gr.Row():
        query = gr.Textbox(label=t("search_text"), placeholder="a bar chart", elem_id="search-text", scale=2)
        query_image = gr.Image(type="filepath", label=t("search_image"), sources=["upload", "clipboard"],
                               height=160, elem_id="search-image")
    button = gr.Button(t("search"), variant="primary", elem_id="search-button")
    matches = gr.Gallery(label=t("matches"), columns=3, height="auto", elem_id="matches")
    scores = gr.JSON(visible=False)
    with gr.Accordion(t("gallery"), open=True):
        add = gr.File(file_count="multiple", file_types=["image"], label=t("add_images"), elem_id="add-images")
        gallery = gr.Gallery(handlers.view(None), columns=6, height="auto", allow_preview=True, elem_id="gallery")
    guarded = dict(concurrency_id="model", concurrency_limit=settings.concurrency,
                   validator=session_guard(demo, settings.session_limit))
    _api_endpoints(handlers, guarded)  # first, so they get the plain names (the page's events are undocumented)
    search_io = dict(fn=handlers.search, inputs=[query, query_image, uploads], outputs=[matches, scores], **guarded)
    button.click(api_visibility="undocumented", **search_io)
    query.submit(api_visibility="undocumented", **search_io)
    add.upload(handlers.add_images, [add, uploads], [uploads, gallery, add], api_visibility="undocumented",
               **guarded)
    # the visitor's images again after a reload, and whether search works
    demo.load(handlers.view, [uploads], [gallery], api_visibility="undocumented")
    demo.load(handlers.notice, None, [off], api_visibility="undocumented")


def _api_endpoints(handlers: SearchHandlers, guarded: dict) -> None:
    """``/search`` and ``/add_images`` on components of their own: plain names, defaults, named outputs."""
    with gr.Group(visible=False):
        uploads = gr.JSON([], label="uploads (the list /add_images returned; [] for the demo's images only)")
        gr.Button().click(handlers.search, [gr.Textbox("", label="query (what to look for)"),
                                            gr.Image(None, type="filepath", label="query image (instead of a text)"),
                                            uploads],
                          [gr.Gallery(label="matches"), gr.JSON(label="scores")], api_name="search",
                          api_description="The gallery's images most like a text or an image, best first.", **guarded)
        files = gr.File(file_count="multiple", file_types=["image"], label="images to add")
        gr.Button().click(handlers.add_images, [files, uploads],
                          [gr.JSON(label="uploads"), gr.Gallery(label="gallery"), gr.File(label="(cleared)")],
                          api_name="add_images", api_description="Add images to the visitor's gallery.", **guarded)
