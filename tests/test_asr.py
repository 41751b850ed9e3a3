import numpy as np

from mmdemo.engines.asr import WhisperTranscriber


def test_transcribes_and_caches(transcriber: WhisperTranscriber, monkeypatch):
    clip = (0.1 * np.sin(np.arange(16000 * 2) / 10)).astype(np.float32)
    text = transcriber.transcribe(clip)
    assert isinstance(text, str)
    calls = []
    monkeypatch.setattr(transcriber, "_loaded", lambda *a, **k: calls.append(a) or {"text": "fresh"})
    assert transcriber.transcribe(clip) == text  # cached: the pipeline is not called again
    assert calls == []
    assert transcriber.transcribe(clip[:8000]) == "fresh"


def test_long_clips_are_read_in_windows_and_silent_windows_are_not_read(transcriber: WhisperTranscriber,
                                                                         monkeypatch):
    read = []
    window = transcriber._window
    monkeypatch.setattr(transcriber, "_window", lambda samples: read.append(samples.size / 16000) or window(samples))
    noise = (0.1 * np.random.default_rng(0).standard_normal(16000 * 5)).astype(np.float32)
    clip = np.concatenate([np.zeros(16000 * 40, np.float32), noise])  # a 40 s pause, then 5 s of sound
    assert isinstance(transcriber.transcribe(clip), str)
    assert read == [21.0]  # the first window (0-24 s) is silent; the second (24-45 s) is read
    quiet_room = (1e-3 * np.random.default_rng(1).standard_normal(16000 * 70)).astype(np.float32)  # -60 dBFS
    assert transcriber.transcribe(quiet_room) == ""  # Whisper would invent a sentence for each of its 3 windows
    assert read == [21.0]
