# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Format reward and the text helpers shared by the outcome rewards, the judge client and inference. They decide the
released check, `re.fullmatch(r"<think>(.*?)</think>.*<answer>(.*?)</answer>.*", text, re.DOTALL)`, with `str.find`
(linear time on any model output, no regex backtracking)."""

from typing import Any


__all__ = ["completion_to_text", "extract_answer", "extract_thinking", "format_reward", "is_well_formatted"]


def completion_to_text(completion: Any) -> str:
    """Text of a TRL completion: a string, or the last assistant message of a conversation (string content or text
    parts joined). `""` for anything else; never raises."""
    if isinstance(completion, str):
        return completion
    messages = [m for m in completion if isinstance(m, dict)] if isinstance(completion, (list, tuple)) else []
    assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
    content = assistant[-1].get("content") if assistant else None
    if isinstance(content, (list, tuple)):
        parts = [p if isinstance(p, str) else p.get("text") for p in content if isinstance(p, (str, dict))]
        content = "".join(p for p in parts if isinstance(p, str))
    return content if isinstance(content, str) else ""


def _block(text: str, start: int = 0) -> tuple[int, str] | None:
    """(end, content) of the first complete `<answer>...</answer>` at or after `start`, or None."""
    i = text.find("<answer>", start)
    j = text.find("</answer>", i + 8) if i >= 0 else -1
    return (j + 9, text[i + 8 : j]) if j >= 0 else None


def extract_answer(text: str) -> str | None:
    """The answer the accuracy reward grades: the first `<answer>` block after the first `</think>` (anywhere when there
    is no `</think>`), stripped; `None` when there is none. An `<answer>` written inside `<think>` is not taken."""
    if not isinstance(text, str):
        return None
    end = text.find("</think>")
    block = _block(text, end + 8 if end >= 0 else 0)
    return block[1].strip() if block else None


def extract_thinking(text: str) -> str:
    """Reasoning sent to the thinking judge: the first `<think>` block (up to `<answer>` or the end when `</think>` is
    missing), else the text before the first `<answer>`; stripped."""
    if not isinstance(text, str):
        return ""
    start = text.find("<think>") + 7 if "<think>" in text else 0
    end = text.find("</think>", start) if start else -1
    end = text.find("<answer>", start) if end < 0 else end
    return text[start : end if end >= 0 else len(text)].strip()


def is_well_formatted(text: str) -> bool:
    """The released format check: `<think>` first (nothing before it), a `</think>`, then a complete `<answer>` block;
    any text may sit inside, between or after the blocks."""
    if not isinstance(text, str) or not text.startswith("<think>"):
        return False
    end = text.find("</think>", 7)
    return end >= 0 and _block(text, end + 8) is not None


def format_reward(completions: list[list[dict[str, str]]] | list[str], **kwargs) -> list[float]:
    r"""
    Reward function: 1.0 for a completion that passes the released format check (see [`is_well_formatted`]), else 0.0.

    [`accuracy_reward`] already scores 0 for badly formatted completions; this additive reward is an option.

    Example:
    ```python
    >>> from sophiavl_trl.rewards import format_reward

    >>> format_reward(["<think>2+2</think> so <answer>4</answer>", "<answer>4</answer>",
    ...                " <think>a</think><answer>4</answer>"])
    [1.0, 0.0, 0.0]

    ```
    """
    return [float(is_well_formatted(completion_to_text(c))) for c in completions]
