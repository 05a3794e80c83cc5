# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The prompt texts of SophiaVL-R1's training recipe, character for character (typos included: the policy and the
thinking reward model were trained on them), and builders for TRL's conversational `prompt` format.
`QUESTION_TEMPLATE`, `TYPE_TEMPLATE`: the released `verl/utils/dataset.py`. `SYSTEM_PROMPT`: `run_train.sh`'s, as the
trainer received it (OmegaConf parses the two-line shell value as YAML, folding the line break into one space)."""

import re
from collections.abc import Sequence
from typing import Any


SYSTEM_PROMPT = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "The reasoning process MUST BE enclosed within <think> </think> tagsdd. The final answer MUST BE enclosed within "
    "<answer> </answer> tags, for example <think>your_thinking_process</think><answer>your_final_answer</answer>. "
    "If you use formula, please use LaTeX format."
)

QUESTION_TEMPLATE = (
    "{Question}\n"
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. "
    "Provide your detailed reasoning between the <think> </think> tags, and then give your final answer between the "
    "<answer> </answer> tags."
)

# The instruction of each problem type (the types validation accepts by default). A new type needs one here and a
# verifier (`sophiavl_trl.rewards.register_verifier`).
TYPE_TEMPLATE: dict[str, str] = {
    "multiple choice": " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the "
    "<answer> </answer> tags.",
    "numerical": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "OCR": " Please transcribe text from the image/video clearly and provide your text answer within the "
    "<answer> </answer> tags.",
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
    "text": " Please provide the short text answer within the <answer> </answer> tags.",
}


def normalize_problem_type(problem_type: str) -> str:
    r"""The spelling of a problem type that validation, prompts and verifiers compare: case-folded, runs of `_`, `-`
    and whitespace as one space (`"Free_Form"` -> `"free form"`)."""
    return " ".join(re.sub(r"[_\-]+", " ", str(problem_type)).split()).casefold()


def template_type(problem_type: str) -> str:
    r"""The `TYPE_TEMPLATE` key of a loosely written problem type (`"multiple_choice"` -> `"multiple choice"`)."""
    wanted = normalize_problem_type(problem_type)
    if match := next((key for key in TYPE_TEMPLATE if normalize_problem_type(key) == wanted), None):
        return match
    raise ValueError(
        f"No prompt instruction for problem type {problem_type!r}. Known types: {sorted(TYPE_TEMPLATE)}. To add "
        f"one, set `sophiavl_trl.data.prompts.TYPE_TEMPLATE[{problem_type!r}]` to its instruction text."
    )


# Where an image goes in a question (the original's convention); without one, the images go before the text.
IMAGE_PLACEHOLDER = "<image>"


def build_question(problem: str, problem_type: str, options: Sequence[Any] | None = None) -> str:
    r"""
    The user text of one example as SophiaVL-R1's training code builds it: the question, a multiple-choice question's
    options (joined with `"; "`, appended with no separator, as in the original), the reasoning instruction and the
    instruction of `problem_type`.

    Example:
    ```python
    >>> from sophiavl_trl.data import build_question
    >>> build_question("How many cubes? ", "multiple choice", ["A. 3", "B. 5"]).splitlines()[0]
    'How many cubes? A. 3; B. 5'

    ```
    """
    instruction = TYPE_TEMPLATE[template_type(problem_type)]
    if normalize_problem_type(problem_type) == "multiple choice" and options:
        problem += "; ".join(str(option) for option in options)
    # str.format on the template only substitutes the template's own field: braces in the question are kept as is.
    return QUESTION_TEMPLATE.format(Question=problem) + instruction


def build_prompt(
    problem: str,
    problem_type: str,
    options: Sequence[Any] | None = None,
    *,
    num_images: int = 1,
    system_prompt: str | None = SYSTEM_PROMPT,
) -> list[dict[str, Any]]:
    r"""
    The conversational `prompt` of one example for TRL's `GRPOTrainer`: the `system_prompt` (`None` or `""`: none),
    then `build_question`'s text, with one `{"type": "image"}` part per image at its `<image>` marker or before the
    text (text-only examples, `num_images=0`, get a plain string).

    Example:
    ```python
    >>> from sophiavl_trl.data import build_prompt
    >>> prompt = build_prompt("How many cubes?", "numerical")
    >>> [message["role"] for message in prompt], prompt[1]["content"][0]
    (['system', 'user'], {'type': 'image'})

    ```
    """
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}.")
    question = build_question(problem, problem_type, options)
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    if num_images == 0:
        return messages + [{"role": "user", "content": question}]
    num_markers = question.count(IMAGE_PLACEHOLDER)
    if num_markers not in (0, num_images):
        raise ValueError(
            f"The question has {num_markers} {IMAGE_PLACEHOLDER} placeholder(s) but the example has {num_images} "
            "image(s): they must match, or the question must have none."
        )
    pieces = re.split(f"({IMAGE_PLACEHOLDER})", IMAGE_PLACEHOLDER * (num_images - num_markers) + question)
    content = [{"type": "image"} if p == IMAGE_PLACEHOLDER else {"type": "text", "text": p} for p in pieces if p]
    return messages + [{"role": "user", "content": content}]
