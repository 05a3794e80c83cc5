# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Outcome (accuracy) reward: the released SophiaVL-R1 scorer, one verifier per `problem_type` (`numerical`: mathruler;
`multiple choice`: the letters; `OCR`: exp(-WER); `free-form`, `text`: ROUGE), format-gated. docs/rewards.md has the
rules, where they depart from the released code (each one a bug fix) and why, and the cost bounds."""

import logging
import math
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation, localcontext
from functools import cache
from itertools import islice
from typing import Any

from sophiavl_trl.data.prompts import normalize_problem_type
from sophiavl_trl.rewards.format_rewards import _block, completion_to_text, extract_answer, is_well_formatted


logger = logging.getLogger(__name__)

__all__ = ["VERIFIERS", "accuracy_reward", "register_verifier"]

Verifier = Callable[[str, str], float]

MAX_ANSWER_CHARS = 10_000  # longer answers score 0: far beyond 1024 generated tokens, and it bounds every verifier
# sympy runs only on short expressions with one-digit, non-tower exponents of a small product, and no factorials:
# mathruler's guard looks at `^` only, so `9**9**9` or `(9!)!` would compute for hours in uninterruptible C code.
_MAX_SYMPY_CHARS = 100
_MAX_EXPONENT_PRODUCT = 1000
# An exponent may be one digit (`0x..`, `9e9`, `9_9` are Python number literals), a decimal such as `0.5`, or a letter.
_UNSAFE_FOR_SYMPY = re.compile(r"!|(?:ff|rf)\(|\^(?![-+]?(?:(?:\d\.\d+|[1-9]|0(?![xob]))(?![\d._^ej])|[a-z](?![.^])))")
_SYMPY_TIMEOUT_S = 1.0


class _Timeout(BaseException):  # sympy's `except Exception` must not swallow it (mathruler's bare `except:` may: 0)
    pass


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (main thread only, as TRL's math rewards; the guard bounds other threads)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, _raise)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # give back a timer we displaced (pytest-timeout, a caller's alarm)
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3))


@cache
def _mathruler() -> Any:
    from mathruler import grader

    # pylatexenc (mathruler's LaTeX reader) logs a warning for every malformed `\frac`: model output is full of them.
    logging.getLogger("pylatexenc").setLevel(logging.ERROR)
    return grader


def _sympy_safe(expression: str) -> bool:
    expression = expression.replace("**", "^")
    if len(expression) > _MAX_SYMPY_CHARS or _UNSAFE_FOR_SYMPY.search(expression):
        return False
    return math.prod(max(int(d), 1) for d in re.findall(r"\^[-+]?(\d)", expression)) <= _MAX_EXPONENT_PRODUCT


def _numerical(answer: str, truth: str) -> float:
    if not _close_enough(answer, truth):  # mathruler's verdict stands only within the tolerance below
        return 0.0
    grader = _mathruler()
    if _sympy_safe(grader._normalize(answer)) and _sympy_safe(grader._normalize(truth)):
        try:
            with _time_limit(_SYMPY_TIMEOUT_S):
                return float(grader.grade_answer(answer, truth))
        except _Timeout:
            return 0.0
    # Too costly for sympy: keep mathruler's two string comparisons, which grade_answer tries first.
    return float(any(norm(answer) == norm(truth) for norm in (grader.normalize_answer, grader._normalize)))


# mathruler rounds every number within 1e-7 of an integer to it: an absolute tolerance, so `0.0000001`, and `1e-401`
# (0.0 as a float), equal `0`. Plain numbers (mathruler's `%`, `$`, braces and units allowed) are compared as exact
# decimals too: equal only within NUMERICAL_REL_TOL of a non-zero truth, and only an exact 0 equals 0.
NUMERICAL_REL_TOL = Decimal("1e-7")
_NUMBER_NOISE = re.compile(r"\\text|\\[!,]|\^\\circ|\\?[%$]|[{}\s]")
_UNITS = "degree|cm|centimeter|meter|mile|second|minute|hour|day|week|month|year|foot|feet|inch|yard"  # mathruler's
_NUMBER = r"[-+]?(?:\d[\d_,]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:e[-+]?\d+)?"  # one way to match: no backtracking
_PLAIN_NUMBER = re.compile(rf"({_NUMBER})(?:(?:{_UNITS})(?:es)?s?(?:\^\d+)?)?", re.IGNORECASE)
_EXACT = Context(prec=50, Emax=MAX_EMAX, Emin=MIN_EMIN)  # no overflow or underflow, whatever the exponent


def _close_enough(answer: str, truth: str) -> bool:
    matches = [_PLAIN_NUMBER.fullmatch(_NUMBER_NOISE.sub("", text)) for text in (answer, truth)]
    if not all(matches):
        return True  # not two plain numbers: mathruler alone decides
    try:
        value, target = (Decimal(match[1].replace(",", "")) for match in matches)
    except InvalidOperation:  # such as "1__0"
        return True
    with localcontext(_EXACT):  # thread-local
        return value == 0 if target == 0 else abs(value - target) <= NUMERICAL_REL_TOL * abs(target)


def _multiple_choice(answer: str, truth: str) -> float:
    chosen = [option.strip() for option in answer.split(",")]
    correct = [o[1:-1].strip() if o[:1] == "(" and o[-1:] == ")" else o for o in map(str.strip, truth.split(","))]
    return float(all(chosen) and sorted(chosen) == sorted(correct))


MAX_SCORED_TOKENS = 10_000  # OCR and free-form score this many words (ROUGE tokens): a longer ground truth is cut


def _ocr(answer: str, truth: str) -> float:
    import jiwer

    # jiwer splits on " " only: a line break would glue two words into one
    words = (" ".join(text.split(maxsplit=MAX_SCORED_TOKENS)[:MAX_SCORED_TOKENS]) for text in (truth, answer))
    return math.exp(-jiwer.wer(*words))


# rouge-score's tokens (lowercased [a-z0-9] runs), plus one per letter of a non-Latin script (rouge-score deletes them)
_TOKEN_RE = re.compile(r"[a-z0-9]+|[^\W\d_a-z\u00c0-\u024f\u1e00-\u1eff]")


@cache
def _stem(token: str) -> str:
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer().stem(token)  # rouge-score's stemmer, on rouge-score's tokens (more than 3 ASCII letters)


def _rouge_tokens(text: str) -> list[str]:
    tokens = (match[0] for match in islice(_TOKEN_RE.finditer(text.lower()), MAX_SCORED_TOKENS))
    return [_stem(token) if len(token) > 3 and token.isascii() else token for token in tokens]


def _lcs_length(first: list[str], second: list[str]) -> int:
    # Bit-parallel LCS (Hyyro 2004): rouge-score's quadratic table's result in len(first) big-int steps
    masks: dict[str, int] = {}
    for index, token in enumerate(second):
        masks[token] = masks.get(token, 0) | 1 << index
    full = row = (1 << len(second)) - 1
    for token in first:
        matched = row & masks.get(token, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(second) - row.bit_count()


def _free_form(answer: str, truth: str) -> float:
    # rouge-score's rouge1, rouge2 and rougeL F-measures (2 * overlap / (predicted + reference)), averaged.
    predicted, reference = _rouge_tokens(answer), _rouge_tokens(truth)
    scores = [(_lcs_length(predicted, reference), len(predicted), len(reference))]
    for n in (1, 2):
        ours, theirs = (Counter(zip(*(tokens[i:] for i in range(n)))) for tokens in (predicted, reference))
        scores.append((sum((ours & theirs).values()), ours.total(), theirs.total()))
    return sum(2 * overlap / (p + r) if overlap else 0.0 for overlap, p, r in scores) / 3


# Keyed by `normalize_problem_type` spelling; data validation refuses rows of a type without a verifier.
VERIFIERS: dict[str, Verifier] = {
    "numerical": _numerical,
    "multiple choice": _multiple_choice,
    "ocr": _ocr,
    "free form": _free_form,
    "text": _free_form,
}
_warned_types: set[str] = set()


def register_verifier(problem_type: str, fn: Verifier, *, overwrite: bool = False) -> Verifier:
    r"""
    Add (or, with `overwrite=True`, replace) the verifier of a `problem_type`.

    `fn(answer, ground_truth) -> float` gets the graded `<answer>` content and the ground truth (its first `<answer>`
    block if it has one), both stripped, without `$`. Scores are clipped to [0, 1]; NaN and exceptions score 0. It runs
    in the training step: keep it fast. Returns `fn`.

    Example:
    ```python
    >>> from sophiavl_trl.rewards import accuracy_reward, register_verifier

    >>> _ = register_verifier("yes/no", lambda answer, truth: float(answer.lower() == truth.lower()))
    >>> accuracy_reward(["<think>...</think><answer>Yes</answer>"], ["yes"], problem_type=["yes/no"])
    [1.0]

    ```
    """
    key = normalize_problem_type(problem_type) if isinstance(problem_type, str) else ""
    if not key or not callable(fn):
        raise ValueError(
            f"Need a non-empty problem_type and a callable fn(answer, truth), not {problem_type!r}, {fn!r}"
        )
    if key in VERIFIERS and not overwrite:
        raise ValueError(f"problem_type {problem_type!r} already has a verifier (as {key!r}); pass overwrite=True.")
    VERIFIERS[key] = fn
    return fn


def _score(completion: Any, solution: Any, problem_type: Any) -> float:
    text = completion_to_text(completion)
    answer = extract_answer(text) if is_well_formatted(text) else None
    if answer is None or len(answer) > MAX_ANSWER_CHARS:
        return 0.0
    truth = (_block(str(solution)) or (0, str(solution)))[1] if solution is not None else ""
    try:
        key = normalize_problem_type(problem_type) if problem_type else "numerical"
        if key not in VERIFIERS and key not in _warned_types:
            _warned_types.add(key)
            logger.warning("Unknown problem_type %r: scored as 'numerical', as the released code does.", problem_type)
        score = float(VERIFIERS.get(key, _numerical)(answer.replace("$", "").strip(), truth.replace("$", "").strip()))
    except Exception:
        logger.debug("Verifier failed; scoring 0.0", exc_info=True)
        return 0.0
    return min(max(score, 0.0), 1.0) if math.isfinite(score) else 0.0


def accuracy_reward(
    completions: list[list[dict[str, str]]] | list[str],
    solution: list[str],
    problem_type: list[str] | str | None = None,
    **kwargs,
) -> list[float]:
    r"""
    Reward function: the released SophiaVL-R1 outcome score in [0, 1] of each completion (docs/rewards.md).

    A completion failing [`~rewards.format_rewards.is_well_formatted`] scores 0; else its first `<answer>` block after
    `</think>` is scored against `solution` (its first `<answer>` block if any), `$` removed, by the verifier of its
    `problem_type` (per completion, or one for all; missing or unknown: `numerical`, the released fallback, with a
    one-time warning when unknown). Other dataset columns are unused. Never raises; every built-in verifier is bounded.

    Example:
    ```python
    >>> from sophiavl_trl.rewards import accuracy_reward

    >>> completions = ["<think>.</think><answer>1e3</answer>", "<think>.</think><answer>B</answer>",
    ...                "<answer>B</answer>"]
    >>> accuracy_reward(completions, ["1000", "<answer>B</answer>", "B"],
    ...                 ["numerical", "multiple choice", "multiple choice"])
    [1.0, 1.0, 0.0]

    ```
    """
    if problem_type is None or isinstance(problem_type, str):
        problem_type = [problem_type] * len(completions)
    return [_score(c, s, t) for c, s, t in zip(completions, solution, problem_type, strict=True)]
