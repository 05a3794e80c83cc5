# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Outcome rewards: the released SophiaVL-R1 scorer (kxfan2002/SophiaVL-R1 @ a8184947, verl/utils/reward_score/math.py
and the preprocessing of verl/workers/reward/custom.py), minus its bugs.

Expected values come from reading that code (and mathruler / jiwer / rouge-score, which it calls), worked out by hand in
the comments, never from the code under test. Each released bug we refuse to copy is pinned by a `test_released_bug_*`
test (docs/rewards.md lists them).
"""

import math
import pickle
import signal
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sophiavl_trl.data.prompts import normalize_problem_type
from sophiavl_trl.rewards import accuracy_reward, format_reward, get_reward_funcs, register_verifier
from sophiavl_trl.rewards import accuracy_rewards as acc
from sophiavl_trl.rewards.format_rewards import (
    completion_to_text,
    extract_answer,
    extract_thinking,
    is_well_formatted,
)


# A row must never take longer than this (the sympy timer is 1 s); slack for a loaded 2-core CI machine.
TIME_BOUND_S = 1.5


def good(answer: str, thinking: str = "Let me think.") -> str:
    return f"<think>{thinking}</think>\n<answer>{answer}</answer>"


def conversational(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def score(answer: str, truth: str, problem_type: str | None) -> float:
    """Score of a well-formatted completion, checked to be the same in TRL's two completion shapes."""
    standard, chat = accuracy_reward([good(answer), conversational(good(answer))], [truth, truth], problem_type)
    assert standard == chat
    return standard


def timed(answer: str, truth: str, problem_type: str | None) -> tuple[float, float]:
    start = time.perf_counter()
    out = accuracy_reward([good(answer)], [truth], problem_type)[0]
    return out, time.perf_counter() - start


@pytest.fixture(autouse=True, scope="module")
def warm_up():
    # The first calls import sympy, jiwer and nltk (~1 s): keep that out of the timing assertions.
    assert accuracy_reward([good("1/2"), good("a"), good("a")], ["0.5", "a", "a"], ["numerical", "OCR", "text"])[0]


@pytest.fixture
def isolated_registry(monkeypatch):
    monkeypatch.setattr(acc, "VERIFIERS", dict(acc.VERIFIERS))


# ---------------------------------------------------------------------------------------------------------------------
# Format gate: re.fullmatch(r"<think>(.*?)</think>.*<answer>(.*?)</answer>.*", text, re.DOTALL)

FORMAT_CASES = [
    ("<think>a</think><answer>B</answer>", 1.0),
    ("<think>a</think>\n\n<answer>\nB\n</answer>\n", 1.0),
    ("<think>a</think> text between <answer>B</answer> text after", 1.0),  # .* between and after
    ("<think></think><answer></answer>", 1.0),  # empty blocks: (.*?) may match nothing
    ("<think>a</think><answer>B</answer><answer>C</answer>", 1.0),
    ("<think>a</think></think><answer>B</answer>", 1.0),  # the second </think> is just text for `.*`
    ("<think><think>a</think><answer>B</answer>", 1.0),
    ("<think>a</think><answer>B", 0.0),  # no </answer>
    ("<think>a</think></answer><answer>B", 0.0),  # </answer> before <answer>
    ("<think>a<answer>B</answer>", 0.0),  # no </think>
    ("<answer>B</answer>", 0.0),
    ("<think>a</think>B", 0.0),
    (" <think>a</think><answer>B</answer>", 0.0),  # fullmatch: nothing may precede <think>, not even a space
    ("\n<think>a</think><answer>B</answer>", 0.0),
    ("x<think>a</think><answer>B</answer>", 0.0),
    ("<THINK>a</THINK><answer>B</answer>", 0.0),  # case-sensitive
    ("<think>a<answer>B</answer></think>", 0.0),  # the only <answer> is before </think>
    ("", 0.0),
]


class TestFormat:
    @pytest.mark.parametrize(("text", "expected"), FORMAT_CASES)
    def test_released_gate(self, text, expected):
        assert format_reward([text, conversational(text)]) == [expected, expected]
        assert is_well_formatted(text) is bool(expected)

    def test_format_reward_ignores_kwargs_and_unreadable_completions(self):
        assert format_reward([None, 3, [], [{"role": "user", "content": good("B")}]], solution=["B"] * 4) == [0.0] * 4

    def test_graded_answer_is_the_first_block_after_think(self):
        # Released: re.search(r"<answer>(.*?)</answer>") on the whole text, i.e. the FIRST block, stripped by each
        # verifier.
        assert extract_answer("<think>a</think> <answer> 4 </answer> then <answer>5</answer>") == "4"
        assert extract_answer("<think>a</think><answer>x<answer>y</answer>") == "x<answer>y"
        assert extract_answer("no tags") is None
        assert extract_answer("<answer>3</answer>") == "3"  # no </think>: the first block anywhere

    def test_released_bug_answer_inside_think_is_not_graded(self):
        # Released: re.search finds the <answer> inside <think> first and grades "A".
        text = "<think>Maybe <answer>A</answer>? No.</think><answer>B</answer>"
        assert extract_answer(text) == "B"
        assert accuracy_reward([text], ["B"], "multiple choice") == [1.0]
        # An unclosed <answer> inside <think> would make the released search grade " y</think><answer>B".
        assert accuracy_reward(["<think>x <answer> y</think><answer>B</answer>"], ["B"], "multiple choice") == [1.0]

    def test_extract_thinking(self):
        assert extract_thinking("<think> 2 + 2 is 4 </think><answer>4</answer>") == "2 + 2 is 4"
        assert extract_thinking("2 + 2 is 4 <answer>4</answer>") == "2 + 2 is 4"
        assert extract_thinking("<think>unclosed <answer>4</answer>") == "unclosed"
        assert extract_thinking(None) == ""

    def test_completion_to_text(self):
        parts = [{"type": "text", "text": "<answer>"}, {"type": "image"}, {"type": "text", "text": "4</answer>"}]
        assert completion_to_text([{"role": "assistant", "content": parts}]) == "<answer>4</answer>"
        assert (
            completion_to_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "b"
        )
        assert completion_to_text(None) == completion_to_text([{"role": "user", "content": "x"}]) == ""

    def test_megabyte_adversarial_completion_is_linear(self):
        # Many opening tags and no closing ones: a backtracking regex would go quadratic here.
        for text in ["<think>" + "<answer>" * 100_000 + "</think>" * 30_000, "<think>" + "</think><answer>" * 70_000]:
            start = time.perf_counter()
            format_reward([text])
            accuracy_reward([text], ["B"], "multiple choice")
            assert time.perf_counter() - start < 5.0  # milliseconds when linear; quadratic would take far longer


# ---------------------------------------------------------------------------------------------------------------------
# numerical: mathruler.grader.grade_answer(answer, truth)

NUMERICAL_CASES = [
    ("0.5", "0.5", 1.0),
    (r"\frac{1}{2}", "0.5", 1.0),  # neither is an integer string: sympy finds the difference 0
    ("1/2", "0.5", 1.0),
    ("2/4", "1/2", 0.0),  # both fractions: compared as written (unreduced fractions do not count)
    ("1e3", "1000", 1.0),  # float("1e3") is an integer: normalised to "1000"
    ("1.5e3", "1500", 1.0),
    ("1.2e-4", "0.00012", 1.0),  # sympy reads 1.2e-4 as a float, not as 1.2 * e - 4
    ("10^3", "1000", 0.0),  # the ground truth is an integer string, the answer is not: strict match only
    ("50%", "50", 1.0),  # "%" is dropped
    ("12.5%", "12.5", 1.0),
    (r"12.5\%", "12.5", 1.0),
    ("5 cm", "5", 1.0),  # unit list: "cm" removed
    ("90 degrees", "90", 1.0),
    ("1,000", "1000", 1.0),  # thousands separator
    ("3.0", "3", 1.0),
    ("x**2", "x^2", 1.0),
    ("(1, 2)", "(1,2)", 1.0),  # spaces dropped
    ("0.4", "0.5", 0.0),
    ("", "0.5", 0.0),
    ("five", "5", 0.0),
    ("A", "a", 1.0),  # lower-cased text answers
]


class TestNumerical:
    @pytest.mark.parametrize(("answer", "truth", "expected"), NUMERICAL_CASES)
    def test_mathruler_rules(self, answer, truth, expected):
        assert score(answer, truth, "numerical") == expected

    def test_ground_truth_answer_block_and_dollars_are_stripped(self):
        # custom.py: first <answer> block of the ground truth; "$$" then "$" removed from response and ground truth.
        assert score("$0.5$", "<answer>$$\\frac{1}{2}$$</answer>", "numerical") == 1.0

    def test_badly_formatted_correct_answer_scores_zero(self):
        assert accuracy_reward(["<answer>0.5</answer>", "0.5"], ["0.5", "0.5"]) == [0.0, 0.0]

    def test_missing_problem_type_is_numerical_without_warning(self, caplog):
        assert accuracy_reward([good("1e3")], ["1000"]) == [1.0]
        assert accuracy_reward([good("1e3")], ["1000"], [None]) == [1.0]
        assert not caplog.records

    # Released bug: sympy gets `9**9**9` (mathruler's guard looks at `^` only) and never returns.
    @pytest.mark.parametrize(
        "answer",
        [
            "9**9**9",
            "9^9^9",
            "9^-9^9",  # a tower behind a sign
            "((((((((((9^9)^9)^9)^9)^9)^9)^9)^9)^9)^9)",  # left-nested: 9^(9^10)
            "(9!)!",
            "ff(10**9, 10**8)",  # sympy's falling factorial, a 2-letter name mathruler lets through
            "9^0xffffffff",  # Python's tokenizer reads hex
            "9^9_999_999",
            "9^9e999999",  # a float exponent: mpmath computes 9^(9e999999)
            "((((((9^9)^9)^9)^9)^9)^9)^9 + 2^0",  # a zero exponent must not cancel the product
            "9^{9^{9}}",
            "1000000!",
        ],
    )
    def test_released_bug_sympy_is_time_bounded(self, answer):
        for truth in ["1.5", "x"]:  # neither is an integer string: the sympy path
            out, elapsed = timed(answer, truth, "numerical")
            assert out == 0.0 and elapsed < TIME_BOUND_S

    # Released bug: mathruler rounds any float within 1e-7 of an integer to it (an absolute tolerance), and a float
    # underflows: all of these equalled 0. Here: an exact 0 only, and 1e-7 relative to a non-zero truth.
    @pytest.mark.parametrize(
        ("answer", "truth"),
        [
            ("0.0000001", "0"),
            ("1e-401", "0"),  # float("1e-401") == 0.0
            ("0." + "0" * 400 + "1", "0"),
            ("-1e-8", "0"),
            ("0.0000001 cm", "0"),  # mathruler drops the unit, then rounds
            (r"\text{0.0000001}", "0"),
            ("0.0000001%", "0.0"),
            ("3e-8", "1.5e-8"),  # both round to 0 in mathruler: equal, though one is twice the other
            ("0", "1e-8"),
        ],
    )
    def test_released_bug_tiny_numbers_equal_zero(self, answer, truth):
        assert score(answer, truth, "numerical") == 0.0

    @pytest.mark.parametrize(
        ("answer", "truth"),
        [("0", "0"), ("-0.0", "0"), ("0e5", "0.000"), ("3.00000001", "3"), ("1.0000000001e-8", "1e-8"), ("5 cm", "5")],
    )
    def test_exact_zero_and_relative_tolerance(self, answer, truth):
        # 3.00000001 is 3.3e-9 relative to 3 (and within mathruler's 1e-7 of the integer): still equal.
        assert score(answer, truth, "numerical") == 1.0

    def test_unsafe_expressions_still_match_as_strings(self):
        assert score("9**9**9", "9**9**9", "numerical") == 1.0

    def test_time_bound_holds_from_a_thread(self):
        results = []
        thread = threading.Thread(target=lambda: results.append(timed("9**9**9", "1.5", "numerical")))
        thread.start()
        thread.join(10)
        assert results and results[0][0] == 0.0 and results[0][1] < TIME_BOUND_S

    @pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX timers")
    def test_an_outer_timer_is_given_back(self):
        previous = signal.signal(signal.SIGALRM, lambda *_: None)
        try:
            signal.setitimer(signal.ITIMER_REAL, 100.0)
            assert score(r"\frac{1}{2}", "0.5", "numerical") == 1.0
            assert 90 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------------------------------
# multiple choice: answer split on ",", each part stripped, compared exactly


class TestMultipleChoice:
    @pytest.mark.parametrize(
        ("answer", "expected"),
        [
            ("B", 1.0),
            (" B ", 1.0),
            ("(B)", 0.0),
            ("b", 0.0),
            ("B.", 0.0),
            ("The answer is B", 0.0),
            ("A", 0.0),
            ("B,B", 0.0),
            ("A,B", 0.0),
        ],
    )
    def test_single_letter(self, answer, expected):
        assert score(answer, "B", "multiple choice") == expected

    @pytest.mark.parametrize("answer", ["", " ", ",", "B,", "$$"])
    def test_released_bug_empty_answer_scores_zero(self, answer):
        # Released: "" in "B" is True, so an empty answer (or "$$", emptied by the "$" removal) scored 1.
        assert score(answer, "B", "multiple choice") == 0.0

    @pytest.mark.parametrize(
        ("answer", "expected"), [("A,C", 1.0), ("C, A", 1.0), ("A", 0.0), ("A,B", 0.0), ("A,C,C", 0.0)]
    )
    def test_released_bug_multi_letter_truth_matches(self, answer, expected):
        # Released: len(["A", "C"]) == 2 != len("A,C") == 3, so a multi-letter ground truth never matched.
        assert score(answer, "A,C", "multiple choice") == expected
        assert score(answer, "<answer>A, C</answer>", "multiple choice") == expected

    @pytest.mark.parametrize("truth", [" B ", "(B)", "( B )", "B\n"])
    def test_released_bug_truth_with_spaces_or_parentheses_matches(self, truth):
        # Released: len(" B ") == 3 != 1 answer part, so these ground truths never matched.
        assert score("B", truth, "multiple choice") == 1.0

    def test_long_whitespace_answer_is_fast(self):
        for answer in ["answer" + " " * 9_000 + "x", "answer" + " " * 19_990 + "x", "," * 9_000]:
            out, elapsed = timed(answer, "B", "multiple choice")
            assert out == 0.0 and elapsed < 1.0  # milliseconds; the quadratic split it replaces took 5 s


# ---------------------------------------------------------------------------------------------------------------------
# OCR: exp(-WER), jiwer, reference = ground truth


class TestOCR:
    def test_exact_transcription_scores_one(self):
        assert score("STOP sign 3.5 km", "STOP sign 3.5 km", "OCR") == 1.0

    def test_one_substitution_in_four_words(self):
        assert score("the cat sat down", "the cat sat up", "OCR") == pytest.approx(math.exp(-0.25))

    def test_case_sensitive(self):
        # 2 substitutions in 2 words: WER 1.
        assert score("the cat", "The Cat", "OCR") == pytest.approx(math.exp(-1))

    def test_empty_answer_is_all_deletions(self):
        assert score("", "a b c", "OCR") == pytest.approx(math.exp(-1))

    @pytest.mark.parametrize("answer", ["A\nB\nC", "A\tB  C", " A B\n\nC "])
    def test_released_bug_line_breaks_separate_words(self, answer):
        # Released: jiwer splits on " " only, so "A\nB\nC" is one wrong word against three: WER 3, exp(-3) = 0.05.
        assert score(answer, "A B C", "OCR") == 1.0


# ---------------------------------------------------------------------------------------------------------------------
# free-form / text: mean of ROUGE-1, ROUGE-2, ROUGE-L F-measures, Porter-stemmed


PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
ROUGE_WORDS = ["the", "cat", "cats", "running", "run", "sat", "on", "mat", "猫在", "Привет", "a", "is", "x1", ".", "Ü"]


class TestFreeForm:
    @pytest.mark.parametrize("problem_type", ["free-form", "text"])
    def test_one_word_exact_answer_scores_two_thirds(self, problem_type):
        # ROUGE-1 = ROUGE-L = 1, no bigram so ROUGE-2 = 0: 2/3. Trust-GRPO's uniform cut-off depends on this value.
        assert score("cat", "cat", problem_type) == pytest.approx(2 / 3)

    def test_identical_sentence_scores_one(self):
        assert score("The cat sat on the mat.", "the cat sat on the mat", "free-form") == 1.0

    def test_stemming(self):
        # Tokens: the cat are run / the cat is run ("cats" -> "cat", "running" -> "run"; words of <= 3 letters kept).
        # ROUGE-1 3/4, ROUGE-2 1/3 (only "the cat"), ROUGE-L 3/4.
        expected = (3 / 4 + 1 / 3 + 3 / 4) / 3
        assert score("the cats are running", "the cat is running", "free-form") == pytest.approx(expected)

    def test_unrelated_answer_scores_zero(self):
        assert score("blue sky", "the cat", "free-form") == 0.0

    @pytest.mark.parametrize("text", ["猫在桌子上", "東京タワー", "Привет мир", "你好 world"])
    def test_released_bug_non_latin_text_is_scored(self, text):
        # Released: rouge-score's tokenizer deletes every non-[a-z0-9] character, so identical answers scored 0.
        assert score(text, text, "free-form") == 1.0

    @PROPERTY_SETTINGS
    @given(
        answer=st.lists(st.sampled_from(ROUGE_WORDS), max_size=40),
        truth=st.lists(st.sampled_from(ROUGE_WORDS), max_size=40),
    )
    def test_equals_rouge_score(self, answer, truth):
        # The oracle: rouge-score itself (its quadratic LCS table) with the same tokens, on texts small enough for it.
        from nltk.stem import porter
        from rouge_score import rouge_scorer, tokenizers

        class Tokenizer(tokenizers.Tokenizer):
            def tokenize(self, text):
                tokens = acc._TOKEN_RE.findall(text.lower())
                return [porter.PorterStemmer().stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]

        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=Tokenizer())
        expected = sum(s.fmeasure for s in scorer.score(" ".join(truth), " ".join(answer)).values()) / 3
        assert acc._free_form(" ".join(answer), " ".join(truth)) == pytest.approx(expected, abs=1e-12)

    def test_non_latin_partial_match(self):
        # Character tokens 你 好 世 界 vs 你 好 朋 友: ROUGE-1 1/2, ROUGE-2 1/3 ("你好"), ROUGE-L 1/2.
        assert score("你好世界", "你好朋友", "free-form") == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)


# ---------------------------------------------------------------------------------------------------------------------
# Dispatch, registry, reward names


class TestDispatch:
    def test_mixed_batch_keeps_order(self):
        completions = [good("1e3"), good("B"), good("the cat sat down"), good("cat"), "<answer>B</answer>"]
        truths = ["1000", "<answer>B</answer>", "the cat sat up", "cat", "B"]
        types = ["numerical", "multiple choice", "OCR", "free-form", "multiple choice"]
        assert accuracy_reward(completions, truths, types, solution_extra=1) == pytest.approx(
            [1.0, 1.0, math.exp(-0.25), 2 / 3, 0.0]
        )

    @pytest.mark.parametrize(
        "spelling", ["multiple choice", "Multiple_Choice", "multiple-choice", " MULTIPLE  choice "]
    )
    def test_type_spellings(self, spelling):
        assert accuracy_reward([good("A,C")], ["A,C"], [spelling]) == [1.0]
        assert normalize_problem_type(spelling) == "multiple choice"  # the one spelling rule, shared with the data

    def test_one_type_string_applies_to_all_rows(self):
        assert accuracy_reward([good("B"), good("C")], ["B", "B"], "multiple choice") == [1.0, 0.0]

    def test_unknown_type_is_numerical_with_one_warning(self, caplog, monkeypatch):
        monkeypatch.setattr(acc, "_warned_types", set())
        for _ in range(3):
            assert accuracy_reward([good("1e3")], ["1000"], ["geometry"]) == [1.0]
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert "geometry" in caplog.text

    def test_length_mismatch_raises(self):
        with pytest.raises(ValueError):
            accuracy_reward([good("1")], ["1", "2"])

    def test_answers_over_the_cap_score_zero(self):
        long = "B" + " " * acc.MAX_ANSWER_CHARS
        assert accuracy_reward([good("B" + " " * 100), good(long + "x")], ["B", "B"], "multiple choice") == [1.0, 0.0]

    def test_reward_is_picklable(self):
        assert pickle.loads(pickle.dumps(accuracy_reward)) is accuracy_reward


class TestRegistry:
    def test_builtin_types(self):
        assert sorted(acc.VERIFIERS) == ["free form", "multiple choice", "numerical", "ocr", "text"]
        assert acc.VERIFIERS["ocr"]("a b", "a b") == 1.0

    def test_custom_type(self, isolated_registry):
        register_verifier("Yes/No", lambda answer, truth: float(answer.lower() == truth.lower()))
        assert "yes/no" in acc.VERIFIERS
        assert accuracy_reward([good("$Yes$"), good("no")], ["<answer>yes</answer>", "yes"], "yes/no") == [1.0, 0.0]

    def test_existing_type_needs_overwrite(self, isolated_registry):
        with pytest.raises(ValueError, match="overwrite"):
            register_verifier("OCR", lambda a, t: 1.0)
        register_verifier("OCR", lambda a, t: 0.25, overwrite=True)
        assert accuracy_reward([good("x")], ["y"], "ocr") == [0.25]

    @pytest.mark.parametrize(("name", "fn"), [("", lambda a, t: 1.0), (None, lambda a, t: 1.0), ("x", "not callable")])
    def test_bad_registrations_raise(self, isolated_registry, name, fn):
        with pytest.raises(ValueError):
            register_verifier(name, fn)

    def test_failing_or_out_of_range_verifiers_are_contained(self, isolated_registry):
        register_verifier("boom", lambda a, t: 1 / 0)
        register_verifier("big", lambda a, t: 7.0)
        register_verifier("nan", lambda a, t: float("nan"))
        register_verifier("negative", lambda a, t: -1)
        assert accuracy_reward([good("x")] * 4, ["x"] * 4, ["boom", "big", "nan", "negative"]) == [0.0, 1.0, 0.0, 0.0]


class TestRewardNames:
    def test_names_and_dotted_paths(self):
        assert get_reward_funcs(["accuracy", "format"]) == [accuracy_reward, format_reward]
        assert get_reward_funcs(["sophiavl_trl.rewards.format_rewards.format_reward"]) == [format_reward]

    def test_a_bare_string_is_refused_with_the_list_to_pass(self):
        with pytest.raises(TypeError, match=r"not the string 'accuracy,format'.*\['accuracy', 'format'\]"):
            get_reward_funcs("accuracy,format")

    @pytest.mark.parametrize("names", [["acuracy"], ["no_such_module.f"], ["sophiavl_trl.rewards.nope"]])
    def test_unknown_names_raise(self, names):
        with pytest.raises(ValueError, match=names[0]):
            get_reward_funcs(names)


# ---------------------------------------------------------------------------------------------------------------------
# Properties: never raises, always in [0, 1], always fast

MATHY = st.text(alphabet="0123456789xy^*()+-/.!,{}e %\\fracsqrt ", max_size=60)
ANY_TEXT = st.one_of(
    MATHY, st.text(max_size=300), st.sampled_from(["", " ", "B", "A,C", "猫", "9**9**9", "1" * 5000, "1" * 9000 + "x"])
)


class TestProperties:
    @pytest.mark.parametrize("problem_type", ["numerical", "multiple choice", "OCR", "free-form", None])
    @PROPERTY_SETTINGS
    @given(answer=ANY_TEXT, truth=ANY_TEXT)
    def test_every_verifier_is_total_bounded_and_fast(self, problem_type, answer, truth):
        for completion in (good(answer), conversational(good(answer)), answer):
            start = time.perf_counter()
            out = accuracy_reward([completion], [truth], problem_type)
            assert time.perf_counter() - start < TIME_BOUND_S
            assert len(out) == 1 and isinstance(out[0], float) and 0.0 <= out[0] <= 1.0

    @PROPERTY_SETTINGS
    @given(answer=MATHY, truth=MATHY)
    def test_numerical_is_fast_from_a_thread(self, answer, truth):
        # No timer off the main thread: the guard alone must bound sympy.
        results = []
        thread = threading.Thread(target=lambda: results.append(timed(answer, truth, "numerical")))
        thread.start()
        thread.join(30)
        assert results and results[0][1] < TIME_BOUND_S

    @PROPERTY_SETTINGS
    @given(
        text=st.lists(st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "B", " ", "\n"])).map("".join)
    )
    def test_gate_agrees_with_the_released_regex(self, text):
        import re

        released = re.fullmatch(r"<think>(.*?)</think>.*<answer>(.*?)</answer>.*", text, re.DOTALL) is not None
        assert is_well_formatted(text) is released
