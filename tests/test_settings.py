import pytest

from mmdemo.settings import Settings, parse_settings


def test_defaults_bind_loopback():
    settings = parse_settings([])
    assert settings == Settings()
    assert settings.host == "127.0.0.1" and settings.port == 7860


def test_flags_override(monkeypatch):
    monkeypatch.setenv("MMDEMO_PORT", "9000")
    settings = parse_settings(["--model", "some/model", "--device", "cpu", "--max-new-tokens", "64", "--port", "7000"])
    assert (settings.model, settings.device, settings.max_new_tokens, settings.port) == ("some/model", "cpu", 64, 7000)


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("MMDEMO_MODEL", "env/model")
    monkeypatch.setenv("MMDEMO_ASR_MODEL", "env/asr")
    monkeypatch.setenv("MMDEMO_MAX_NEW_TOKENS", "32")
    monkeypatch.setenv("MMDEMO_HOST", "0.0.0.0")
    settings = parse_settings([])
    assert (settings.model, settings.asr_model, settings.max_new_tokens, settings.host) == (
        "env/model", "env/asr", 32, "0.0.0.0")


@pytest.mark.parametrize(("env", "value", "message"), [
    ("MMDEMO_PORT", "abc", "invalid int value"),
    ("MMDEMO_DEVICE", "tpu", "--device must be auto, cpu or cuda"),
    ("MMDEMO_MAX_NEW_TOKENS", "0", "--max-new-tokens must be positive"),
])
def test_bad_values_exit_with_a_message(monkeypatch, capsys, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(SystemExit) as exc:
        parse_settings([])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit):
        parse_settings(["--help"])
    out = capsys.readouterr().out
    for flag in ("--model", "--asr-model", "--device", "--host", "--port", "--max-new-tokens"):
        assert flag in out
    assert "MMDEMO_MODEL" in out


def test_host_follows_gradio_server_name_as_on_spaces(monkeypatch):
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    assert parse_settings([]).host == "0.0.0.0"
    monkeypatch.setenv("MMDEMO_HOST", "127.0.0.1")
    assert parse_settings([]).host == "127.0.0.1"


def test_remote_engine_needs_a_server_and_a_model(capsys):
    with pytest.raises(SystemExit):
        parse_settings(["--engine", "openai", "--model", "m"])
    assert "--engine openai needs --base-url and --model" in capsys.readouterr().err
    settings = parse_settings(["--engine", "openai", "--model", "m", "--base-url", "http://a/v1, http://b/v1"])
    from mmdemo.settings import base_urls

    assert base_urls(settings) == ["http://a/v1", "http://b/v1"]


def test_presets_resolve_by_name_id_path_or_off():
    from mmdemo import presets

    assert presets.resolve("smolvlm2-500m", "chat", "cpu") == "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
    assert presets.resolve(None, "chat", "cuda") == "Qwen/Qwen2.5-Omni-7B"
    assert presets.resolve(None, "chat", "cpu") == "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
    assert presets.resolve("some/checkpoint", "chat", "cpu") == "some/checkpoint"
    assert presets.resolve("off", "tts", "cuda") is None and presets.resolve(None, "draw", "cpu") is None
    assert {p.role for p in presets.PRESETS_LIST} == {"chat", "asr", "tts", "search", "draw"}
    assert all(p.licence and p.size for p in presets.PRESETS_LIST)
    assert "boxes" in presets.BY_NAME["qwen2.5-vl-7b"].gives and "audio" in presets.BY_NAME["qwen2.5-omni-7b"].takes
