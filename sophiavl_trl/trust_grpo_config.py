# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig


TRUST_MODES = ("paper", "reference")

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
            `"paper"` (arXiv 2505.17018, section 3.4: every completion is judged, T = total training steps) or
            `"reference"` (the released code: only completions with outcome >= 0.2 are judged, the others score 0;
            uniform groups are not judged and get weight 0; T = 12000). The knobs below override the mode's choice.
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

        > Parameters that control the thinking judge

        judge_base_url (`list[str]`, *optional*):
            OpenAI-compatible base URL(s) of the thinking reward model, e.g. `http://127.0.0.1:8000/v1`; several
            replicas may be given. Default: `OPENAI_API_URL` from the environment (the original's variable).
        judge_model (`str`, *optional*):
            Served model name. Default: `REWARD_MODEL` from the environment, else `"thinking-reward-model"`.
        judge_api_key_env (`str`, *optional*, defaults to `"OPENAI_API_KEY"`):
            Name of the environment variable holding the API key. The key itself is never stored in the config.
        judge_timeout (`float`, *optional*, defaults to `60.0`):
            Seconds per request attempt.
        judge_max_retries (`int`, *optional*, defaults to `3`):
            Retries after a connection error, timeout, 429 or 5xx (other 4xx are not retried).
        judge_max_concurrency (`int`, *optional*, defaults to `64`):
            Requests in flight per process.
        judge_constrained_decoding (`bool`, *optional*, defaults to `False`):
            Ask a vLLM judge to answer with one of "0", "0.1", ..., "1.0" (structured outputs) so every answer
            parses. Off for servers that do not support it.
        judge_check_on_start (`bool`, *optional*, defaults to `True`):
            Check before training starts that the judge lists `judge_model`; fail with instructions otherwise.
        judge_max_failed_steps (`int`, *optional*, defaults to `3`):
            Stop training when every judge request failed in this many consecutive generation steps (0: never).
            Failures are always counted and logged; they never silently become zeros.
    """

    trust_mode: str = field(
        default="paper",
        metadata={"help": "Trust-GRPO variant: 'paper' or 'reference' (the released code).", "choices": TRUST_MODES},
    )
    trust_alpha: float = field(default=0.3, metadata={"help": "Initial scale alpha of the thinking reward."})
    trust_anneal_steps: int | None = field(
        default=None,
        metadata={"help": "Annealing horizon T. Default: total training steps ('paper') or 12000 ('reference')."},
    )
    trust_correct_threshold: float = field(
        default=0.5, metadata={"help": "Correctness reward >= this counts as correct when splitting a group."}
    )
    judge_query_threshold: float | None = field(
        default=None,
        metadata={"help": "Only completions with correctness >= this are judged; others score 0. Default: mode's."},
    )
    trust_skip_uniform: bool | None = field(
        default=None,
        metadata={
            "help": "Give uniform groups weight 0 and do not judge them. Default: False (paper), True (reference)."
        },
    )
    trust_uniform_low: float = field(default=0.1, metadata={"help": "Lower bound of the uniform-group rule."})
    trust_uniform_high: float = field(default=0.9, metadata={"help": "Upper bound of the uniform-group rule."})
    correctness_reward: str | None = field(
        default=None,
        metadata={
            "help": "Reward function splitting correct from incorrect. Default: accuracy_reward, else the first."
        },
    )
    judge_base_url: list[str] | None = field(
        default=None,
        metadata={"help": "OpenAI-compatible base URL(s) of the thinking judge. Default: $OPENAI_API_URL."},
    )
    judge_model: str | None = field(
        default=None,
        metadata={"help": "Served judge model name. Default: $REWARD_MODEL, else 'thinking-reward-model'."},
    )
    judge_api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "Environment variable holding the judge API key (the key is never stored)."},
    )
    judge_timeout: float = field(default=60.0, metadata={"help": "Seconds per judge request attempt."})
    judge_max_retries: int = field(default=3, metadata={"help": "Retries on connection errors, timeouts, 429, 5xx."})
    judge_max_concurrency: int = field(default=64, metadata={"help": "Judge requests in flight per process."})
    judge_constrained_decoding: bool = field(
        default=False, metadata={"help": "vLLM structured outputs: the judge answers one of 0, 0.1, ..., 1.0."}
    )
    judge_check_on_start: bool = field(
        default=True, metadata={"help": "Check that the judge serves judge_model before training starts."}
    )
    judge_max_failed_steps: int = field(
        default=3,
        metadata={"help": "Stop when every judge request failed in this many consecutive steps (0: never)."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.trust_mode not in TRUST_MODES:
            raise ValueError(f"trust_mode must be one of {TRUST_MODES}, got {self.trust_mode!r}.")
        for name, value in _MODE_DEFAULTS[self.trust_mode].items():
            if getattr(self, name) is None and value is not None:
                setattr(self, name, value)
        if self.trust_skip_uniform is None:
            self.trust_skip_uniform = False
        if isinstance(self.judge_base_url, str):
            self.judge_base_url = [u.strip() for u in self.judge_base_url.split(",") if u.strip()]

        if self.trust_alpha < 0:
            raise ValueError(f"trust_alpha must be >= 0, got {self.trust_alpha}.")
        if self.trust_anneal_steps is not None and self.trust_anneal_steps <= 0:
            raise ValueError(
                f"trust_anneal_steps must be a positive number of steps, got {self.trust_anneal_steps}; leave it unset "
                "to anneal over the whole run."
            )
        for name in ("trust_correct_threshold", "trust_uniform_low", "trust_uniform_high"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        if self.judge_query_threshold is not None and not 0.0 <= self.judge_query_threshold <= 1.0:
            raise ValueError(f"judge_query_threshold must be in [0, 1], got {self.judge_query_threshold}.")
        if self.trust_uniform_low >= self.trust_uniform_high:
            raise ValueError(
                f"trust_uniform_low ({self.trust_uniform_low}) must be below trust_uniform_high "
                f"({self.trust_uniform_high})."
            )
        if self.judge_timeout <= 0 or self.judge_max_retries < 0 or self.judge_max_concurrency < 1:
            raise ValueError(
                "judge_timeout must be > 0, judge_max_retries >= 0 and judge_max_concurrency >= 1; got "
                f"{self.judge_timeout}, {self.judge_max_retries}, {self.judge_max_concurrency}."
            )
        if self.judge_max_failed_steps < 0:
            raise ValueError(f"judge_max_failed_steps must be >= 0, got {self.judge_max_failed_steps}.")
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
