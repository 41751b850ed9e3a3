"""Engines run a model: the :class:`Engine` protocol and the types it speaks."""

from mmdemo.engines.base import Capabilities, Engine, EngineStatus, GenerationParams, GenerationStats

__all__ = ["Capabilities", "Engine", "EngineStatus", "GenerationParams", "GenerationStats"]
