"""mmdemo: a multimodal chat demo. ``python app.py --help`` lists the settings."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from mmdemo import presets
from mmdemo.chat import ChatService
from mmdemo.errors import UserError
from mmdemo.extras import Extras
from mmdemo.modalities import VIDEO_FRAMES, Budget
from mmdemo.models import RETRY_AFTER_S, RETRY_REMOTE_S, ModelManager
from mmdemo.settings import Settings, base_urls, parse_settings
from mmdemo.showcase import ExampleCache

log = logging.getLogger("mmdemo")

ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLES = [
    {"text": "Describe this picture in two sentences.", "files": [str(ASSETS / "scene.png")]},
    {"text": "What does this chart show? Which month is highest?", "files": [str(ASSETS / "chart.png")]},
    {"text": "", "files": [str(ASSETS / "scene.png"), str(ASSETS / "question.wav")]},
    {"text": "What does the speaker say?", "files": [str(ASSETS / "hello.wav")]},
    {"text": "What happens in this video?", "files": [str(ASSETS / "clip.mp4")]},
]
EXAMPLES_ZH = [  # asked in Chinese, answered in Chinese
    {"text": "用两句话描述这张图片。", "files": [str(ASSETS / "scene.png")]},
    {"text": "这张图表显示了什么？哪个月最高？", "files": [str(ASSETS / "chart.png")]},
]

TASK_EXAMPLES = [  # (message, task): each task once, with the demo's own media
    ({"text": "", "files": [str(ASSETS / "scene.png")]}, "caption_detailed"),
    ({"text": "", "files": [str(ASSETS / "chart.png")]}, "ocr"),
    ({"text": "Which month has the highest value?", "files": [str(ASSETS / "chart.png")]}, "document"),
    ({"text": "house", "files": [str(ASSETS / "scene.png")]}, "grounding"),
    ({"text": "", "files": [str(ASSETS / "clip.mp4")]}, "video"),
    ({"text": "", "files": [str(ASSETS / "hello.wav")]}, "transcribe"),
    ({"text": "", "files": [str(ASSETS / "hello.wav")]}, "translate"),
    ({"text": "", "files": [str(ASSETS / "question.wav")]}, "spoken_question"),
    ({"text": "I loved this film: the ending was perfect.", "files": []}, "classify"),
]


def build(settings: Settings) -> tuple[ChatService, Extras]:
    """The engines (models load in the background, so the page is up at once), the chat service and the
    optional voice, search and drawing models."""
    from mmdemo.engines.asr import WhisperTranscriber
    from mmdemo.engines.device import resolve_device
    from mmdemo.engines.drawing import Drawer, unavailable
    from mmdemo.engines.local import TransformersEngine
    from mmdemo.engines.retrieval import Embedder
    from mmdemo.engines.speech import Speaker, Voices
    from mmdemo.engines.workers import TorchWorkers

    device = resolve_device(settings.device)
    workers = TorchWorkers(settings.concurrency)  # every PyTorch call of the process runs on these threads

    def local_engine(model_id: str) -> TransformersEngine:
        return TransformersEngine(model_id, device, workers=workers, max_image_tokens=settings.max_image_tokens or None,
                                  speech=settings.native_voice, encoder_cache_mb=settings.encoder_cache_mb)

    def checked_engine(model_id: str) -> TransformersEngine:  # the picker refuses a bad checkpoint at once
        engine = local_engine(model_id)
        engine.check()
        return engine

    make_engine = None
    if settings.engine == "openai":
        from mmdemo.engines.remote import OpenAIEngine

        api_key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        engine = OpenAIEngine(base_urls(settings), settings.model, api_key)
    elif settings.engine == "llamacpp":
        from mmdemo.engines.inputs import IMAGE_TOKENS
        from mmdemo.engines.llamacpp import LlamaCppEngine

        # the CPU's image budget: the llama-server that requirements-llamacpp.txt builds runs on the CPU
        engine = LlamaCppEngine(presets.gguf(settings.model, device), settings.llama_server,
                                parallel=settings.concurrency,
                                max_image_tokens=settings.max_image_tokens or IMAGE_TOKENS["cpu"])
    else:
        # not checked here: the page comes up at once, and its status line says why a model cannot load
        engine = local_engine(presets.resolve(settings.model, "chat", device))
        make_engine = None if settings.lock_model else checked_engine
    asr = presets.resolve(settings.asr_model, "asr", device)
    transcriber = WhisperTranscriber(asr, device, workers=workers, beams=settings.asr_beams) if asr else None
    budget = Budget(settings.max_image_pixels, settings.max_audio_seconds, settings.max_context_images,
                    settings.max_context_audio, max_video_seconds=settings.max_video_seconds,
                    video_fps=settings.video_fps,
                    video_frames=settings.video_frames or VIDEO_FRAMES[presets.device_kind(device)])
    retry = RETRY_REMOTE_S if settings.engine == "openai" else RETRY_AFTER_S
    service = ChatService(ModelManager(engine, transcriber, make_engine, retry), budget, settings.max_new_tokens)
    tts, search, draw = (presets.resolve(getattr(settings, f"{role}_model"), role, device)
                         for role in ("tts", "search", "draw"))
    extras = Extras(
        speaker=Voices({"en": Speaker(tts, device, workers)} |
                       ({"zh": Speaker(settings.tts_model_zh, device, workers, "zh")} if settings.tts_model_zh else {})
                       ) if tts else None,
        embedder=Embedder(search, device, workers) if search else None,
        draw_off=unavailable(draw, device),
    )
    if extras.draw_off is None:
        extras.drawer = Drawer(draw, device, workers)
    return service, extras


def main() -> None:
    """Parse settings, start loading the model, build the page and serve it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("huggingface_hub").propagate = False  # it prints through its own handler: once, not twice
    settings = parse_settings()
    try:
        service, extras = build(settings)
    except UserError as exc:
        sys.exit(f"mmdemo: {exc}")
    from mmdemo.ui import build_demo, launch, page_defaults

    showcase = None
    if settings.showcase:
        showcase = ExampleCache(service, EXAMPLES + EXAMPLES_ZH, settings.system_prompt,
                                service.clamp(*page_defaults(settings)))
    service.models.start_loading(then=functools.partial(_after_load, extras, showcase))
    launch(build_demo(service, settings, EXAMPLES, EXAMPLES_ZH, showcase, extras, TASK_EXAMPLES), settings, service)


def _after_load(extras: Extras, showcase: ExampleCache | None) -> None:
    """Once the chat model is ready: load the side models; in showcase mode, answer the examples."""
    extras.warm_up()
    if showcase is not None:
        showcase.fill()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C while starting
        main()  # returns once the server has closed (Ctrl+C)
    # Leave now, whatever is still loading: model loads in background threads would otherwise fail noisily
    # (and slowly) while the interpreter shuts down.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
