# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
# ruff: noqa: F401 - the TYPE_CHECKING imports re-export the lazy names
"""SophiaVL-R1's thinking rewards and Trust-GRPO for Hugging Face TRL.

The top level is lazy (like TRL's): `import sophiavl_trl` is cheap, and the heavy modules (torch, trl) load on the
first attribute access.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any


__version__ = "0.1.0"


def _lazy_exports(namespace: dict[str, Any], exports: dict[str, str]) -> tuple[Any, list[str]]:
    """A module's `__getattr__` (PEP 562), which imports each name of `exports` (`{"module": "name name ..."}`) on first
    use, and its `__all__`."""
    where = {name: module for module, names in exports.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        namespace[name] = getattr(import_module(where[name]), name)
        return namespace[name]

    return __getattr__, sorted(where)


__getattr__, __all__ = _lazy_exports(
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
