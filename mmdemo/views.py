"""What the page shows about the model and each answer: status line, model card, speed strip, health.

Plain functions of engine state (no gradio, no torch), so tests and the ``/health`` route share them.
"""

from __future__ import annotations

from mmdemo.chat import ChatService
from mmdemo.engines.base import EngineStatus, GenerationStats
from mmdemo.errors import shown_name
from mmdemo.locales import live
from mmdemo.modalities import MODALITIES
from mmdemo.presets import BY_GGUF, PRESETS
from mmdemo.showcase import ExampleCache

SERVING = ("ready", "degraded")  # engine states in which requests are answered


def model_name(status: EngineStatus) -> str:
    """The model as shown to users: a Hub id as is, a local folder by its name only (no server paths)."""
    return shown_name(status.model)


def status_markdown(status: EngineStatus, lang: str = "en", takes: str = "") -> str:
    """One status line: which model, where, whether it is ready and (``takes``) what it reads."""
    line = live(lang, status.state, name=model_name(status), device=status.device, detail=status.detail)
    return f"{line} · {live(lang, 'reads', kinds=takes)}" if takes else line


def takes(service: ChatService, lang: str = "en") -> str:
    """What the serving model reads, in the visitor's language ('' while it does not serve)."""
    models = service.models
    if models.engine.status().state not in SERVING:
        return ""
    caps = models.engine.capabilities
    kinds = [live(lang, "text")] + [live(lang, m.name) for m in MODALITIES.values() if getattr(caps, m.capability)]
    if not caps.audio and models.transcriber is not None:
        kinds.append(f"{live(lang, 'audio')} ({live(lang, 'transcribed')})")
    return " · ".join(kinds)


def banner_markdown(status: EngineStatus, showcase: ExampleCache | None, lang: str = "en") -> str:
    """The notice at the top of the page while the demo is not ready to answer at once ('' when it is)."""
    if status.state == "loading":
        return live(lang, "banner_loading")
    if status.state == "failed" and status.detail != "unloaded":
        return live(lang, "banner_failed", detail=status.detail)
    if showcase is not None and status.state == "ready" and showcase.state != "ready":
        return live(lang, "banner_examples", done=showcase.done, total=len(showcase.examples))
    return ""


def model_card(service: ChatService) -> str:
    """What the loaded model is and takes, for the "About this model" panel."""
    status = service.models.engine.status()
    preset = PRESETS.get(status.model)
    rows = [("Model", f"`{model_name(status)}`"), ("Runs on", status.device)]
    if preset:
        rows += [("Size", preset.size), ("Licence", preset.licence)]
    elif status.model in BY_GGUF:  # a preset's llama.cpp build
        built = BY_GGUF[status.model]
        rows += [("Built from", f"`{built.model_id}` (GGUF weights for llama.cpp)"), ("Licence", built.licence)]
    if status.state in SERVING:
        caps = service.models.engine.capabilities
        takes = ["text"] + [m.plural for m in MODALITIES.values() if getattr(caps, m.capability)]
        rows.append(("Takes", ", ".join(takes) + ("" if caps.audio else " (voice clips are transcribed first)")))
        if caps.context_tokens:
            rows.append(("Context", f"{caps.context_tokens:,} tokens"))
        if caps.parts:
            rows.append(("Made of", " → ".join(f"{role} ({_count(n)})" for role, n in caps.parts)))
    return "\n".join(f"- **{k}**: {v}" for k, v in rows)


def how_it_works(service: ChatService, stats: GenerationStats | None) -> str:
    """The loaded model as the parts multimodal models are made of, and what the last request did in each."""
    status = service.models.engine.status()
    caps = service.models.engine.capabilities if status.state in SERVING else None
    lines = ["**How it works.** Each input goes through its own encoder; a projector turns the encoder's "
             "output into tokens the language decoder reads next to the text; the decoder writes the answer "
             "token by token."]
    if caps and caps.parts:
        lines.append(" → ".join(f"**{role}** ({_count(n)})" for role, n in caps.parts))
    elif caps:
        lines.append("(The model runs on another server; its parts are not visible from here.)")
    if caps and not caps.audio:
        lines.append("Voice clips are first transcribed by the speech model (Whisper), then read as text.")
    if caps and (caps.video or caps.image):
        lines.append("A video becomes a few frames sampled across it (with their times)"
                     + (", read by the model's own video processor." if caps.video else ", read as images.")
                     + (" Its sound goes to the audio encoder." if caps.audio else " Its sound is transcribed."))
    if stats is None or not stats.prompt_tokens:
        return "\n\n".join([*lines, "*Ask something to see how long each stage of your request takes.*"])
    tokens = [f"{kind} {n}" for kind, n in (("text", stats.text_tokens), *stats.media_tokens.items()) if n]
    if stats.frames:
        tokens.append(f"{stats.frames} video frames")
    stages = " → ".join(f"{stage} {seconds * 1000:.0f} ms" for stage, seconds in stats.stages.items())
    lines.append(f"**Your last request**: {stats.prompt_tokens} prompt tokens ({', '.join(tokens)}), "
                 f"{stats.generated_tokens} generated.")
    if stages:
        lines.append(f"Stages: {stages}.")
    return "\n\n".join(lines)


def speed_strip(stats: GenerationStats, queue_wait: float | None, done: bool, lang: str = "en") -> dict:
    """The chat line under an answer: time to first token and decode speed (live while streaming)."""
    speed = f"{stats.tokens_per_s:.1f} tok/s" if stats.tokens_per_s else "… tok/s"
    first = (live(lang, "first_token", seconds=stats.first_token_s) if stats.first_token_s is not None
             else live(lang, "prefilling"))
    parts = [f"{live(lang, kind)} {count}" for kind, count in (("text", stats.text_tokens), *stats.media_tokens.items())
             if count or kind == "text"]
    if stats.frames:
        parts.append(live(lang, "frames", count=stats.frames))
    detail = live(lang, "prompt", count=stats.prompt_tokens, parts=" · ".join(parts), generated=stats.generated_tokens)
    if queue_wait is not None and queue_wait >= 0.05:
        detail += " · " + live(lang, "waited", seconds=queue_wait)
    flags = [live(lang, key) for key, on in (("stopped", stats.cancelled), ("replayed", stats.replayed)) if on]
    count = (live(lang, "split", thinking=stats.thinking_tokens, answer=stats.generated_tokens - stats.thinking_tokens)
             if stats.thinking_tokens else f"{stats.generated_tokens} {live(lang, 'tokens')}")
    title = " · ".join([first, speed, count, *flags])
    status = "done" if done else "pending"
    return {"role": "assistant", "content": detail, "metadata": {"title": title, "status": status}}


def thinking_title(stats: GenerationStats, done: bool, lang: str = "en") -> dict:
    """The metadata of the chat message that holds the model's reasoning: "Thinking…" while it thinks (open),
    "Thought for 3.2 s" once the answer has started (folded)."""
    if not done:
        return {"title": live(lang, "thinking"), "status": "pending"}
    seconds = max(0.0, (stats.thinking_s or 0.0) - (stats.first_token_s or 0.0))
    return {"title": live(lang, "thought", seconds=seconds), "status": "done"}


def _count(parameters: int) -> str:
    """A parameter count as people write it: 86.4M, 7.6B, 33.7K."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if parameters >= size:
            return f"{parameters / size:.1f}{unit}"
    return str(parameters)


def health_payload(status: EngineStatus) -> tuple[int, dict]:
    """HTTP status and body of ``GET /health``: 200 once the model serves (``degraded``: it loaded but its
    test answer failed, said in ``detail``), 503 while loading or failed."""
    body = {"status": status.state, "model": model_name(status), "device": status.device, "detail": status.detail}
    return (200 if status.state in SERVING else 503), body
