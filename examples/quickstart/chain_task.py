# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""
A multi-step task where the thinking reward can change what GRPO learns (`scripts/compare.sh`, docs/quickstart.md).

"What is a+b+c+d?" is reasoned in chained steps, `<think>a+b=x,x+c=y,y+d=z</think><answer>z</answer>`. A step is
*chained and true* when its left operand is the question's first term (first step) or the value the previous step
wrote, its right operand is the next term, and its sum is right. The judge's label is the fraction of chained-true
steps (0, 1/3, 2/3 or 1: `step_label`); reasoning is *sound* when every step is; an answer that is right with unsound
reasoning is *lucky*.

Design choices (the parameters of `ChainTask`):

- `num_terms=4` (3 steps): enough steps for partial credit to rank completions that are all wrong, few enough for a
  2-layer model to learn the format in minutes.
- `low, high = 1, 4`: 256 questions; sums stay below 20, so every number is a short token sequence.
- `p_step=0.5`: each step of a cold-start trace is right with this probability. The cold-start policy then answers
  right about 1 time in 5 at temperature 1, so GRPO meets many groups whose 4 completions are all wrong.
- `offsets=(-2, -1, 1, 2)`: a wrong step is off by one of these (never below 0). Errors propagate and the answer is
  the last value written, so "wrong thinking, right answer" arises by itself, from errors that cancel out.

`write_task(out)` writes the registry `dataset_info.json` with entries `chain` (GRPO prompts: the 192 questions not held
out), `chain_heldout` (64 questions never used as GRPO prompts) and `chain_sft` (cold-start rows over all 256
questions, with a `completion` column), and judge records `judge_train.jsonl` / `judge_heldout.jsonl` (traces at
per-step error rates 0.2, 0.5 and 0.8, scored by `step_label` on the judge's 0.1 grid), and `judge_probe.jsonl`: traces
that also misread an operand (`p_operand=0.3`), an error the judge's records do not show, to measure what the judge
has not been taught (a diagnostic, not the gate). Command line:
`python examples/quickstart/chain_task.py OUT [--model DIR]`.
"""

import itertools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path


STEP = re.compile(r"\s*(-?\d+)\s*\+\s*(-?\d+)\s*=\s*(-?\d+)\s*")


@dataclass(frozen=True)
class ChainTask:
    """The task's parameters (module docstring: why each value)."""

    num_terms: int = 4
    low: int = 1
    high: int = 4
    p_step: float = 0.5
    offsets: tuple[int, ...] = (-2, -1, 1, 2)

    def questions(self) -> list[tuple[int, ...]]:
        """Every tuple of terms, in a fixed order."""
        return list(itertools.product(range(self.low, self.high + 1), repeat=self.num_terms))

    def split(self, num_heldout: int = 64, seed: int = 0) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
        """(GRPO prompts, held-out questions): a seeded shuffle of `questions()`."""
        items = self.questions()
        random.Random(seed).shuffle(items)
        return items[num_heldout:], items[:num_heldout]

    def trace(self, rng: random.Random, terms: tuple[int, ...], p_step: float | None = None,
              p_operand: float = 0.0) -> tuple[str, int]:  # fmt: skip
        """A chained reasoning and its answer (the last value written): each step's sum right with probability
        `p_step`; with probability `p_operand` the step first misreads an operand (a term other than the question's,
        or a left operand that is not the previous value), which makes it unchained whatever its sum."""
        p_step = self.p_step if p_step is None else p_step
        value, steps = terms[0], []
        for term in terms[1:]:
            left, right = value, term
            if p_operand and rng.random() < p_operand:  # no draw at 0: cold-start rows stay as they were
                if rng.random() < 0.5:
                    right = rng.choice([t for t in range(self.low, self.high + 1) if t != term])
                else:
                    left = rng.choice([value + o for o in self.offsets if value + o >= 0])
            total = left + right
            if rng.random() >= p_step:
                total += rng.choice([o for o in self.offsets if total + o >= 0])
            steps.append(f"{left}+{right}={total}")
            value = total
        return ",".join(steps), value


def question(terms: tuple[int, ...]) -> str:
    return f"What is {'+'.join(map(str, terms))}?"


def terms_of(text: str) -> list[int]:
    """The terms of a question written by `question`."""
    found = re.search(r"What is ([\d+]+)\?", text)
    if not found:
        raise ValueError(f"not a chain-task question: {text!r}")
    return [int(t) for t in found[1].split("+")]


def step_label(question_text: str, reasoning: str) -> float:
    """The fraction of the question's steps that are chained and true (the judge's label; steps past the last are
    ignored).

    Example:
    ```python
    >>> step_label("What is 1+2+3+4?", "1+2=3,3+3=6,6+4=10")
    1.0
    >>> step_label("What is 1+2+3+4?", "1+2=4,4+3=7,7+4=11")  # a wrong first step, then chained and true
    0.6666666666666666
    >>> step_label("What is 1+2+3+4?", "1+2=3,4+3=7,7+4=11")  # the second step is not chained
    0.6666666666666666

    ```
    """
    terms = terms_of(question_text)
    parts = reasoning.split(",")
    good, previous = 0, terms[0]
    for i, term in enumerate(terms[1:]):
        step = STEP.fullmatch(parts[i]) if i < len(parts) else None
        if step is None:
            break  # nothing after a malformed step is chained
        left, right, total = map(int, step.groups())
        good += left == previous and right == term and left + right == total
        previous = total
    return good / (len(terms) - 1)


def grid(score: float) -> float:
    """A label on the judge's 0.1 grid (1/3 -> 0.3, 2/3 -> 0.7)."""
    return round(score, 1)


def write_task(out: str | Path, task: ChainTask = ChainTask(), *, num_sft: int = 8000, num_judge: int = 20000,
               judge_p_steps: tuple[float, ...] = (0.2, 0.5, 0.8), num_probe: int = 1000, num_heldout: int = 64,
               seed: int = 0) -> Path:  # fmt: skip
    """Write the registry, the GRPO / held-out / cold-start rows and the judge records to `out` (module docstring)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    train, heldout = task.split(num_heldout, seed)

    def row(terms: tuple[int, ...], **extra) -> dict:
        return {"problem": question(terms), "solution": f"<answer>{sum(terms)}</answer>", "problem_type": "numerical",
                "data_type": "text", **extra}  # fmt: skip

    sft = []
    for _ in range(num_sft):
        terms = rng.choice(task.questions())
        reasoning, answer = task.trace(rng, terms)
        sft.append(row(terms, completion=f"<think>{reasoning}</think><answer>{answer}</answer>"))
    for name, rows in (("chain", [row(t) for t in train]), ("chain_heldout", [row(t) for t in heldout]),
                       ("chain_sft", sft)):  # fmt: skip
        (out / f"{name}.json").write_text(json.dumps(rows))
    entries = {name: {"file_path": f"{name}.json"} for name in ("chain", "chain_heldout", "chain_sft")}
    (out / "dataset_info.json").write_text(json.dumps(entries, indent=1))

    def records(rng: random.Random, n: int, p_operand: float = 0.0) -> list[dict]:
        found = []
        for i in range(n):
            terms = rng.choice(task.questions())
            reasoning, _ = task.trace(rng, terms, judge_p_steps[i % len(judge_p_steps)], p_operand)
            found.append({"question": question(terms), "reasoning": reasoning,
                          "score": grid(step_label(question(terms), reasoning))})  # fmt: skip
        return found

    judge = records(rng, num_judge)
    cut = int(0.8 * len(judge))
    # The probe: traces that also misread operands, an error the judge's records never show (its own random stream,
    # so the other files do not depend on it).
    probe = records(random.Random(seed + 1), num_probe, p_operand=0.3)
    for name, part in (("judge_train", judge[:cut]), ("judge_heldout", judge[cut:]), ("judge_probe", probe)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return out / "dataset_info.json"


if __name__ == "__main__":
    from make_task import main

    main(write_task, __doc__)
