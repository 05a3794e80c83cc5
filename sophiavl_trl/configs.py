# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Script arguments of `examples/train_sophiavl.py` (data, prompts, rewards), beside `TrustGRPOConfig` and TRL's
`ModelConfig`. Every field can be set on the command line or in a recipe YAML (`--config recipe.yaml`)."""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from trl import ScriptArguments, TrlParser

from sophiavl_trl._fields import option
from sophiavl_trl.model_utils import check_pixel_bounds


logger = logging.getLogger(__name__)


def _matches(value: Any, annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(_matches(item, args[0]) for item in value if args)
    if annotation in (int, float):  # an int is a float here, a bool (an int subclass) is neither
        return isinstance(value, int | annotation) and not isinstance(value, bool)
    return isinstance(value, annotation) if annotation in (bool, str, type(None)) else True  # not a type we declare


_AT_LEAST_0, _ABOVE_0 = (">= 0", lambda v: v >= 0), ("> 0", lambda v: v > 0)
_IN_0_1 = ("in [0, 1]", lambda v: 0 <= v <= 1)
# Numeric settings and their range (None: unset): ours, and inherited TRL ones that TRL accepts out of range and that
# then fail late or never (`learning_rate: -0.1`, `max_completion_length: 0`).
_RANGES = [
    ("learning_rate beta epsilon epsilon_high delta temperature weight_decay max_grad_norm", _AT_LEAST_0),
    ("warmup_steps num_train_epochs entropy_coef trust_alpha judge_max_failed_steps judge_max_retries", _AT_LEAST_0),
    ("per_device_train_batch_size per_device_eval_batch_size gradient_accumulation_steps num_iterations", _ABOVE_0),
    ("max_completion_length steps_per_generation generation_batch_size vllm_max_model_length", _ABOVE_0),
    ("logging_steps save_steps eval_steps trust_anneal_steps judge_timeout judge_max_concurrency", _ABOVE_0),
    ("trust_correct_threshold judge_query_threshold trust_uniform_low trust_uniform_high", _IN_0_1),
    ("top_p", ("in (0, 1]", lambda v: 0 < v <= 1)),
]
BOUNDS = {name: bound for names, bound in _RANGES for name in names.split()}


def check_fields(config: Any, base: type) -> None:
    """Check the fields of `config`: the declared type of those `type(config)` adds to `base`, finite numbers, and
    `BOUNDS`. Raises `ValueError` naming the field.

    Values from a YAML recipe reach the dataclass unconverted (`TrlParser` passes them as argparse defaults), so
    `judge_max_retries: 2.5` or `trust_alpha: [1, 2]` would otherwise fail far from the recipe, or (`.nan`) not at all.
    """
    inherited, hints = {f.name for f in dataclasses.fields(base)}, typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value, (requirement, test) = getattr(config, f.name), BOUNDS.get(f.name, ("", None))
        if f.name not in inherited and not _matches(value, hints[f.name]):
            hint = hints[f.name]
            expected = getattr(hint, "__name__", "") or str(hint).replace("NoneType", "None")
            expected = f"one of {typing.get_args(hint)}" if typing.get_origin(hint) is Literal else expected
            raise ValueError(f"{f.name} must be {expected}, got {value!r} ({type(value).__name__}).")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name} must be a finite number, got {value}.")
        if test and isinstance(value, int | float) and not isinstance(value, bool) and not test(value):
            raise ValueError(f"{f.name} must be {requirement}, got {value}.")
    if getattr(config, "max_steps", 1) <= 0 and getattr(config, "num_train_epochs", 1) <= 0:
        raise ValueError(
            f"Nothing to train: max_steps is {config.max_steps} and num_train_epochs {config.num_train_epochs}; set "
            "max_steps > 0 or num_train_epochs > 0."
        )


def warn_suspicious(script_args: Any, training_args: Any) -> list[str]:
    """Log (and return) a warning for each legal setting of a run that rarely means what it says."""
    s, t = script_args, training_args
    checks = [
        (t.temperature == 0, "temperature: 0 samples one completion num_generations times: every advantage is 0."),
        (not s.reward_funcs, "reward_funcs: [] leaves no outcome reward: nothing splits correct from incorrect."),
        (len(set(s.reward_funcs)) < len(s.reward_funcs), "reward_funcs names a reward twice: it counts double."),
        (s.eval_files and t.eval_strategy == "no", "eval_files is set but eval_strategy is 'no': set it to steps."),
    ]
    warnings = [message for suspicious, message in checks if suspicious]
    for message in warnings:
        logger.warning(message)
    return warnings


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key set twice in one mapping is an error (PyYAML keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            if key in lines:
                raise ValueError(f"{self.name}: {key!r} is set twice (lines {lines[key]} and {line}); keep one.")
            lines[key] = line
        return super().construct_mapping(node, deep)


class RecipeParser(TrlParser):
    """TRL's `TrlParser`, refusing a `--config` recipe that sets a key twice."""

    def parse_args_and_config(self, args: Iterable[str] | None = None, **kwargs: Any) -> tuple[Any, ...]:
        args = list(sys.argv[1:] if args is None else args)
        if "--config" in args[:-1]:
            with open(args[args.index("--config") + 1]) as recipe:
                yaml.load(recipe, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
        return super().parse_args_and_config(args, **kwargs)


@dataclass
class SophiaVLScriptArguments(ScriptArguments):
    r"""Data, prompt and reward arguments of the SophiaVL-R1 training script (each field's `help` says what it sets).

    Give the data as a SophiaVL `dataset_info.json` registry with `train_files` (`"Chart,OCR"`, as in the original), or
    as TRL's `dataset_name` (a Hugging Face data set with the same columns). The released SophiaVL-R1 outcome is the
    format-gated accuracy alone (`reward_funcs: [accuracy]`); `format` adds an extra additive format reward. The
    `judge_*` fields are the [`~sophiavl_trl.rewards.ThinkingRewardClient`] arguments of those names without `judge_`,
    with the same defaults, except `judge_api_key_env`: the name of a variable that must then be set and non-empty
    (unset: `OPENAI_API_KEY` if set, else no key); the key itself is never stored.
    """

    dataset_registry: str | None = option(None, "Path of a SophiaVL dataset_info.json.")
    train_files: str | None = option(None, "Comma-separated registry names to train on.")
    eval_files: str | None = option(None, "Comma-separated registry names to evaluate on.")
    image_base_path: str | None = option(None, "Image folder for `dataset_name` data.")
    system_prompt: str | None = option(None, "System prompt (SophiaVL-R1's when unset).")
    min_pixels: int = option(262144, "Minimum image pixels (smart resize upscales smaller images).")
    max_pixels: int = option(4194304, "Maximum image pixels (smart resize).")
    on_invalid: Literal["error", "skip"] = option(
        "error", "Invalid rows: 'error' (stop and list them) or 'skip' (drop and report)."
    )
    reward_funcs: list[str] = option(["accuracy"], "Outcome rewards (accuracy, format) or dotted paths.")
    use_thinking_reward: bool = option(True, "Score the thinking with the judge.")
    judge_reasoning_source: Literal["think", "completion"] = option(
        "think", "What the judge reads: 'think' (<think> content) or 'completion' (the released code's)."
    )
    forbid_vision_tokens: bool = option(
        True, "Never sample Qwen's vision tokens (a stray <|image_pad|> breaks training)."
    )
    judge_base_url: list[str] | None = option(
        None, "OpenAI-compatible base URL(s) of the judge. Default: $OPENAI_API_URL."
    )
    judge_model: str | None = option(None, "Served judge model. Default: $REWARD_MODEL, else 'thinking-reward-model'.")
    judge_api_key_env: str | None = option(
        None, "Variable holding the judge API key (not stored). Default: $OPENAI_API_KEY."
    )
    judge_timeout: float = option(60.0, "Seconds per judge request attempt.")
    judge_max_retries: int = option(3, "Retries on connection errors, timeouts, 429, 5xx.")
    judge_max_concurrency: int = option(64, "Judge requests in flight per process.")
    judge_constrained_decoding: bool = option(
        False, "vLLM structured outputs: the judge answers one of 0, 0.1, ..., 1.0."
    )
    allow_resume_with_changed_reward: bool = option(
        False, "Resume a checkpoint trained with other reward settings (logged)."
    )

    def __post_init__(self):
        # A bare string in a recipe (`reward_funcs: accuracy`, `judge_base_url: http://a,http://b`) means a list.
        for name in ("reward_funcs", "judge_base_url"):
            if isinstance(getattr(self, name), str):
                setattr(self, name, [v.strip() for v in getattr(self, name).split(",") if v.strip()])
        check_fields(self, ScriptArguments)
        if self.dataset_registry is None and self.dataset_name is None:
            raise ValueError("Give a data set: --dataset_registry PATH --train_files NAMES, or --dataset_name.")
        if self.dataset_registry is not None and not self.train_files:
            raise ValueError(f"--dataset_registry {self.dataset_registry} needs --train_files (registry names).")
        check_pixel_bounds(self.min_pixels, self.max_pixels)
        if self.use_thinking_reward:  # a named key variable that is unset or empty: stop now, not at the first step
            from sophiavl_trl.judge.client import api_key_from_env

            api_key_from_env(self.judge_api_key_env)
