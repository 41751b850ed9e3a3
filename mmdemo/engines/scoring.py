"""How likely a model finds each of a few fixed answers: label log-probabilities for classification."""

from __future__ import annotations

import torch

_PROBE = "Zebra42"  # an answer text no template contains


def turn_end(processor: object, fallback: int | list[int] | None) -> int | None:
    """The token that ends an assistant turn in the processor's chat template (``<|im_end|>`` for Qwen,
    ``<turn|>`` for Gemma 4, ``<end_of_utterance>`` for SmolVLM): what follows an answer there. Falls back
    to the first of the generation config's ``fallback`` end tokens when the template says nothing."""
    tokenizer = processor.tokenizer  # type: ignore[attr-defined]
    turns = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
             {"role": "assistant", "content": [{"type": "text", "text": _PROBE}]}]
    try:
        text = processor.apply_chat_template(turns, tokenize=False)  # type: ignore[attr-defined]
    except Exception:  # a template that cannot render this conversation
        text = ""
    after = text.partition(_PROBE)[2].lstrip(" ")
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    if ids and ids[0] in special:
        return ids[0]
    return fallback[0] if isinstance(fallback, list) else fallback


def answer_ids(tokenizer: object, prompt_ids: list[int], answers: list[str], end_id: int | None) -> list[list[int]]:
    """Token ids of each answer as the model would write it after the prompt, end of turn included.
    A prompt that ends in a word character or punctuation (SmolVLM's ``Assistant:``) is followed by a space."""
    tail = tokenizer.decode(prompt_ids[-1:])
    space = " " if tail and not tail[-1].isspace() else ""
    ids = [tokenizer(space + answer, add_special_tokens=False)["input_ids"] for answer in answers]
    return [i + ([end_id] if end_id is not None else []) for i in ids]


def followed_by(inputs: dict, extra: torch.Tensor) -> dict:
    """The model inputs of the prompt ``inputs`` followed by the text tokens ``extra`` (batch of one): every
    per-token input grows with them (ids, attention mask, token types)."""
    prompt = inputs["input_ids"]
    batch = dict(inputs)
    for name, value in inputs.items():
        if not (isinstance(value, torch.Tensor) and value.shape == prompt.shape):
            continue
        if name == "input_ids":
            tail = extra
        elif name == "attention_mask":
            tail = torch.ones_like(extra, dtype=value.dtype)
        else:  # token types: the answer is text
            tail = torch.zeros_like(extra, dtype=value.dtype)
        batch[name] = torch.cat([value, tail], dim=1)
    return batch


@torch.inference_mode()
def answer_logprobs(model: torch.nn.Module, inputs: dict, candidates: list[list[int]]) -> list[float]:
    """log P(candidate | prompt) for each candidate: the sum of its tokens' log-probabilities, read from one
    forward pass of prompt + candidate (media included, so every architecture places its tokens as in
    generate)."""
    prompt = inputs["input_ids"]
    scores = []
    for ids in candidates:
        extra = torch.tensor([ids], dtype=prompt.dtype, device=prompt.device)
        batch = followed_by(inputs, extra)
        logits = model(**batch, use_cache=False).logits[0, prompt.shape[1] - 1: -1].float()
        scores.append(float(torch.log_softmax(logits, dim=-1).gather(1, extra[0][:, None]).sum()))
    return scores
