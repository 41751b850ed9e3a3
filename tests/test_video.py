"""Video as a modality: sampling by seeking, odd and hostile clips, how a clip reaches each kind of model
(native video, frames as images, its sound as audio or as a transcript), and through the app."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest
from gradio_client import Client, handle_file
from helpers import ASSETS, Server, write_clip

from mmdemo.conversation import build_messages
from mmdemo.engines.base import Capabilities, GenerationParams, GenerationStats
from mmdemo.errors import UserError
from mmdemo.modalities import Budget, detect
from mmdemo.turns import Part, Turn
from mmdemo.video import load_video

VIDEO = Capabilities(image=True, audio=False, video=True)
PICTURES = Capabilities(image=True, audio=False)
OMNI = Capabilities(image=True, audio=True, video=True)


def sample(path, fps=1.0, frames=8, seconds=600.0, pixels=360 * 360):
    return load_video(path, fps, frames, seconds, pixels)


def test_frames_are_spread_over_the_clip_with_their_times(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", seconds=6, fps=10, audio=True)
    loaded = sample(clip)
    assert loaded.data.timestamps == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and loaded.data.has_audio
    assert loaded.data.duration == pytest.approx(6.0) and loaded.data.fps == 10 and not loaded.notes
    shades = [frame.getpixel((5, 5))[0] for frame in loaded.data.frames]
    assert shades == sorted(shades) and shades[-1] - shades[0] > 150  # each frame from its own moment
    capped = sample(clip, fps=2.0, frames=4).data
    assert len(capped.frames) == 4 and capped.timestamps[-1] >= 4.0  # the cap spreads frames over the clip


def test_long_clips_are_trimmed_with_a_notice_and_frames_fit_the_pixel_budget(tmp_path):
    clip = write_clip(tmp_path / "wide.mp4", seconds=4, fps=5, size=(640, 360))
    loaded = sample(clip, seconds=2.0, pixels=100 * 100)
    assert "only its first 2 s are used" in loaded.notes[0]
    assert max(loaded.data.timestamps) < 2.0
    width, height = loaded.data.frames[0].size
    assert width * height <= 100 * 100 and abs(width / height - 16 / 9) < 0.1


def test_phone_clips_are_turned_upright(tmp_path):
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is missing: install Debian's 'ffmpeg' package (bash .ci/run does)"
    source = write_clip(tmp_path / "landscape.mp4", seconds=1, fps=5, size=(160, 120))
    rotated = tmp_path / "portrait.mp4"
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(source), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                    str(rotated)], check=True)
    assert sample(rotated).data.frames[0].size == (120, 160)  # as a phone shows it


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
    (lambda p: p.write_bytes(b"\x00\x00\x00\x20ftypisom" + b"\x17" * 4000), "could not be decoded"),
    (lambda p: p.write_text("this is not a video at all"), "could not be decoded"),
])
def test_damaged_and_fake_clips_get_a_clear_message(tmp_path, make, expected):
    path = tmp_path / "clip.mp4"
    make(path)
    with pytest.raises(UserError, match=expected) as error:
        sample(path)
    assert str(tmp_path) not in str(error.value)


def test_odd_clips_single_frame_thousand_fps_8k_and_two_hours_stay_bounded(tmp_path):
    one = sample(write_clip(tmp_path / "one.mp4", seconds=0.1, fps=10)).data
    assert len(one.frames) == 1 and one.timestamps == [0.0]
    fast = sample(write_clip(tmp_path / "fast.mp4", seconds=1, fps=1000, size=(32, 32))).data
    assert len(fast.frames) == 1 and fast.fps == 1000
    huge = sample(write_clip(tmp_path / "8k.mp4", seconds=0.2, fps=5, size=(7680, 4320))).data
    assert huge.frames[0].width * huge.frames[0].height <= 360 * 360
    long = write_clip(tmp_path / "long.mkv", seconds=7200, fps=1, size=(32, 32), gop=600)
    started = time.monotonic()
    loaded = sample(long)
    assert time.monotonic() - started < 2.0 and len(loaded.data.frames) == 8
    assert "only its first 600 s are used" in loaded.notes[0] and loaded.data.timestamps[-1] < 600


def test_a_container_is_a_video_when_it_has_pictures_else_audio(tmp_path, audio_file):
    assert detect(str(ASSETS / "clip.mp4")) == "video"
    sound_only = tmp_path / "voice.m4a"
    subprocess.run([shutil.which("ffmpeg"), "-loglevel", "error", "-i", str(audio_file()), str(sound_only)],
                   check=True)
    blob = tmp_path / "blob"
    shutil.copy(ASSETS / "clip.mp4", blob)
    assert detect(str(sound_only)) == "audio" and detect(str(blob)) == "video"  # by content, not by name
    assert detect(str(tmp_path / "missing.webm"), "video/webm") == "video"


def test_a_video_model_gets_the_clip_as_video_with_its_times_and_sound():
    turn = Turn.user("What happens?", [str(ASSETS / "clip.mp4")])
    prepared = build_messages([], turn, system_prompt="", capabilities=OMNI, budget=Budget())
    video, audio, text = prepared.messages[0]["content"]
    assert video["type"] == "video" and len(video["video"]) == 6 and video["timestamps"][:2] == [0.0, 1.0]
    assert audio["type"] == "audio" and 2.0 < len(audio["audio"]) / 16000 <= 6.0 and text["type"] == "text"


def test_an_image_model_gets_frames_with_their_times_and_the_sound_as_a_transcript():
    heard = []
    turn = Turn.user("What happens?", [str(ASSETS / "clip.mp4")])
    prepared = build_messages([], turn, system_prompt="", capabilities=PICTURES, budget=Budget(video_frames=3),
                              transcribe=lambda samples: heard.append(samples) or "watch the red ball")
    content = prepared.messages[0]["content"]
    assert [p["type"] for p in content] == ["text", "text", "image", "text", "image", "text", "image", "text", "text"]
    assert content[1]["text"] == "[0:00.0]" and content[3]["text"] == "[0:02.0]"
    assert "watch the red ball" in content[-2]["text"] and prepared.transcripts == [("clip.mp4 (sound)",
                                                                                        "watch the red ball")]


def test_a_model_that_cannot_see_refuses_a_video_and_history_keeps_one_video():
    turn = Turn.user("What happens?", [str(ASSETS / "clip.mp4")])
    with pytest.raises(UserError, match="cannot watch a video"):
        build_messages([], turn, system_prompt="", capabilities=Capabilities(image=False, audio=True),
                       budget=Budget())
    prepared = build_messages([turn, Turn("assistant", ())], turn, system_prompt="", capabilities=VIDEO,
                              budget=Budget())
    assert "1 older video was left out" in prepared.notices[0]


@pytest.mark.parametrize(("twin", "native", "hears"), [
    ("smolvlm2-256m-video", True, False),  # reads video natively (frames with their times in the prompt)
    ("qwen2.5-omni-7b", True, True),  # reads video and hears its sound
    ("smolvlm-256m-instruct", False, False),  # Idefics3: no video processor, frames as images
])
def test_each_architecture_answers_about_a_clip(twins, twin, native, hears):
    from mmdemo.engines.local import TransformersEngine

    engine = TransformersEngine(str(twins[twin]), "cpu")
    caps = engine.capabilities
    assert (caps.video, caps.audio) == (native, hears)
    turn = Turn.user("What happens in this video?", [str(ASSETS / "clip.mp4")])
    prepared = build_messages([], turn, system_prompt="Be brief.", capabilities=caps, budget=Budget(),
                              transcribe=lambda samples: "watch the red ball")
    stats = GenerationStats()
    answer = "".join(engine.stream(prepared.messages, GenerationParams(6, 0.0), threading.Event(), stats))
    assert answer and stats.generated_tokens == 6
    assert stats.media_tokens.get("video" if native else "image", 0) > 0 and stats.frames == (6 if native else 0)
    assert ("audio" in stats.media_tokens) == hears


@pytest.fixture(scope="module")
def omni_app(twins, tmp_path_factory):
    server = Server(twins["qwen2.5-omni-7b"], twins["whisper-base"], tmp_path_factory.mktemp("video") / "app.log")
    yield server
    server.stop()


def test_a_clip_through_the_api_streams_an_answer_and_the_speed_strip_counts_it(omni_app):
    client = Client(omni_app.url, verbose=False)
    blob = {"text": "What happens?", "files": [handle_file(str(ASSETS / "clip.mp4"))]}
    assert client.predict(blob, "", 6, 0, 1, api_name="/chat")[0]  # (message, system, max tokens, temperature, top-p)
    prompt, generated, _ = omni_app.wait_answers(2)[-1]  # the warm-up, then this answer
    assert generated == 6 and prompt > 300
    result = client.predict({"text": "", "files": [handle_file(str(ASSETS / "clip.mp4"))]}, task_key="video",
                            max_tokens=4, temperature=0, api_name="/task")
    assert result[1]["task"] == "video" and result[1]["answer"]
    with pytest.raises(Exception, match="needs a video"):
        client.predict({"text": "", "files": []}, task_key="video", api_name="/task")


def test_a_clip_in_the_browser_shows_in_the_chat_and_its_answer_streams(browser, omni_app, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(omni_app.url)
        page.wait_for_selector("#input textarea", timeout=20_000)
        page.set_input_files("#input input[type=file]", [str(ASSETS / "clip.mp4")])
        page.fill("#input textarea", "What happens in this video?")
        page.click("#send")
        page.wait_for_selector("#chat video", timeout=15_000)  # the clip plays inline in the chat
        page.wait_for_selector("#chat :text('s to first token')", timeout=60_000)
        page.get_by_text("s to first token").first.click()  # opens the speed strip's detail
        detail = page.inner_text("#chat")
        assert "video" in detail and "6 frames" in detail and "audio" in detail
        assert "ready" in page.inner_text("#status")  # and the page keeps serving
    finally:
        page.close()



def test_a_webcam_recording_joins_the_message_and_is_answered(browser, omni_app):
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # Chromium's fake camera and microphone
    try:
        page.goto(omni_app.url)
        page.wait_for_selector("#input textarea", timeout=20_000)
        page.click("#record-video")
        page.click("#webcam button:has-text('Click to Access Webcam')")
        page.click("#webcam button[aria-label='start recording']")
        page.wait_for_timeout(2000)
        page.click("#webcam button:has-text('Stop')")
        page.wait_for_selector("#input .thumbnail-item", timeout=15_000)  # attached to the message
        page.fill("#input textarea", "What do you see?")
        page.click("#send")
        page.wait_for_selector("#chat video", timeout=15_000)
        page.wait_for_selector("#chat :text('s to first token')", timeout=60_000)
    finally:
        page.close()
    assert omni_app.wait_answers(2)[-1][0] > 100  # the clip's frames (and sound) were in the prompt


def test_a_variable_frame_rate_clip_keeps_its_real_times(tmp_path):
    from fractions import Fraction

    import av
    import numpy as np

    path, times = tmp_path / "vfr.mkv", [0.0, 0.1, 0.15, 1.9, 2.0, 4.5, 4.6, 5.9]  # bursts and gaps, as phones write
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i, at in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 30, np.uint8), format="rgb24")
            frame.pts, frame.time_base = int(at * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    clip = sample(path, fps=1.0, frames=8).data
    assert set(clip.timestamps) <= set(times) and clip.timestamps == sorted(set(clip.timestamps))
    assert len(clip.frames) >= 3 and clip.timestamps[-1] >= 4.5  # frames from across the clip, at their own times


def test_export_keeps_the_video(tmp_path):
    import zipfile

    from mmdemo.export import export_conversation

    answer = Turn("assistant", (Part.of_text("A ball rolls."),))
    turns = [Turn.user("What happens?", [str(ASSETS / "clip.mp4")]), answer]
    with zipfile.ZipFile(export_conversation(turns, "m")) as archive:
        assert "media/01-clip.mp4" in archive.namelist()
        assert "[video: media/01-clip.mp4]" in archive.read("conversation.md").decode()
