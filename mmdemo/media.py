"""Image and audio loading: validation and normalisation before a processor sees them.

Images come out as RGB ``PIL.Image`` (EXIF orientation applied, first frame of animations,
transparency flattened on white, within a pixel budget). Audio comes out as mono float32 numpy
at the rate the model expects. Every failure is a :class:`UserError` naming the file, never a path.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mmdemo.errors import UserError

log = logging.getLogger(__name__)

IMAGE_FORMATS = "PNG, JPEG, WebP, AVIF, GIF, BMP, TIFF"
# Only these decoders are used: Pillow's others (EPS through Ghostscript, PSD, ...) are attack surface.
_PILLOW_FORMATS = ["PNG", "JPEG", "WEBP", "AVIF", "GIF", "BMP", "TIFF"]  # JPEG's opener also reads MPO
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")
AUDIO_FORMATS = "WAV, FLAC, MP3, OGG/Opus, WebM, M4A/AAC"
MIN_IMAGE_SIDE = 32  # vision encoders need a few patches; tinier images are upscaled
MAX_ASPECT = 20  # wider or taller images are padded, as some processors refuse extreme ratios
MIN_RATE, MAX_RATE = 1_000, 384_000  # audio sample rates accepted (telephone to studio)
MAX_DECODE_PIXELS = 64_000_000  # larger declared sizes are refused before decoding (decompression bombs)


@dataclass
class Loaded:
    """A decoded media item and the notes worth telling the user about it."""

    data: object
    notes: list[str] = field(default_factory=list)


def display_name(path: str | os.PathLike) -> str:
    """The file's own name (never its folder), for messages."""
    return Path(path).name


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (the key cached results of a file are kept under)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
_AUDIO_MAGIC = (b"fLaC", b"OggS", b"ID3", b"#!AMR")
_IMAGE_BRANDS = (b"avif", b"avis", *_HEIF_BRANDS)  # ISO media (ftyp) brands of pictures; others are clips


def sniff(path: str | os.PathLike) -> str | None:
    """The kind a file's first bytes announce: ``"image"``, ``"audio"``, ``"container"`` (MP4/MOV, Matroska/WebM,
    AVI: sound or video, its streams tell), or ``None`` (unknown, or no such file)."""
    try:
        with open(path, "rb") as file:
            head = file.read(32)
    except OSError:
        return None
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 108, 124):
        return "image"
    if head[4:8] == b"ftyp":
        return "image" if head[8:12] in _IMAGE_BRANDS else "container"
    if head.startswith(b"\x1a\x45\xdf\xa3") or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):
        return "container"
    if head.startswith(_AUDIO_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
        return "audio"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame (MP3, ADTS AAC)
        return "audio"
    return None


def load_image(path: str | os.PathLike, max_pixels: int) -> Loaded:
    """Open, validate and normalise an image to RGB within ``max_pixels``."""
    name = display_name(path)
    notes: list[str] = []
    try:
        # Pillow refuses over 2 × MAX_IMAGE_PIXELS itself; below that the checks here decide.
        with Image.open(path, formats=_PILLOW_FORMATS) as opened:
            if opened.format in ("JPEG", "MPO"):
                opened.draft("RGB", _draft_size(opened.size, max_pixels))  # big photos decode at 1/2..1/8 scale
            width, height = opened.size
            if width * height > MAX_DECODE_PIXELS:
                raise UserError(
                    f"The image '{name}' is {width}×{height} pixels, more than this demo decodes "
                    f"({MAX_DECODE_PIXELS // 1_000_000} megapixels). Please send a smaller image."
                )
            if getattr(opened, "is_animated", False):  # n_frames would walk every frame of a huge animation
                notes.append(f"'{name}' is animated; the model sees its first frame only.")
            opened.seek(0)
            image = _to_rgb(ImageOps.exif_transpose(opened))
    except UserError:
        raise
    except Image.DecompressionBombError as exc:
        raise UserError(
            f"The image '{name}' declares an enormous size and was refused. Please send a normal photo."
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        log.info("unreadable image %s: %s", name, exc)
        if _is_heif(path):
            raise UserError(
                f"'{name}' is a HEIC/HEIF photo, which this demo cannot read. Export it as JPEG or PNG "
                f"(supported: {IMAGE_FORMATS})."
            ) from exc
        raise UserError(
            f"The image '{name}' could not be read: it is damaged or not an image. Supported formats: {IMAGE_FORMATS}."
        ) from exc
    return Loaded(_fit(image, max_pixels, name, notes), notes)


def _draft_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """The smallest size JPEG draft mode may decode to while keeping twice the pixel budget."""
    scale = min(1.0, (2 * max_pixels / (size[0] * size[1])) ** 0.5)
    return max(1, int(size[0] * scale)), max(1, int(size[1] * scale))


def _is_heif(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as file:
            head = file.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        span = float(array.max() - array.min()) or 1.0
        return Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def _fit(image: Image.Image, max_pixels: int, name: str, notes: list[str]) -> Image.Image:
    """Pad extreme aspect ratios, upscale tiny images and downscale to the pixel budget."""
    width, height = image.size
    long_side, short_side = max(width, height), min(width, height)
    if long_side > MAX_ASPECT * short_side:
        cap = int((max_pixels * MAX_ASPECT) ** 0.5)  # longest side that still fits the budget once padded
        if long_side > cap:
            scale = cap / long_side
            image = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BICUBIC)
            width, height = image.size
        canvas = (max(width, height // MAX_ASPECT), max(height, width // MAX_ASPECT))
        padded = Image.new("RGB", canvas, (255, 255, 255))
        padded.paste(image, ((canvas[0] - width) // 2, (canvas[1] - height) // 2))
        image = padded
        notes.append(f"'{name}' is very narrow ({long_side}:{short_side}); it was padded to a {MAX_ASPECT}:1 ratio.")
        width, height = image.size
    if min(width, height) < MIN_IMAGE_SIDE:
        scale = MIN_IMAGE_SIDE / min(width, height)
        image = image.resize((round(width * scale), round(height * scale)), Image.BICUBIC)
        width, height = image.size
    if width * height > max_pixels:
        scale = (max_pixels / (width * height)) ** 0.5
        size = (max(MIN_IMAGE_SIDE, int(width * scale)), max(MIN_IMAGE_SIDE, int(height * scale)))
        image = image.resize(size, Image.LANCZOS)
        notes.append(f"'{name}' was downscaled from {width}×{height} to {size[0]}×{size[1]} pixels.")
    return image


def load_audio(path: str | os.PathLike, sampling_rate: int, max_seconds: float) -> Loaded:
    """Decode any supported audio file to mono float32 at ``sampling_rate``, trimmed to ``max_seconds`` (only
    that much is decoded, however long the file says it is)."""
    name = display_name(path)
    if os.path.getsize(path) == 0:
        raise UserError(f"The audio file '{name}' is empty (0 bytes). Please record or attach the clip again.")
    try:
        samples, rate = _decode(path, max_seconds)
    except UserError:
        raise
    except Exception as exc:
        log.info("unreadable audio %s: %s", name, exc)
        raise UserError(
            f"The audio file '{name}' could not be decoded: it is damaged or not audio. "
            f"Supported formats: {AUDIO_FORMATS}."
        ) from exc
    if samples.size == 0:
        raise UserError(f"The audio file '{name}' holds no sound. Please record or attach the clip again.")
    limit = int(max_seconds * rate)
    longer, samples = samples.size > limit, np.nan_to_num(samples[:limit].astype(np.float32, copy=False))
    if rate != sampling_rate:
        import soxr

        samples = soxr.resample(samples, rate, sampling_rate).astype(np.float32, copy=False)
    notes = [f"'{name}' is longer than {max_seconds:.0f} s; only its first {max_seconds:.0f} s are used."
             ] if longer else []
    return Loaded(np.clip(samples[: int(max_seconds * sampling_rate)], -1.0, 1.0), notes)


def _decode(path: str | os.PathLike, max_seconds: float) -> tuple[np.ndarray, int]:
    """Mono samples and their rate, decoded only a little past ``max_seconds`` (more samples than that
    mean the file goes on longer). soundfile first (WAV, FLAC, OGG, MP3); PyAV's bundled ffmpeg for the
    rest (WebM, M4A...)."""
    import soundfile

    try:
        with soundfile.SoundFile(path) as file:
            rate = _check_rate(path, file.samplerate)
            limit = int(max_seconds * rate)
            return file.read(limit + 1, dtype="float32", always_2d=True).mean(axis=1), rate
    except soundfile.LibsndfileError:
        pass
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        rate = _check_rate(path, stream.codec_context.sample_rate or 16000)
        limit = int(max_seconds * rate)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks, count = [], 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
                count += chunks[-1].size
            if count > limit:
                break
        else:
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), rate


def _check_rate(path: str | os.PathLike, rate: int) -> int:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise UserError(f"The audio file '{display_name(path)}' says it was recorded at {rate} samples per second, "
                        f"outside what this demo reads ({MIN_RATE}–{MAX_RATE}). Please convert it to 16–48 kHz.")
    return int(rate)
