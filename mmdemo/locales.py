"""The page's words in English and Simplified Chinese.

Static labels are translated in the browser by Gradio's i18n (``gr.I18n(**UI)``), which follows the
browser's language and Gradio's Settings → Language switch. Text the server writes while the page is
open (status line, banners, speed strip) follows the request's ``Accept-Language``.
"""

from __future__ import annotations

UI: dict[str, dict[str, str]] = {
    "en": {
        "title": "# mmdemo · multimodal chat",
        "description": "Give the model **images, videos, voice clips and text** (attach files, drop them in, or "
                       "record with the microphone) and watch the answer stream back. Earlier turns, with their media, "
                       "stay in context.",
        "chat": "Chat",
        "chat_placeholder": "Attach an image, a video or a voice clip and ask about it, or start with an example:",
        "input_placeholder": "Ask about an image, a video or a voice clip… (Enter sends, Shift+Enter adds a line)",
        "mic_notice": "This page is served over plain HTTP, so the browser will not let it record from the "
                      "microphone. Open it at `http://localhost` on the machine that runs it, serve it over HTTPS "
                      "(see docs/DEPLOY.md), or attach a recorded clip instead.",
        "send": "Send", "stop": "Stop (Esc)", "clear": "Clear", "export": "Export chat",
        "exported": "Conversation (Markdown, JSON and media)",
        "settings": "Generation settings", "system_prompt": "System prompt", "max_tokens": "Max new tokens",
        "temperature": "Temperature (0 = greedy)", "top_p": "Top-p", "about": "About this model",
        "examples": "Examples: click one, then Send", "examples_showcase": "Examples: click one",
        "examples_zh": "Examples in Chinese", "examples_zh_showcase": "Examples in Chinese: click one",
        "tab_chat": "Chat", "tab_search": "Search", "tab_draw": "Draw", "task": "Task",
        "task_prompt": "Prompt sent with your message (editable)", "labels": "Labels (comma-separated)",
        "label_set": "Ready label sets", "language": "Translate into", "speak": "Speak the answer",
        "think": "Think first", "think_info": "The model reasons before it answers: slower; its reasoning shows, "
                                              "folded, above the answer.",
        "record_video": "Record a video (webcam)",
        "spoken": "Spoken answer", "model": "Model", "picker": "Chat model (switching affects every visitor)",
        "how": "How it works", "search_text": "Find images showing…", "search_image": "…or images like this one",
        "search": "Search", "gallery": "Gallery (the demo's images and yours)", "add_images": "Add images",
        "matches": "Best matches", "draw_prompt": "Describe the picture", "draw": "Draw", "steps": "Steps",
        "seed": "Seed", "examples_tasks": "Examples of each task: click one, then Send",
    },
    "zh-CN": {
        "title": "# mmdemo · 多模态对话",
        "description": "给模型**图片、语音和文字**（附加文件、拖入文件或用麦克风录音），看它逐字流式作答。"
                       "之前的对话及其媒体都会保留在上下文中。",
        "chat": "对话",
        "chat_placeholder": "附加图片、视频或语音后提问，或者从一个示例开始：",
        "input_placeholder": "就图片、视频或语音提问……（Enter 发送，Shift+Enter 换行）",
        "mic_notice": "此页面通过普通 HTTP 提供，浏览器不允许它使用麦克风录音。请在运行它的机器上通过 "
                      "`http://localhost` 打开，或通过 HTTPS 提供（见 docs/DEPLOY.md），或改为附加录好的音频。",
        "send": "发送", "stop": "停止 (Esc)", "clear": "清空", "export": "导出对话",
        "exported": "对话（Markdown、JSON 和媒体）",
        "settings": "生成设置", "system_prompt": "系统提示词", "max_tokens": "最多生成的 token 数",
        "temperature": "温度（0 = 贪心）", "top_p": "Top-p", "about": "关于此模型",
        "examples": "示例：点一个，再点发送", "examples_showcase": "示例：点一个即可",
        "examples_zh": "中文示例", "examples_zh_showcase": "中文示例：点一个即可",
        "tab_chat": "对话", "tab_search": "搜索", "tab_draw": "绘图", "task": "任务",
        "task_prompt": "随消息发送的提示（可编辑）", "labels": "标签（用逗号分隔）", "label_set": "现成的标签组",
        "language": "翻译成", "speak": "朗读回答",
        "think": "先思考", "think_info": "模型先推理再回答：更慢；推理过程折叠显示在回答上方。",
        "record_video": "录制视频（摄像头）", "spoken": "朗读的回答", "model": "模型",
        "picker": "对话模型（切换会影响所有访客）", "how": "工作原理", "search_text": "查找显示……的图片",
        "search_image": "……或与这张相似的图片", "search": "搜索", "gallery": "图库（演示图片和你的图片）",
        "add_images": "添加图片", "matches": "最佳匹配", "draw_prompt": "描述要画的图", "draw": "绘制",
        "steps": "步数", "seed": "随机种子", "examples_tasks": "各任务示例：点一个，再点发送",
    },
}

# Written by the server while the page is open; ``{name}`` etc. are filled in.
LIVE: dict[str, dict[str, str]] = {
    "en": {
        "loading": "Loading **{name}** on {device}… the first answer waits until it is ready.",
        "failed": "**{name}** could not be loaded (the notice above says why).",
        "ready": "**{name}** ready on {device} ({detail})",
        "degraded": "**{name}** loaded on {device}, but {detail}.",
        "banner_loading": "**The model is loading.** Messages sent now are answered as soon as it is ready.",
        "banner_failed": "**The model could not be loaded**, so messages cannot be answered. {detail}",
        "banner_examples": "**Preparing the examples** ({done} of {total} done)…",
        "first_token": "{seconds:.2f} s to first token", "prefilling": "prefilling…",
        "tokens": "tokens", "stopped": "stopped", "replayed": "computed at start (showcase)",
        "prompt": "Prompt {count} tokens ({parts}) · generated {generated}",
        "text": "text", "image": "image", "audio": "audio", "video": "video", "frames": "{count} frames",
        "reads": "reads {kinds}", "transcribed": "transcribed",
        "waited": "waited {seconds:.1f} s in the queue",
        "thinking": "Thinking…", "thought": "Thought for {seconds:.1f} s",
        "split": "{thinking} thinking + {answer} answer tokens",
    },
    "zh-CN": {
        "loading": "正在 {device} 上加载 **{name}**……第一个回答会等它就绪。",
        "failed": "**{name}** 无法加载（原因见上方提示）。",
        "ready": "**{name}** 已在 {device} 上就绪（{detail}）",
        "degraded": "**{name}** 已在 {device} 上加载，但测试回答失败：{detail}。",
        "banner_loading": "**模型正在加载。** 现在发送的消息会在模型就绪后立即回答。",
        "banner_failed": "**模型无法加载**，因此无法回答消息。{detail}",
        "banner_examples": "**正在准备示例**（已完成 {done} / {total}）……",
        "first_token": "首个 token 用时 {seconds:.2f} 秒", "prefilling": "预填充中……",
        "tokens": "个 token", "stopped": "已停止", "replayed": "启动时已计算（展示模式）",
        "prompt": "提示 {count} 个 token（{parts}）· 生成 {generated} 个",
        "text": "文字", "image": "图片", "audio": "音频", "video": "视频", "frames": "{count} 帧",
        "reads": "可读取 {kinds}", "transcribed": "经语音识别",
        "waited": "排队等待 {seconds:.1f} 秒",
        "thinking": "思考中……", "thought": "思考了 {seconds:.1f} 秒",
        "split": "思考 {thinking} + 回答 {answer} 个 token",
    },
}


def language(accept_language: str | None) -> str:
    """``zh-CN`` when the browser prefers Chinese (its first listed language), else ``en``."""
    first = (accept_language or "").split(",")[0].strip().lower()
    return "zh-CN" if first.startswith("zh") else "en"


def live(lang: str, key: str, **values: object) -> str:
    """A server-written phrase in ``lang`` (English when ``lang`` is unknown)."""
    return LIVE.get(lang, LIVE["en"])[key].format(**values)
