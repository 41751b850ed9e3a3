"""Layering rules: the UI never imports torch, engines never import gradio, imports stay light."""

import subprocess
import sys

import pytest
from helpers import ROOT


def modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(("statement", "forbidden"), [
    ("import mmdemo.ui", {"torch", "transformers"}),
    ("import mmdemo.engines.local, mmdemo.engines.asr", {"gradio"}),
    ("import mmdemo.chat, mmdemo.conversation, mmdemo.media, mmdemo.settings, mmdemo.presets",
     {"torch", "transformers", "gradio"}),
])
def test_layering(statement, forbidden):
    assert not modules_after(statement) & forbidden
