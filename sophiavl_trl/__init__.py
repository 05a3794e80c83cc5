# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""SophiaVL-R1's thinking rewards and Trust-GRPO for Hugging Face TRL.

The top level is lazy (like TRL's): `import sophiavl_trl` is cheap, and the heavy modules (torch, trl) load on the
first attribute access.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any


__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "TrustGRPOConfig": "sophiavl_trl.trust_grpo_config",
    "TrustGRPOTrainer": "sophiavl_trl.trust_grpo_trainer",
    "TrustWeights": "sophiavl_trl.trust",
    "trust_weights": "sophiavl_trl.trust",
    "judge_query_mask": "sophiavl_trl.trust",
    "accuracy_reward": "sophiavl_trl.rewards",
    "format_reward": "sophiavl_trl.rewards",
    "register_verifier": "sophiavl_trl.rewards",
    "ThinkingRewardClient": "sophiavl_trl.rewards",
    "ThinkingReward": "sophiavl_trl.rewards",
    "get_reward_funcs": "sophiavl_trl.rewards",
}

__all__ = [
    "ThinkingReward",
    "ThinkingRewardClient",
    "TrustGRPOConfig",
    "TrustGRPOTrainer",
    "TrustWeights",
    "accuracy_reward",
    "format_reward",
    "get_reward_funcs",
    "judge_query_mask",
    "register_verifier",
    "trust_weights",
]

if TYPE_CHECKING:
    from sophiavl_trl.rewards import (
        ThinkingReward,
        ThinkingRewardClient,
        accuracy_reward,
        format_reward,
        get_reward_funcs,
        register_verifier,
    )
    from sophiavl_trl.trust import TrustWeights, judge_query_mask, trust_weights
    from sophiavl_trl.trust_grpo_config import TrustGRPOConfig
    from sophiavl_trl.trust_grpo_trainer import TrustGRPOTrainer


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sophiavl_trl' has no attribute {name!r}")
