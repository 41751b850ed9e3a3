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
            key = None if getattr(_state, "inside", False) else _key(name, signature, args, kwargs)
            if key is None:
                return method(*args, **kwargs)
            with self._lock:
                found = self._kept.get(key)
                if found is not None:
                    self._kept.move_to_end(key)
                    self.hits += 1
            if found is not None:
                if self.on_hit:
                    self.on_hit(name)
                return found[0]
            _state.inside = True
            try:
                out = method(*args, **kwargs)
            finally:
                _state.inside = False
            self._keep(key, out)
            return out

        return kept

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
