# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Outcome (accuracy) rewards: one verifier per `problem_type`, gated by the answer format.

| problem_type | score |
|---|---|
| `numerical` (and unknown or missing types) | 1.0 if math-verify finds the answer equivalent to the ground truth |
| `multiple choice` | 1.0 if the chosen option letter(s) equal the ground truth's |
| `OCR` | exp(-WER), word error rate by jiwer |
| `free-form`, `text` | mean of the ROUGE-1, ROUGE-2 and ROUGE-L F-measures (rouge-score) |

Type names are matched case-insensitively, with `_`, `-` and spaces treated alike (`multiple_choice` is
`multiple choice`). `register_verifier` adds types without editing the package.

Time bound. Rewards run inside the training step, so no completion may stall it. sympy (under math-verify) can take
unbounded time on inputs such as `9^{9^{9}}`, `1000000!` or 15 nested braces, and math-verify's own timeout relies on
`signal.alarm`, which only works in the main thread (TRL's async paths call reward functions from other threads, and
the alarm would also cancel pytest-timeout's). Hence, for `numerical` rows:

1. cheap guards before parsing (linear-time, < 0.1 s on the worst 2,000 characters): an answer scores 0 if it is
   longer than 2,000 characters (or twice the ground truth), nests brackets deeper than 10 (latex2sympy's parse time
   grows steeply with depth: 8 nested braces take ~1 s, 15 take ~20 s), has a numeric exponent above 10,000 (power
   towers included) or a result above 100,000 digits, a double superscript (`a^b^c`, invalid TeX that latex2sympy
   reads as a^(b*c)), or a factorial above 10,000!;
2. math-verify runs in a persistent helper process (a plain `python -c`, one per training process, started on first
   use in ~0.7 s). Inside it an interval timer interrupts a comparison after `math_timeout` seconds (default 1.0); if
   that cannot interrupt it (a long C call), the parent kills the helper after a further 0.5 s and starts a new one.
   Either way the row scores 0.

So a numerical row costs at most `math_timeout + 0.5` s from any thread (plus waiting for other threads' rows), the
one-off first start aside; a replacement helper's start is charged to the next row's budget (that row scores 0 if it
is not ready in time). Measured on a 2-core CPU: a typical row 1-50 ms (symbolic ones up to ~0.3 s); a row stopped by
the timer 1.00 s; a row ended by a kill 1.50-1.54 s. In 7,500 adversarial hypothesis examples (towers, deep
brackets, long digit strings, LaTeX fragments) the slowest row took 1.01 s and no kill was needed.
Other types run in-process with a bounded cost (the answer is capped at 20,000 characters; jiwer and rapidfuzz are
C++): multiple choice < 20 ms, OCR < 50 ms, free-form < 0.1 s at the cap (the first ROUGE call also imports nltk,
~0.5 s). Any exception while scoring a row gives that row 0.0 (logged at debug level).
"""

import atexit
import json
import logging
import math
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from sophiavl_trl.rewards.format_rewards import completion_to_text, extract_answer, is_well_formatted


logger = logging.getLogger(__name__)

__all__ = ["accuracy_reward", "get_accuracy_reward", "get_verifier", "register_verifier"]

Verifier = Callable[[str, str], float]

# Defaults of `get_accuracy_reward`, documented there.
_DEFAULT_MATH_TIMEOUT_S = 1.0
_DEFAULT_MAX_ANSWER_CHARS = 20_000

# Guards applied before math-verify parses anything (see `_math_guard`).
_MAX_MATH_CHARS = 2_000
_MAX_NESTING = 10
_MAX_EXPONENT = 10_000
_MAX_RESULT_DIGITS = 100_000
_MAX_FACTORIAL = 10_000

# Extra time the parent grants the helper process beyond `math_timeout` before killing it: the helper's own timer
# normally answers first, which avoids a restart.
_KILL_GRACE_S = 0.5
# The first start of the helper (imports sympy, ~1 s) may take this long before we give up and run in-process.
_WORKER_START_TIMEOUT_S = 60.0
# Seconds math-verify's signal timeouts get when math-verify runs in-process in the main thread (math_timeout=None).
_IN_PROCESS_SIGNAL_TIMEOUT_S = 2


# ---------------------------------------------------------------------------------------------------------------------
# Text normalisation
# ---------------------------------------------------------------------------------------------------------------------


def _normalize_text(text: str) -> str:
    """Case-folded, with whitespace runs collapsed to one space and stripped."""
    return " ".join(text.casefold().split())


# `\(`, `\)`, `\[`, `\]` math delimiters, but not the `\\[2pt]` of a LaTeX line break.
_PAREN_DELIMITER_RE = re.compile(r"(?<!\\)\\[()\[\]]")


def _strip_math_delimiters(text: str) -> str:
    """Remove `<answer>` tags, `$` (and `\\$`), `\\(`, `\\)`, `\\[`, `\\]` delimiters and surrounding whitespace."""
    text = text.replace("<answer>", "").replace("</answer>", "")
    text = text.replace("\\$", "").replace("$", "")
    return _PAREN_DELIMITER_RE.sub("", text).strip()


def _clean_ground_truth(solution: Any) -> str:
    """Ground truth text: the content of its `<answer>` block if it has one, with math delimiters stripped."""
    text = "" if solution is None else str(solution)
    inner = extract_answer(text)
    return _strip_math_delimiters(inner if inner is not None else text)


def _normalize_type(problem_type: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", problem_type).split()).casefold()


# ---------------------------------------------------------------------------------------------------------------------
# Numerical: math-verify, guarded and time-bounded
# ---------------------------------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_SIGNED_NUMBER_RE = re.compile(r"[-+]?\s*\d+(?:\.\d+)?")
_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
_SIZING_RE = re.compile(r"\\(?:left|right|[bB]igg?[lr]?)(?![A-Za-z])")
_FACTORIAL_RE = re.compile(r"(\d+)\s*!")
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(")]}")


def _matching_close(text: str, start: int) -> int:
    """Index of the bracket closing the one at `start` (same kind, nesting-aware), or -1."""
    opener, closer = text[start], _OPENERS[text[start]]
    depth = 0
    for i in range(start, len(text)):
        if text[i] == opener:
            depth += 1
        elif text[i] == closer:
            depth -= 1
            if depth == 0:
                return i
    return -1


def _operand_after(text: str, i: int) -> tuple[str, int]:
    """The exponent operand starting at `i` (a bracket group's content, a number, a command or a char), and its end."""
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        return "", i
    if text[i] in _OPENERS:
        end = _matching_close(text, i)
        end = len(text) - 1 if end < 0 else end
        return text[i + 1 : end], end + 1
    number = _SIGNED_NUMBER_RE.match(text, i)
    if number:
        return number.group(), number.end()
    command = _COMMAND_RE.match(text, i)
    if command:
        return command.group(), command.end()
    return text[i], i + 1


def _operand_before(text: str, i: int) -> str:
    """The base operand ending just before index `i` (a bracket group's content, a number, or one char)."""
    j = i - 1
    while j >= 0 and text[j].isspace():
        j -= 1
    if j < 0:
        return ""
    if text[j] in _CLOSERS:
        opener = {")": "(", "]": "[", "}": "{"}[text[j]]
        depth = 0
        for k in range(j, -1, -1):
            if text[k] == text[j]:
                depth += 1
            elif text[k] == opener:
                depth -= 1
                if depth == 0:
                    return text[k + 1 : j]
        return text[:j]
    k = j
    while k >= 0 and (text[k].isdigit() or text[k] == "."):
        k -= 1
    return text[k + 1 : j + 1] if k < j else text[j]


def _log10_magnitude(expr: str, depth: int = 0) -> float | None:
    """log10 of |value| of a purely numeric power expression (`12`, `-3.5`, `9^{9^9}`, `(2^{10})^3`), else None.

    Powers are taken right-associatively (the largest reading of `a^b^c`); huge values come back as `inf`.
    """
    expr = expr.lstrip("+- \t\n").rstrip()
    if not expr or depth > 8:
        return None
    if _NUMBER_RE.fullmatch(expr):
        value = float(expr)
        return math.log10(value) if value > 0 else 0.0
    # Split `base ^ rest` at the first top-level `^`.
    if expr[0] in _OPENERS:
        end = _matching_close(expr, 0)
        if end < 0:
            return None
        base, rest = expr[1:end], expr[end + 1 :].strip()
    else:
        number = _NUMBER_RE.match(expr)
        if number is None:
            return None
        base, rest = number.group(), expr[number.end() :].strip()
    base_log = _log10_magnitude(base, depth + 1)
    if base_log is None:
        return None
    if not rest:
        return base_log
    if rest[0] != "^":
        return None
    exponent_log = _log10_magnitude(rest[1:], depth + 1)
    if exponent_log is None:
        return None
    exponent = math.inf if exponent_log > 300 else 10.0**exponent_log
    if base_log == 0 or exponent == 0:
        return 0.0
    return math.inf if math.isinf(exponent) else abs(base_log) * exponent


def _math_guard(text: str, max_chars: int = _MAX_MATH_CHARS) -> str | None:
    """Why `text` is too costly to hand to sympy, or None when it may be parsed. Linear in `len(text)`."""
    if len(text) > max_chars:
        return f"longer than {max_chars} characters"
    depth = max_depth = 0
    for char in text:
        if char in _OPENERS:
            depth += 1
            max_depth = max(max_depth, depth)
        elif char in _CLOSERS:
            depth = max(depth - 1, 0)
    if max_depth > _MAX_NESTING:
        return f"brackets nested {max_depth} deep"
    # Sizing commands do not change a group's value: `\\left(x\\right)^2` is `(x)^2`.
    text = _SIZING_RE.sub("", text).replace("**", "^")
    exponent_limit = math.log10(_MAX_EXPONENT)
    for i, char in enumerate(text):
        if char != "^":
            continue
        operand, end = _operand_after(text, i + 1)
        if text[end:].lstrip()[:1] == "^":
            # `a^b^c`: a double superscript, which TeX rejects; latex2sympy reads it as a^(b*c), which explodes.
            return "double superscript"
        exponent_log = _log10_magnitude(operand)
        if exponent_log is None:
            # Symbolic exponent (`x + 10^{9}`): bound its numeric literals, powers inside get their own check.
            if any(len(n) > 20 or float(n) > _MAX_EXPONENT for n in _NUMBER_RE.findall(operand)):
                return f"exponent {operand[:40]!r} too large"
            continue
        if exponent_log > exponent_limit:
            return f"exponent {operand[:40]!r} too large"
        base_log = _log10_magnitude(_operand_before(text, i))
        if base_log is not None and abs(base_log) * 10.0**exponent_log > _MAX_RESULT_DIGITS:
            return "power with too many digits"
    for match in _FACTORIAL_RE.finditer(text):
        if len(match.group(1)) > 6 or int(match.group(1)) > _MAX_FACTORIAL:
            return f"factorial of {match.group(1)[:20]}"
    return None


_math_verify_lock = threading.Lock()


@lru_cache(maxsize=1)
def _math_verify() -> tuple[Callable, Callable]:
    """Import math-verify once; silence its one-off warning about disabled timeouts (we bound time ourselves)."""
    with _math_verify_lock:
        from math_verify import parse, verify

        def _drop_disabled_timeout_warning(record: logging.LogRecord) -> bool:
            return not str(record.msg).startswith("Timeout is disabled")

        for name in ("math_verify.parser", "math_verify.grader"):
            logging.getLogger(name).addFilter(_drop_disabled_timeout_warning)
        return parse, verify


def _math_equal(gold: str, prediction: str, signal_timeout: int | None) -> bool:
    """math-verify equivalence of two delimiter-free expressions, each wrapped as `$...$`.

    Wrapping makes math-verify read the whole answer as one LaTeX expression; unwrapped, its plain-text extractor
    takes the first number it sees (`9^{9^9}` would read as 9).
    """
    parse, verify = _math_verify()
    gold_parsed = parse(f"${gold}$", parsing_timeout=signal_timeout)
    if not gold_parsed:
        return False
    prediction_parsed = parse(f"${prediction}$", parsing_timeout=signal_timeout)
    if not prediction_parsed:
        return False
    return bool(verify(gold_parsed, prediction_parsed, timeout_seconds=signal_timeout))


class _SoftTimeout(BaseException):
    # BaseException so that the `except Exception` blocks inside math-verify and sympy do not swallow it.
    pass


def _raise_soft_timeout(signum: int, frame: Any) -> None:
    raise _SoftTimeout


def _math_worker_main() -> None:
    """Entry point of the helper process: one JSON request per stdin line, one JSON reply per line on the real stdout.

    Request `{"id", "gold", "prediction", "timeout"}`, reply `{"id", "score", "status"}`. The process runs in its own
    main thread, so an interval timer can interrupt a comparison; it exits when stdin closes.
    """
    import signal
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    # Replies go to a private copy of stdout; anything a library prints lands on stderr instead.
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    _math_equal("1", "1", signal_timeout=None)  # import and warm up sympy/antlr before declaring ready
    reply.write('{"ready": true}\n')
    signal.signal(signal.SIGALRM, _raise_soft_timeout)
    for line in sys.stdin:
        score, status, request_id = 0.0, "ok", None
        try:
            try:
                request = json.loads(line)
                request_id = request.get("id")
                signal.setitimer(signal.ITIMER_REAL, float(request["timeout"]))
                score = 1.0 if _math_equal(request["gold"], request["prediction"], signal_timeout=None) else 0.0
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _SoftTimeout:
            score, status = 0.0, "timeout"
        except Exception as exc:
            score, status = 0.0, f"error: {type(exc).__name__}"
        reply.write(json.dumps({"id": request_id, "score": score, "status": status}) + "\n")


class _MathWorker:
    """Parent-side handle of the math-verify helper process (one per process, shared by threads)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._selector: selectors.BaseSelector | None = None
        self._buffer = b""
        self._ready = False
        self._ever_ready = False
        self._next_id = 0
        self._disabled: str | None = None if os.name == "posix" and sys.executable else "not a POSIX system"

    def _command(self) -> list[str]:
        # A plain interpreter (not multiprocessing, which would re-import the training script's __main__). The package
        # folder is appended to sys.path so that an uninstalled checkout works, without shadowing anything installed.
        package_parent = str(Path(__file__).resolve().parents[2])
        code = (
            f"import sys; sys.path.append({package_parent!r}); "
            "from sophiavl_trl.rewards.accuracy_rewards import _math_worker_main; _math_worker_main()"
        )
        return [sys.executable, "-c", code]

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(
            self._command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, close_fds=True
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._proc.stdout, selectors.EVENT_READ)
        self._buffer = b""
        self._ready = False

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if proc is None:
            return
        try:
            proc.kill()
            proc.wait(timeout=5)
        except Exception:  # already gone, or not reaped in time: nothing more to do
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except Exception:
                pass

    def close(self) -> None:
        """Stop the helper (registered with atexit)."""
        with self._lock:
            self._kill()

    def _read_message(self, deadline: float) -> dict | None:
        """Next JSON line from the helper, or None on deadline or end of file."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(timeout=remaining):
                return None
            chunk = os.read(self._proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            return {}

    def _wait_ready(self, deadline: float) -> bool:
        while not self._ready:
            message = self._read_message(deadline)
            if message is None:
                return False
            self._ready = bool(message.get("ready"))
        self._ever_ready = True
        return True

    def compare(self, gold: str, prediction: str, timeout: float) -> float | None:
        """1.0 or 0.0 within `timeout + _KILL_GRACE_S` seconds; None if the helper cannot start (caller falls back).

        The only exception to the bound is the very first start of the helper (imports, about 1 s). A replacement
        helper's start is charged to the row's budget: if it is not ready in time, the row scores 0.0.
        """
        start = time.monotonic()
        with self._lock:
            if self._disabled is not None:
                return None
            try:
                if self._proc is None or self._proc.poll() is not None:
                    self._kill()
                    self._spawn()
                if not self._ready:
                    first_start = not self._ever_ready
                    if not self._wait_ready(
                        start + (_WORKER_START_TIMEOUT_S if first_start else timeout + _KILL_GRACE_S)
                    ):
                        if first_start or self._proc.poll() is not None:
                            raise RuntimeError("the math-verify helper process did not start")
                        return 0.0  # the replacement is still starting: give up on this row, keep the process
                    if first_start:
                        start = time.monotonic()
                deadline = start + timeout + _KILL_GRACE_S
                # The helper's own timer must fire before our deadline, so that only a real stall costs a restart.
                soft_timeout = min(timeout, deadline - _KILL_GRACE_S - time.monotonic())
                if soft_timeout < 0.05:
                    return 0.0
                self._next_id += 1
                request_id = self._next_id
                request = {"id": request_id, "gold": gold, "prediction": prediction, "timeout": soft_timeout}
                self._proc.stdin.write((json.dumps(request) + "\n").encode())
                while True:
                    message = self._read_message(deadline)
                    if message is None:
                        logger.debug("math-verify helper overran %.2fs (or died); restarting it", soft_timeout)
                        self._kill()
                        self._spawn()
                        return 0.0
                    if message.get("id") == request_id:
                        return float(message.get("score", 0.0))
            except Exception as exc:
                self._kill()
                if not self._ever_ready:
                    self._disabled = f"{type(exc).__name__}: {exc}"
                    logger.warning(
                        "Could not start the math-verify helper process (%s); numerical answers are verified "
                        "in-process, bounded only by the input guards outside the main thread.",
                        self._disabled,
                    )
                    return None
                logger.debug("math-verify helper failed; restarting it", exc_info=True)
                return 0.0


_MATH_WORKER = _MathWorker()
atexit.register(_MATH_WORKER.close)
if hasattr(os, "register_at_fork"):
    # A forked child (e.g. a DataLoader worker) must not share the parent's helper or a lock held at fork time.
    os.register_at_fork(after_in_child=_MATH_WORKER._reset)


class _MathVerifier:
    """Verifier for `numerical`: math-verify equivalence (1/2 = 0.5 = \\frac{1}{2}), bounded in time."""

    def __init__(self, timeout: float | None = _DEFAULT_MATH_TIMEOUT_S):
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}(timeout={self.timeout})"

    def __call__(self, prediction: str, ground_truth: str) -> float:
        prediction, gold = _strip_math_delimiters(prediction), _strip_math_delimiters(ground_truth)
        if not prediction or not gold:
            return 0.0
        if "".join(prediction.split()) == "".join(gold.split()):
            return 1.0  # identical up to whitespace: no need for sympy
        for text in (prediction, gold):
            reason = _math_guard(text, max_chars=max(_MAX_MATH_CHARS, 2 * len(gold)))
            if reason is not None:
                logger.debug("numerical answer rejected before parsing: %s", reason)
                return 0.0
        if self.timeout is not None:
            score = _MATH_WORKER.compare(gold, prediction, self.timeout)
            if score is not None:
                return score
        in_main_thread = threading.current_thread() is threading.main_thread()
        signal_timeout = _IN_PROCESS_SIGNAL_TIMEOUT_S if in_main_thread else None
        return 1.0 if _math_equal(gold, prediction, signal_timeout) else 0.0


# ---------------------------------------------------------------------------------------------------------------------
# Multiple choice
# ---------------------------------------------------------------------------------------------------------------------

_LATEX_WRAPPER_RE = re.compile(r"\\(?:text|textbf|mathrm|boxed)\{([^{}]*)\}")
# The whole answer is a list of option letters: "B", "(B)", "B.", "A, C", "(A) and (C)", "A/C".
_LETTER_LIST_RE = re.compile(r"[\W_]*([A-Z](?:[\W_]+(?:and[\W_]+)?[A-Z])*)[\W_]*")
# The whole answer is a run of distinct letters: "AC", "BD".
_LETTER_RUN_RE = re.compile(r"[\W_]*([A-Z]{2,10})[\W_]*")
# The answer starts with an option label: "B) text", "(B) text", "B. text", "B: text".
_LEADING_OPTION_RE = re.compile(r"\s*(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z])[).:\]])(?:\s|$)")
# A phrase names the options: "the answer is B", "Answer: (A) and (C)", "option C".
_PHRASE_RE = re.compile(
    r"(?i:answer|option|choice)s?\s*(?:(?i:is|are)\s*)?[:=\-]?\s*"
    r"(\(?[A-Z]\)?(?:\s*(?:,|;|/|&|(?i:and))\s*\(?[A-Z]\)?)*)(?![A-Za-z])"
)
_PARENTHESISED_RE = re.compile(r"\(([A-Z])\)")
# Standalone capitals, except the pronoun "I" and the article "A" (followed by a lower-case word other than and/or).
_STANDALONE_LETTER_RE = re.compile(r"(?<![A-Za-z])(?!I(?![A-Za-z]))(?!A\s+(?!and\b|or\b)[a-z])([A-Z])(?![A-Za-z])")


def _choice_letters(text: str) -> frozenset[str] | None:
    """The option letters an answer names, or None when it names none."""
    text = _LATEX_WRAPPER_RE.sub(r"\1", _strip_math_delimiters(text)).replace("*", "").strip()
    if not text:
        return None
    if len(text) <= 3 and re.fullmatch(r"[\W_]*[A-Za-z][\W_]*", text):
        return frozenset(re.findall(r"[A-Za-z]", text)[0].upper())  # a lone letter, any case: "b", "(c)"
    match = _LETTER_LIST_RE.fullmatch(text)
    if match:
        return frozenset(re.findall(r"[A-Z]", match.group(1)))
    match = _LETTER_RUN_RE.fullmatch(text)
    if match and len(set(match.group(1))) == len(match.group(1)):
        return frozenset(match.group(1))
    match = _LEADING_OPTION_RE.match(text)
    if match:
        return frozenset(next(g for g in match.groups() if g))
    phrases = list(_PHRASE_RE.finditer(text))
    if phrases:
        return frozenset(re.findall(r"[A-Z]", phrases[-1].group(1)))
    parenthesised = _PARENTHESISED_RE.findall(text)
    if parenthesised:
        return frozenset(parenthesised)
    standalone = _STANDALONE_LETTER_RE.findall(text)
    return frozenset(standalone) if standalone else None


def _multiple_choice_verifier(prediction: str, ground_truth: str) -> float:
    """1.0 if the answer names the same set of option letters as the ground truth.

    A ground truth that names no letter (the option's text) is compared as normalised text instead.
    """
    gold_letters = _choice_letters(ground_truth)
    if gold_letters is None:
        gold = _normalize_text(re.sub(r"[^\w\s]", "", ground_truth))
        return float(bool(gold) and gold == _normalize_text(re.sub(r"[^\w\s]", "", prediction)))
    return float(_choice_letters(prediction) == gold_letters)


# ---------------------------------------------------------------------------------------------------------------------
# OCR and free-form text
# ---------------------------------------------------------------------------------------------------------------------


def _ocr_verifier(prediction: str, ground_truth: str) -> float:
    """exp(-WER) by jiwer, after case folding and whitespace normalisation (punctuation is kept: OCR must read it).

    An empty ground truth scores 1.0 against an empty answer and 0.0 otherwise. An empty answer against a non-empty
    ground truth has WER 1 (every word deleted), hence exp(-1).
    """
    import jiwer

    reference, hypothesis = _normalize_text(ground_truth), _normalize_text(prediction)
    if not reference:
        return 1.0 if not hypothesis else 0.0
    return math.exp(-jiwer.wer(reference, hypothesis))


class _SplitTokenizer:
    # rouge-score accepts any object with `tokenize`; the text it gets here is already tokenized and space-joined.
    def tokenize(self, text: str) -> list[str]:
        return text.split()


@lru_cache(maxsize=1)
def _rouge_tools() -> tuple[Any, Any, Callable]:
    from rapidfuzz.distance import LCSseq
    from rouge_score import rouge_scorer, tokenizers

    return (
        tokenizers.DefaultTokenizer(use_stemmer=True),
        rouge_scorer.RougeScorer(["rouge1", "rouge2"], tokenizer=_SplitTokenizer()),
        LCSseq.similarity,
    )


def _rouge_verifier(prediction: str, ground_truth: str) -> float:
    """Mean of the ROUGE-1, ROUGE-2 and ROUGE-L F-measures (rouge-score's tokenizer, Porter stemming).

    ROUGE-1/2 come from rouge-score. ROUGE-L uses rouge-score's definition (LCS precision and recall, their F-measure)
    with the LCS length computed by rapidfuzz (C++), because rouge-score's pure-Python LCS table takes seconds on long
    answers (4 s for 3,000 x 3,000 tokens, against 1 ms). An answer whose tokens equal the reference's scores 1.0, even
    a one-word answer, which has no bigram and so a ROUGE-2 of 0. The tokenizer keeps only `[a-z0-9]` words, so text in
    other scripts scores 0 unless identical (after case folding and whitespace normalisation).
    """
    from rouge_score.scoring import fmeasure

    if _normalize_text(prediction) == _normalize_text(ground_truth):
        return 1.0
    tokenizer, ngram_scorer, lcs_length = _rouge_tools()
    reference_tokens, prediction_tokens = tokenizer.tokenize(ground_truth), tokenizer.tokenize(prediction)
    if not reference_tokens or not prediction_tokens:
        return 0.0
    if reference_tokens == prediction_tokens:
        return 1.0
    scores = ngram_scorer.score(" ".join(reference_tokens), " ".join(prediction_tokens))
    lcs = lcs_length(reference_tokens, prediction_tokens)
    rouge_l = fmeasure(lcs / len(prediction_tokens), lcs / len(reference_tokens))
    return (scores["rouge1"].fmeasure + scores["rouge2"].fmeasure + rouge_l) / 3


# ---------------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------------

_BUILTIN_NUMERICAL = _MathVerifier()
_VERIFIERS: dict[str, Verifier] = {
    "numerical": _BUILTIN_NUMERICAL,
    "multiple choice": _multiple_choice_verifier,
    "ocr": _ocr_verifier,
    "free form": _rouge_verifier,
    "text": _rouge_verifier,
}
_registry_lock = threading.Lock()


def normalize_problem_type(problem_type: str) -> str:
    """The registry key of `problem_type`: case-insensitive, with `_`, `-` and spaces alike (`"free-form"` ->
    `"free form"`)."""
    return _normalize_type(problem_type)


def registered_problem_types() -> list[str]:
    """The problem types that have a verifier (normalized keys, see `normalize_problem_type`)."""
    with _registry_lock:
        return sorted(_VERIFIERS)


def register_verifier(problem_type: str, fn: Verifier, *, overwrite: bool = False) -> Verifier:
    r"""
    Register the verifier used by the accuracy reward for a `problem_type`.

    Args:
        problem_type (`str`):
            Value of the data set's `problem_type` column. Matched case-insensitively, with `_`, `-` and spaces treated
            alike.
        fn (`Callable[[str, str], float]`):
            Called as `fn(prediction, ground_truth)`: the text inside the completion's `<answer>` block and the ground
            truth, both stripped of `<answer>` tags, `$`, `\(`, `\)`, `\[`, `\]` and surrounding whitespace. Returns
            a score in [0, 1] (values outside are clipped, NaN and exceptions score 0). It runs in the training
            process, so it should be fast and bounded. To reach processes that TRL spawns (async GRPO), use a
            module-level function and pass it to `get_accuracy_reward(verifiers=...)`.
        overwrite (`bool`, *optional*, defaults to `False`):
            Replace an existing verifier (built-in ones included) instead of raising.

    Returns:
        `Callable[[str, str], float]`: `fn`, unchanged.

    Example:
    ```python
    >>> from sophiavl_trl.rewards import accuracy_reward, register_verifier

    >>> def yes_no(prediction, ground_truth):
    ...     return float(prediction.strip().lower() == ground_truth.strip().lower())
    >>> _ = register_verifier("yes/no", yes_no)
    >>> accuracy_reward(["<think>...</think><answer>Yes</answer>"], ["yes"], problem_type=["yes/no"])
    [1.0]

    ```
    """
    if not isinstance(problem_type, str) or not _normalize_type(problem_type):
        raise ValueError(f"problem_type must be a non-empty string, got {problem_type!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(prediction, ground_truth) -> float, got {fn!r}")
    key = _normalize_type(problem_type)
    with _registry_lock:
        if key in _VERIFIERS and not overwrite:
            raise ValueError(
                f"A verifier is already registered for problem_type {problem_type!r} (as {key!r}); pass "
                f"overwrite=True to replace it. Registered types: {sorted(_VERIFIERS)}"
            )
        _VERIFIERS[key] = fn
    return fn


def get_verifier(problem_type: str) -> Verifier:
    r"""
    The verifier registered for a `problem_type`.

    Args:
        problem_type (`str`):
            A registered type, matched case-insensitively with `_`, `-` and spaces treated alike.

    Returns:
        `Callable[[str, str], float]`: the verifier, called as `fn(prediction, ground_truth)`.

    Raises:
        `ValueError`: if no verifier is registered for `problem_type` (the message lists the registered types).

    Example:
    ```python
    >>> from sophiavl_trl.rewards import get_verifier

    >>> get_verifier("Multiple_Choice")("The answer is (B).", "B")
    1.0
    >>> round(get_verifier("OCR")("the cat sat down", "the cat sat up"), 4)  # 1 substitution in 4 words: exp(-0.25)
    0.7788

    ```
    """
    key = _normalize_type(problem_type) if isinstance(problem_type, str) else None
    verifier = _VERIFIERS.get(key) if key else None
    if verifier is None:
        raise ValueError(f"No verifier for problem_type {problem_type!r}. Registered types: {sorted(_VERIFIERS)}")
    return verifier


_warned_types: set[str] = set()


def _warn_unknown_type_once(problem_type: str) -> None:
    key = _normalize_type(problem_type)
    with _registry_lock:
        if key in _warned_types:
            return
        _warned_types.add(key)
    logger.warning(
        "Unknown problem_type %r: scoring it as 'numerical'. Registered types: %s (register_verifier adds one).",
        problem_type,
        sorted(_VERIFIERS),
    )


# ---------------------------------------------------------------------------------------------------------------------
# The reward function
# ---------------------------------------------------------------------------------------------------------------------


def _as_column(value: Any, n: int, name: str) -> Sequence:
    if value is None or isinstance(value, str):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f"{name} has {len(value)} entries but there are {n} completions")
    return value


class _AccuracyReward:
    # Callable class rather than a closure so the reward stays picklable (TRL's async GRPO spawns a process and
    # pickles the reward functions); `__name__` is the metric key TRL logs under.
    __name__ = "accuracy_reward"

    def __init__(
        self,
        format_gate: bool = True,
        math_timeout: float | None = _DEFAULT_MATH_TIMEOUT_S,
        max_answer_chars: int = _DEFAULT_MAX_ANSWER_CHARS,
        verifiers: dict[str, Verifier] | None = None,
    ):
        self.format_gate = format_gate
        self.math_timeout = math_timeout
        self.max_answer_chars = max_answer_chars
        self.verifiers = {_normalize_type(k): v for k, v in (verifiers or {}).items()}
        self._numerical = _MathVerifier(math_timeout)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(format_gate={self.format_gate}, math_timeout={self.math_timeout}, "
            f"max_answer_chars={self.max_answer_chars}, verifiers={sorted(self.verifiers)})"
        )

    def _verifier_for(self, problem_type: Any) -> Verifier:
        key = _normalize_type(problem_type) if isinstance(problem_type, str) else ""
        if key in self.verifiers:
            return self.verifiers[key]
        verifier = _VERIFIERS.get(key) if key else None
        if verifier is None:
            if key:
                _warn_unknown_type_once(str(problem_type))
            verifier = _BUILTIN_NUMERICAL
        # The built-in numerical verifier runs with this instance's time bound.
        return self._numerical if verifier is _BUILTIN_NUMERICAL else verifier

    def score_one(self, completion: Any, solution: Any, problem_type: Any = None) -> float:
        """Score of one completion, in [0, 1]. Never raises."""
        try:
            text = completion_to_text(completion)
            if self.format_gate and not is_well_formatted(text):
                return 0.0
            answer = extract_answer(text)
            if answer is None:
                # Only reachable without the format gate: take what follows the reasoning as the answer.
                answer = text.rpartition("</think>")[2].strip()
            if len(answer) > self.max_answer_chars:
                return 0.0
            verifier = self._verifier_for(problem_type)
            score = float(verifier(_strip_math_delimiters(answer), _clean_ground_truth(solution)))
            return min(max(score, 0.0), 1.0) if math.isfinite(score) else 0.0
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # math-verify's TimeoutException derives from BaseException
            logger.debug("accuracy reward failed on a completion; scoring it 0.0", exc_info=True)
            return 0.0

    def __call__(
        self,
        completions: list[list[dict[str, str]]] | list[str],
        solution: list[str],
        problem_type: list[str] | str | None = None,
        **kwargs,
    ) -> list[float]:
        completions = list(completions)
        solutions = _as_column(solution, len(completions), "solution")
        problem_types = _as_column(problem_type, len(completions), "problem_type")
        return [
            self.score_one(completion, sol, ptype)
            for completion, sol, ptype in zip(completions, solutions, problem_types, strict=True)
        ]


def get_accuracy_reward(
    format_gate: bool = True,
    math_timeout: float | None = _DEFAULT_MATH_TIMEOUT_S,
    max_answer_chars: int = _DEFAULT_MAX_ANSWER_CHARS,
    verifiers: dict[str, Verifier] | None = None,
) -> Callable:
    r"""
    Build an accuracy reward function with non-default settings (see [`accuracy_reward`] for the scoring rules).

    Args:
        format_gate (`bool`, *optional*, defaults to `True`):
            Score 0 for completions that [`format_reward`] rejects. When `False`, the answer is the last `<answer>`
            block if there is one, otherwise the text after the last `</think>` (or the whole text).
        math_timeout (`float` or `None`, *optional*, defaults to `1.0`):
            Seconds one numerical comparison may take; it is run in a helper process that is killed
            `0.5` s later if it has not answered, so a row never costs more than `math_timeout + 0.5` s, from any
            thread. `None` runs math-verify in-process: with math-verify's signal timeouts (2 s) in the main thread,
            and bounded only by the input guards elsewhere.
        max_answer_chars (`int`, *optional*, defaults to `20000`):
            Answers longer than this score 0 whatever their type (numerical answers are limited to 2,000 characters,
            or twice the ground truth's length, before parsing).
        verifiers (`dict[str, Callable[[str, str], float]]`, *optional*):
            Verifiers for this reward only, looked up before the registry (see [`register_verifier`]). Unlike the
            registry they travel with the reward function when it is pickled.

    Returns:
        `Callable`: a picklable reward function named `accuracy_reward`.

    Example:
    ```python
    >>> from sophiavl_trl.rewards.accuracy_rewards import get_accuracy_reward

    >>> lenient = get_accuracy_reward(format_gate=False)
    >>> lenient(["The answer is B", "<think>x</think><answer>A</answer>"], ["B", "B"], problem_type="multiple choice")
    [1.0, 0.0]

    ```
    """
    if not isinstance(format_gate, bool):
        raise TypeError(f"format_gate must be a bool, got {format_gate!r}")
    if math_timeout is not None and (
        isinstance(math_timeout, bool) or not isinstance(math_timeout, (int, float)) or not 0 < math_timeout < math.inf
    ):
        raise ValueError(f"math_timeout must be a positive number of seconds or None, got {math_timeout!r}")
    if not isinstance(max_answer_chars, int) or max_answer_chars <= 0:
        raise ValueError(f"max_answer_chars must be a positive int, got {max_answer_chars!r}")
    for key, fn in (verifiers or {}).items():
        if not isinstance(key, str) or not _normalize_type(key) or not callable(fn):
            raise ValueError(f"verifiers must map non-empty problem_type strings to callables, got {key!r}: {fn!r}")
    return _AccuracyReward(
        format_gate, None if math_timeout is None else float(math_timeout), max_answer_chars, verifiers
    )


_DEFAULT_ACCURACY_REWARD = _AccuracyReward()


def accuracy_reward(
    completions: list[list[dict[str, str]]] | list[str],
    solution: list[str],
    problem_type: list[str] | str | None = None,
    **kwargs,
) -> list[float]:
    r"""
    Reward function that checks a completion's `<answer>` against the ground truth, by problem type.

    A completion that [`format_reward`] rejects scores 0 (use [`get_accuracy_reward`] to lift the gate). Otherwise the
    text inside its last `<answer>` block is compared with the ground truth (whose `<answer>` tags and `$` are
    removed; `$` are removed from the answer too):

    - `numerical` (also for missing types, and for unknown ones with a one-time warning): 1.0 if math-verify finds them
      equivalent (`1/2`, `0.5` and `\frac{1}{2}` are equal), else 0.0.
    - `multiple choice`: 1.0 if the answer names the same option letters (`B`, `(B)`, `B.`, `B) text`,
      `The answer is B`; several letters such as `A, C` are compared as sets), else 0.0.
    - `OCR`: exp(-WER) with jiwer, case-insensitive, whitespace-normalised.
    - `free-form` and `text`: mean of the ROUGE-1, ROUGE-2 and ROUGE-L F-measures.
    - any type added with [`register_verifier`].

    It never raises on a completion (a failure scores 0.0) and each row is time-bounded (see the module docstring).

    Args:
        completions (`list[list[dict[str, str]]]` or `list[str]`):
            Completions to evaluate, standard (strings) or conversational (lists of messages whose content is a string
            or a list of `{"type": "text", "text": ...}` parts).
        solution (`list[str]`):
            Ground truths, one per completion.
        problem_type (`list[str]` or `str`, *optional*):
            Problem type of each completion, or one type for all. Defaults to `None` (numerical).
        **kwargs:
            Additional keyword arguments. This function does not use them, but they are required in the function
            signature to ensure compatibility with trainers like [`GRPOTrainer`].

    Returns:
        `list[float]`: one score in [0, 1] per completion.

    Example:
    ```python
    >>> from sophiavl_trl.rewards import accuracy_reward

    >>> completions = [
    ...     [{"role": "assistant", "content": r"<think>Half of 1.</think><answer>\frac{1}{2}</answer>"}],
    ...     [{"role": "assistant", "content": "<think>Hmm.</think><answer>0.4</answer>"}],
    ...     [{"role": "assistant", "content": "<answer>0.5</answer>"}],  # no <think> block: fails the format gate
    ...     [{"role": "assistant", "content": "<think>Option B fits.</think><answer>(B)</answer>"}],
    ...     [{"role": "assistant", "content": "<think>Reading it.</think><answer>the cat sat down</answer>"}],
    ... ]
    >>> solution = ["$0.5$", "0.5", "0.5", "<answer>B</answer>", "the cat sat up"]
    >>> problem_type = ["numerical", "numerical", "numerical", "multiple choice", "OCR"]
    >>> [round(r, 4) for r in accuracy_reward(completions, solution, problem_type=problem_type)]
    [1.0, 0.0, 0.0, 1.0, 0.7788]

    ```
    """
    return _DEFAULT_ACCURACY_REWARD(completions, solution, problem_type=problem_type, **kwargs)
