# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Reward functions with TRL's signature (outcome: `accuracy_reward`, `format_reward`; thinking: `ThinkingReward`), and
`get_reward_funcs`: recipe names to callables. Plain imports: only the standard library loads here (no torch, no HTTP
client until a request is made)."""

from collections.abc import Callable
from pkgutil import resolve_name

from sophiavl_trl.judge.client import ThinkingRewardClient
from sophiavl_trl.rewards.accuracy_rewards import accuracy_reward, register_verifier
from sophiavl_trl.rewards.format_rewards import format_reward
from sophiavl_trl.rewards.judge_rewards import ThinkingReward


__all__ = ["REWARD_FUNCS_REGISTRY", "ThinkingReward", "ThinkingRewardClient", "accuracy_reward", "format_reward"]
__all__ += ["get_reward_funcs", "register_verifier"]

REWARD_FUNCS_REGISTRY: dict[str, Callable] = {
    "accuracy": accuracy_reward,  # format-gated: the released outcome reward
    "format": format_reward,  # optional additive format bonus (not in the released reward)
}


def get_reward_funcs(names: list[str]) -> list[Callable]:
    """The reward functions of `names`, in order: keys of `REWARD_FUNCS_REGISTRY` or dotted paths such as
    `my_module.my_reward` (a recipe's bare `reward_funcs: accuracy,format` is split by `SophiaVLScriptArguments`)."""
    if isinstance(names, str):  # iterating it would look up "a", "c", ...
        raise TypeError(f"get_reward_funcs takes a list of names, not the string {names!r}: e.g. {names.split(',')}.")
    funcs = []
    for name in names:
        if name not in REWARD_FUNCS_REGISTRY and not (isinstance(name, str) and "." in name):
            valid = f"{sorted(REWARD_FUNCS_REGISTRY)}, or a dotted path such as 'my_package.rewards.my_reward'"
            raise ValueError(f"Unknown reward function {name!r}. Valid names: {valid}.")
        try:
            funcs.append(REWARD_FUNCS_REGISTRY.get(name) or resolve_name(name))
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"Could not import reward function {name!r}: {exc}") from exc
    return funcs
