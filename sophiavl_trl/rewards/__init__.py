# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Reward functions with TRL's signature, usable in any TRL trainer and in `TrustGRPOTrainer`.

- `accuracy_reward` (format-gated, the released outcome reward), `format_reward` (an optional bonus), `register_verifier`
  (accuracy_rewards.py, format_rewards.py): outcome rewards; docs/rewards.md has the rules.
- `ThinkingRewardClient` (the judge client, `sophiavl_trl.judge.client`) and `ThinkingReward`, its TRL reward-function
  form (judge_rewards.py).
- `get_reward_funcs`: short names (as used in recipes) to callables.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any


_EXPORTS: dict[str, str] = {
    "accuracy_reward": "sophiavl_trl.rewards.accuracy_rewards",
    "register_verifier": "sophiavl_trl.rewards.accuracy_rewards",
    "get_verifier": "sophiavl_trl.rewards.accuracy_rewards",
    "format_reward": "sophiavl_trl.rewards.format_rewards",
    "ThinkingRewardClient": "sophiavl_trl.judge.client",
    "ThinkingReward": "sophiavl_trl.rewards.judge_rewards",
    "get_reward_funcs": "sophiavl_trl.rewards.registry",
    "REWARD_FUNCS_REGISTRY": "sophiavl_trl.rewards.registry",
}

__all__ = [
    "REWARD_FUNCS_REGISTRY",
    "ThinkingReward",
    "ThinkingRewardClient",
    "accuracy_reward",
    "format_reward",
    "get_reward_funcs",
    "get_verifier",
    "register_verifier",
]

if TYPE_CHECKING:
    from sophiavl_trl.judge.client import ThinkingRewardClient
    from sophiavl_trl.rewards.accuracy_rewards import accuracy_reward, get_verifier, register_verifier
    from sophiavl_trl.rewards.format_rewards import format_reward
    from sophiavl_trl.rewards.judge_rewards import ThinkingReward
    from sophiavl_trl.rewards.registry import REWARD_FUNCS_REGISTRY, get_reward_funcs


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sophiavl_trl.rewards' has no attribute {name!r}")
