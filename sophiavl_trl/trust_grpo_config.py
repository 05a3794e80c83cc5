# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from trl import GRPOConfig

from sophiavl_trl.configs import check_fields


# What each mode sets for the knobs left at None. `reference` is the released training code.
_MODE_DEFAULTS = {
    "paper": {"judge_query_threshold": None, "trust_skip_uniform": False, "trust_anneal_steps": None},
    "reference": {"judge_query_threshold": 0.2, "trust_skip_uniform": True, "trust_anneal_steps": 12000},
}


@dataclass
class TrustGRPOConfig(GRPOConfig):
    r"""
    Configuration class for [`TrustGRPOTrainer`]: GRPO with SophiaVL-R1's trust-weighted thinking reward.

    Only the parameters specific to Trust-GRPO are listed here; see [`trl.GRPOConfig`] for the rest. The exact
    semantics (both the paper's and the released code's) are in `docs/trust-grpo.md`.

    Parameters:
        > Parameters that control the trust weighting

        trust_mode (`str`, *optional*, defaults to `"paper"`):
            `"paper"` (arXiv 2505.17018, section 3.4) or `"reference"` (the released code): the defaults of the knobs
            below left unset.
        trust_alpha (`float`, *optional*, defaults to `0.3`):
            Initial scale alpha of the thinking reward.
        trust_anneal_steps (`int`, *optional*):
            Annealing horizon T of `exp(-step / T)`. Default: the total number of training steps (`paper`) or 12000
            (`reference`).
        trust_correct_threshold (`float`, *optional*, defaults to `0.5`):
            A completion whose correctness reward is >= this counts as correct when splitting a group.
        judge_query_threshold (`float`, *optional*):
            Only completions with a correctness reward >= this are sent to the judge; the others get a thinking
            score of 0 (counted in the means). Default: none (`paper`), 0.2 (`reference`).
        trust_skip_uniform (`bool`, *optional*):
            Do not judge uniform groups (all correctness rewards <= `trust_uniform_low` or all >=
            `trust_uniform_high`) and give them weight 0. Default: `False` (`paper`), `True` (`reference`).
        trust_uniform_low (`float`, *optional*, defaults to `0.1`):
            Lower bound of the uniform-group rule.
        trust_uniform_high (`float`, *optional*, defaults to `0.9`):
            Upper bound of the uniform-group rule.
        correctness_reward (`str`, *optional*):
            Name of the reward function whose score splits correct from incorrect completions. Default:
            `"accuracy_reward"` when present, else the first reward function.

        > Parameters that control how the trainer uses the thinking judge (the connection is the judge's own:
        `ThinkingReward(base_url=..., ...)`, or the `judge_*` script arguments of `examples/train_sophiavl.py`)

        judge_check_on_start (`bool`, *optional*, defaults to `True`):
            Call the thinking reward's `check_server()` (when it has one) before the model loads: an unreachable judge
            fails at once, with instructions.
        judge_max_failed_steps (`int`, *optional*, defaults to `3`):
            Stop training when every judge request failed in this many consecutive generation steps (0: never).
            Failures are always counted and logged; they never silently become zeros.
        judge_overlap (`bool`, *optional*, defaults to `True`):
            Send the judge requests as soon as the outcome rewards are known, so that the judge works during the old
            and reference log-prob pass (`False`: after it, TRL's order; the rewards are the same). `thinking_reward`
            then runs in a worker thread while the training thread computes: it must not use the policy model.
    """

    trust_mode: Literal["paper", "reference"] = field(
        default="paper", metadata={"help": "Trust-GRPO variant: 'paper' or 'reference' (the released code)."}
    )
    trust_alpha: float = field(default=0.3, metadata={"help": "Initial scale alpha of the thinking reward."})
    trust_anneal_steps: int | None = field(
        default=None, metadata={"help": "Annealing horizon T. Default: total steps (paper), 12000 (reference)."}
    )
    trust_correct_threshold: float = field(
        default=0.5, metadata={"help": "Correctness reward >= this counts as correct when splitting a group."}
    )
    judge_query_threshold: float | None = field(
        default=None, metadata={"help": "Judge only correctness >= this; others score 0. Default: the mode's."}
    )
    trust_skip_uniform: bool | None = field(
        default=None, metadata={"help": "Give uniform groups weight 0 and do not judge them. Default: the mode's."}
    )
    trust_uniform_low: float = field(default=0.1, metadata={"help": "Lower bound of the uniform-group rule."})
    trust_uniform_high: float = field(default=0.9, metadata={"help": "Upper bound of the uniform-group rule."})
    correctness_reward: str | None = field(
        default=None, metadata={"help": "Splits correct from incorrect. Default: accuracy_reward, else the first."}
    )
    judge_check_on_start: bool = field(default=True, metadata={"help": "Check the judge is up before training."})
    judge_max_failed_steps: int = field(
        default=3, metadata={"help": "Stop when every judge request failed in this many steps in a row (0: never)."}
    )
    judge_overlap: bool = field(
        default=True, metadata={"help": "Judge while the log-probs are computed (False: after them, TRL's order)."}
    )

    def __post_init__(self):
        check_fields(self, GRPOConfig)  # before TRL's own checks (which accept NaN, 0 batches, ...)
        super().__post_init__()
        for name, value in _MODE_DEFAULTS[self.trust_mode].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.trust_uniform_low >= self.trust_uniform_high:
            raise ValueError(
                f"trust_uniform_low ({self.trust_uniform_low}) must be below trust_uniform_high "
                f"({self.trust_uniform_high})."
            )
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                "Trust-GRPO adds the weighted thinking score to the summed outcome rewards before group "
                f"normalisation; multi_objective_aggregation must be 'sum_then_normalize', got "
                f"{self.multi_objective_aggregation!r}."
            )

    @property
    def skip_uniform(self) -> tuple[float, float] | None:
        """`(low, high)` for `trust_weights` / `judge_query_mask`, or None when the uniform-group rule is off."""
        return (self.trust_uniform_low, self.trust_uniform_high) if self.trust_skip_uniform else None
