"""Media the model has encoded already are not encoded again: its encoders' outputs, kept by their inputs.

A multimodal model in transformers encodes a request's pictures, clips and recordings in its
``get_image_features`` / ``get_video_features`` / ``get_audio_features`` before its language model reads the
prompt. :class:`EncoderCache` wraps those methods: the same inputs (the same tensors and settings, hashed) give
the kept output instead of a second encoding. So a picture asked about again is not encoded again, and the media
attached to a message that is still being written can be encoded before it is sent
(``TransformersEngine.prefetch`` runs a forward pass on them while the model is idle). The cache is bounded in
bytes; the least recently used output goes first.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator

import torch

FEATURES = ("get_image_features", "get_video_features", "get_audio_features")
MAX_HASHED_BYTES = 64 * 2**20  # larger inputs (long videos) are encoded each time: hashing ~0.8 GB/s, ~80 ms
_STATE = ("use_cache", "past_key_values", "cache_position", "logits_to_keep")  # the decoder's, not the media's
_state = threading.local()  # .inside: in a kept method (the calls it makes pass through)


class EncoderCache:
    """Keeps the outputs of ``model``'s encoder methods, at most ``max_bytes`` of them; ``on_hit`` hears the name
    of each method answered from the cache."""

    def __init__(self, model: torch.nn.Module, max_bytes: int, on_hit: Callable[[str], None] | None = None) -> None:
        self.max_bytes = max_bytes
        self.on_hit = on_hit
        self.hits = 0
        self._kept: OrderedDict[bytes, tuple[object, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        for module in model.modules() if max_bytes > 0 else ():  # (0: nothing kept, nothing hashed)
            for name in FEATURES:
                if name in type(module).__dict__:  # defined there (not only inherited): wrap each once
                    setattr(module, name, self._keeping(name, getattr(module, name)))

    @property
    def size(self) -> int:
        """The bytes of the outputs kept."""
        return self._size

    def _keeping(self, name: str, method: Callable) -> Callable:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def kept(*args: object, **kwargs: object) -> object:
            if getattr(_state, "inside", False):
                return method(*args, **kwargs)
            calls = _per_image(name, signature, args, kwargs)
            keys = [_key(name, signature, (), call) for call in calls or ()]
            if not keys or None in keys:  # the call as a whole
                key = _key(name, signature, args, kwargs)
                found = self._found(name, key)
                return found if found is not None else self._encoded(key, method, args, kwargs)
            # several pictures, each kept on its own (a second picture does not undo the first); the new ones
            # encoded together
            outs = [self._found(name, key) for key in keys]
            new = [i for i, out in enumerate(outs) if out is None]
            if new:
                batch = [calls[i] for i in new]  # type: ignore[index]
                for i, out in zip(new, _parted(self._encoded(None, method, (), _batched(batch)), batch), strict=True):
                    self._keep(keys[i], out)  # type: ignore[arg-type]
                    outs[i] = out
            return _joined(outs)

        return kept

    def _found(self, name: str, key: bytes | None) -> object | None:
        """The kept output for ``key`` (counted as a hit), or ``None``."""
        if key is None:
            return None
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                self.hits += 1
        if found is None:
            return None
        if self.on_hit:
            self.on_hit(name)
        return found[0]

    def _encoded(self, key: bytes | None, method: Callable, args: tuple, kwargs: dict) -> object:
        """``method``'s output (the calls it makes pass through), kept under ``key`` when there is one."""
        _state.inside = True
        try:
            out = method(*args, **kwargs)
        finally:
            _state.inside = False
        if key is not None:
            self._keep(key, out)
        return out

    def _keep(self, key: bytes, out: object) -> None:
        size = sum(t.numel() * t.element_size() for t in _tensors(out))
        if size > self.max_bytes // 4:  # one output may not push out most others
            return
        with self._lock:
            if key not in self._kept:
                self._kept[key] = (out, size)
                self._size += size
            while self._size > self.max_bytes:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._size -= dropped


def _per_image(name: str, signature: inspect.Signature, args: tuple, kwargs: dict) -> list[dict] | None:
    """The call as one call per picture, where the model encodes each picture on its own and the call has
    several: Qwen-VL's flattened patches with a grid per picture, Gemma 4's padded pictures, SmolVLM's tiles (of
    one request); else ``None``."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    given = dict(bound.arguments)
    extra = [k for k, p in signature.parameters.items() if p.kind is inspect.Parameter.VAR_KEYWORD]
    rest = given.pop(extra[0], {}) if extra else {}  # the forward pass's own settings, passed on as they came
    pixels = given.get("pixel_values")
    if name != "get_image_features" or not isinstance(pixels, torch.Tensor):
        return None
    if isinstance(given.get("image_grid_thw"), torch.Tensor) and len(given["image_grid_thw"]) > 1:  # Qwen-VL
        grids = given["image_grid_thw"]
        rows = torch.split(pixels, grids.prod(-1).tolist())
        return [{**given, **rest, "pixel_values": part, "image_grid_thw": grids[i:i + 1]}
                for i, part in enumerate(rows)]
    ids = given.get("image_position_ids")
    if isinstance(ids, torch.Tensor) and pixels.dim() == 3 and len(ids) == len(pixels) > 1:  # Gemma 4
        return [{**given, **rest, "pixel_values": pixels[i:i + 1], "image_position_ids": ids[i:i + 1]}
                for i in range(len(pixels))]
    mask = given.get("pixel_attention_mask")
    if set(given) <= {"pixel_values", "pixel_attention_mask"} and pixels.dim() == 5 and len(pixels) == 1:  # SmolVLM
        real = [i for i in range(pixels.shape[1]) if bool(pixels[0, i].any())]  # (padding tiles are all zeros)
        if len(real) > 1:
            return [{**rest, "pixel_values": pixels[:, i:i + 1],
                     **({"pixel_attention_mask": mask[:, i:i + 1]} if mask is not None else {})} for i in real]
    return None


def _joined(outputs: list) -> object:
    """One output of several pictures' outputs, as the model gives it for them together: its pictures' features
    (one per picture, or one per request for SmolVLM) and the encoder's states, in order."""
    first = outputs[0]
    pooled = [out.pooler_output for out in outputs]
    fields = {"last_hidden_state": torch.cat([out.last_hidden_state for out in outputs])}
    if isinstance(pooled[0], tuple):  # Qwen-VL, Gemma 4: a tuple of each picture's features
        fields["pooler_output"] = tuple(f for features in pooled for f in features)
    else:  # SmolVLM: a list with one tensor for the request
        fields["pooler_output"] = [torch.cat([features[0] for features in pooled])]
    if getattr(first, "deepstack_features", None) is not None:  # Qwen3-VL: per layer, per picture
        fields["deepstack_features"] = [tuple(f for out in outputs for f in out.deepstack_features[layer])
                                        for layer in range(len(first.deepstack_features))]
    return type(first)(**fields)


def _batched(calls: list[dict]) -> dict:
    """One call for several pictures' calls (the inverse of :func:`_per_image`)."""
    joined = dict(calls[0])
    for layout in ("image_grid_thw", "image_position_ids"):  # Qwen-VL: patches one after another; Gemma 4: pictures
        if layout in joined:
            joined["pixel_values"] = torch.cat([call["pixel_values"] for call in calls])
            joined[layout] = torch.cat([call[layout] for call in calls])
            return joined
    for name in ("pixel_values", "pixel_attention_mask"):  # SmolVLM: tiles side by side
        if name in joined:
            joined[name] = torch.cat([call[name] for call in calls], dim=1)
    return joined


def _parted(out: object, calls: list[dict]) -> list[object]:
    """The output of a batched call as each picture's own (the inverse of :func:`_joined`)."""
    count, states = len(calls), out.last_hidden_state  # type: ignore[attr-defined]
    pooled = out.pooler_output  # type: ignore[attr-defined]
    if isinstance(pooled, tuple):  # Qwen-VL, Gemma 4: features per picture; states by patch or by token
        rows = [int(call["image_grid_thw"].prod()) for call in calls] if "image_grid_thw" in calls[0] else []
        sizes = rows if len(states) == sum(rows) else [len(features) for features in pooled]
        parts = [{"last_hidden_state": part, "pooler_output": (features,)}
                 for part, features in zip(torch.split(states, sizes), pooled, strict=True)]
        deep = getattr(out, "deepstack_features", None)
        if deep is not None:  # Qwen3-VL: per layer, per picture
            for i, part in enumerate(parts):
                part["deepstack_features"] = [(layer[i],) for layer in deep]
    else:  # SmolVLM: one state row per tile, the request's features in one tensor
        features = pooled[0]
        parts = [{"last_hidden_state": state, "pooler_output": [chunk]}
                 for state, chunk in zip(states.split(1), features.split(len(features) // count), strict=True)]
    return [type(out)(**part) for part in parts]


def _key(name: str, signature: inspect.Signature, args: tuple, kwargs: dict) -> bytes | None:
    """A digest of a call's inputs, by parameter (given by position or by name, or left at its default): each
    tensor's type, shape and bytes, and every other value's ``repr``. A cryptographic hash: one visitor's media
    can never be answered with another's encoding; ``None`` when the tensors are too large to
    hash quickly (or the call does not fit the signature)."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    arguments = {key: value for key, value in bound.arguments.items() if key not in _STATE}
    for key, value in arguments.items():
        if signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:  # (the forward pass's own settings)
            arguments[key] = {k: v for k, v in value.items() if k not in _STATE}
    values = (name, *sorted(arguments.items()))
    if sum(t.numel() * t.element_size() for t in _tensors(values)) > MAX_HASHED_BYTES:
        return None
    digest = hashlib.blake2b(digest_size=20)
    for value in _leaves(values):
        if isinstance(value, torch.Tensor):
            digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
            digest.update(value.detach().reshape(-1).contiguous().view(torch.uint8).cpu().numpy().tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.digest()


def _leaves(value: object) -> Iterator[object]:
    if isinstance(value, dict):  # (model outputs are dicts too)
        for item in value.items():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _tensors(value: object) -> Iterator[torch.Tensor]:
    return (leaf for leaf in _leaves(value) if isinstance(leaf, torch.Tensor))
