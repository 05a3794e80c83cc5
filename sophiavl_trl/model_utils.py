# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Small helpers around the policy model and its generation settings."""

from __future__ import annotations

import importlib.util
from typing import Any


# One Qwen2.5-VL patch (14 x 14 pixels, merged 2 x 2): smart resize cannot make an image smaller than this.
PATCH_PIXELS = 28 * 28
# A policy must never sample these: a stray <|image_pad|> in a completion breaks the forward pass.
VISION_SPECIAL_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


def forbidden_token_generation_kwargs(tokenizer: Any, *, use_vllm: bool, tokens=VISION_SPECIAL_TOKENS) -> dict:
    """TRL `generation_kwargs` that forbid `tokens` (those the tokenizer has) in completions: vLLM's `SamplingParams`
    (`use_vllm=True`) and transformers' `GenerationConfig` spell "never sample these ids" differently."""
    ids = [tokenizer.convert_tokens_to_ids(tok) for tok in tokens]
    ids = [int(i) for i in ids if i is not None and i != tokenizer.unk_token_id]
    if not ids:
        return {}
    return {"logit_bias": dict.fromkeys(ids, -100.0)} if use_vllm else {"suppress_tokens": ids}


def check_pixel_bounds(min_pixels: int | None, max_pixels: int | None) -> None:
    """Raise a `ValueError` unless `28 * 28 <= min_pixels <= max_pixels` (`None`: unset); smaller bounds pass until
    PIL fails in the DataLoader."""
    bounds = {"min_pixels": min_pixels, "max_pixels": max_pixels}
    for name, value in bounds.items():
        if value is not None and value < PATCH_PIXELS:
            raise ValueError(f"{name} must be at least one 28x28 patch ({PATCH_PIXELS} pixels), got {value}.")
    if None not in bounds.values() and min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) must not exceed max_pixels ({max_pixels}).")


def set_pixel_bounds(processor: Any, min_pixels: int | None, max_pixels: int | None) -> None:
    """Override the pixel bounds of a Qwen2.5-VL processor's image processor (in place; `None` keeps a bound): in
    transformers 5 they live in `image_processor.size` (`shortest_edge`, `longest_edge`, in pixels)."""
    if min_pixels is None and max_pixels is None:
        return
    size = processor.image_processor.size  # a dict or a SizeDict, depending on the transformers version
    low = min_pixels if min_pixels is not None else getattr(size, "shortest_edge", None) or size.get("shortest_edge")
    high = max_pixels if max_pixels is not None else getattr(size, "longest_edge", None) or size.get("longest_edge")
    check_pixel_bounds(low, high)
    processor.image_processor.size = {"shortest_edge": low, "longest_edge": high}


def load_training_processor(model_args: Any, training_args: Any, script_args: Any) -> Any:
    """The model's processor with the script's pixel bounds ([`set_pixel_bounds`]); fills
    `training_args.model_init_kwargs` from TRL's `ModelConfig` (revision, attention, dtype), so that the trainer loads
    the model as the script says."""
    from transformers import AutoProcessor

    name, revision, remote = model_args.model_name_or_path, model_args.model_revision, training_args.trust_remote_code
    own = {"revision": revision, "attn_implementation": model_args.attn_implementation, "dtype": model_args.dtype}
    training_args.model_init_kwargs = {**(training_args.model_init_kwargs or {}), **own}
    processor = AutoProcessor.from_pretrained(name, revision=revision, trust_remote_code=remote)
    set_pixel_bounds(processor, script_args.min_pixels, script_args.max_pixels)
    return processor


def check_attn_implementation(attn_implementation: str | None, where: str = "attn_implementation") -> None:
    """Raise before any model loads when `attn_implementation` is `flash_attention_2` and flash-attn cannot run here:
    not a fallback to sdpa, as the GPU recipes are sized with flash-attn's padding-free memory use."""
    from transformers.utils import is_flash_attn_2_available

    if attn_implementation != "flash_attention_2" or is_flash_attn_2_available():
        return
    if importlib.util.find_spec("flash_attn") is None:
        reason = "the flash-attn package is not installed"
    else:
        reason = "flash-attn is installed but cannot run here (it needs a CUDA GPU and flash-attn >= 2.3.3)"
    raise RuntimeError(
        f"{where}: flash_attention_2 is requested, but {reason}. Fix: pip install flash-attn --no-build-isolation "
        '(after torch, on the CUDA machine; README, "Install (GPU)"), or set `attn_implementation: sdpa` (PyTorch\'s '
        "attention: no extra package, more memory on padded batches)."
    )
