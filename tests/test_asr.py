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


def test_long_clips_are_read_in_chunks(transcriber: WhisperTranscriber):
    clip = (0.1 * np.random.default_rng(0).standard_normal(16000 * 45)).astype(np.float32)
    assert isinstance(transcriber.transcribe(clip), str)
