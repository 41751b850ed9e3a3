"""The kinds of media mmdemo takes, one registry entry each: how a file of that kind is recognised, which
budget applies, how it becomes parts of the model's messages, which prompt tokens it counts, and which
capability flag says a model takes it. Adding a modality is one entry here (plus its decoder and tests)."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmdemo import media
from mmdemo.engines.base import Capabilities
from mmdemo.errors import UserError
from mmdemo.video import VIDEO_FORMATS, Clip, load_video, streams

if TYPE_CHECKING:  # turns.py recognises files through this module
    from mmdemo.turns import Part


VIDEO_FRAMES = {"cpu": 8, "cuda": 32}  # frames sampled from one video, per device (each costs prompt tokens)


@dataclass(frozen=True)
class Budget:
    """How much media one request may carry into the model."""

    max_image_pixels: int = 1024 * 1024
    max_audio_seconds: float = 60.0
    max_images: int = 4
    max_audio: int = 4
    max_videos: int = 1
    max_video_seconds: float = 600.0  # longer clips are trimmed (with a notice)
    video_fps: float = 1.0  # frames sampled per second of video, at most ``video_frames`` in all
    video_frames: int = 8
    video_frame_pixels: int = 360 * 360


@dataclass
class Context:
    """What converting one part may use and report: the model's capabilities, the budget, speech
    recognition for models that cannot hear, and the notices and transcripts of the new message."""

    caps: Capabilities
    budget: Budget
    transcribe: Callable[[np.ndarray], str] | None = None
    new: bool = False  # the part belongs to the new message (its notes are reported)
    notices: list[str] = field(default_factory=list)
    transcripts: list[tuple[str, str]] = field(default_factory=list)  # (clip name, text) of the new message

    def note(self, notes: list[str]) -> None:
        """Report ``notes`` about a part of the new message."""
        if self.new:
            self.notices.extend(notes)


@dataclass(frozen=True)
class Modality:
    """One kind of media."""

    name: str  # the part kind, e.g. "image"
    noun: str  # how messages name one item: "image", "audio clip"
    plural: str  # how the model card names the kind: "images", "audio"
    formats: str  # the formats read, for messages
    mime_prefix: str  # declared MIME types of this kind start with this
    suffixes: frozenset[str]  # file names of this kind end with one of these (the last resort)
    capability: str  # the Capabilities flag that says a model takes it natively
    context_limit: str  # the Budget field: how many items of this kind stay in the model's context
    token: str  # the processor attribute that names its placeholder token (counted in the speed strip)
    convert: Callable[[Part, Context], list[dict]]  # a Part -> content parts of the model's messages


def _image(part: Part, ctx: Context) -> list[dict]:
    if not ctx.caps.image:
        raise UserError("This model does not take images. Send text or audio, or start it with another --model.")
    loaded = media.load_image(part.path, ctx.budget.max_image_pixels)
    ctx.note(loaded.notes)
    return [{"type": "image", "image": loaded.data}]


def _audio(part: Part, ctx: Context) -> list[dict]:
    path, name = part.path, part.name
    if ctx.caps.audio:
        loaded = media.load_audio(path, ctx.caps.audio_sampling_rate,
                                  min(ctx.budget.max_audio_seconds, ctx.caps.max_audio_seconds))
        ctx.note(loaded.notes)
        return [{"type": "audio", "audio": loaded.data}]
    if ctx.transcribe is None:
        raise UserError("This model does not take audio and no speech-recognition model is set (--asr-model).")
    loaded = media.load_audio(path, 16000, ctx.budget.max_audio_seconds)
    ctx.note(loaded.notes)
    return _transcribed(loaded.data, name, f'Voice clip "{name}"', ctx)


def _transcribed(samples: np.ndarray, name: str, what: str, ctx: Context) -> list[dict]:
    """Speech a model cannot hear, as its transcript: recorded for the new message under ``name`` and sent as
    text introduced by ``what``."""
    transcript = ctx.transcribe(samples)  # type: ignore[misc]
    if ctx.new:
        ctx.transcripts.append((name, transcript))
    return [{"type": "text", "text": f"[{what}, transcribed: {transcript or '(no speech heard)'}]"}]


def _video(part: Part, ctx: Context) -> list[dict]:
    if not (ctx.caps.video or ctx.caps.image):
        raise UserError("This model does not take pictures, so it cannot watch a video. Send text or audio, or "
                        "start the demo with a model that sees.")
    budget = ctx.budget
    loaded = load_video(part.path, budget.video_fps, budget.video_frames, budget.max_video_seconds,
                        budget.video_frame_pixels)
    ctx.note(loaded.notes)
    clip: Clip = loaded.data  # type: ignore[assignment]
    if ctx.caps.video:  # the processor samples nothing itself: these frames, at these times
        parts = [{"type": "video", "video": clip.frames, "timestamps": clip.timestamps, "duration": clip.duration,
                  "fps": clip.fps}]
    else:  # frames as images, each after its time
        parts = [{"type": "text", "text": f'[Video "{part.name}", {clip.duration:.0f} s long: '
                                          f"{len(clip.frames)} frames, each after its time]"}]
        for at, frame in zip(clip.timestamps, clip.frames, strict=True):
            parts += [{"type": "text", "text": f"[{int(at // 60)}:{at % 60:04.1f}]"}, {"type": "image", "image": frame}]
    return parts + (_sound_track(part, ctx) if clip.has_audio else [])


def _sound_track(part: Part, ctx: Context) -> list[dict]:
    """A clip's sound: as audio for a model that hears, else its transcript, else a notice."""
    seconds = min(ctx.budget.max_video_seconds, ctx.budget.max_audio_seconds)
    try:
        if ctx.caps.audio:
            audio = media.load_audio(part.path, ctx.caps.audio_sampling_rate, min(seconds, ctx.caps.max_audio_seconds))
            return [{"type": "audio", "audio": audio.data}]
        if ctx.transcribe is None:
            ctx.note([f"'{part.name}' has sound, but this model does not hear and no speech model is set; only its "
                      "pictures are used."])
            return []
        samples = media.load_audio(part.path, 16000, seconds).data
        return _transcribed(samples, f"{part.name} (sound)", f'Sound of video "{part.name}"', ctx)
    except UserError as exc:  # a sound track that cannot be decoded or heard: the pictures still count
        ctx.note([f"The sound of '{part.name}' could not be used ({exc})"])
        return []


MODALITIES: dict[str, Modality] = {
    m.name: m
    for m in (
        Modality("image", "image", "images", media.IMAGE_FORMATS, "image/", frozenset(), "image", "max_images",
                 "image_token", _image),
        Modality("audio", "audio clip", "audio", media.AUDIO_FORMATS, "audio/",
                 frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".webm", ".m4a", ".aac", ".weba"}),
                 "audio", "max_audio", "audio_token", _audio),
        Modality("video", "video", "videos", VIDEO_FORMATS, "video/",
                 frozenset({".mp4", ".mov", ".mkv", ".avi", ".m4v", ".3gp"}), "video", "max_videos", "video_token",
                 _video),
    )
}


def detect(path: str, mime: str | None = None) -> str:
    """A file's part kind: from its first bytes when they are a known format's (browsers and the JavaScript
    client upload files named ``blob``), else from the declared MIME type, else from its name; ``"other"``."""
    sniffed = media.sniff(path)
    if sniffed in MODALITIES:
        return sniffed
    if sniffed == "container":  # MP4, WebM, MKV, AVI: a video when it has pictures, else sound
        pictures, sound = streams(path)
        if pictures or sound:
            return "video" if pictures else "audio"
    declared = mime or mimetypes.guess_type(str(path))[0] or ""
    suffix = Path(path).suffix.lower()
    by_mime = [m.name for m in MODALITIES.values() if declared.startswith(m.mime_prefix)]
    by_name = [m.name for m in MODALITIES.values() if suffix in m.suffixes]
    return (by_mime or by_name or ["audio" if sniffed == "container" else "other"])[0]


def unrecognised(name: str) -> str:
    """The message for a file whose content is none of the kinds in :data:`MODALITIES`."""
    kinds = [m.name for m in MODALITIES.values()]
    formats = "; ".join(f"{m.name}: {m.formats}" for m in MODALITIES.values())
    return (f"'{name}' is not an {', '.join(kinds[:-1])} or {kinds[-1]} file (its content was not recognised). "
            f"Attach one of these ({formats}).")
