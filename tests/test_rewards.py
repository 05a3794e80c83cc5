# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Outcome rewards: format_reward and accuracy_reward (per problem type), the verifier registry and the time bound.

Expected values are worked out by hand in the comments, never taken from the code under test. Every scoring case runs
in both of TRL's completion shapes (standard strings and conversational messages).
"""

import logging
import math
import pickle
import sys
import threading
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sophiavl_trl.rewards import accuracy_reward, format_reward, get_verifier, register_verifier
from sophiavl_trl.rewards import accuracy_rewards as acc
from sophiavl_trl.rewards.accuracy_rewards import get_accuracy_reward
from sophiavl_trl.rewards.format_rewards import completion_to_text, extract_answer, extract_thinking


# Per-call wall-time bound asserted on pathological inputs: the default math_timeout (1.0 s) + kill grace (0.5 s)
# bounds a numerical row at 1.5 s; the rest is slack for a loaded 2-core CI machine.
TIME_BOUND_S = 2.0


def standard(text):
    return text


def conversational(text):
    return [{"role": "assistant", "content": text}]


def conversational_parts(text):
    # content as a list of typed parts, split in two to check that the parts are joined
    half = len(text) // 2
    return [
        {
            "role": "assistant",
            "content": [{"type": "text", "text": text[:half]}, {"type": "text", "text": text[half:]}],
        }
    ]


SHAPES = [standard, conversational, conversational_parts]


def good(answer, thinking="Let me think."):
    return f"<think>{thinking}</think>\n<answer>{answer}</answer>"


def score(shape, answer_text, solution, problem_type, reward=accuracy_reward):
    """Score one completion given as full text, in the given shape."""
    return reward([shape(answer_text)], [solution], problem_type=[problem_type])[0]


@pytest.fixture(autouse=True, scope="module")
def warm_math_helper():
    # The first numerical comparison starts the math-verify helper process (imports sympy, ~1 s); do it once up front
    # so that timing assertions measure the steady state.
    assert accuracy_reward([good("1/2")], ["0.5"]) == [1.0]


@pytest.fixture
def isolated_registry(monkeypatch):
    # register_verifier mutates a module-level dict: give each test its own copy.
    monkeypatch.setattr(acc, "_VERIFIERS", dict(acc._VERIFIERS))


# ---------------------------------------------------------------------------------------------------------------------


class TestFormatReward:
    @pytest.mark.parametrize("shape", SHAPES)
    def test_think_then_answer_scores_one(self, shape):
        # the canonical shape, with newlines inside and between the blocks
        assert format_reward([shape("<think>\nstep 1\nstep 2\n</think>\n\n<answer>\n42\n</answer>\n")]) == [1.0]

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize(
        "text",
        [
            "<answer>42</answer>",  # no reasoning block
            "<think>reasoning</think>",  # no answer block
            "<think>reasoning</think> The answer is 42.",  # answer not tagged
            "<answer>42</answer><think>reasoning</think>",  # wrong order
            "Sure! <think>r</think><answer>42</answer>",  # text before the blocks
            "<think>r</think><answer>42</answer> Hope this helps.",  # text after the blocks
            "<think>r</think> and then <answer>42</answer>",  # text between the blocks
            "<think>r</think><answer>41</answer><answer>42</answer>",  # two answers
            "<think>a <think>b</think></think><answer>42</answer>",  # nested reasoning
            "<THINK>r</THINK><ANSWER>42</ANSWER>",  # tags are case-sensitive
            "<think>r</think><answer>42",  # unclosed answer (truncated generation)
            "",  # empty completion
        ],
    )
    def test_badly_formatted_completion_scores_zero(self, shape, text):
        assert format_reward([shape(text)]) == [0.0]

    def test_mixed_batch_keeps_order(self):
        # good, bad, good: one score per completion, in order
        completions = [good("1"), "1", conversational(good("2"))]
        assert format_reward(completions) == [1.0, 0.0, 1.0]

    def test_unreadable_completions_score_zero(self):
        # an empty message list, a message without content, a non-text part only, None
        completions = [[], [{"role": "assistant"}], [{"role": "assistant", "content": [{"type": "image"}]}], None]
        assert format_reward(completions) == [0.0, 0.0, 0.0, 0.0]

    def test_last_assistant_message_is_scored(self):
        # a tool-calling turn: only the final assistant message carries the formatted answer
        completion = [
            {"role": "assistant", "content": "calling a tool"},
            {"role": "tool", "content": "result"},
            {"role": "assistant", "content": good("7")},
        ]
        assert format_reward([completion]) == [1.0]

    def test_extra_kwargs_are_ignored(self):
        # TRL passes prompts, completion_ids, trainer_state, log_extra, log_metric and dataset columns
        out = format_reward([good("1")], prompts=["p"], completion_ids=[[1, 2]], trainer_state=None, solution=["1"])
        assert out == [1.0]

    def test_megabyte_completion_is_fast(self):
        # 1 MB of reasoning: the regex is linear, so this is milliseconds
        text = good("4", thinking="blah " * 200_000)
        start = time.perf_counter()
        assert format_reward([text, text[:-5]]) == [1.0, 0.0]
        assert time.perf_counter() - start < TIME_BOUND_S


class TestExtractHelpers:
    def test_extract_answer_takes_last_block_stripped(self):
        # two answer blocks: the last wins, whitespace stripped
        assert extract_answer("<answer>3</answer> no wait <answer>\n 4 \n</answer>") == "4"

    def test_extract_answer_without_block_is_none(self):
        assert extract_answer("The answer is 4") is None
        assert extract_answer("<answer>4") is None  # unclosed

    def test_extract_thinking_reads_think_block(self):
        assert extract_thinking("<think> a\nb </think><answer>4</answer>") == "a\nb"

    def test_extract_thinking_without_tags_is_text_before_answer(self):
        assert extract_thinking("I add them. <answer>4</answer>") == "I add them."
        assert extract_thinking("no tags at all") == "no tags at all"

    def test_extract_thinking_of_unclosed_think_stops_at_answer(self):
        # a generation cut before </think>
        assert extract_thinking("<think>halfway <answer>4</answer>") == "halfway"

    def test_completion_to_text_joins_text_parts(self):
        completion = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
        assert completion_to_text(completion) == "ab"


# ---------------------------------------------------------------------------------------------------------------------


class TestAccuracyRewardNumerical:
    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize(
        ("answer", "solution"),
        [
            ("1/2", "0.5"),  # fraction vs decimal
            ("0.5", "1/2"),  # and the other way round
            (r"\frac{1}{2}", "0.5"),  # LaTeX fraction vs decimal
            ("0.5", r"\frac{1}{2}"),
            (r"\frac{1}{2}", "1/2"),  # LaTeX fraction vs plain fraction
            ("$0.5$", r"\frac{1}{2}"),  # dollars in the answer are stripped too
            ("2.0", "2"),  # trailing zero
            (r"\sqrt{9}", "3"),  # evaluated expression
            ("x = 5", "5"),  # an assignment's value
            ("5 apples", "5"),  # a trailing unit word
        ],
    )
    def test_equivalent_answer_scores_one(self, shape, answer, solution):
        assert score(shape, good(answer), solution, "numerical") == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize(
        ("answer", "solution"),
        [
            ("0.4", "0.5"),  # plainly wrong
            ("-0.5", "0.5"),  # wrong sign
            ("0.49", "1/2"),  # close is not equal
            ("1/2 + 1", "1/2"),  # partially right: contains the right value, but is not it
            ("9^{9}", "9"),  # the first number is right, the expression is not
            ("", "0.5"),  # empty answer
            ("no idea", "0.5"),  # no number at all
        ],
    )
    def test_wrong_or_partial_answer_scores_zero(self, shape, answer, solution):
        assert score(shape, good(answer), solution, "numerical") == 0.0

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("solution", ["<answer>0.5</answer>", "$0.5$", "<answer> $\\frac{1}{2}$ </answer>"])
    def test_ground_truth_tags_and_dollars_are_stripped(self, shape, solution):
        assert score(shape, good("1/2"), solution, "numerical") == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_badly_formatted_correct_answer_scores_zero(self, shape):
        # right value, but no <think> block: the format gate gives 0
        assert score(shape, "<answer>0.5</answer>", "0.5", "numerical") == 0.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_without_format_gate_the_answer_is_still_read(self, shape):
        # gate off: the <answer> block is scored; without one, the text after </think> is the answer
        lenient = get_accuracy_reward(format_gate=False)
        assert score(shape, "<answer>0.5</answer>", "1/2", "numerical", lenient) == 1.0
        assert score(shape, "<think>half</think> 0.5", "1/2", "numerical", lenient) == 1.0
        assert score(shape, "0.4", "1/2", "numerical", lenient) == 0.0

    def test_missing_problem_type_is_numerical_without_warning(self, caplog):
        with caplog.at_level(logging.WARNING, logger=acc.__name__):
            assert accuracy_reward([good("0.5"), good("0.4")], ["1/2", "1/2"]) == [1.0, 0.0]
            assert accuracy_reward([good("0.5")], ["1/2"], problem_type=[None]) == [1.0]
        assert caplog.records == []


class TestAccuracyRewardMultipleChoice:
    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize(
        "answer",
        [
            "B",
            "(B)",
            "B.",
            "B) Paris",
            "B. Paris",
            "The answer is B",
            "Answer: (B)",
            "$B$",
            r"\text{B}",
            "b",
            "I pick B",
        ],
    )
    def test_chosen_letter_matches_in_any_usual_form(self, shape, answer):
        assert score(shape, good(answer), "B", "multiple choice") == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize(
        ("answer", "solution"),
        [
            ("C", "B"),  # wrong letter
            ("(A) Paris", "B"),  # wrong letter with its text
            ("A", "A, C"),  # partially right: one of two correct options
            ("A, B, C", "A, C"),  # partially right: a superset
            ("Paris", "B"),  # names no letter
            ("", "B"),  # empty answer
        ],
    )
    def test_wrong_or_partial_choice_scores_zero(self, shape, answer, solution):
        assert score(shape, good(answer), solution, "multiple choice") == 0.0

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize(("answer", "solution"), [("C, A", "A,C"), ("AC", "A, C"), ("(A) and (C)", "AC")])
    def test_several_letters_compare_as_sets(self, shape, answer, solution):
        assert score(shape, good(answer), solution, "multiple choice") == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_ground_truth_tags_and_dollars_are_stripped(self, shape):
        assert score(shape, good("B"), "<answer>$(B)$</answer>", "multiple choice") == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_ground_truth_without_letter_compares_text(self, shape):
        # the option's text as ground truth: case and punctuation-insensitive equality
        assert score(shape, good("paris"), "Paris.", "multiple choice") == 1.0
        assert score(shape, good("London"), "Paris.", "multiple choice") == 0.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_badly_formatted_correct_choice_scores_zero(self, shape):
        assert score(shape, "<think>r</think> B", "B", "multiple choice") == 0.0


class TestAccuracyRewardOCR:
    @pytest.mark.parametrize("shape", SHAPES)
    def test_exact_transcription_scores_one(self, shape):
        assert score(shape, good("the cat sat up"), "the cat sat up", "OCR") == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_case_and_whitespace_are_normalised(self, shape):
        # case folded and whitespace runs collapsed: WER 0
        assert score(shape, good("The  CAT\nsat up"), "the cat sat up", "OCR") == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize(
        "answer",
        [
            "the cat sat down",  # 1 substitution
            "the cat sat",  # 1 deletion
            "the big cat sat up",  # 1 insertion
        ],
    )
    def test_one_error_in_four_words_scores_exp_minus_quarter(self, shape, answer):
        # WER = 1 error / 4 reference words = 0.25
        assert score(shape, good(answer), "the cat sat up", "OCR") == pytest.approx(math.exp(-0.25))

    @pytest.mark.parametrize("shape", SHAPES)
    def test_partially_right_transcription(self, shape):
        # 2 substitutions out of 4 reference words: WER 0.5
        assert score(shape, good("the dog sat down"), "the cat sat up", "OCR") == pytest.approx(math.exp(-0.5))

    @pytest.mark.parametrize("shape", SHAPES)
    def test_punctuation_counts_as_part_of_a_word(self, shape):
        # "up." != "up": 1 substitution in 4 words
        assert score(shape, good("the cat sat up."), "the cat sat up", "OCR") == pytest.approx(math.exp(-0.25))

    @pytest.mark.parametrize("shape", SHAPES)
    def test_empty_strings_do_not_raise(self, shape):
        # empty answer: 4 deletions in 4 words, WER 1 -> exp(-1)
        assert score(shape, good(""), "the cat sat up", "OCR") == pytest.approx(math.exp(-1.0))
        # empty ground truth: 1 for an empty answer, 0 for anything else
        assert score(shape, good(""), "", "OCR") == 1.0
        assert score(shape, good("text"), "", "OCR") == 0.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_ground_truth_tags_and_dollars_are_stripped(self, shape):
        assert score(shape, good("total 5"), "<answer>total $5$</answer>", "OCR") == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_badly_formatted_exact_transcription_scores_zero(self, shape):
        assert score(shape, "the cat sat up", "the cat sat up", "OCR") == 0.0


class TestAccuracyRewardFreeForm:
    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("problem_type", ["free-form", "text"])
    def test_identical_answer_scores_one(self, shape, problem_type):
        assert score(shape, good("The cat sat on the mat."), "the cat sat on the mat", problem_type) == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("problem_type", ["free-form", "text"])
    def test_partially_right_answer_scores_mean_of_rouge_f_measures(self, shape, problem_type):
        # reference  "the cat sat on a mat"   (6 tokens), answer "the cat sat on the mat" (6 tokens)
        # ROUGE-1: clipped overlap the, cat, sat, on, mat = 5 -> P = R = 5/6 -> F = 5/6
        # ROUGE-2: bigrams the-cat, cat-sat, sat-on shared = 3 of 5 each -> F = 3/5
        # ROUGE-L: LCS "the cat sat on mat" = 5 -> F = 5/6
        expected = (5 / 6 + 3 / 5 + 5 / 6) / 3
        assert score(shape, good("The cat sat on the mat"), "the cat sat on a mat", problem_type) == pytest.approx(
            expected
        )

    @pytest.mark.parametrize("shape", SHAPES)
    def test_unrelated_answer_scores_zero(self, shape):
        assert score(shape, good("purple elephants dance"), "the cat sat on a mat", "free-form") == 0.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_stemming_matches_inflections(self, shape):
        # Porter stemming: "cats" -> "cat", "sitting" -> "sit": identical token sequences
        assert score(shape, good("cats sitting"), "cat sitting", "free-form") == 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_badly_formatted_identical_answer_scores_zero(self, shape):
        assert score(shape, "<answer>the cat</answer>", "the cat", "free-form") == 0.0

    def test_long_answer_matches_rouge_score_and_is_fast(self):
        # rouge-score itself as the reference implementation on a 600-token pair (its own LCS is pure Python)
        from rouge_score import rouge_scorer

        words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
        reference = " ".join(words[(i * 7) % 6] for i in range(600))
        prediction = " ".join(words[(i * 5 + i // 3) % 6] for i in range(600))
        scores = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(
            reference, prediction
        )
        expected = sum(s.fmeasure for s in scores.values()) / 3
        start = time.perf_counter()
        assert score(standard, good(prediction), reference, "free-form") == pytest.approx(expected)
        assert time.perf_counter() - start < 0.5


class TestAccuracyRewardDispatch:
    def test_mixed_types_and_shapes_in_one_batch(self):
        completions = [
            good("0.5"),  # numerical, right
            conversational(good("(C)")),  # multiple choice, wrong
            conversational_parts(good("the cat sat down")),  # OCR, 1 substitution in 4 words
            good("a cat"),  # free-form: identical
        ]
        out = accuracy_reward(
            completions,
            ["1/2", "B", "the cat sat up", "A cat."],
            problem_type=["numerical", "multiple choice", "OCR", "free-form"],
        )
        assert out == pytest.approx([1.0, 0.0, math.exp(-0.25), 1.0])

    @pytest.mark.parametrize("problem_type", ["Multiple_Choice", "multiple-choice", "MULTIPLE CHOICE"])
    def test_type_names_are_normalised(self, problem_type):
        assert accuracy_reward([good("The answer is B")], ["B"], problem_type=[problem_type]) == [1.0]

    def test_one_problem_type_string_applies_to_all_rows(self):
        assert accuracy_reward([good("B"), good("A")], ["B", "B"], problem_type="multiple choice") == [1.0, 0.0]

    def test_unknown_type_falls_back_to_numerical_with_one_warning(self, caplog):
        unknown = f"regression-{uuid.uuid4().hex[:8]}"  # fresh name: the warning is once per type per process
        with caplog.at_level(logging.WARNING, logger=acc.__name__):
            # "0.5" vs "1/2" is right only under the numerical verifier
            assert accuracy_reward([good("0.5"), good("0.4")], ["1/2", "1/2"], problem_type=[unknown] * 2) == [
                1.0,
                0.0,
            ]
            assert accuracy_reward([good("0.5")], ["1/2"], problem_type=[unknown]) == [1.0]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert unknown in warnings[0].getMessage()

    def test_extra_kwargs_are_ignored(self):
        out = accuracy_reward(
            [good("0.5")],
            ["1/2"],
            problem_type=["numerical"],
            prompts=["What is half?"],
            completion_ids=[[1, 2, 3]],
            trainer_state=None,
            log_extra=None,
            log_metric=None,
            images=[None],
        )
        assert out == [1.0]

    def test_length_mismatch_raises(self):
        # a caller bug, not a completion: raised like TRL's zip(strict=True)
        with pytest.raises(ValueError, match="solution"):
            accuracy_reward([good("1"), good("2")], ["1"])
        with pytest.raises(ValueError, match="problem_type"):
            accuracy_reward([good("1")], ["1"], problem_type=["numerical", "OCR"])

    def test_returns_floats_in_unit_interval(self):
        out = accuracy_reward([good("0.5"), "junk", good("x")], ["1/2", "1", "y"], problem_type=[None, "OCR", "text"])
        assert len(out) == 3
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in out)


class TestVerifierRegistry:
    def test_custom_type_dispatches_to_registered_verifier(self, isolated_registry):
        calls = []

        def yes_no(prediction, ground_truth):
            calls.append((prediction, ground_truth))
            return float(prediction.lower() == ground_truth.lower())

        register_verifier("boolean", yes_no)
        out = accuracy_reward([good("Yes"), good("no")], ["<answer>$yes$</answer>", "yes"], problem_type="Boolean")
        assert out == [1.0, 0.0]
        # the verifier sees the answer block's content and the cleaned ground truth
        assert calls == [("Yes", "yes"), ("no", "yes")]
        assert get_verifier("BOOLEAN") is yes_no

    def test_registering_an_existing_type_raises_unless_overwrite(self, isolated_registry):
        with pytest.raises(ValueError, match="overwrite=True"):
            register_verifier("numerical", lambda p, g: 1.0)
        register_verifier("numerical", lambda p, g: 1.0, overwrite=True)
        # the replacement now scores a wrong numerical answer 1
        assert accuracy_reward([good("0.4")], ["0.5"], problem_type=["numerical"]) == [1.0]

    def test_get_verifier_of_unknown_type_lists_registered_types(self):
        with pytest.raises(ValueError, match="Registered types: .*multiple choice.*numerical"):
            get_verifier("no-such-type")

    def test_bad_registrations_raise(self, isolated_registry):
        with pytest.raises(ValueError):
            register_verifier("", lambda p, g: 1.0)
        with pytest.raises(TypeError):
            register_verifier("thing", "not callable")

    def test_failing_or_out_of_range_verifier_is_contained(self, isolated_registry):
        def boom(prediction, ground_truth):
            raise RuntimeError("verifier bug")

        register_verifier("boom", boom)
        register_verifier("too-big", lambda p, g: 7.0)
        register_verifier("negative", lambda p, g: -1.0)
        register_verifier("nan", lambda p, g: float("nan"))
        out = accuracy_reward([good("x")] * 4, ["x"] * 4, problem_type=["boom", "too-big", "negative", "nan"])
        # exception -> 0, 7 clipped to 1, -1 clipped to 0, NaN -> 0
        assert out == [0.0, 1.0, 0.0, 0.0]

    def test_per_instance_verifiers_take_precedence_and_pickle(self):
        reward = get_accuracy_reward(verifiers={"OCR": _always_half})
        restored = pickle.loads(pickle.dumps(reward))
        assert restored([good("anything")], ["else"], problem_type=["ocr"]) == [0.5]
        # the module-level reward still uses the built-in OCR verifier
        assert accuracy_reward([good("else")], ["else"], problem_type=["ocr"]) == [1.0]


def _always_half(prediction, ground_truth):
    # module-level so that it pickles
    return 0.5


class TestGetAccuracyReward:
    def test_factory_output_is_named_and_picklable(self):
        reward = get_accuracy_reward(format_gate=False, math_timeout=2.0)
        assert reward.__name__ == "accuracy_reward"
        restored = pickle.loads(pickle.dumps(reward))
        assert restored.__name__ == "accuracy_reward"
        assert (restored.format_gate, restored.math_timeout) == (False, 2.0)
        # behaviour survives the round trip: no format gate, numerical equivalence
        assert restored(["<answer>0.5</answer>"], ["1/2"]) == [1.0]

    def test_module_level_reward_is_picklable(self):
        assert pickle.loads(pickle.dumps(accuracy_reward)) is accuracy_reward
        assert pickle.loads(pickle.dumps(format_reward)) is format_reward

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"format_gate": "yes"},
            {"math_timeout": 0},
            {"math_timeout": -1.0},
            {"math_timeout": True},
            {"max_answer_chars": 0},
        ],
    )
    def test_invalid_arguments_raise(self, kwargs):
        with pytest.raises((TypeError, ValueError)):
            get_accuracy_reward(**kwargs)

    def test_answers_over_the_length_cap_score_zero(self):
        reward = get_accuracy_reward(max_answer_chars=10)
        # 11 characters, correct text: over the cap
        assert reward([good("the cat sat")], ["the cat sat"], problem_type=["OCR"]) == [0.0]
        assert reward([good("the cat")], ["the cat"], problem_type=["OCR"]) == [1.0]

    def test_in_process_math_works_from_a_thread(self):
        # math_timeout=None: no helper process, no signals outside the main thread
        reward = get_accuracy_reward(math_timeout=None)
        out = {}
        thread = threading.Thread(target=lambda: out.update(r=reward([good(r"\frac{1}{2}"), good("2")], ["0.5", "3"])))
        thread.start()
        thread.join(30)
        assert out["r"] == [1.0, 0.0]


# ---------------------------------------------------------------------------------------------------------------------
# Robustness: never raises, bounded time


def timed_scores(completions, solutions, problem_types, reward=accuracy_reward):
    start = time.perf_counter()
    out = reward(completions, solutions, problem_type=problem_types)
    return out, time.perf_counter() - start


PATHOLOGICAL_ANSWERS = [
    "9^9^9^9^9",  # the classic exponent tower (latex2sympy reads it left-associatively: 9^6561)
    "9^{9^{9}}",  # a right-associated tower: 9^387420489, rejected before parsing
    "10^{10^{10}}",
    "1000000!",  # rejected factorial
    "(2^{30})!",  # passes the guards, stopped by the helper's timer
    "(" * 10_000 + "1" + ")" * 10_000,  # 10k nested parentheses
    "{" * 5_000 + "x" + "}" * 5_000,  # deep braces
    "1" * 100_000,  # a long digit string
    r"\frac{" * 300 + "1" + "}{2}" * 300,  # deep LaTeX nesting
    r"\int_0^1 e^{x^2}\sin(x^3)\,dx",  # hard symbolic work
    r"\sum_{i=1}^{10^{12}} i^{i}",
    "x" * 1_000_000,  # 1 MB of text
]


class TestTimeBound:
    @pytest.mark.parametrize("answer", PATHOLOGICAL_ANSWERS, ids=lambda a: a[:20])
    @pytest.mark.parametrize("problem_type", ["numerical", "multiple choice", "OCR", "free-form"])
    def test_pathological_answer_is_wrong_in_bounded_time(self, answer, problem_type):
        out, elapsed = timed_scores([good(answer)], ["1"], [problem_type])
        if problem_type in ("numerical", "multiple choice"):
            assert out == [0.0]
        else:
            # graded types: a one-word wrong answer is 1 substitution in 1 word, exp(-1) for OCR; never a match
            assert 0.0 <= out[0] < 1.0
        assert elapsed < TIME_BOUND_S

    def test_megabyte_completion_without_tags(self):
        out, elapsed = timed_scores(["9" * 1_000_000], ["9"], [None])
        assert out == [0.0]
        assert elapsed < TIME_BOUND_S

    def test_pathological_answer_from_a_non_main_thread(self):
        # math-verify's own signal timeouts cannot work here; the helper process still bounds the row
        result = {}

        def run():
            result["out"], result["elapsed"] = timed_scores(
                [good("(2^{30})!"), good("1/2")], ["1", "0.5"], [None, None]
            )

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(30)
        assert result["out"] == [0.0, 1.0]
        assert result["elapsed"] < 2 * TIME_BOUND_S  # two rows

    def test_helper_timer_stops_work_without_a_restart(self):
        # `(2^{30})!` passes the guards; the helper's own timer interrupts sympy, so the helper survives
        pid = acc._MATH_WORKER._proc.pid
        out, elapsed = timed_scores([good("(2^{30})!")], ["1"], ["numerical"])
        assert out == [0.0]
        assert 0.9 < elapsed < TIME_BOUND_S  # it did run until the 1 s timer
        assert acc._MATH_WORKER._proc.pid == pid
        assert accuracy_reward([good("0.5")], ["1/2"]) == [1.0]


class TestMathGuard:
    # the cheap checks that keep hopeless inputs away from sympy (the helper's timer is the backstop)
    @pytest.mark.parametrize(
        "text",
        [
            "9^{9^{9}}",  # exponent 387420489
            "2^{100000}",  # exponent above 10,000
            "9^9^9",  # double superscript
            "2**3**4",  # the same in Python syntax
            r"\left(10^{4000}\right)^{9999}",  # each exponent small, the result has 40 million digits
            "100001!",  # factorial above 10,000
            "(" * 11 + "1" + ")" * 11,  # 11 nested brackets
            "1" * 2001,  # over 2,000 characters
        ],
    )
    def test_hopeless_inputs_are_rejected(self, text):
        assert acc._math_guard(text) is not None

    @pytest.mark.parametrize(
        "text",
        [r"2^{2^{2}}", "2^{100}", r"6.02 \times 10^{23}", r"\frac{\sqrt{3}}{2}", "x^2 + 2x + 1", "10!", r"e^{i\pi}"],
    )
    def test_ordinary_answers_pass(self, text):
        assert acc._math_guard(text) is None

    def test_guard_is_fast_on_adversarial_input(self):
        # unmatched openers make every operand scan to the end: quadratic, but on at most 2,000 characters
        start = time.perf_counter()
        assert acc._math_guard("^(]" * 666) is None
        assert time.perf_counter() - start < 0.5


# A stand-in for the helper process that announces itself and then hangs on the first request, like a C-level stall
# that no Python signal can interrupt (fault injection only: the real helper is used everywhere else).
_HANGING_HELPER = "import sys, time\nprint('{\"ready\": true}', flush=True)\nsys.stdin.readline()\ntime.sleep(60)\n"


class TestMathHelperFaults:
    def test_stalled_helper_is_killed_and_replaced_within_the_bound(self, monkeypatch):
        worker = acc._MathWorker()
        monkeypatch.setattr(worker, "_command", lambda: [sys.executable, "-c", _HANGING_HELPER])
        try:
            start = time.perf_counter()
            assert worker.compare("1", "2", timeout=0.3) == 0.0
            elapsed = time.perf_counter() - start
            # first start (interpreter launch) + 0.3 s timeout + 0.5 s grace, then the kill
            assert elapsed < 0.3 + acc._KILL_GRACE_S + 1.5
            first_pid = worker._proc.pid  # the replacement, already started
            start = time.perf_counter()
            assert worker.compare("1", "2", timeout=0.3) == 0.0
            # a restart is charged to the row's own budget: 0.3 s + 0.5 s, plus slack
            assert time.perf_counter() - start < 0.3 + acc._KILL_GRACE_S + 0.3
            assert worker._proc.pid != first_pid
        finally:
            worker.close()

    def test_helper_that_died_is_restarted(self):
        # the real helper, killed from outside between two rows (e.g. by the OOM killer)
        worker = acc._MathWorker()
        try:
            assert worker.compare("0.5", "1/2", timeout=5.0) == 1.0
            worker._proc.kill()
            worker._proc.wait()
            # a generous timeout, so that the restart (about 1 s, charged to this row) fits in the row's budget
            assert worker.compare("0.5", "1/2", timeout=5.0) == 1.0
        finally:
            worker.close()

    def test_concurrent_callers_share_the_helper(self):
        # TRL's async path runs reward functions in several threads at once
        results = {}

        def run(i):
            results[i] = accuracy_reward([good("1/2"), good("0.4"), good(r"\frac{3}{4}")], ["0.5", "0.5", "0.75"])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert results == {i: [1.0, 0.0, 1.0] for i in range(4)}

    def test_helper_that_cannot_start_falls_back_in_process(self, monkeypatch, caplog):
        worker = acc._MathWorker()
        monkeypatch.setattr(worker, "_command", lambda: [sys.executable, "-c", "raise SystemExit(3)"])
        with caplog.at_level(logging.WARNING, logger=acc.__name__):
            assert worker.compare("1", "1", timeout=0.5) is None  # None: the caller verifies in-process
            assert worker.compare("1", "1", timeout=0.5) is None  # and it does not retry
        assert sum("Could not start" in r.getMessage() for r in caplog.records) == 1


# ---------------------------------------------------------------------------------------------------------------------
# Property-based: arbitrary and adversarial answers never raise, stay in [0, 1] and in the time bound

_LATEX_FRAGMENTS = [
    r"\frac{",
    "}{",
    "}",
    "{",
    "^",
    "^{",
    "_",
    r"\sqrt{",
    r"\sum_{i=1}^{",
    r"\int",
    r"\left(",
    r"\right)",
    "(",
    ")",
    "!",
    "9",
    "99999",
    "x",
    "=",
    "+",
    "-",
    r"\cdot",
    r"\pi",
    "e",
    "$",
    "\\$",
    r"\boxed{",
    r"\text{",
    "%",
    ".",
    ",",
    r"\infty",
    r"\binom{",
    "<answer>",
    "</answer>",
    "<think>",
]

adversarial_answers = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(_LATEX_FRAGMENTS), max_size=60).map("".join),
    st.integers(1, 3000).map(lambda n: "(" * n + "1" + ")" * n),  # nested brackets
    st.integers(1, 3000).map(lambda n: "{" * n + "x" + "}" * n),
    st.lists(st.integers(2, 99), min_size=2, max_size=8).map(lambda xs: "^".join(map(str, xs))),  # towers a^b^c
    st.lists(st.integers(2, 99), min_size=2, max_size=5).map(  # braced towers a^{b^{c}}
        lambda xs: "^{".join(map(str, xs)) + "}" * (len(xs) - 1)
    ),
    st.integers(1, 50_000).map(lambda n: "7" * n),  # long digit strings
    st.integers(0, 10**12).map(lambda n: f"{n}!"),  # factorials
    st.text(alphabet="ABCDE(),. and", max_size=80),  # multiple-choice-like junk
)

PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


class TestAccuracyRewardProperties:
    @pytest.mark.parametrize("problem_type", ["numerical", "multiple choice", "OCR", "free-form", "text", None])
    @PROPERTY_SETTINGS
    @given(
        answer=adversarial_answers,
        solution=st.one_of(st.sampled_from(["0.5", "B", "A, C", "the cat"]), st.text(max_size=40)),
    )
    def test_any_answer_scores_in_unit_interval_within_bound(self, problem_type, answer, solution):
        for completion in (good(answer), conversational(good(answer)), answer):
            out, elapsed = timed_scores([completion], [solution], [problem_type])
            assert len(out) == 1 and isinstance(out[0], float)
            assert 0.0 <= out[0] <= 1.0
            assert elapsed < TIME_BOUND_S

    @PROPERTY_SETTINGS
    @given(text=st.text(max_size=2000))
    def test_format_reward_on_arbitrary_text(self, text):
        start = time.perf_counter()
        assert format_reward([text, conversational(text)]) in ([0.0, 0.0], [1.0, 1.0])
        assert time.perf_counter() - start < TIME_BOUND_S
