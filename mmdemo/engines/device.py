"""Where models run and in which number format: the device from ``--device``, the dtype for a device."""

from __future__ import annotations

import gc

import torch

from mmdemo.errors import UserError


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is usable, else ``cpu``; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but PyTorch sees no CUDA GPU on this machine.")
    return device


def pick_dtype(device: str) -> torch.dtype:
    """bf16 on GPUs that have it and on CPUs that compute it natively (AVX-512 BF16 / AMX), else fp16/fp32."""
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32


def free_memory() -> None:
    """Give freed tensors' memory back (host, and the GPU's cache when there is one)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
