"""mmdemo: a multimodal chat demo (images, audio and text in; streamed answers out)."""

__version__ = "0.1.0"
