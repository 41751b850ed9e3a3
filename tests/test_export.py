import json
import zipfile

from mmdemo.export import export_conversation
from mmdemo.ui.history import to_turns


def test_export_has_markdown_json_and_the_media(image_file, audio_file):
    image, clip = image_file("cat.png"), audio_file("voice.wav")
    history = [
        {"role": "user", "content": [{"path": str(image)}, "What is this?"]},
        {"role": "assistant", "content": "A red square."},
        {"role": "user", "content": [{"type": "file", "file": {"path": str(clip)}}]},
        {"role": "assistant", "content": "hello", "metadata": {"title": "🎙️ Transcript of voice.wav"}},
        {"role": "assistant", "content": [{"type": "text", "text": "You said hello."}]},
    ]
    archive = export_conversation(to_turns(history, notes=True), "tiny/smolvlm")  # as the page converts it
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        data = json.loads(zf.read("conversation.json"))
        markdown = zf.read("conversation.md").decode()
    assert {"conversation.md", "conversation.json", "media/01-cat.png", "media/02-voice.wav"} <= names
    assert data["model"] == "tiny/smolvlm" and len(data["messages"]) == 5
    assert data["messages"][0]["content"] == [{"type": "image", "file": "media/01-cat.png"},
                                              {"type": "text", "text": "What is this?"}]
    assert data["messages"][3]["note"] == "🎙️ Transcript of voice.wav"
    assert "![image](media/01-cat.png)" in markdown and "**Model**: A red square." in markdown
