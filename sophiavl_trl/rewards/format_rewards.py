# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Format reward and the text helpers shared by the outcome rewards and the judge client.

The SophiaVL-R1 system prompt asks for `<think>reasoning</think><answer>final answer</answer>`. `format_reward` checks
that shape; `extract_answer` and `extract_thinking` cut a completion into its two parts.
"""

import re
from typing import Any


__all__ = ["completion_to_text", "extract_answer", "extract_thinking", "format_reward", "is_well_formatted"]

# One <think> block, then one <answer> block, with only whitespace around and between them. The tempered dot
# (?:(?!...).)* forbids a second or nested tag inside a block, so a completion cannot pass with several answers. It
# runs in time linear in the completion's length (no nested quantifiers), so megabytes of text are safe.
_FORMAT_RE = re.compile(
    r"\s*<think>(?:(?!</?think>).)*</think>\s*<answer>(?:(?!</?answer>).)*</answer>\s*",
    re.DOTALL,
)


def completion_to_text(completion: Any) -> str:
    r"""
    Text of one completion, in either of TRL's two shapes.

    Args:
        completion (`str` or `list[dict]`):
            A standard completion (a string) or a conversational one (a list of messages such as
            `[{"role": "assistant", "content": "..."}]`). A message's content may be a string or a list of parts such
            as `{"type": "text", "text": "..."}`; the text parts are joined. In a conversational completion the last
            assistant message is used (the earlier ones may be tool calls).

    Returns:
        `str`: the text, or `""` for anything it cannot read (never raises).

    Example:
    ```python
    >>> from sophiavl_trl.rewards.format_rewards import completion_to_text

    >>> completion_to_text([{"role": "assistant", "content": [{"type": "text", "text": "<answer>4</answer>"}]}])
    '<answer>4</answer>'

    ```
    """
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, (list, tuple)) or not completion:
        return ""
    messages = [m for m in completion if isinstance(m, dict)]
    assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
    if not assistant:
        return ""
    content = assistant[-1].get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def extract_answer(text: str) -> str | None:
    r"""
    Content of the last `<answer>...</answer>` block of a text, stripped of surrounding whitespace.

    Args:
        text (`str`):
            A completion's text.

    Returns:
        `str` or `None`: the answer, or `None` when the text has no complete `<answer>` block.

    Example:
    ```python
    >>> from sophiavl_trl.rewards.format_rewards import extract_answer

    >>> extract_answer("<think>2 + 2</think> <answer> 4 </answer>")
    '4'
    >>> extract_answer("<answer>3</answer> on second thought <answer>4</answer>")
    '4'
    >>> extract_answer("no tags") is None
    True

    ```
    """
    if not isinstance(text, str):
        return None
    end = text.rfind("</answer>")
    if end < 0:
        return None
    start = text.rfind("<answer>", 0, end)
    if start < 0:
        return None
    return text[start + len("<answer>") : end].strip()


def extract_thinking(text: str) -> str:
    r"""
    Reasoning part of a completion, as sent to the thinking reward model.

    The content of the first `<think>` block; if its closing tag is missing (a truncated completion), everything after
    `<think>` up to `<answer>` or the end. Without `<think>`, the text before the first `<answer>` (the whole text if
    there is none). Surrounding whitespace is stripped.

    Args:
        text (`str`):
            A completion's text.

    Returns:
        `str`: the reasoning, possibly empty.

    Example:
    ```python
    >>> from sophiavl_trl.rewards.format_rewards import extract_thinking

    >>> extract_thinking("<think> 2 + 2 is 4 </think><answer>4</answer>")
    '2 + 2 is 4'
    >>> extract_thinking("2 + 2 is 4 <answer>4</answer>")
    '2 + 2 is 4'

    ```
    """
    if not isinstance(text, str):
        return ""
    start = text.find("<think>")
    if start >= 0:
        start += len("<think>")
        end = text.find("</think>", start)
        if end < 0:
            end = text.find("<answer>", start)
        return text[start : end if end >= 0 else len(text)].strip()
    end = text.find("<answer>")
    return text[: end if end >= 0 else len(text)].strip()


def is_well_formatted(text: str) -> bool:
    """Whether `text` is one `<think>` block followed by one `<answer>` block (see `format_reward`)."""
    return isinstance(text, str) and _FORMAT_RE.fullmatch(text) is not None


def format_reward(completions: list[list[dict[str, str]]] | list[str], **kwargs) -> list[float]:
    r"""
    Reward function that checks that a completion is `<think>...</think>` followed by `<answer>...</answer>`.

    The completion must consist of exactly one `<think>` block followed by exactly one `<answer>` block, with only
    whitespace (newlines included) before, between and after them. Block contents may span lines and may be empty, but
    may not contain another tag of their own kind (a second `<think>` inside the reasoning, or several `<answer>`
    blocks, fail). Tags are case-sensitive.

    Args:
        completions (`list[list[dict[str, str]]]` or `list[str]`):
            Completions to evaluate, standard (strings) or conversational (lists of messages, see
            [`~rewards.format_rewards.completion_to_text`]).
        **kwargs:
            Additional keyword arguments. This function does not use them, but they are required in the function
            signature to ensure compatibility with trainers like [`GRPOTrainer`].

    Returns:
        `list[float]`: 1.0 for each well-formatted completion, 0.0 otherwise.

    Example:
    ```python
    >>> from sophiavl_trl.rewards import format_reward

    >>> completions = [
    ...     [{"role": "assistant", "content": "<think>\n2 + 2 = 4\n</think>\n<answer>4</answer>"}],
    ...     [{"role": "assistant", "content": "<think>2 + 2 = 4</think> The answer is 4."}],
    ...     [{"role": "assistant", "content": "<answer>4</answer>"}],
    ... ]
    >>> format_reward(completions)
    [1.0, 0.0, 0.0]

    ```
    """
    return [1.0 if is_well_formatted(completion_to_text(c)) else 0.0 for c in completions]
