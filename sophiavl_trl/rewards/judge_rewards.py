# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""The thinking reward model as a TRL reward function.

[`ThinkingReward`] wraps a [`~sophiavl_trl.judge.client.ThinkingRewardClient`] in TRL's reward-function signature, so
it can be passed to `TrustGRPOTrainer` or to a plain `GRPOTrainer(reward_funcs=[...])`. A completion the judge could
not score gets `None` (TRL turns it into NaN and leaves it out of the weighted sum), never 0.
"""

import math
import time
from collections.abc import Sequence
from typing import Any

from sophiavl_trl.judge.client import ThinkingRewardClient
from sophiavl_trl.rewards.format_rewards import extract_thinking


__all__ = ["AsyncThinkingReward", "ThinkingReward"]


def _text_of(message_or_text: Any) -> str:
    """The text of a completion or prompt: a string, a message dict, or a list of messages / content parts."""
    if isinstance(message_or_text, str):
        return message_or_text
    if isinstance(message_or_text, dict):
        content = message_or_text.get("content", message_or_text.get("text", ""))
        if isinstance(content, str):
            return content
        return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
    if isinstance(message_or_text, Sequence):
        return "\n".join(_text_of(message) for message in message_or_text)
    raise TypeError(f"Cannot read text from a {type(message_or_text).__name__}.")


def _question_of(prompt: Any) -> str:
    """The last user message's text of a conversational prompt, or the prompt itself when it is a string."""
    if isinstance(prompt, str):
        return prompt
    user_messages = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    return _text_of(user_messages[-1] if user_messages else prompt[-1])


def _first_image(images_row: Any) -> Any:
    if images_row is None:
        return None
    if isinstance(images_row, (list, tuple)):
        return images_row[0] if images_row else None
    return images_row


class ThinkingReward:
    r"""
    Reward function that scores the reasoning of each completion with the thinking reward model.

    For each completion, the judge gets the question (the `problem` column when the data set has one, else the text of
    the prompt's last user message), the reasoning (the `<think>` content of the completion, see
    [`~sophiavl_trl.rewards.format_rewards.extract_thinking`]; or the whole completion with
    `reasoning_source="completion"`, which is what the released training code sends) and the example's first image
    (`images` column, else `image`). See [`~sophiavl_trl.judge.client.ThinkingRewardClient`] for the request, the
    retries and the time bound.

    Args:
        client ([`~sophiavl_trl.judge.client.ThinkingRewardClient`], *optional*):
            The judge client. If `None`, one is built from `client_kwargs` (and the environment: `OPENAI_API_URL`,
            `OPENAI_API_KEY`, `REWARD_MODEL`).
        reasoning_source (`str`, *optional*, defaults to `"think"`):
            `"think"`: the `<think>` content; `"completion"`: the whole completion text.
        **client_kwargs:
            Arguments for [`~sophiavl_trl.judge.client.ThinkingRewardClient`] when `client` is `None`.

    Returns (when called):
        `list[float | None]`: one score in [0, 1] per completion, `None` where the judge gave none.

    Example:
    ```python
    >>> from trl import GRPOTrainer
    >>> from sophiavl_trl.rewards import ThinkingReward, accuracy_reward

    >>> thinking_reward = ThinkingReward(base_url="http://127.0.0.1:8000/v1", constrained_decoding=True)
    >>> thinking_reward(
    ...     prompts=[[{"role": "user", "content": "What is 2+2?"}]],
    ...     completions=[[{"role": "assistant", "content": "<think>2+2=4</think><answer>4</answer>"}]],
    ... )
    [0.9]
    >>> trainer = GRPOTrainer(model=..., reward_funcs=[accuracy_reward, thinking_reward], ...)

    ```
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

    def judge_inputs(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        problem: Sequence[str] | None = None,
        images: Sequence[Any] | None = None,
        image: Sequence[Any] | None = None,
    ) -> tuple[list[str], list[str], list[Any] | None]:
        r"""
        The questions, reasonings and images sent to the judge for a batch (TRL's reward-function inputs).

        Args:
            prompts (`Sequence`): prompts (strings or message lists).
            completions (`Sequence`): completions (strings or message lists).
            problem (`Sequence[str]`, *optional*): the `problem` column.
            images (`Sequence`, *optional*): the `images` column (a list of images per row).
            image (`Sequence`, *optional*): the `image` column (one image per row).

        Returns:
            `tuple[list[str], list[str], list | None]`: questions, reasonings, and images (`None` if there are none).
        """
        if len(prompts) != len(completions):
            raise ValueError(f"Got {len(prompts)} prompts but {len(completions)} completions.")
        questions = [
            str(problem[i]) if problem is not None and problem[i] is not None else _question_of(prompt)
            for i, prompt in enumerate(prompts)
        ]
        reasonings = []
        for completion in completions:
            text = _text_of(completion)
            reasonings.append(extract_thinking(text) if self.reasoning_source == "think" else text)
        column = images if images is not None else image
        row_images = [_first_image(row) for row in column] if column is not None else None
        if row_images is not None and all(img is None for img in row_images):
            row_images = None
        return questions, reasonings, row_images

    def _finish(self, scores: list[float], seconds: float, log_metric: Any) -> list[float | None]:
        if log_metric is not None and scores:
            nan = sum(math.isnan(s) for s in scores)
            log_metric(f"{self.__name__}/nan_fraction", nan / len(scores))
            log_metric(f"{self.__name__}/seconds", seconds)
        return [None if math.isnan(s) else s for s in scores]

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        problem: Sequence[str] | None = None,
        images: Sequence[Any] | None = None,
        image: Sequence[Any] | None = None,
        log_metric: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        questions, reasonings, row_images = self.judge_inputs(prompts, completions, problem, images, image)
        start = time.monotonic()
        scores = self.client.score(questions, reasonings, row_images)
        return self._finish(scores, time.monotonic() - start, log_metric)

    def as_async(self) -> "AsyncThinkingReward":
        """The same reward with an `async __call__`, which TRL runs concurrently with other async reward functions."""
        return AsyncThinkingReward(self)


class AsyncThinkingReward:
    r"""
    [`ThinkingReward`] with an `async __call__` (TRL awaits async reward functions together on its event loop, so the
    judge requests overlap with other async rewards). Build it with `ThinkingReward(...).as_async()`.

    Args:
        reward ([`ThinkingReward`]): the synchronous reward to wrap.
    """

    __name__ = "thinking_reward"

    def __init__(self, reward: ThinkingReward) -> None:
        self.reward = reward

    @property
    def client(self) -> ThinkingRewardClient:
        return self.reward.client

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reward!r})"

    async def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        problem: Sequence[str] | None = None,
        images: Sequence[Any] | None = None,
        image: Sequence[Any] | None = None,
        log_metric: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        questions, reasonings, row_images = self.reward.judge_inputs(prompts, completions, problem, images, image)
        start = time.monotonic()
        scores = await self.reward.client.ascore(questions, reasonings, row_images)
        return self.reward._finish(scores, time.monotonic() - start, log_metric)
