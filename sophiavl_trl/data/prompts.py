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

# Per-problem-type instruction appended after the question template. Its types are the ones data validation accepts by
# default. Extend it (`TYPE_TEMPLATE["my type"] = " ..."`), and the accuracy reward's verifiers
# (`sophiavl_trl.rewards.register_verifier`), to train on a new problem type.
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
    r"""The one spelling of a problem type that data validation, prompts and the accuracy reward's verifier registry
    compare: case-folded, runs of `_`, `-` and whitespace read as one space (`"Free_Form"` -> `"free form"`)."""
    return " ".join(re.sub(r"[_\-]+", " ", str(problem_type)).split()).casefold()


def template_type(problem_type: str) -> str:
    r"""The `TYPE_TEMPLATE` key of a loosely written problem type (`"multiple_choice"` -> `"multiple choice"`); a
    `ValueError` that lists the known types if it has none."""
    wanted = normalize_problem_type(problem_type)
    if match := next((key for key in TYPE_TEMPLATE if normalize_problem_type(key) == wanted), None):
        return match
    raise ValueError(
        f"No prompt instruction for problem type {problem_type!r}. Known types: {sorted(TYPE_TEMPLATE)}. To add "
        f"one, set `sophiavl_trl.data.prompts.TYPE_TEMPLATE[{problem_type!r}]` to its instruction text."
    )


# Marks where an image goes inside a question (the original's convention). Questions without it get their images
# before the text, which is where the original put its `<image>` prefix.
IMAGE_PLACEHOLDER = "<image>"


def build_question(problem: str, problem_type: str, options: Sequence[Any] | None = None) -> str:
    r"""
    Build the user text of one example: the question, its options, the reasoning instruction and the per-type
    instruction, exactly as SophiaVL-R1's training code does.

    For `"multiple choice"`, the options are joined with `"; "` and appended directly after the problem text (no
    separator is inserted, as in the original: problems usually end with a space or a newline, or hold the options
    already and come with an empty list).

    Args:
        problem (`str`):
            The question text.
        problem_type (`str`):
            A key of `TYPE_TEMPLATE` (any spelling `normalize_problem_type` maps to one).
        options (`Sequence`, *optional*):
            The options of a multiple-choice question, such as `["A. 3", "B. 5"]`. Ignored for other types.

    Example:
    ```python
    >>> from sophiavl_trl.data import build_question
    >>> build_question("How many cubes? ", "multiple choice", ["A. 3", "B. 5"]).splitlines()[0]
    'How many cubes? A. 3; B. 5'

    ```
    """
    instruction = TYPE_TEMPLATE[template_type(problem_type)]
    question = problem
    if normalize_problem_type(problem_type) == "multiple choice" and options:
        question = problem + "; ".join(str(option) for option in options)
    # str.format on the template only substitutes the template's own field: braces in the question are kept as is.
    return QUESTION_TEMPLATE.format(Question=question) + instruction


def build_prompt(
    problem: str,
    problem_type: str,
    options: Sequence[Any] | None = None,
    *,
    num_images: int = 1,
    system_prompt: str | None = SYSTEM_PROMPT,
) -> list[dict[str, Any]]:
    r"""
    Build the conversational `prompt` of one example, in the format TRL's `GRPOTrainer` expects.

    Image examples get a user message whose content is a list of parts: one `{"type": "image"}` placeholder per
    image (TRL fills them from the `images` column) and one text part. The placeholders go where the question has
    `<image>` markers, or else before the text. Text-only examples (`num_images=0`) get a plain string content.

    Args:
        problem, problem_type, options:
            As in `build_question`.
        num_images (`int`, *optional*, defaults to `1`):
            Number of images of the example; `0` for a text-only example.
        system_prompt (`str` or `None`, *optional*, defaults to `SYSTEM_PROMPT`):
            System message; `None` or `""` for none.

    Returns:
        `list[dict[str, Any]]`: the messages.

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
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    if num_images == 0:
        messages.append({"role": "user", "content": question})
        return messages

    content: list[dict[str, Any]] = []
    num_markers = question.count(IMAGE_PLACEHOLDER)
    if num_markers == 0:
        content.extend({"type": "image"} for _ in range(num_images))
        content.append({"type": "text", "text": question})
    elif num_markers == num_images:
        pieces = question.split(IMAGE_PLACEHOLDER)
        for index, piece in enumerate(pieces):
            if piece:
                content.append({"type": "text", "text": piece})
            if index < num_images:
                content.append({"type": "image"})
    else:
        raise ValueError(
            f"The question has {num_markers} {IMAGE_PLACEHOLDER} placeholder(s) but the example has {num_images} "
            "image(s): they must match, or the question must have none."
        )
    messages.append({"role": "user", "content": content})
    return messages
