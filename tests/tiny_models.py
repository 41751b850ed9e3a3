"""Tiny random-weight checkpoints of the real architectures behind mmdemo's defaults.

No network: real config classes at tiny sizes, the real processor classes, a BPE tokenizer trained
here with the special tokens and a chat template, then ``save_pretrained``. The app loads them
through exactly the same ``from_pretrained`` path as the published checkpoints.

    python tests/tiny_models.py OUT_DIR   # writes OUT_DIR/<architecture>: smolvlm, qwen2_5_omni, whisper, ...
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

_CORPUS = [
    "The quick brown fox jumps over the lazy dog. A red square on a white background.",
    "Describe the image. What do you hear? What is in this picture? Transcribe the clip.",
    "user assistant system hello world 0123456789 !?.,;:'\"()[]{}<>/-_=+*&^%$#@~`",
] * 20
_TEXT = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=4096,
)


def _tokenizer(special: list[str], vocab: int | None = None, **kwargs: object) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on a small corpus; ``vocab`` pads its vocabulary (not its added tokens, as
    with a real tokenizer) with ordinary words so that every id a full-size model generates decodes."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=special, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer)
    if vocab:
        state = json.loads(tok.to_str())
        words = state["model"]["vocab"]
        words.update({f"\u0120w{i}": i for i in range(len(words), vocab)})
        tok = Tokenizer.from_str(json.dumps(state))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


# SmolVLM2's published template (content is always a list of typed parts).
_SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# Qwen2.5-Omni's published template, reduced to the parts mmdemo sends (text, image, audio).
_OMNI_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# The published SmolVLM2-256M sizes (SmolLM2-135M decoder, SigLIP-B/16 at 512 px, 64 tokens per tile),
# for benchmarks: speed does not depend on weight values.
SMOLVLM2_256M = dict(
    text=dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
              num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100000.0),
    vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
    img=512, scale=4, vocab=49280,
)
_TINY_SMOLVLM = dict(
    text=_TEXT, vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
    img=64, scale=2, vocab=None,  # (64/16)^2 / 2^2 = 4 image tokens per tile
)


def build_smolvlm(out: Path, sizes: dict | None = None) -> None:
    """SmolVLM2 (image + text; the CPU default's architecture), tiny unless ``sizes`` says otherwise."""
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMProcessor
    from transformers.models.smolvlm.image_processing_smolvlm import SmolVLMImageProcessor
    from transformers.models.smolvlm.video_processing_smolvlm import SmolVLMVideoProcessor

    sizes = sizes or _TINY_SMOLVLM
    special = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>",
               "<image>", "<global-img>", "<video>"]
    tok = _tokenizer(special, sizes["vocab"], bos_token="<|im_start|>", eos_token="<end_of_utterance>",
                     pad_token="<|endoftext|>")
    ids = {t: tok.convert_tokens_to_ids(t) for t in special}
    img, patch, scale = sizes["img"], 16, sizes["scale"]
    size = {"longest_edge": img}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size=size, max_image_size=size, do_image_splitting=True),
        video_processor=SmolVLMVideoProcessor(size=size, max_image_size=size),
        tokenizer=tok, image_seq_len=(img // patch) ** 2 // scale**2, chat_template=_SMOLVLM_TEMPLATE,
    )
    config = SmolVLMConfig(
        vision_config=dict(**sizes["vision"], image_size=img, patch_size=patch),
        text_config=dict(model_type="llama", vocab_size=len(tok), **sizes["text"], bos_token_id=ids["<|im_start|>"],
                         eos_token_id=ids["<end_of_utterance>"], pad_token_id=ids["<|endoftext|>"]),
        scale_factor=scale, image_token_id=ids["<image>"],
    )
    _save(SmolVLMForConditionalGeneration(config), processor, out)


def build_qwen2_5_omni(out: Path, thinker_only: bool = False, speech: bool = False) -> None:
    """Qwen2.5-Omni (image + audio + text; the CUDA default's architecture), saved as the full
    omni checkpoint is published (thinker inside ``Qwen2_5OmniForConditionalGeneration``, speaker
    file included); the talker is switched off, as mmdemo outputs text, unless ``speech``: then a tiny
    talker and vocoder speak with one voice (``--native-voice``)."""
    from transformers import (
        Qwen2_5OmniConfig,
        Qwen2_5OmniForConditionalGeneration,
        Qwen2_5OmniProcessor,
        WhisperFeatureExtractor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    names = dict(image_token="<|IMAGE|>", audio_token="<|AUDIO|>", video_token="<|VIDEO|>",
                 vision_bos_token="<|vision_bos|>", vision_eos_token="<|vision_eos|>",
                 audio_bos_token="<|audio_bos|>", audio_eos_token="<|audio_eos|>")
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *names.values()]
    tok = _tokenizer(special, eos_token="<|im_end|>", pad_token="<|endoftext|>", extra_special_tokens=names)
    ids = {t: tok.convert_tokens_to_ids(t) for t in special}
    size = {"shortest_edge": 28 * 28 * 4, "longest_edge": 28 * 28 * 16}  # 4..16 image tokens
    processor = Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(size=size), video_processor=Qwen2VLVideoProcessor(size=size),
        feature_extractor=WhisperFeatureExtractor(feature_size=16, sampling_rate=16000, chunk_length=30),
        tokenizer=tok, chat_template=_OMNI_TEMPLATE,
    )
    thinker = dict(
        audio_config=dict(num_mel_bins=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64,
                          d_model=32, output_dim=64, n_window=50, max_source_positions=1500),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           fullatt_block_indexes=[0], window_size=56),
        text_config=dict(vocab_size=len(tok), **_TEXT, bos_token_id=ids["<|endoftext|>"],
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 3, 3]}),
        audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"],
        video_token_index=ids["<|VIDEO|>"], audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"], vision_start_token_id=ids["<|vision_bos|>"],
        vision_end_token_id=ids["<|vision_eos|>"],
    )
    if thinker_only:  # the layout OpenAI-compatible servers load (transformers serve runs it directly)
        from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

        _save(Qwen2_5OmniThinkerForConditionalGeneration(Qwen2_5OmniThinkerConfig(**thinker)), processor, out)
        return
    voice = omni_voice(ids, thinker) if speech else {}
    model = Qwen2_5OmniForConditionalGeneration(Qwen2_5OmniConfig(thinker_config=thinker, enable_audio_output=speech,
                                                                  **voice))
    _save(model, processor, out)
    save_speaker(out, ids["<|endoftext|>"], speech)


def save_speaker(out: Path, bos: int, speech: bool) -> None:
    """The omni checkpoint's speaker file (from_pretrained requires it); with ``speech``, a stand-in voice: the
    vocoder's speaker embedding and reference mel spectrogram."""
    speaker = {"bos_token": bos}
    if speech:
        speaker |= {"cond": torch.randn(1, 16), "ref_mel": torch.randn(1, 30, 80)}
    torch.save({"Chelsie": speaker}, out / "spk_dict.pt")


def omni_voice(ids: dict[str, int], thinker: dict) -> dict:
    """Tiny talker (speech codes from the thinker's hidden states) and token2wav (DiT + BigVGAN) configs; the
    talker's text ids are the thinker's. The DiT reads every code a random talker may write (8 448)."""
    names = ("audio_token_index", "image_token_index", "video_token_index", "vision_start_token_id",
             "vision_end_token_id", "audio_start_token_id", "audio_end_token_id")
    talker = dict(vocab_size=8448, embedding_size=_TEXT["hidden_size"], hidden_size=32, intermediate_size=64,
                  num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                  max_position_embeddings=4096, tts_text_start_token_id=ids["<|endoftext|>"],
                  tts_text_end_token_id=ids["<|im_end|>"], tts_text_pad_token_id=ids["<|endoftext|>"],
                  rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 3, 3]},
                  **{name: thinker[name] for name in names})
    dit = dict(num_embeds=8448, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, head_dim=16, emb_dim=16,
               look_ahead_layers=[1], look_backward_layers=[0], enc_emb_dim=16, enc_dim=16,
               enc_channels=[16, 16, 16, 16, 48], enc_attention_channels=8, enc_se_channels=8)
    vocoder = dict(upsample_initial_channel=64, resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]])
    return {"talker_config": talker, "token2wav_config": {"dit_config": dit, "bigvgan_config": vocoder}}


def build_whisper(out: Path) -> None:
    """An English-only Whisper (the speech-recognition model for models without an audio encoder)."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    special = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
               "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    fast = _tokenizer(special, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                      unk_token="<|endoftext|>")
    fast.save_pretrained(out / "_tok")
    tok = WhisperTokenizerFast.from_pretrained(out / "_tok")
    ids = {t: tok.convert_tokens_to_ids(t) for t in special}
    config = WhisperConfig(
        vocab_size=len(tok), num_mel_bins=80, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, d_model=32,
        max_source_positions=1500, max_target_positions=448, pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"], is_multilingual=False,
        no_timestamps_token_id=ids["<|notimestamps|>"], max_length=24,
        begin_suppress_tokens=[ids["<|endoftext|>"]],
    )
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tok)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    remove_folder(out / "_tok")


def remove_folder(folder: Path) -> None:
    """Delete a flat folder of scratch files (tokenizer sources) once the checkpoint is saved."""
    for leftover in folder.iterdir():
        leftover.unlink()
    folder.rmdir()


def _save(model: torch.nn.Module, processor: object, out: Path) -> None:
    tok = processor.tokenizer  # type: ignore[attr-defined]
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)  # type: ignore[attr-defined]


BUILDERS: dict[str, Callable[[Path], None]] = {
    "smolvlm": build_smolvlm,
    "qwen2_5_omni": build_qwen2_5_omni,
    "qwen2_5_omni_thinker": lambda out: build_qwen2_5_omni(out, thinker_only=True),
    "qwen2_5_omni_speech": lambda out: build_qwen2_5_omni(out, speech=True),
    "whisper": build_whisper,
}


def build_all(out_dir: str | Path, seed: int = 0, builders: dict[str, Callable[[Path], None]] | None = None
              ) -> dict[str, Path]:
    """Write every tiny checkpoint of ``builders`` (default: these) into ``out_dir/<name>``; return the paths."""
    paths = {}
    for name, build in (builders or BUILDERS).items():
        torch.manual_seed(seed)
        path = Path(out_dir) / name
        path.mkdir(parents=True, exist_ok=True)
        build(path)
        paths[name] = path
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/tiny_models.py OUT_DIR")
    for name, path in build_all(sys.argv[1]).items():
        print(f"{name}: {path}")
