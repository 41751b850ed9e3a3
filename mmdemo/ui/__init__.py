"""The Gradio page (no torch here): chat with tasks, search and drawing tabs, and the HTTP API."""

from mmdemo.ui.page import I18N, build_demo, launch, page_defaults

__all__ = ["I18N", "build_demo", "launch", "page_defaults"]
