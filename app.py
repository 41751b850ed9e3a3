"""mmdemo: a multimodal chat demo. ``python app.py --help`` lists the settings."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from mmdemo import presets
from mmdemo.chat import ChatService
from mmdemo.conversation import Budget
from mmdemo.errors import UserError
from mmdemo.settings import Settings, base_urls, parse_settings
from mmdemo.showcase import ExampleCache
from mmdemo.zerogpu import on_gpu

log = logging.getLogger("mmdemo")

ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLES = [
    {"text": "Describe this picture in two sentences.", "files": [str(ASSETS / "scene.png")]},
    {"text": "What does this chart show? Which month is highest?", "files": [str(ASSETS / "chart.png")]},
    {"text": "", "files": [str(ASSETS / "scene.png"), str(ASSETS / "question.wav")]},
    {"text": "What does the speaker say?", "files": [str(ASSETS / "hello.wav")]},
]
EXAMPLES_ZH = [  # asked in Chinese, answered in Chinese
    {"text": "用两句话描述这张图片。", "files": [str(ASSETS / "scene.png")]},
    {"text": "这张图表显示了什么？哪个月最高？", "files": [str(ASSETS / "chart.png")]},
]


def build_service(settings: Settings) -> ChatService:
    """The engine (model loads in the background, so the page is up at once) and the chat service."""
    from mmdemo.engines.asr import WhisperTranscriber
    from mmdemo.engines.local import TransformersEngine, resolve_device
    from mmdemo.engines.workers import TorchWorkers

    device = resolve_device(settings.device)
    workers = TorchWorkers(settings.concurrency)  # every PyTorch call of the process runs on these threads
    if settings.engine == "openai":
        from mmdemo.engines.remote import OpenAIEngine

        api_key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        engine = OpenAIEngine(base_urls(settings), settings.model, api_key)
    else:
        engine = TransformersEngine(settings.model or presets.default_model(device), device, workers=workers)
        engine.check()
    transcriber = WhisperTranscriber(settings.asr_model or presets.default_asr_model(device), device,
                                     workers=workers)
    budget = Budget(settings.max_image_pixels, settings.max_audio_seconds, settings.max_context_images,
                    settings.max_context_audio)
    service = ChatService(engine, transcriber, budget, settings.max_new_tokens)
    service.respond = on_gpu(service.respond)  # ZeroGPU Spaces: each turn borrows the GPU; elsewhere a no-op
    return service


def main() -> None:
    """Parse settings, start loading the model, build the page and serve it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = parse_settings()
    try:
        service = build_service(settings)
    except UserError as exc:
        sys.exit(f"mmdemo: {exc}")
    from mmdemo.ui import build_demo, launch, page_defaults

    showcase = None
    if settings.showcase:
        showcase = ExampleCache(service, EXAMPLES + EXAMPLES_ZH, settings.system_prompt,
                                service.clamp(*page_defaults(settings)))
    threading.Thread(target=_warm_up, args=(service, showcase), name="mmdemo-load", daemon=True).start()
    launch(build_demo(service, settings, EXAMPLES, EXAMPLES_ZH, showcase), settings, service)


def _warm_up(service: ChatService, showcase: ExampleCache | None) -> None:
    """Load the models; in showcase mode, then answer the examples."""
    try:
        service.warm_up()
    except UserError as exc:
        log.error("%s", exc)
        return
    if showcase is not None:
        showcase.fill()


if __name__ == "__main__":
    main()
