# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Offline test helpers: a tiny Qwen2.5-VL (`tiny_model`) and a real vLLM judge server on CPU (`judge_server`)."""

from sophiavl_trl._lazy import lazy_exports


# Lazy, so that `python -m sophiavl_trl.testing.judge_server` does not import itself twice.
__getattr__, __all__ = lazy_exports(
    globals(),
    {
        "sophiavl_trl.testing.judge_server": "JudgeServer start_judge_server",
        "sophiavl_trl.testing.tiny_model": "build_tiny_qwen2_5_vl vision_token_ids",
    },
)
