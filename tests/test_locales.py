"""The page's two languages: complete, picked from the browser, used by what the server writes."""

import pytest

from mmdemo.engines.base import EngineStatus, GenerationStats
from mmdemo.locales import LIVE, UI, language
from mmdemo.views import banner_markdown, speed_strip, status_markdown


@pytest.mark.parametrize("table", [UI, LIVE])
def test_both_languages_have_every_phrase(table):
    assert set(table["en"]) == set(table["zh-CN"])
    assert all(table["zh-CN"][key] for key in table["en"])


@pytest.mark.parametrize(("header", "expected"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("zh", "zh-CN"), ("zh-TW", "zh-CN"), ("en-US,en;q=0.9", "en"),
    ("fr-FR,zh-CN;q=0.5", "en"), ("", "en"), (None, "en"),
])
def test_language_follows_the_browsers_first_choice(header, expected):
    assert language(header) == expected


def test_server_written_text_is_localised():
    ready = EngineStatus("ready", "HuggingFaceTB/SmolVLM2-256M", "cpu", "bfloat16")
    assert status_markdown(ready, "zh-CN") == "**HuggingFaceTB/SmolVLM2-256M** 已在 cpu 上就绪（bfloat16）"
    assert "loading" in banner_markdown(EngineStatus("loading", "m", "cpu"), None, "en")
    assert banner_markdown(ready, None, "zh-CN") == ""
    stats = GenerationStats(prompt_tokens=80, media_tokens={"image": 64}, generated_tokens=11, first_token_s=0.5,
                            last_token_s=1.5, cancelled=True, replayed=True)
    title = speed_strip(stats, 2.0, True, "zh-CN")["metadata"]["title"]
    assert title == "首个 token 用时 0.50 秒 · 10.0 tok/s · 11 个 token · 已停止 · 启动时已计算（展示模式）"
    detail = speed_strip(stats, 2.0, True, "en")["content"]
    assert detail == "Prompt 80 tokens (text 16 · image 64) · generated 11 · waited 2.0 s in the queue"
