# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
# ruff: noqa: F401 - the TYPE_CHECKING imports re-export the lazy names
"""SophiaVL-R1's thinking rewards and Trust-GRPO for Hugging Face TRL. Lazy, like TRL's top level: `import
sophiavl_trl` is cheap, the heavy modules (torch, trl) load on the first attribute access."""

from typing import TYPE_CHECKING

from sophiavl_trl._lazy import lazy_exports


__version__ = "0.1.0"

__getattr__, __all__ = lazy_exports(
    globals(),
    {
        "sophiavl_trl.trust_grpo_config": "TrustGRPOConfig",
        "sophiavl_trl.trust_grpo_trainer": "TrustGRPOTrainer",
        "sophiavl_trl.trust": "TrustWeights trust_weights judge_query_mask",
        "sophiavl_trl.rewards": "accuracy_reward format_reward register_verifier ThinkingRewardClient ThinkingReward "
        "get_reward_funcs",
    },
)

if TYPE_CHECKING:  # the names, for type checkers and IDEs
    from sophiavl_trl.judge.client import ThinkingRewardClient
    from sophiavl_trl.rewards import get_reward_funcs
    from sophiavl_trl.rewards.accuracy_rewards import accuracy_reward, register_verifier
    from sophiavl_trl.rewards.format_rewards import format_reward
    from sophiavl_trl.rewards.judge_rewards import ThinkingReward
    from sophiavl_trl.trust import TrustWeights, judge_query_mask, trust_weights
    from sophiavl_trl.trust_grpo_config import TrustGRPOConfig
    from sophiavl_trl.trust_grpo_trainer import TrustGRPOTrainer
