# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Offline test helpers: a tiny Qwen2.5-VL (`tiny_model`) and a real vLLM judge server on CPU (`judge_server`)."""

from importlib import import_module
from typing import Any


_EXPORTS = {
    "JudgeServer": "sophiavl_trl.testing.judge_server",
    "start_judge_server": "sophiavl_trl.testing.judge_server",
    "build_tiny_qwen2_5_vl": "sophiavl_trl.testing.tiny_model",
    "load_tiny_processor": "sophiavl_trl.testing.tiny_model",
    "vision_token_ids": "sophiavl_trl.testing.tiny_model",
}
__all__ = [
    "JudgeServer",
    "build_tiny_qwen2_5_vl",
    "load_tiny_processor",
    "start_judge_server",
    "vision_token_ids",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m sophiavl_trl.testing.judge_server` does not import itself twice.
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sophiavl_trl.testing' has no attribute {name!r}")
