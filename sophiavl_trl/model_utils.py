# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Small helpers around the policy model and its generation settings."""

from __future__ import annotations

from typing import Any


VISION_SPECIAL_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


def forbidden_token_generation_kwargs(tokenizer: Any, *, use_vllm: bool, tokens=VISION_SPECIAL_TOKENS) -> dict:
    """Generation kwargs that forbid `tokens` in completions, for TRL's `generation_kwargs`.

    TRL passes `generation_kwargs` to vLLM's `SamplingParams` with `use_vllm=True` and to transformers'
    `GenerationConfig` otherwise; the two spell "never sample these ids" differently. Tokens missing from the
    tokenizer are ignored.
    """
    ids = [tokenizer.convert_tokens_to_ids(tok) for tok in tokens]
    ids = [i for i in ids if i is not None and i != tokenizer.unk_token_id]
    if not ids:
        return {}
    if use_vllm:
        return {"logit_bias": {int(i): -100.0 for i in ids}}
    return {"suppress_tokens": [int(i) for i in ids]}
