# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""The thinking reward model's request: the evaluator prompt, the chat messages, and the parsing of its answer.

The published judge (`bunny127/SophiaVL-R1-Thinking-Reward-Model-3B`) was trained on one exact evaluator prompt. Its
model card builds the request as follows, and [`build_judge_messages`] reproduces it byte for byte with the default
template:

- the question gets an `"<image> "` prefix when an image is attached and the question has no `<image>` tag yet;
- the prompt is the card's f-string with the question and the reasoning inserted (its `{{0, 0.1, ..., 1.0}}` renders
  as `{0, 0.1, ..., 1.0}`, and its last two lines keep the card's four-space indentation);
- the messages are a system message `"You are a helpful assistant."` and one user message whose content is the text
  part followed, when there is an image, by an `image_url` part holding a base64 data URL.

The model answers with one score from {0, 0.1, ..., 1.0}; [`parse_score`] reads it (and a few looser forms), and
returns NaN, never 0, when the answer holds no score.
"""

import base64
import io
import math
import os
import re
from typing import Any


__all__ = [
    "DEFAULT_JUDGE_TEMPLATE",
    "RELEASED_CODE_JUDGE_TEMPLATE",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "JUDGE_SYSTEM_PROMPT",
    "SCORE_CHOICES",
    "build_judge_messages",
    "encode_image_data_url",
    "parse_score",
]

JUDGE_SYSTEM_PROMPT = "You are a helpful assistant."

# The evaluator prompt of the published thinking reward model, verbatim from its model card (an f-string there, a
# `str.format` template here: `{question}` and `{reasoning}` are the card's `{prompt_str}` and `{reasoning_str}`, and
# `{{...}}` is the card's own escaped brace pair). The judge was trained on exactly this text: do not reflow it.
DEFAULT_JUDGE_TEMPLATE = """You are an expert reasoning evaluator. I will give you a multimodal question and an answer. Your goal is to judge a reward process and give a score between 0 and 1. You should focus on whether the reasoning process is good rather than whether the final answer is correct.### Evaluation Criteria:\n- **Logical Soundness**: Does each step follow logically from the previous one?\n- **Correct Reasoning**: Are the methods and steps used appropriate and valid? Are the facts and lemmas correctly stated and applied?\n- **Error Identification**: Are there any logical fallacies, unsupported assumptions, or incorrect steps?\n- **Language Consistency**: Is the reasoning process conducted in a single, consistent language without mixing different languages?\n- **Redundancy**: Is the reasoning concise, without unnecessary repetition or extraneous steps?\nProvide a single score from **{{0, 0.1, 0.2, ..., 1.0}}** based on the reasoning quality, where:\n - **0**: Completely flawed reasoning\n- **1**: Perfectly sound reasoning\n- Intermediate values (e.g., 0.3, 0.7) should reflect partial correctness or minor errors.\nBe strict, reward the good process and punish the bad one. You should only output the score without any explanation.
    Question: {question}
    Reasoning process: {reasoning}
    """

# The variant in the released training code (kxfan2002/SophiaVL-R1, verl/workers/reward/custom.py), which adds one
# line asking for `<answer>x</answer>`. Not the default: the model card's prompt is the documented interface of the
# published judge. Pass it as `template=` to reproduce the released training runs' requests exactly.
RELEASED_CODE_JUDGE_TEMPLATE = DEFAULT_JUDGE_TEMPLATE.replace(
    "    Reasoning process: {reasoning}\n",
    "    Reasoning process: {reasoning}\n    Your response format: <answer>your_score</answer>\n",
)

# The scores the judge was trained to emit, as strings (for vLLM's `structured_outputs={"choice": SCORE_CHOICES}`).
SCORE_CHOICES: list[str] = ["0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"]

# Largest image sent to the judge, in pixels (the recipe's `max_pixels` for the policy: 2048 x 2048). Larger images are
# downscaled, keeping their aspect ratio, before they are base64-encoded.
DEFAULT_MAX_IMAGE_PIXELS = 4_194_304

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PIL_MODES_FOR_PNG = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}


def render_judge_prompt(question: str, reasoning: str, template: str | None = None, has_image: bool = False) -> str:
    r"""
    Render the evaluator prompt for one question and reasoning, applying the model card's `<image>` rule.

    Args:
        question (`str`):
            The question (the prompt the policy answered).
        reasoning (`str`):
            The reasoning to evaluate (usually the `<think>` content of the completion).
        template (`str`, *optional*, defaults to `DEFAULT_JUDGE_TEMPLATE`):
            A `str.format` template with `{question}` and `{reasoning}` fields (literal braces doubled).
        has_image (`bool`, *optional*, defaults to `False`):
            Whether an image goes with the request. If so, and the question has no `<image>` tag, `"<image> "` is
            prepended to it, as the model card does.

    Returns:
        `str`: the text part of the judge's user message.

    Example:
    ```python
    >>> from sophiavl_trl.judge.prompt import render_judge_prompt

    >>> render_judge_prompt("What is 2+2?", "2+2=4", template="Q: {question} R: {reasoning}", has_image=True)
    'Q: <image> What is 2+2? R: 2+2=4'

    ```
    """
    if has_image and "<image>" not in question:
        question = f"<image> {question}"
    return (DEFAULT_JUDGE_TEMPLATE if template is None else template).format(question=question, reasoning=reasoning)


def validate_template(template: str) -> None:
    r"""
    Check that a judge template formats with exactly the `{question}` and `{reasoning}` fields.

    Args:
        template (`str`):
            The template to check.

    Raises:
        `ValueError`: if formatting fails (an unknown field, or a literal brace that is not doubled) or a field is
            missing.
    """
    try:
        rendered = template.format(question="\x00Q\x00", reasoning="\x00R\x00")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"Invalid judge template ({exc!r}): it must be a `str.format` template whose only fields are {{question}} "
            "and {{reasoning}}; write literal braces as {{{{ and }}}}."
        ) from exc
    missing = [name for name, mark in (("question", "\x00Q\x00"), ("reasoning", "\x00R\x00")) if mark not in rendered]
    if missing:
        raise ValueError(f"Invalid judge template: it has no {{{missing[0]}}} field.")


def _load_image(image: Any) -> tuple[bytes | None, Any]:
    """Return `(raw_bytes, None)` for encoded inputs, or `(None, pil_image)` for decoded ones."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image), None
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            return f.read(), None
    if isinstance(image, dict):  # a `datasets.Image` feature that was not decoded: {"bytes": ..., "path": ...}
        if image.get("bytes") is not None:
            return bytes(image["bytes"]), None
        if image.get("path") is not None:
            return _load_image(image["path"])
        raise ValueError("Image dict has neither 'bytes' nor 'path'.")
    if hasattr(image, "save") and hasattr(image, "size"):  # a PIL image (duck-typed: PIL is imported lazily)
        return None, image
    raise TypeError(
        f"Unsupported image type {type(image).__name__}: pass a PIL image, a path, bytes, or a data URL string."
    )


def _encode_pil(image: Any, max_pixels: int | None, image_format: str) -> tuple[bytes, str]:
    from PIL import Image

    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        factor = math.sqrt(max_pixels / (width * height))
        size = (max(1, int(width * factor)), max(1, int(height * factor)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    fmt = image_format.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif fmt == "PNG" and image.mode not in _PIL_MODES_FOR_PNG:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    # PNG at zlib level 1: the same pixels as the default level 6, 20 to 40% faster to encode, a slightly larger file.
    image.save(buffer, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {"quality": 95}))
    return buffer.getvalue(), f"image/{fmt.lower()}"


def encode_image_data_url(
    image: Any, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS, image_format: str = "PNG"
) -> str:
    r"""
    Encode an image as a base64 data URL for an OpenAI-style `image_url` content part.

    PNG and JPEG files (paths or bytes) within the pixel limit are sent as they are, like the model card does; anything
    else (PIL images, other formats, images over the limit) is decoded, downscaled to at most `max_pixels` pixels with
    its aspect ratio kept, and encoded as `image_format`. Strings that already are `data:`/`http(s):` URLs pass
    through.

    Args:
        image (`PIL.Image.Image`, `str`, `os.PathLike`, `bytes` or `dict`):
            The image: a PIL image, a file path, encoded bytes, a `datasets` image dict (`{"bytes", "path"}`), or a
            URL.
        max_pixels (`int` or `None`, *optional*, defaults to `4194304`):
            Largest number of pixels sent; `None` disables downscaling.
        image_format (`str`, *optional*, defaults to `"PNG"`):
            Format used when the image has to be (re-)encoded: `"PNG"` (lossless) or `"JPEG"` (smaller).

    Returns:
        `str`: a `data:image/...;base64,...` URL (or the given URL).
    """
    if isinstance(image, str) and image.startswith(("data:", "http://", "https://")):
        return image
    raw, pil_image = _load_image(image)
    if raw is not None:
        mime = "image/png" if raw.startswith(_PNG_MAGIC) else "image/jpeg" if raw.startswith(_JPEG_MAGIC) else None
        from PIL import Image

        pil_image = Image.open(io.BytesIO(raw))
        width, height = pil_image.size  # reads the header only
        if mime is not None and (max_pixels is None or width * height <= max_pixels):
            return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"
    data, mime = _encode_pil(pil_image, max_pixels, image_format)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def build_judge_messages(
    question: str,
    reasoning: str,
    image: Any = None,
    template: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
    image_format: str = "PNG",
) -> list[dict[str, Any]]:
    r"""
    Build the chat messages of one judge request, as the published thinking reward model's card does.

    Args:
        question (`str`):
            The question the policy answered.
        reasoning (`str`):
            The reasoning to evaluate.
        image (`PIL.Image.Image`, `str`, `os.PathLike`, `bytes` or `dict`, *optional*):
            The example's (first) image, if any. See [`encode_image_data_url`].
        template (`str`, *optional*, defaults to `DEFAULT_JUDGE_TEMPLATE`):
            A `str.format` template with `{question}` and `{reasoning}` fields.
        max_pixels (`int` or `None`, *optional*, defaults to `4194304`):
            Images with more pixels are downscaled to this size; `None` disables downscaling.
        image_format (`str`, *optional*, defaults to `"PNG"`):
            Encoding of images that have to be (re-)encoded (`"PNG"` or `"JPEG"`).

    Returns:
        `list[dict]`: the system message and the user message (a text part, then an `image_url` part if there is an
        image).

    Example:
    ```python
    >>> from sophiavl_trl.judge.prompt import build_judge_messages

    >>> messages = build_judge_messages("What is 2+2?", "2+2=4, so the answer is 4.")
    >>> [m["role"] for m in messages], messages[1]["content"][0]["text"].splitlines()[-2]
    (['system', 'user'], '    Reasoning process: 2+2=4, so the answer is 4.')

    ```
    """
    text = render_judge_prompt(question, reasoning, template=template, has_image=image is not None)
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if image is not None:
        url = encode_image_data_url(image, max_pixels=max_pixels, image_format=image_format)
        content.append({"type": "image_url", "image_url": {"url": url}})
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": content}]


# A number: "1", "0.7", ".7", "1.", "+0.5", "-1".
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
# A number, optionally as a fraction ("7/10", "0.7/1", "0.7 out of 1") or a percentage ("70%").
_VALUE = rf"(?P<num>{_NUM})\s*(?:(?:/|\bout\s+of\b)\s*(?P<den>{_NUM})|(?P<pct>%))?"
_VALUE_RE = re.compile(_VALUE, re.IGNORECASE)
_WHOLE_VALUE_RE = re.compile(rf"\s*{_VALUE}\s*", re.IGNORECASE)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_BOXED_RE = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_SCORE_RE = re.compile(rf"\b(?:score|reward|rating)\b\s*(?:is|of|=|:|-)?\s*(?:is\s*)?:?\s*{_VALUE}", re.IGNORECASE)
# Decoration around a bare answer: markdown emphasis, code ticks, quotes, brackets; and final punctuation.
_DECORATION = " \t\r\n*_`'\"()[]{}"
_FINAL_PUNCTUATION = ".,;:!"


def _value(match: re.Match) -> float:
    num = float(match.group("num"))
    if match.group("den") is not None:
        den = float(match.group("den"))
        return num / den if den > 0 else math.nan
    if match.group("pct") is not None:
        return num / 100.0
    return num


def _bare_value(text: str) -> float:
    match = _WHOLE_VALUE_RE.fullmatch(text.strip(_DECORATION).rstrip(_FINAL_PUNCTUATION).strip(_DECORATION))
    return _value(match) if match else math.nan


def parse_score(text: str | None) -> float:
    r"""
    Read the thinking score from the judge's answer.

    Accepted forms, tried in this order: `<answer>x</answer>`, `\boxed{x}`, `Score: x` (also "score is x",
    "reward = x"), the whole answer being a number (markdown emphasis, quotes and a final period ignored), then the
    last, then the first line being a number. A number may be a fraction (`0.7/1`, `7/10`, `7 out of 10`) or a
    percentage (`70%`).
    The result is clamped to [0, 1]. An answer with no score gives NaN, never 0: an unparseable judge answer is
    missing information, not a bad reasoning.

    Args:
        text (`str` or `None`):
            The judge's answer.

    Returns:
        `float`: the score in [0, 1], or `nan`.

    Example:
    ```python
    >>> from sophiavl_trl.judge.prompt import parse_score

    >>> [parse_score(t) for t in ["0.7", "<answer>0.3</answer>", "\\boxed{1}", "Score: 0.8", "70%", "7/10", "1.5"]]
    [0.7, 0.3, 1.0, 0.8, 0.7, 0.7, 1.0]
    >>> parse_score("I cannot judge this.")
    nan

    ```
    """
    if not text:
        return math.nan
    score = math.nan
    for pattern in (_ANSWER_RE, _BOXED_RE):
        inner = pattern.findall(text)
        if inner:
            score = parse_score(inner[-1])
            break
    else:
        matches = list(_SCORE_RE.finditer(text))
        if matches:
            score = _value(matches[-1])
        else:
            score = _bare_value(text)
            if math.isnan(score):
                lines = [line for line in text.strip().splitlines() if line.strip(_DECORATION)]
                if lines:
                    score = _bare_value(lines[-1])
                    if math.isnan(score):
                        score = _bare_value(lines[0])
    if math.isnan(score):
        return math.nan
    return min(1.0, max(0.0, score))
