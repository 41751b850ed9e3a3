"""Tiny random-weight checkpoints beside the defaults: CLIP (search), VITS (voice), Stable Diffusion (draw)
and Qwen2.5-VL (the grounding presets), plus that Qwen2.5-VL trained here to find the example's objects.

Real config classes at tiny sizes and real tokenizer/processor classes with a small character vocabulary,
saved with ``save_pretrained`` and loaded by the app through its own ``from_pretrained`` path.

    python tests/tiny_extras.py OUT_DIR   # writes OUT_DIR/clip, vits, sd, qwen2_5_vl and grounding
"""

from __future__ import annotations

import json
import string
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from tiny_models import _TEXT, _save, _tokenizer, build_all, remove_folder
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    VitsConfig,
    VitsModel,
    VitsTokenizer,
)

_CLIP_TEXT = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=77)


def _clip_tokenizer(folder: Path) -> CLIPTokenizer:
    """A CLIP BPE tokenizer over single characters (no merges): every text encodes."""
    words = ["<|startoftext|>", "<|endoftext|>"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    words += chars + [c + "</w>" for c in chars]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>",
                         model_max_length=77)


def build_clip(out: Path) -> None:
    tok = _clip_tokenizer(out / "_tok")
    text = CLIPTextConfig(vocab_size=len(tok), **_CLIP_TEXT, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8)
    model = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16))
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    model.save_pretrained(out)
    CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(out)
    remove_folder(out / "_tok")


_ZH_CHARS = " 你好世界今天气很不错我们一起去公园吧"  # a Chinese voice's alphabet (characters, as MMS voices read)


def build_vits(out: Path, alphabet: str = " " + string.ascii_lowercase + "'.,!?-") -> None:
    """A VITS voice whose vocabulary is ``alphabet`` (default: English letters and punctuation)."""
    chars = list(alphabet)
    folder = out / "_tok"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(chars)}))
    tok = VitsTokenizer(str(folder / "vocab.json"), pad_token=" ", add_blank=True, normalize=True, phonemize=False)
    config = VitsConfig(vocab_size=len(chars), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        ffn_dim=32, flow_size=8, spectrogram_bins=17, upsample_initial_channel=16,
                        upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
                        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], prior_encoder_num_flows=1,
                        posterior_encoder_num_wavenet_layers=1, duration_predictor_num_flows=1,
                        depth_separable_num_layers=1, sampling_rate=16000)
    VitsModel(config).save_pretrained(out)
    tok.save_pretrained(out)
    remove_folder(folder)


def build_sd(out: Path) -> None:
    """A Stable Diffusion pipeline at diffusers' own test sizes (diffusers is an optional extra)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=2, attention_head_dim=2)
    vae = AutoencoderKL(block_out_channels=[4, 8], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        norm_num_groups=2)
    tok = _clip_tokenizer(out / "_tok")
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), **_CLIP_TEXT, bos_token_id=0, eos_token_id=1,
                                        pad_token_id=1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=tok, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out)
    remove_folder(out / "_tok")


# Qwen2-VL's published template, reduced to the parts mmdemo sends (text and images).
_QWEN_VL_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_qwen2_5_vl(out: Path) -> None:
    """Qwen2.5-VL (image + text, writes boxes: the grounding presets' architecture)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
               "<|image_pad|>", "<|video_pad|>"]
    tok = _tokenizer(special, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                     extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"})
    ids = {t: tok.convert_tokens_to_ids(t) for t in special}
    size = {"shortest_edge": 28 * 28 * 4, "longest_edge": 28 * 28 * 16}  # 4..16 image tokens
    processor = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(size=size), tokenizer=tok,
                                    video_processor=Qwen2VLVideoProcessor(size=size), chat_template=_QWEN_VL_TEMPLATE)
    config = Qwen2_5_VLConfig(
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           fullatt_block_indexes=[0], window_size=56),
        text_config=dict(vocab_size=len(tok), **_TEXT, bos_token_id=ids["<|endoftext|>"],
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [2, 3, 3]}),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    _save(Qwen2_5_VLForConditionalGeneration(config), processor, out)


GROUNDING_TARGET = "house"  # what the trained grounding checkpoint is asked to find in assets/scene.png
GROUNDING_ANSWER = ('```json\n[\n\t{"bbox_2d": [18, 23, 56, 63], "label": "house"},\n'
                    '\t{"bbox_2d": [65, 26, 87, 63], "label": "tree"}\n]\n```')


def build_grounding(out: Path, base: Path) -> None:
    """The tiny Qwen2.5-VL at ``base``, trained to answer the app's grounding prompt for assets/scene.png with
    Qwen2.5-VL-style JSON boxes (pixels of the image as its processor resizes it: 640×480 → 112×84): a real
    checkpoint whose own output exercises box parsing and drawing."""
    from mmdemo.tasks import TASKS
    from mmdemo.turns import Turn

    scene = Path(__file__).resolve().parent.parent / "assets" / "scene.png"
    train_answer(out, base, Turn.user(TASKS["grounding"].compose(GROUNDING_TARGET), [str(scene)]), GROUNDING_ANSWER)


def train_answer(out: Path, base: Path, turn: object, answer: str, think: bool = False, steps: int = 300,
                 lr: float = 3e-3) -> None:
    """The checkpoint at ``base``, trained here for a few seconds to answer ``turn`` (as the app sends it, with
    its default system prompt; ``think``: the template's reasoning switch) with ``answer`` and the template's
    end of turn; saved to ``out`` with ``base``'s other files. (A larger ``lr`` learns in fewer steps where a
    step is slow.)"""
    import shutil

    from transformers import AutoModelForMultimodalLM

    from mmdemo.conversation import build_messages
    from mmdemo.engines.local import TransformersEngine
    from mmdemo.engines.scoring import followed_by
    from mmdemo.engines.workers import one_load_at_a_time
    from mmdemo.modalities import Budget
    from mmdemo.settings import DEFAULT_SYSTEM_PROMPT

    engine = TransformersEngine(str(base), "cpu")
    messages = build_messages([], turn, system_prompt=DEFAULT_SYSTEM_PROMPT,  # type: ignore[arg-type]
                              capabilities=engine.capabilities, budget=Budget()).messages
    inputs = {k: v.float() if v.is_floating_point() else v for k, v in engine._prepare(messages, think).items()}
    tokenizer = engine._processor.tokenizer
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [engine._turn_end]
    batch = followed_by(inputs, torch.tensor([ids]))
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, inputs["input_ids"].shape[1]:] = torch.tensor([ids])
    model = one_load_at_a_time(lambda: AutoModelForMultimodalLM.from_pretrained(base, dtype=torch.float32))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    start = inputs["input_ids"].shape[1]
    for _ in range(steps):
        output = model(**batch, labels=labels)
        learnt = bool((output.logits[0, start - 1:-1].argmax(-1) == labels[0, start:]).all())
        if learnt and output.loss.item() < 0.05:  # greedy decoding writes the answer, with a margin (bf16)
            break
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(out)
    for name in base.iterdir():
        if name.is_file() and not (out / name.name).exists():
            shutil.copy(name, out / name.name)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "clip": build_clip, "vits": build_vits, "vits_zh": lambda out: build_vits(out, _ZH_CHARS), "sd": build_sd,
    "qwen2_5_vl": build_qwen2_5_vl,
    "grounding": lambda out: build_grounding(out, out.parent / "qwen2_5_vl"),
}


def build_extras(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write every checkpoint of this module into ``out_dir/<name>``; return the paths by name."""
    return build_all(out_dir, seed, BUILDERS)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the trained checkpoint uses mmdemo itself
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/tiny_extras.py OUT_DIR")
    for name, path in build_extras(sys.argv[1]).items():
        print(f"{name}: {path}")
