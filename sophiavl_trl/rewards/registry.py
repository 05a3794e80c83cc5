# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Short names for the outcome rewards, as used in recipes (`reward_funcs: [accuracy]`)."""

from collections.abc import Callable
from importlib import import_module

from sophiavl_trl.rewards.accuracy_rewards import accuracy_reward
from sophiavl_trl.rewards.format_rewards import format_reward


REWARD_FUNCS_REGISTRY: dict[str, Callable] = {
    "accuracy": accuracy_reward,  # format-gated: the released outcome reward
    "format": format_reward,  # optional additive format bonus (not in the released reward)
}


def get_reward_funcs(names: list[str] | str) -> list[Callable]:
    """
    Resolve reward names to callables.

    Args:
        names (`list[str]` or `str`):
            Registry keys (see `REWARD_FUNCS_REGISTRY`) or dotted paths such as `my_module.my_reward`. A single string
            is read as a comma-separated list (`"accuracy"`, `"accuracy,format"`).

    Returns:
        `list[Callable]`: the reward functions, in the given order.
    """
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    funcs = []
    for name in names:
        if name in REWARD_FUNCS_REGISTRY:
            funcs.append(REWARD_FUNCS_REGISTRY[name])
        elif isinstance(name, str) and "." in name:
            module_name, _, attr = name.rpartition(".")
            try:
                funcs.append(getattr(import_module(module_name), attr))
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"Could not import reward function {name!r}: {exc}") from exc
        else:
            raise ValueError(
                f"Unknown reward function {name!r}. Valid names: {sorted(REWARD_FUNCS_REGISTRY)}, "
                "or a dotted path such as 'my_package.rewards.my_reward'."
            )
    return funcs
