# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The thinking reward model (SophiaVL-R1's judge): its request and answer format (`prompt`) and a concurrent,
bounded-time client for an OpenAI-compatible server such as vLLM (`client`). Importing it is cheap: `openai` and PIL
load on first use."""

from sophiavl_trl.judge.client import JudgeUnavailableError, ThinkingRewardClient, api_key_from_env, normalize_base_url
from sophiavl_trl.judge.prompt import (
    DEFAULT_JUDGE_TEMPLATE,
    SCORE_CHOICES,
    build_judge_messages,
    encode_image_data_url,
    parse_score,
)


__all__ = [
    "DEFAULT_JUDGE_TEMPLATE", "SCORE_CHOICES", "JudgeUnavailableError", "ThinkingRewardClient", "api_key_from_env",
    "build_judge_messages", "encode_image_data_url", "normalize_base_url", "parse_score",
]  # fmt: skip
