# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Script arguments of `examples/train_sophiavl.py` (data, prompts, rewards), beside `TrustGRPOConfig` and TRL's
`ModelConfig`. Every field can be set on the command line or in a recipe YAML (`--config recipe.yaml`)."""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from trl import ScriptArguments


def _matches(value: Any, annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_matches(item, args[0]) for item in value if args)
    if annotation in (int, float):  # an int is a float here, a bool (an int subclass) is neither
        return isinstance(value, int | annotation) and not isinstance(value, bool)
    return isinstance(value, annotation) if annotation in (bool, str, type(None)) else True  # not a type we declare


def check_field_types(config: Any, base: type) -> None:
    """Check the fields `type(config)` adds to `base`: declared type, and finite numbers. Raises `ValueError` naming
    the field.

    Values from a YAML recipe reach the dataclass unconverted (`TrlParser` passes them as argparse defaults), so
    `judge_max_retries: 2.5` or `trust_alpha: [1, 2]` would otherwise fail far from the recipe, or (`.nan`) not at all.
    """
    inherited = {f.name for f in dataclasses.fields(base)}
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        if f.name in inherited:
            continue
        value = getattr(config, f.name)
        annotation = hints[f.name]
        if not _matches(value, annotation):
            expected = getattr(annotation, "__name__", None) or str(annotation).replace("NoneType", "None")
            raise ValueError(f"{f.name} must be {expected}, got {value!r} ({type(value).__name__}).")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name} must be a finite number, got {value}.")


def check_model_path(name_or_path: str) -> None:
    """Fail at once, naming the path, when a local model path does not exist (instead of a Hub error much later)."""
    looks_local = os.path.isabs(name_or_path) or name_or_path.startswith(("./", "../", "~"))
    if looks_local and not os.path.exists(os.path.expanduser(name_or_path)):
        raise FileNotFoundError(f"model_name_or_path: no such folder: {name_or_path}")
    if not looks_local and os.environ.get("HF_HUB_OFFLINE") == "1" and not os.path.exists(name_or_path):
        from huggingface_hub import try_to_load_from_cache

        if try_to_load_from_cache(name_or_path, "config.json") is None:
            raise FileNotFoundError(
                f"model_name_or_path: {name_or_path!r} is neither a local folder nor in the Hub cache, and "
                "HF_HUB_OFFLINE=1 forbids downloading it."
            )


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
        reward_funcs (`list[str]`, *optional*, defaults to `["accuracy"]`):
            Outcome rewards: names from `sophiavl_trl.rewards.REWARD_FUNCS_REGISTRY` or dotted paths. The released
            SophiaVL-R1 outcome is the format-gated accuracy alone; add `format` for an extra additive format reward.
        use_thinking_reward (`bool`, *optional*, defaults to `True`):
            Score the thinking with the judge (the `judge_*` settings below); `False` trains plain GRPO.
        judge_reasoning_source (`str`, *optional*, defaults to `"think"`):
            What the judge reads as the reasoning: the `<think>` content, or the whole `completion` (as the released
            code does).
        forbid_vision_tokens (`bool`, *optional*, defaults to `True`):
            Never sample Qwen's vision special tokens in completions (a stray `<|image_pad|>` breaks training).
        judge_base_url (`list[str]`, *optional*):
            OpenAI-compatible base URL(s) of the thinking reward model, e.g. `http://127.0.0.1:8000/v1`; several
            replicas may be given (a list, or comma-separated). Default: `OPENAI_API_URL` from the environment.
        judge_model (`str`, *optional*):
            Served model name. Default: `REWARD_MODEL` from the environment, else `"thinking-reward-model"`.
        judge_api_key_env (`str`, *optional*):
            Name of the environment variable holding the API key; it must be set and non-empty. Unset: `OPENAI_API_KEY`
            if set, else no key. The key itself is never stored.
        judge_timeout (`float`, *optional*, defaults to `60.0`):
            Seconds per request attempt.
        judge_max_retries (`int`, *optional*, defaults to `3`):
            Retries after a connection error, timeout, 429 or 5xx.
        judge_max_concurrency (`int`, *optional*, defaults to `64`):
            Requests in flight per process.
        judge_constrained_decoding (`bool`, *optional*, defaults to `False`):
            Ask a vLLM judge to answer with one of "0", "0.1", ..., "1.0" (structured outputs) so every answer
            parses. Off for servers that do not support it.
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
        default_factory=lambda: ["accuracy"],
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
    judge_base_url: list[str] | None = field(
        default=None,
        metadata={"help": "OpenAI-compatible base URL(s) of the thinking judge. Default: $OPENAI_API_URL."},
    )
    judge_model: str | None = field(
        default=None,
        metadata={"help": "Served judge model name. Default: $REWARD_MODEL, else 'thinking-reward-model'."},
    )
    judge_api_key_env: str | None = field(
        default=None,
        metadata={"help": "Environment variable holding the judge API key (never stored). Default: $OPENAI_API_KEY."},
    )
    judge_timeout: float = field(default=60.0, metadata={"help": "Seconds per judge request attempt."})
    judge_max_retries: int = field(default=3, metadata={"help": "Retries on connection errors, timeouts, 429, 5xx."})
    judge_max_concurrency: int = field(default=64, metadata={"help": "Judge requests in flight per process."})
    judge_constrained_decoding: bool = field(
        default=False, metadata={"help": "vLLM structured outputs: the judge answers one of 0, 0.1, ..., 1.0."}
    )

    def __post_init__(self):
        # A bare string in a recipe (`reward_funcs: accuracy`, `judge_base_url: http://a,http://b`) means a list.
        for name in ("reward_funcs", "judge_base_url"):
            if isinstance(getattr(self, name), str):
                setattr(self, name, [v.strip() for v in getattr(self, name).split(",") if v.strip()])
        check_field_types(self, ScriptArguments)
        if self.dataset_registry is None and self.dataset_name is None:
            raise ValueError("Give a data set: --dataset_registry PATH --train_files NAMES, or --dataset_name.")
        if self.dataset_registry is not None and not self.train_files:
            raise ValueError(f"--dataset_registry {self.dataset_registry} needs --train_files (registry names).")
        if self.on_invalid not in ("error", "skip"):
            raise ValueError(f"on_invalid must be 'error' or 'skip', got {self.on_invalid!r}.")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"Need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}.")
        if self.use_thinking_reward:  # a named key variable that is unset or empty: stop now, not at the first step
            from sophiavl_trl.judge.client import api_key_from_env

            api_key_from_env(self.judge_api_key_env)
        if self.judge_timeout <= 0 or self.judge_max_retries < 0 or self.judge_max_concurrency < 1:
            raise ValueError(
                "judge_timeout must be > 0, judge_max_retries >= 0 and judge_max_concurrency >= 1; got "
                f"{self.judge_timeout}, {self.judge_max_retries}, {self.judge_max_concurrency}."
            )
