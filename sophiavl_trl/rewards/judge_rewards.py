# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""The thinking reward model as a TRL reward function: one score in [0, 1] or NaN per completion (TRL leaves NaN out
of the weighted sum), never 0 for a judge failure."""

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from sophiavl_trl.judge.client import ThinkingRewardClient
from sophiavl_trl.rewards.format_rewards import completion_to_text, extract_thinking


__all__ = ["ThinkingReward"]


def _question(prompt: Any) -> str:
    """A string prompt, or the text of a conversational prompt's last user message."""
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m.get("role") == "user"] or list(prompt[-1:])
    content = users[-1].get("content", "") if users else ""
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")


class ThinkingReward:
    """
    Reward function that scores the reasoning of each completion with the thinking reward model.

    The judge gets the question (the `problem` column, else the prompt's last user message), the reasoning (the
    `<think>` content, or the whole completion with `reasoning_source="completion"`, as the released training code
    sends) and the example's first image (`images` column, else `image`).

    Args:
        client ([`~sophiavl_trl.judge.ThinkingRewardClient`], *optional*): the judge client; if `None`, one is built
            from `client_kwargs` (`base_url`, `model`, `timeout`...) and the environment.
        reasoning_source (`str`, *optional*, defaults to `"think"`): `"think"` or `"completion"`.
    """

    __name__ = "thinking_reward"

    def __init__(
        self, client: ThinkingRewardClient | None = None, reasoning_source: str = "think", **client_kwargs: Any
    ) -> None:
        if client is not None and client_kwargs:
            raise ValueError(f"Pass either a client or client arguments, not both (got {sorted(client_kwargs)}).")
        if reasoning_source not in ("think", "completion"):
            raise ValueError(f"reasoning_source must be 'think' or 'completion', got {reasoning_source!r}.")
        self.client = client if client is not None else ThinkingRewardClient(**client_kwargs)
        self.reasoning_source = reasoning_source

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client={self.client!r}, reasoning_source={self.reasoning_source!r})"

    def check_server(self, wait_seconds: float = 0.0) -> list[str]:
        """See [`~sophiavl_trl.judge.ThinkingRewardClient.check_server`]."""
        return self.client.check_server(wait_seconds=wait_seconds)

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        log_metric: Callable[[str, float], None] | None = None,
        problem: Sequence[str | None] | None = None,
        images: Sequence[Any] | None = None,
        image: Sequence[Any] | None = None,
        **_: Any,
    ) -> list[float]:
        """Score a batch, with TRL's reward-function keywords (`problem`, `images` or `image`, `log_metric`; other
        dataset columns are ignored): one score per completion, NaN where there is none."""
        if len(prompts) != len(completions):
            raise ValueError(f"Got {len(prompts)} prompts but {len(completions)} completions.")
        start = time.monotonic()
        problem = problem if problem is not None else [None] * len(prompts)
        questions = [str(q) if q is not None else _question(p) for p, q in zip(prompts, problem)]
        texts = [completion_to_text(c) for c in completions]
        reasonings = [extract_thinking(t) for t in texts] if self.reasoning_source == "think" else texts
        rows = images if images is not None else image
        firsts = [(row[0] if row else None) if isinstance(row, (list, tuple)) else row for row in rows or []]
        scores = self.client.score(questions, reasonings, firsts if any(img is not None for img in firsts) else None)
        if log_metric is not None and scores:
            log_metric(f"{self.__name__}/nan_fraction", sum(map(math.isnan, scores)) / len(scores))
            log_metric(f"{self.__name__}/seconds", time.monotonic() - start)
        return scores
