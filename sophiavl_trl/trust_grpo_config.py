# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trl import GRPOConfig

from sophiavl_trl._fields import option
from sophiavl_trl.configs import check_fields


# What each mode sets for the knobs left at None. `reference` is the released training code.
_MODE_DEFAULTS = {
    "paper": {"judge_query_threshold": None, "trust_skip_uniform": False, "trust_anneal_steps": None},
    "reference": {"judge_query_threshold": 0.2, "trust_skip_uniform": True, "trust_anneal_steps": 12000},
}


@dataclass
class TrustGRPOConfig(GRPOConfig):
    r"""
    Configuration class for [`TrustGRPOTrainer`]: [`trl.GRPOConfig`] plus the Trust-GRPO settings below, each
    described by its `help`; docs/trust-grpo.md has their exact semantics, the paper's and the released code's.

    `trust_mode` is `"paper"` (arXiv 2505.17018, section 3.4) or `"reference"` (the released code), and fills the
    settings left unset: `judge_query_threshold` (none / 0.2: only completions whose correctness reward reaches it
    are judged, the others score 0), `trust_skip_uniform` (`False` / `True`: groups whose correctness rewards are all
    <= `trust_uniform_low` or all >= `trust_uniform_high` are not judged and get weight 0) and `trust_anneal_steps`
    (the run's total steps / 12000: the horizon T of `exp(-step / T)`). With `judge_overlap`, `thinking_reward` runs
    in a worker thread while the training thread computes the log-probs: it must not use the policy model. The judge
    connection is the reward's own (`ThinkingReward(base_url=...)`, or `examples/train_sophiavl.py`'s `judge_*`).
    """

    trust_mode: Literal["paper", "reference"] = option(
        "paper", "Trust-GRPO variant: 'paper' or 'reference' (the released code)."
    )
    trust_alpha: float = option(0.3, "Initial scale alpha of the thinking reward.")
    trust_anneal_steps: int | None = option(
        None, "Annealing horizon T. Default: total steps (paper), 12000 (reference)."
    )
    trust_correct_threshold: float = option(
        0.5, "Correctness reward >= this counts as correct when splitting a group."
    )
    judge_query_threshold: float | None = option(
        None, "Judge only correctness >= this; others score 0. Default: the mode's."
    )
    trust_skip_uniform: bool | None = option(
        None, "Give uniform groups weight 0 and do not judge them. Default: the mode's."
    )
    trust_uniform_low: float = option(0.1, "Lower bound of the uniform-group rule (all correctness <= this).")
    trust_uniform_high: float = option(0.9, "Upper bound of the uniform-group rule (all correctness >= this).")
    correctness_reward: str | None = option(
        None, "Splits correct from incorrect. Default: accuracy_reward, else the first."
    )
    judge_check_on_start: bool = option(True, "Check the judge is up (its check_server()) before the model loads.")
    judge_max_failed_steps: int = option(
        3, "Stop when every judge request failed in this many steps in a row (0: never)."
    )
    judge_overlap: bool = option(True, "Judge while the log-probs are computed (False: after them, TRL's order).")

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
