import numpy as np
import pytest
import soundfile
from PIL import Image

from mmdemo import media
from mmdemo.errors import UserError
from mmdemo.modalities import detect

BUDGET = 512 * 512


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    Image.new("RGB", (80, 40), "blue").save(path, exif=exif)
    image = media.load_image(path, BUDGET).data
    assert image.size == (40, 80)


@pytest.mark.parametrize(("mode", "color"), [("RGBA", (255, 0, 0, 0)), ("LA", (0, 0)), ("CMYK", (0, 255, 255, 0)),
                                             ("L", 128), ("I;16", 40000), ("1", 1)])
def test_every_mode_becomes_rgb(image_file, mode, color):
    name = "img.tiff" if mode in ("CMYK", "I;16") else "img.png"
    image = media.load_image(image_file(name, mode=mode, color=color), BUDGET).data
    assert image.mode == "RGB"


def test_transparency_is_flattened_on_white(image_file):
    image = media.load_image(image_file("clear.png", mode="RGBA", color=(255, 0, 0, 0)), BUDGET).data
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_transparency(tmp_path):
    path = tmp_path / "palette.png"
    img = Image.new("P", (40, 40), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.save(path, transparency=0)
    assert media.load_image(path, BUDGET).data.getpixel((5, 5)) == (255, 255, 255)


def test_large_image_is_downscaled_with_a_note(image_file):
    loaded = media.load_image(image_file("big.png", size=(2000, 1000)), BUDGET)
    width, height = loaded.data.size
    assert width * height <= BUDGET and abs(width / height - 2) < 0.02
    assert "downscaled from 2000×1000" in loaded.notes[0]


def test_tiny_image_is_upscaled(image_file):
    assert min(media.load_image(image_file("dot.png", size=(1, 1)), BUDGET).data.size) >= media.MIN_IMAGE_SIDE


def test_extreme_aspect_ratio_is_padded(image_file):
    loaded = media.load_image(image_file("line.png", size=(1, 50000)), BUDGET)
    width, height = loaded.data.size
    assert height / width <= media.MAX_ASPECT + 0.5 and width * height <= BUDGET
    assert "padded" in loaded.notes[0]


def test_animated_gif_uses_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    loaded = media.load_image(path, BUDGET)
    assert loaded.data.getpixel((0, 0))[0] > 200
    assert "first frame" in loaded.notes[0]


@pytest.mark.parametrize("content", [b"", b"this is not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_unreadable_images_get_a_clear_message(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"The image 'broken.png' could not be read") as exc:
        media.load_image(path, BUDGET)
    assert str(tmp_path) not in str(exc.value)


def test_truncated_jpeg(tmp_path, image_file):
    full = image_file("full.jpg", size=(300, 300)).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(UserError, match="could not be read"):
        media.load_image(path, BUDGET)


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(path)  # 400 megapixels in a few kilobytes
    assert path.stat().st_size < 200_000
    with pytest.raises(UserError, match="bomb.png"):
        media.load_image(path, BUDGET)


def test_audio_is_mono_float32_at_the_asked_rate(audio_file):
    loaded = media.load_audio(audio_file("stereo.wav", seconds=2.0, rate=44100, channels=2), 16000, 30)
    assert loaded.data.dtype == np.float32 and loaded.data.ndim == 1
    assert abs(loaded.data.size - 32000) <= 2
    assert 0.2 < np.abs(loaded.data).max() <= 1.0


@pytest.mark.parametrize(("name", "kwargs"), [
    ("pcm8.wav", {"subtype": "PCM_U8"}), ("pcm24.wav", {"subtype": "PCM_24"}), ("pcm32.wav", {"subtype": "PCM_32"}),
    ("float.wav", {"subtype": "FLOAT"}), ("clip.flac", {}), ("clip.ogg", {"subtype": "VORBIS"}),
    ("clip.opus", {"format": "OGG", "subtype": "OPUS"}), ("clip.mp3", {}),
])
def test_audio_formats(audio_file, name, kwargs):
    rate = 48000 if "opus" in name else 22050
    loaded = media.load_audio(audio_file(name, seconds=1.0, rate=rate, **kwargs), 16000, 30)
    assert abs(loaded.data.size - 16000) < 1200 and np.abs(loaded.data).max() > 0.1


def test_browser_recordings_decode_through_pyav(tmp_path):
    import av

    rate = 48000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    for name, codec in (("chrome.webm", "libopus"), ("safari.m4a", "aac")):
        path = tmp_path / name
        with av.open(str(path), "w") as out:
            stream = out.add_stream(codec, rate=rate, layout="mono")
            frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        loaded = media.load_audio(path, 16000, 30)
        assert abs(loaded.data.size - 16000) < 1600, name
        assert np.abs(loaded.data).max() > 0.1, name


def test_long_audio_is_trimmed_with_a_note(audio_file):
    loaded = media.load_audio(audio_file("long.wav", seconds=12.0), 16000, 5)
    assert loaded.data.size == 5 * 16000
    assert "only its first 5 s" in loaded.notes[0]


@pytest.mark.parametrize(("content", "message"),
                         [(b"", "is empty"), (b"RIFF not really audio" * 10, "could not be decoded")])
def test_unreadable_audio_gets_a_clear_message(tmp_path, content, message):
    path = tmp_path / "voice.wav"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as exc:
        media.load_audio(path, 16000, 30)
    assert "voice.wav" in str(exc.value) and str(tmp_path) not in str(exc.value)


def test_silence_is_accepted(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(8000, np.float32), 16000)
    assert media.load_audio(path, 16000, 30).data.size == 8000


@pytest.mark.parametrize(("name", "mime", "kind"), [
    ("a.png", None, "image"), ("a.JPG", None, "image"), ("a.wav", None, "audio"), ("rec.webm", "video/webm", "video"),
    ("a.m4a", None, "audio"), ("notes.pdf", None, "other"), ("blob", "image/png", "image"),
])
def test_media_kind(name, mime, kind):
    assert detect(name, mime) == kind


@pytest.mark.parametrize(("save", "kind"), [
    (lambda p: Image.new("RGB", (8, 8)).save(p, format="PNG"), "image"),
    (lambda p: Image.new("RGB", (8, 8)).save(p, format="JPEG"), "image"),
    (lambda p: Image.new("RGB", (8, 8)).save(p, format="WEBP"), "image"),
    (lambda p: Image.new("RGB", (8, 8)).save(p, format="BMP"), "image"),
    (lambda p: soundfile.write(p, np.zeros(800, np.float32), 16000, format="WAV"), "audio"),
    (lambda p: soundfile.write(p, np.zeros(800, np.float32), 16000, format="FLAC"), "audio"),
    (lambda p: soundfile.write(p, np.zeros(800, np.float32), 16000, format="OGG"), "audio"),
    (lambda p: p.write_text("BMW is a car maker, not a bitmap."), "other"),
])
def test_media_kind_reads_the_content_of_files_named_blob(tmp_path, save, kind):
    path = tmp_path / "blob"  # how browsers and the JavaScript client name uploads
    save(path)
    assert detect(path) == kind
    assert detect(path, "application/octet-stream") == kind


def test_content_wins_over_a_misleading_name(tmp_path):
    path = tmp_path / "photo.jpg"
    soundfile.write(path, np.zeros(800, np.float32), 16000, format="WAV")
    assert detect(path) == "audio"


def test_very_large_jpeg_photo_decodes_at_reduced_scale(tmp_path):
    path = tmp_path / "108mp.jpg"
    Image.new("RGB", (12000, 9000), (30, 120, 200)).save(path, quality=50)
    loaded = media.load_image(path, BUDGET)
    assert loaded.data.size[0] * loaded.data.size[1] <= BUDGET
    assert loaded.data.getpixel((10, 10))[2] > 150


def test_animated_webp_and_avif(tmp_path):
    frames = [Image.new("RGB", (40, 30), c) for c in ("green", "red")]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:])
    loaded = media.load_image(tmp_path / "anim.webp", BUDGET)
    assert "first frame" in loaded.notes[0] and loaded.data.getpixel((5, 5))[1] > 100
    frames[0].save(tmp_path / "photo.avif")
    assert media.load_image(tmp_path / "photo.avif", BUDGET).data.mode == "RGB"


def test_heic_gets_a_message_that_names_the_format(tmp_path):
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 200)
    with pytest.raises(UserError, match="HEIC/HEIF photo"):
        media.load_image(path, BUDGET)


def test_formats_outside_the_allowlist_are_refused(tmp_path):
    path = tmp_path / "drawing.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(UserError, match="could not be read"):
        media.load_image(path, BUDGET)


def test_many_channels_and_odd_rates(audio_file):
    loaded = media.load_audio(audio_file("surround.wav", seconds=1.0, rate=11025, channels=6), 16000, 30)
    assert loaded.data.ndim == 1 and abs(loaded.data.size - 16000) <= 2
