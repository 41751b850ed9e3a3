"""Video clips: frames sampled by seeking (never decoding the whole file), with their timestamps.

A clip is cut into equal segments, one frame per segment (at most ``max_frames``, about ``fps`` a second,
within the first ``max_seconds``): the decoder seeks to the keyframe before each segment's middle and
decodes forward only until it is within half a segment of it. Each frame comes out as an upright RGB
``PIL.Image`` within ``max_pixels`` (scaled by the decoder, phone rotation applied). A file that cannot be
seeked (a webcam recording without an index) is read from its start, within the same bounds.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from mmdemo.errors import UserError
from mmdemo.media import MAX_DECODE_PIXELS, Loaded, display_name

log = logging.getLogger(__name__)

VIDEO_FORMATS = "MP4/MOV (H.264, HEVC, AV1), WebM, MKV, AVI"
MAX_DECODED_PER_FRAME = 600  # frames decoded forward from a keyframe (or from the start) for one sample
SEEK_AFTER_S = 2.0  # a target this far past the decoder's position is reached by seeking, nearer ones by decoding on
DECODE_DEADLINE_S = 20.0  # a clip that takes longer to sample is refused (a pathological file)


@dataclass(frozen=True)
class Clip:
    """Frames sampled from a video, their times in seconds, and what the clip is."""

    frames: list[Image.Image]
    timestamps: list[float]
    duration: float  # of the part used
    fps: float  # the clip's own frame rate (for processors that number frames)
    has_audio: bool


@functools.lru_cache(maxsize=256)
def _streams(path: str, size: int, mtime: float) -> tuple[bool, bool]:
    import av

    try:
        with av.open(path) as container:
            pictures = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
            return bool(pictures), bool(container.streams.audio)
    except Exception:  # anything PyAV cannot open is no video
        return False, False


def streams(path: str | os.PathLike) -> tuple[bool, bool]:
    """Whether a media container has a picture stream (cover art does not count) and a sound stream."""
    try:
        stat = os.stat(path)
    except OSError:
        return False, False
    return _streams(str(path), stat.st_size, stat.st_mtime)


def load_video(path: str | os.PathLike, fps: float, max_frames: int, max_seconds: float, max_pixels: int) -> Loaded:
    """Sample a clip's frames (see the module's docstring); every failure is a ``UserError`` naming the file."""
    import av

    name = display_name(path)
    if os.path.getsize(path) == 0:
        raise UserError(f"The video '{name}' is empty (0 bytes). Please record or attach it again.")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"'{name}' has no pictures (no video stream). Attach it as an audio clip, or send "
                                "a video.")
            return _sample(container, name, fps, max_frames, max_seconds, max_pixels)
    except UserError:
        raise
    except Exception as exc:  # PyAV raises many kinds for damaged or unsupported streams
        log.info("unreadable video %s: %s", name, exc)
        raise UserError(f"The video '{name}' could not be decoded: it is damaged or in a format this demo does "
                        f"not read. Supported: {VIDEO_FORMATS}.") from exc


def _sample(container: object, name: str, fps: float, max_frames: int, max_seconds: float,
            max_pixels: int) -> Loaded:
    stream = container.streams.video[0]  # type: ignore[attr-defined]
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    if width * height > MAX_DECODE_PIXELS:
        raise UserError(f"The video '{name}' is {width}×{height} pixels, more than this demo decodes. "
                        "Please send a smaller video.")
    duration = _duration(container, stream)
    used = min(duration, max_seconds) if duration else max_seconds
    count = max(1, min(max_frames, math.ceil(used * fps)))
    targets = [used * (i + 0.5) / count for i in range(count)]
    tolerance = used / count / 2
    deadline = time.monotonic() + DECODE_DEADLINE_S
    picked = _by_seeking(container, stream, targets, tolerance, deadline) if duration is not None else []
    if not picked:
        picked = _from_start(container, stream, targets, tolerance, deadline)
    if not picked:
        raise UserError(f"The video '{name}' holds no frame that could be decoded. Please send another clip.")
    notes = [f"'{name}' is longer than {max_seconds:.0f} s; only its first {max_seconds:.0f} s are used."
             ] if duration and duration > max_seconds else []
    rate = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
    frames = [_upright(frame, max_pixels) for _, frame in picked]
    length = min(duration, max_seconds) if duration else picked[-1][0]
    clip = Clip(frames, [round(t, 3) for t, _ in picked], float(length), rate,
                bool(container.streams.audio))  # type: ignore[attr-defined]
    return Loaded(clip, notes)


def _duration(container: object, stream: object) -> float | None:
    if stream.duration and stream.time_base:  # type: ignore[attr-defined]
        return float(stream.duration * stream.time_base)  # type: ignore[attr-defined]
    if container.duration:  # type: ignore[attr-defined]
        return container.duration / 1_000_000  # type: ignore[attr-defined]
    return None


def _by_seeking(container: object, stream: object, targets: list[float], tolerance: float,
                deadline: float) -> list[tuple[float, object]]:
    """One frame per target, within ``tolerance`` of it where the file allows: the first keyframe of the
    target's window when there is one (one frame decoded), else decoded on from the keyframe before the target,
    or from where the decoder is when the target is near (seeking back would decode the same frames again)."""
    start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0  # type: ignore[attr-defined]
    picked: list[tuple[float, object]] = []
    frames = None
    for target in targets:
        low = target - tolerance
        if frames is None or low - picked[-1][0] > SEEK_AFTER_S:
            frames = _seek(container, stream, start + low, backward=False)
            first = next(frames, None) if frames is not None else None
            if first is not None and low <= (first.time or 0.0) - start <= target + tolerance:
                _keep(picked, (first.time or 0.0) - start, first)
                continue
            frames = _seek(container, stream, start + target, backward=True)
            if frames is None:  # not seekable after all: read from the start instead
                return []
        for decoded, frame in enumerate(frames):
            at = (frame.time or 0.0) - start
            if at >= low or decoded >= MAX_DECODED_PER_FRAME or time.monotonic() > deadline:
                _keep(picked, at, frame)
                break
        else:
            break  # the end of the clip
        if time.monotonic() > deadline:
            break
    return picked


def _seek(container: object, stream: object, seconds: float, backward: bool) -> Iterator[object] | None:
    """Frames decoded from the keyframe at or before (``backward``) or at or after ``seconds``."""
    import av

    try:
        container.seek(max(0, int(seconds / stream.time_base)), stream=stream, backward=backward)  # type: ignore
    except av.error.FFmpegError:
        return None
    return container.decode(stream)  # type: ignore[attr-defined]


def _keep(picked: list[tuple[float, object]], at: float, frame: object) -> None:
    if not picked or at > picked[-1][0]:
        picked.append((max(0.0, at), frame))


def _from_start(container: object, stream: object, targets: list[float], tolerance: float,
                deadline: float) -> list[tuple[float, object]]:
    container.seek(0)  # type: ignore[attr-defined]
    picked: list[tuple[float, object]] = []
    last = None
    for decoded, frame in enumerate(container.decode(stream)):  # type: ignore[attr-defined]
        at = frame.time or 0.0
        last = (at, frame)
        if len(picked) < len(targets) and at >= targets[len(picked)] - tolerance:
            picked.append(last)
        if len(picked) == len(targets) or decoded >= MAX_DECODED_PER_FRAME * len(targets):
            break
        if time.monotonic() > deadline:
            break
    return picked or ([last] if last else [])


def _upright(frame: object, max_pixels: int) -> Image.Image:
    """The frame as RGB within ``max_pixels`` (scaled by the decoder), turned as the clip says to show it."""
    width, height = frame.width, frame.height  # type: ignore[attr-defined]
    scale = min(1.0, (max_pixels / (width * height)) ** 0.5)
    size = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
    image = frame.reformat(width=size[0], height=size[1], format="rgb24").to_image()  # type: ignore[attr-defined]
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    return image.rotate(rotation, expand=True) if rotation else image
