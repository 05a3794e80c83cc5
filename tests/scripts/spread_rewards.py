# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""A user-style reward plugged in by dotted path (`--reward_funcs ... spread_rewards.spread_reward`).

A random tiny policy scores 0 on accuracy and format, so every advantage would be 0 and nothing would train. This
reward spreads within groups (a deterministic function of the completion), so the policy moves and the tests can
check that the updated weights are saved and reach vLLM.
"""


def spread_reward(completion_ids, **kwargs):
    return [(sum(ids) % 7) / 6 for ids in completion_ids]
