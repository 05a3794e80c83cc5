# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The chain task of `scripts/compare.sh` (examples/quickstart/chain_task.py): its rule, its labels, its data, and a
short end-to-end comparison that writes a valid summary.json. The full 3-seed comparison is not run here."""

import json
import random
import re
import sys
from pathlib import Path

import pytest


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "quickstart"))

import chain_task  # noqa: E402
from chain_task import ChainTask, step_label  # noqa: E402


Q = "What is 1+2+3+4?"


@pytest.mark.parametrize(
    "reasoning, label",
    [
        ("1+2=3,3+3=6,6+4=10", 1.0),
        ("1+2=4,4+3=7,7+4=11", 2 / 3),  # first step false, the rest chained on its value and true
        ("1+2=3,3+3=7,7+4=10", 1 / 3),  # second false, third chained but false (7+4 is not 10)
        ("1+2=3,4+3=7,7+4=11", 2 / 3),  # second step true but not chained (4 is not the value written, 3)
        ("1+2=3,3+4=7,7+3=10", 1 / 3),  # terms in the wrong order: not the question's steps
        ("2+1=3,3+3=6,6+4=10", 2 / 3),  # first step's operands are not the question's first two terms
        ("1+2=3,3+3=6", 2 / 3),  # a missing step
        ("1+2=3,oops,6+4=10", 1 / 3),  # nothing after a malformed step counts
        ("", 0.0),
        (" 1 + 2 = 3 , 3+3=6 ,6+4=10 ", 1.0),  # spaces are fine
    ],
)
def test_step_label(reasoning, label):
    assert step_label(Q, reasoning) == pytest.approx(label)


def test_question_round_trip_and_bad_question():
    assert chain_task.terms_of(chain_task.question((3, 1, 4, 1))) == [3, 1, 4, 1]
    with pytest.raises(ValueError, match="not a chain-task question"):
        step_label("How many shapes?", "1+2=3")


def test_traces_follow_the_error_model():
    task, rng = ChainTask(), random.Random(0)
    lucky = sound = right = 0
    n = 4000
    for _ in range(n):
        terms = rng.choice(task.questions())
        reasoning, answer = task.trace(rng, terms)
        steps = [tuple(map(int, re.fullmatch(r"(\d+)\+(\d+)=(\d+)", s).groups())) for s in reasoning.split(",")]
        assert [s[1] for s in steps] == list(terms[1:]) and steps[0][0] == terms[0]
        assert all(b[0] == a[2] for a, b in zip(steps, steps[1:], strict=False))  # always chained
        assert all(t - (a + b) in (0, *task.offsets) and t >= 0 for a, b, t in steps)  # off by the offsets, never < 0
        assert answer == steps[-1][2]  # the answer is the last value written
        label = step_label(chain_task.question(terms), reasoning)
        sound += label == 1.0
        right += answer == sum(terms)
        lucky += answer == sum(terms) and label < 1.0
    # 3 steps right with p = 0.5: sound 1/8; errors that cancel make right answers more frequent than sound ones.
    assert sound / n == pytest.approx(0.125, abs=0.02)
    assert right / n > sound / n + 0.05 and lucky > 0


def test_operand_misreads_are_unchained_steps():
    # The probe's error: a step that misreads an operand is never chained-true, whatever its sum; its value chains on.
    task, rng = ChainTask(), random.Random(1)
    misread = 0
    for _ in range(2000):
        terms = rng.choice(task.questions())
        reasoning, answer = task.trace(rng, terms, p_step=1.0, p_operand=0.5)  # every sum right: only misreads
        steps = [tuple(map(int, re.fullmatch(r"(\d+)\+(\d+)=(\d+)", s).groups())) for s in reasoning.split(",")]
        previous, bad = terms[0], 0
        for (left, right, total), term in zip(steps, terms[1:], strict=True):
            assert left + right == total and total >= 0
            bad += (left, right) != (previous, term)
            previous = total
        assert step_label(chain_task.question(terms), reasoning) == pytest.approx(1 - bad / 3)
        assert answer == steps[-1][2]
        misread += bad
    assert misread / 6000 == pytest.approx(0.5, abs=0.03)


def test_write_task(tmp_path):
    registry = chain_task.write_task(tmp_path, num_sft=200, num_judge=300, num_probe=300)
    entries = json.loads(registry.read_text())
    assert set(entries) == {"chain", "chain_heldout", "chain_sft"}
    rows = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in entries}
    train, heldout = ({r["problem"] for r in rows[n]} for n in ("chain", "chain_heldout"))
    assert len(train) == 192 and len(heldout) == 64 and not train & heldout  # held out: never a GRPO prompt
    for row in rows["chain_sft"]:
        think, answer = re.fullmatch(r"<think>(.*)</think><answer>(\d+)</answer>", row["completion"]).groups()
        assert think.split(",")[-1].endswith(f"={answer}")
    records = [json.loads(line) for line in (tmp_path / "judge_train.jsonl").read_text().splitlines()]
    records += [json.loads(line) for line in (tmp_path / "judge_heldout.jsonl").read_text().splitlines()]
    assert len(records) == 300
    assert {r["score"] for r in records} == {0.0, 0.3, 0.7, 1.0}  # 0, 1/3, 2/3, 1 on the judge's 0.1 grid
    assert all(r["score"] == round(step_label(r["question"], r["reasoning"]), 1) for r in records)
    probe = [json.loads(line) for line in (tmp_path / "judge_probe.jsonl").read_text().splitlines()]
    assert len(probe) == 300 and all(r["score"] == round(step_label(r["question"], r["reasoning"]), 1) for r in probe)

    def misreads_a_term(record: dict) -> bool:
        rights = [int(re.match(r"\d+\+(\d+)", step)[1]) for step in record["reasoning"].split(",")]
        return rights != chain_task.terms_of(record["question"])[1:]

    assert 0.2 < sum(map(misreads_a_term, probe)) / len(probe) < 0.8  # the probe shows what the records never do
    assert not any(map(misreads_a_term, records))

    from sophiavl_trl.data import load_sophiavl_dataset

    loaded = load_sophiavl_dataset("chain_heldout", registry)
    assert loaded[0]["problem"] == rows["chain_heldout"][0]["problem"] and loaded[0]["prompt"][-1]["role"] == "user"


def test_rule_judge_scores_completions():
    from compare import rule_judge

    completions = [[{"role": "assistant", "content": "<think>1+2=3,3+3=6,6+4=10</think><answer>10</answer>"}],
                   "<think>1+2=4,4+3=7,7+4=11</think><answer>11</answer>", "no tags at all"]  # fmt: skip
    assert rule_judge(None, completions, [Q] * 3) == pytest.approx([1.0, 2 / 3, 0.0])


@pytest.mark.slow
def test_compare_end_to_end_writes_a_valid_summary(tiny_model_dir, tmp_path):
    # Two GRPO steps per arm from the untrained tiny model, the rule judge, one seed: the figures are near 0 and mean
    # nothing; what is checked is that every arm trains, is evaluated and lands in a complete summary.json and figure.
    import subprocess

    registry = chain_task.write_task(tmp_path / "data", num_sft=10, num_judge=10)
    out = tmp_path / "out"
    script = Path(chain_task.__file__).with_name("compare.py")
    subprocess.run([sys.executable, str(script), "--policy", str(tiny_model_dir), "--registry", str(registry),
                    "--judge", "rule", "--seeds", "42", "--max_steps", "2", "--prompts", "2", "--samples", "1",
                    "--out", str(out)], check=True)  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["runs"]) == ["grpo", "grpo+thinking", "trust-grpo"]
    for arm, seeds in summary["runs"].items():
        run = seeds["42"]
        assert len(run["accuracy_reward_curve"]) == 2 and run["steps"] == 2
        for key in chain_task_figures():
            assert 0.0 <= run[key] <= 1.0, (arm, key)
        assert run["heldout_lucky"] <= run["heldout_accuracy"]
        assert run["cpu_s"] > 0 and run["wall_s"] > 0
        assert set(summary["means"][arm]) >= set(chain_task_figures())
    thinking = summary["runs"]["trust-grpo"]["42"]["thinking_score_mean"]
    assert all(t is not None for t in thinking)  # the judge was called on every step
    assert all(t is None for t in summary["runs"]["grpo"]["42"]["thinking_score_mean"])  # and never for GRPO
    assert (out / "compare.png").stat().st_size > 10_000


def chain_task_figures() -> tuple[str, ...]:
    from compare import FIGURES

    return FIGURES
