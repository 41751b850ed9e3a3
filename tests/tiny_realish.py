"""Tiny twins of the published default checkpoints: their real non-weight files, tiny random weights.

Every file of ``tests/realish/<checkpoint>`` (tokenizer, chat template, processor and generation configs, as
published) is copied as is; only ``config.json`` is shrunk (widths and depths; vocabulary, token ids, image
and patch sizes kept) and random weights of the real architecture are saved beside it. The app loads a
twin through the same ``from_pretrained`` path as the published checkpoint, so a bug that the real files
expose (a tokenizer the library treats differently, a processor default, a generation setting) shows.

    python tests/tiny_realish.py OUT_DIR   # writes OUT_DIR/<checkpoint>
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

REALISH = Path(__file__).resolve().parent / "realish"

_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=16, mrope_section=[2, 3, 3])
_ENCODER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, depth=1, num_attention_heads=2,
                num_heads=2, fullatt_block_indexes=[0], out_hidden_size=64, output_dim=64, d_model=32,
                encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, decoder_layers=1,
                decoder_attention_heads=2, decoder_ffn_dim=64, projection_dim=16, deepstack_visual_indexes=[0])
_VITS = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32, flow_size=8,
             spectrogram_bins=17, upsample_initial_channel=16, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
             resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], prior_encoder_num_flows=1,
             posterior_encoder_num_wavenet_layers=1, duration_predictor_num_flows=1, depth_separable_num_layers=1)

# checkpoint folder -> (where its tokenizer files come from when it borrows them, sizes of its top level)
TWINS: dict[str, tuple[str | None, dict]] = {
    "smolvlm2-256m-video": ("smolvlm-256m-instruct", _TEXT),
    "smolvlm-256m-instruct": (None, _TEXT),
    "qwen2.5-vl-7b": (None, _TEXT),
    # the talker (speech out) is not built: mmdemo answers in text and turns it off when loading
    "qwen2.5-omni-7b": ("qwen2.5-vl-7b", {"enable_audio_output": False}),
    "qwen3-vl-2b-instruct": ("qwen2.5-vl-7b", _TEXT),
    "whisper-base": (None, _ENCODER),
    "mms-tts-eng": (None, _VITS),
    "clip-vit-base-patch32": (None, {"projection_dim": 16}),
}
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json")


def shrink(config: dict, sizes: dict) -> dict:
    """``config`` with every size in ``sizes`` replaced where the config has it: text sizes for the text
    model's sub-configs, encoder sizes for the vision and audio encoders'."""
    out = {}
    for key, value in config.items():
        if key in ("text_config", "thinker_config"):
            out[key] = shrink(value, _TEXT)
        elif key in ("vision_config", "audio_config"):
            out[key] = shrink(value, _ENCODER)
        elif isinstance(value, dict) and "mrope_section" in value:
            out[key] = {**value, "mrope_section": _TEXT["mrope_section"]}
        else:
            out[key] = sizes.get(key, value)
    return out


def build_twin(name: str, out: Path, full_size: bool = False, device: str = "cpu") -> Path:
    """Write the twin of ``tests/realish/<name>`` into ``out`` (real files + tiny weights; with ``full_size``,
    random weights at the published sizes, for benchmarks; ``device="cuda"`` builds them there, in bf16)."""
    from transformers import AutoConfig

    borrowed, sizes = TWINS[name]
    out.mkdir(parents=True, exist_ok=True)
    if borrowed:
        for file in _TOKENIZER_FILES:
            if (REALISH / borrowed / file).exists():
                shutil.copy(REALISH / borrowed / file, out / file)
    for file in (REALISH / name).iterdir():
        shutil.copy(file, out / file.name)
    config_dict = json.loads((REALISH / name / "config.json").read_text())
    switches = {key: value for key, value in sizes.items() if isinstance(value, bool)}  # at full size too
    config_dict = {**config_dict, **switches} if full_size else shrink(config_dict, sizes)
    (out / "config.json").write_text(json.dumps(config_dict, indent=2))
    config = AutoConfig.from_pretrained(out)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device != "cpu" else None
    with torch.device(device):
        model = _model_class(config).from_config(config, dtype=dtype) if config.model_type != "vits" else _vits(config)
    model.save_pretrained(out)
    if (REALISH / name / "generation_config.json").exists():  # save_pretrained rewrote it: the real one stays
        shutil.copy(REALISH / name / "generation_config.json", out / "generation_config.json")
    if config.model_type == "qwen2_5_omni":
        torch.save({"Chelsie": {"bos_token": 0}}, out / "spk_dict.pt")  # from_pretrained requires the speaker file
    return out


def _model_class(config: object) -> type:
    from transformers import AutoModel, AutoModelForMultimodalLM, AutoModelForSpeechSeq2Seq

    kind = config.model_type  # type: ignore[attr-defined]
    if kind == "whisper":
        return AutoModelForSpeechSeq2Seq
    if kind == "clip":
        return AutoModel
    return AutoModelForMultimodalLM


def _vits(config: object) -> torch.nn.Module:
    from transformers import VitsModel

    return VitsModel(config)  # type: ignore[arg-type]


def build_twins(out_dir: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Every twin (or those named) in ``out_dir/<name>``."""
    return {name: build_twin(name, Path(out_dir) / name) for name in names or TWINS}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/tiny_realish.py OUT_DIR")
    for twin, path in build_twins(Path(sys.argv[1])).items():
        print(f"{twin}: {path}")
