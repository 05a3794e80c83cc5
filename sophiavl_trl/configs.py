# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Script arguments of `examples/train_sophiavl.py` (data, prompts, rewards), beside `TrustGRPOConfig` and TRL's
`ModelConfig`. Every field can be set on the command line or in a recipe YAML (`--config recipe.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import ScriptArguments


@dataclass
class SophiaVLScriptArguments(ScriptArguments):
    r"""
    Data, prompt and reward arguments of the SophiaVL-R1 training script.

    Parameters:
        dataset_registry (`str`, *optional*):
            Path of a SophiaVL `dataset_info.json` registry (named entries with `file_path`, `image_base_path` and a
            `columns` mapping). Either this with `train_files`, or TRL's `dataset_name` (a Hugging Face data set with
            the same columns).
        train_files (`str`, *optional*):
            Comma-separated registry names combined into the training set, as in the original (`"Chart,OCR"`).
        eval_files (`str`, *optional*):
            Comma-separated registry names for evaluation.
        image_base_path (`str`, *optional*):
            Image folder for `dataset_name` data sets whose `path` column is relative.
        system_prompt (`str`, *optional*):
            System prompt; SophiaVL-R1's when unset.
        min_pixels (`int`, *optional*, defaults to `262144`):
            Images smaller than this are upscaled (Qwen2.5-VL's smart resize, multiples of 28).
        max_pixels (`int`, *optional*, defaults to `4194304`):
            Images larger than this are downscaled.
        on_invalid (`str`, *optional*, defaults to `"error"`):
            `"error"`: stop before training with the list of invalid rows; `"skip"`: drop them and report which.
        reward_funcs (`list[str]`, *optional*, defaults to `["accuracy", "format"]`):
            Outcome rewards: names from `sophiavl_trl.rewards.REWARD_FUNCS_REGISTRY` or dotted paths.
        use_thinking_reward (`bool`, *optional*, defaults to `True`):
            Score the thinking with the judge (`judge_*` settings of `TrustGRPOConfig`); `False` trains plain GRPO.
        judge_reasoning_source (`str`, *optional*, defaults to `"think"`):
            What the judge reads as the reasoning: the `<think>` content, or the whole `completion` (as the released
            code does).
        forbid_vision_tokens (`bool`, *optional*, defaults to `True`):
            Never sample Qwen's vision special tokens in completions (a stray `<|image_pad|>` breaks training).
    """

    dataset_registry: str | None = field(default=None, metadata={"help": "Path of a SophiaVL dataset_info.json."})
    train_files: str | None = field(default=None, metadata={"help": "Comma-separated registry names to train on."})
    eval_files: str | None = field(default=None, metadata={"help": "Comma-separated registry names to evaluate on."})
    image_base_path: str | None = field(default=None, metadata={"help": "Image folder for `dataset_name` data."})
    system_prompt: str | None = field(default=None, metadata={"help": "System prompt (SophiaVL-R1's when unset)."})
    min_pixels: int = field(default=262144, metadata={"help": "Minimum image pixels (smart resize)."})
    max_pixels: int = field(default=4194304, metadata={"help": "Maximum image pixels (smart resize)."})
    on_invalid: str = field(
        default="error",
        metadata={
            "help": "Invalid rows: 'error' (stop and list them) or 'skip' (drop and report).",
            "choices": ["error", "skip"],
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format"],
        metadata={"help": "Outcome reward names (accuracy, format) or dotted paths."},
    )
    use_thinking_reward: bool = field(default=True, metadata={"help": "Score the thinking with the judge."})
    judge_reasoning_source: str = field(
        default="think",
        metadata={
            "help": "What the judge reads: 'think' (<think> content) or 'completion'.",
            "choices": ["think", "completion"],
        },
    )
    forbid_vision_tokens: bool = field(default=True, metadata={"help": "Never sample Qwen's vision special tokens."})

    def __post_init__(self):
        if self.dataset_registry is None and self.dataset_name is None:
            raise ValueError("Give a data set: --dataset_registry PATH --train_files NAMES, or --dataset_name.")
        if self.dataset_registry is not None and not self.train_files:
            raise ValueError(f"--dataset_registry {self.dataset_registry} needs --train_files (registry names).")
        if self.on_invalid not in ("error", "skip"):
            raise ValueError(f"on_invalid must be 'error' or 'skip', got {self.on_invalid!r}.")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"Need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}.")
