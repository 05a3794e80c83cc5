# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The thinking reward model's request (the model card's evaluator prompt, byte for byte) and the parsing of its
answer: one score from {0, 0.1, ..., 1.0}, or NaN (never 0) when there is none."""

import base64
import io
import logging
import math
import os
import re
from typing import Any


__all__ = [
    "DEFAULT_JUDGE_TEMPLATE", "DEFAULT_MAX_IMAGE_PIXELS", "RELEASED_CODE_JUDGE_TEMPLATE", "SCORE_CHOICES",
    "build_judge_messages", "encode_image_data_url", "parse_score", "validate_template",
]  # fmt: skip

logger = logging.getLogger(__name__)

JUDGE_SYSTEM_PROMPT = "You are a helpful assistant."

# The model card's evaluator prompt, verbatim (its f-string as a `str.format` template). The judge was trained on
# exactly this text: do not reflow it.
DEFAULT_JUDGE_TEMPLATE = """You are an expert reasoning evaluator. I will give you a multimodal question and an answer. Your goal is to judge a reward process and give a score between 0 and 1. You should focus on whether the reasoning process is good rather than whether the final answer is correct.### Evaluation Criteria:\n- **Logical Soundness**: Does each step follow logically from the previous one?\n- **Correct Reasoning**: Are the methods and steps used appropriate and valid? Are the facts and lemmas correctly stated and applied?\n- **Error Identification**: Are there any logical fallacies, unsupported assumptions, or incorrect steps?\n- **Language Consistency**: Is the reasoning process conducted in a single, consistent language without mixing different languages?\n- **Redundancy**: Is the reasoning concise, without unnecessary repetition or extraneous steps?\nProvide a single score from **{{0, 0.1, 0.2, ..., 1.0}}** based on the reasoning quality, where:\n - **0**: Completely flawed reasoning\n- **1**: Perfectly sound reasoning\n- Intermediate values (e.g., 0.3, 0.7) should reflect partial correctness or minor errors.\nBe strict, reward the good process and punish the bad one. You should only output the score without any explanation.
    Question: {question}
    Reasoning process: {reasoning}
    """

# The released training code's variant (kxfan2002/SophiaVL-R1, verl/workers/reward/custom.py) asks for
# `<answer>x</answer>`; pass it as `template=` to reproduce those runs' requests.
RELEASED_CODE_JUDGE_TEMPLATE = DEFAULT_JUDGE_TEMPLATE.replace(
    "    Reasoning process: {reasoning}\n",
    "    Reasoning process: {reasoning}\n    Your response format: <answer>your_score</answer>\n",
)

# The scores the judge was trained to emit (for vLLM's `structured_outputs={"choice": SCORE_CHOICES}`).
SCORE_CHOICES: list[str] = ["0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"]

# Largest image sent to the judge, in pixels (the policy's `max_pixels`: 2048 x 2048); larger ones are downscaled.
DEFAULT_MAX_IMAGE_PIXELS = 4_194_304


def validate_template(template: str) -> None:
    """Raise `ValueError` unless `template` formats with exactly the `{question}` and `{reasoning}` fields."""
    try:
        rendered = template.format(question="\x00Q\x00", reasoning="\x00R\x00")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"Invalid judge template ({exc!r}): it must be a `str.format` template whose only fields are {{question}} "
            "and {{reasoning}}; write literal braces as {{{{ and }}}}."
        ) from exc
    for name, mark in (("question", "\x00Q\x00"), ("reasoning", "\x00R\x00")):
        if mark not in rendered:
            raise ValueError(f"Invalid judge template: it has no {{{name}}} field.")


def encode_image_data_url(
    image: Any, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS, image_format: str = "PNG"
) -> str:
    """A base64 data URL of `image` (PIL image, path, bytes, `datasets` image dict; `data:`/`http(s):` URLs pass
    through). PNG and JPEG files within `max_pixels` are sent as they are, as the card does; anything else is
    downscaled to at most `max_pixels` (aspect ratio kept; `None`: never) and encoded as `image_format`."""
    from PIL import Image

    if isinstance(image, str) and image.startswith(("data:", "http://", "https://")):
        return image
    if isinstance(image, dict):  # an undecoded `datasets.Image` feature
        image = image.get("bytes") or image.get("path")
        if image is None:
            raise ValueError("Image dict has neither 'bytes' nor 'path'.")
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            image = f.read()
    if isinstance(image, (bytes, bytearray, memoryview)):
        raw = bytes(image)
        image = Image.open(io.BytesIO(raw))  # reads the header only
        small = max_pixels is None or image.width * image.height <= max_pixels
        if small and image.format in ("PNG", "JPEG"):
            return f"data:image/{image.format.lower()};base64,{base64.b64encode(raw).decode('ascii')}"
    if not hasattr(image, "save"):
        raise TypeError(f"Unsupported image type {type(image).__name__}: pass a PIL image, a path, bytes or a URL.")
    if max_pixels is not None and image.width * image.height > max_pixels:
        factor = math.sqrt(max_pixels / (image.width * image.height))
        size = (max(1, int(image.width * factor)), max(1, int(image.height * factor)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    fmt = "JPEG" if image_format.upper() in ("JPEG", "JPG") else "PNG"
    if image.mode not in (("RGB", "L") if fmt == "JPEG" else ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16")):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    # PNG at zlib level 1: the same pixels as the default level 6, 20 to 40% faster to encode.
    image.save(buffer, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {"quality": 95}))
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def build_judge_messages(
    question: str,
    reasoning: str,
    image: Any = None,
    template: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
) -> list[dict[str, Any]]:
    """The chat messages of one judge request, as the card builds them: a system message and a user message with the
    evaluator prompt (the question gets an `"<image> "` prefix when an image is attached), then the image's data URL."""
    if image is not None and "<image>" not in question:
        question = f"<image> {question}"
    text = (template or DEFAULT_JUDGE_TEMPLATE).format(question=question, reasoning=reasoning)
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if image is not None:
        content.append({"type": "image_url", "image_url": {"url": encode_image_data_url(image, max_pixels)}})
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": content}]


# The verdict is the answer's last line (see `parse_score`). Linear time: each pattern is matched anchored, on one line.
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_VALUE_RE = re.compile(rf"(?P<num>{_NUM})(?:\s*(?:/|out\s+of)\s*(?P<den>{_NUM})|\s*(?P<pct>%))?", re.IGNORECASE)
_WRAPPED_RE = re.compile(r"<answer>(.*)</answer>|\\boxed\{([^{}]*)\}", re.IGNORECASE)
_KEYWORD_RE = re.compile(r"\b(?:score|reward|rating|verdict)\b", re.IGNORECASE)
_AFTER_KEYWORD_RE = re.compile(r"[\s:=*]*(?:(?:is|of)\b[\s:=*]*)?(?P<value>.*)", re.IGNORECASE)
_MAX_CHARS = 10_000  # the answer's tail that is parsed (the verdict comes last)
_DECORATION = " \t\r\n*_`'\"()[]{}"  # markdown, code ticks, quotes, brackets around a bare answer


def _value(text: str) -> float:
    """The number that is all of `text` (decoration and end punctuation aside; `7/10` and `70%` too), else NaN."""
    wrapped = _WRAPPED_RE.fullmatch(text.strip(" \t\r\n*_`'\"").rstrip(".,;:!").strip(" \t*_`'\""))
    text = text.strip(_DECORATION).rstrip(".,;:!").strip(_DECORATION)
    if wrapped:  # the whole line is `<answer>x</answer>` or `\boxed{x}`
        text = (wrapped.group(1) if wrapped.group(1) is not None else wrapped.group(2)).strip(_DECORATION)
    match = _VALUE_RE.fullmatch(text)
    if match is None:
        return math.nan
    num = float(match.group("num"))
    if match.group("den") is not None:
        den = float(match.group("den"))
        return num / den if den > 0 else math.nan
    return num / 100.0 if match.group("pct") else num


def _verdict(text: str) -> float:
    lines = [line for line in text.splitlines() if line.strip(_DECORATION)]
    if not lines:
        return math.nan
    line, score = lines[-1], _value(lines[-1])
    keywords = list(_KEYWORD_RE.finditer(line))
    if math.isnan(score) and keywords:  # `... Score: x` ends the line: the value after the line's last keyword
        score = _value(_AFTER_KEYWORD_RE.fullmatch(line, keywords[-1].end()).group("value"))
    return score


def parse_score(text: str | None) -> float:
    r"""
    The judge's verdict: the last non-empty line of its answer, when that line is one score and nothing else: a number
    (the model card's judge answers only that, e.g. `0.7`), `<answer>x</answer>` (the released code's format),
    `\boxed{x}`, or text ending with `Score: x` (also `reward`, `rating`, `verdict`; `is`/`of`, `:` or `=` between).
    `x` may be a fraction (`7/10`) or a percentage (`70%`); markdown, quotes and end punctuation are ignored.

    Nothing before the last line counts, and a line with other numbers after its last keyword is no verdict: a tag, box
    or number the judge quotes from the policy's reasoning cannot set the score. No verdict, or one outside [0, 1],
    gives NaN: never 0 and never clamped (an unparseable answer is missing information, not a bad reasoning). Only
    the last 10,000 characters are read, in linear time. Constrained decoding (`constrained_decoding=True`) makes the
    answer the score alone, which closes the question entirely.
    """
    if not text:
        return math.nan
    # A reasoning judge's thoughts are not its verdict: only what follows its last `</think>` is read.
    score = _verdict(text[-_MAX_CHARS:].rpartition("</think>")[2])
    if not 0.0 <= score <= 1.0:  # NaN included
        if not math.isnan(score):
            logger.warning(
                "Judge answer %r holds the score %g, outside [0, 1]: counted as unparseable.", text[:100], score
            )
        return math.nan
    return score
