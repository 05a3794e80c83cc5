# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Worst-case time of one `accuracy_reward` call per verifier, at the largest answers the answer cap allows: the
slowest of `--repeats` calls per case (issue 20 item 7 asks every call to finish under 1 s).

    python benchmarks/bench_rewards.py [--only CJK]

Before the token cap (d0b03c9), the 2 MB rows ran out of memory (a 10,000 x 2,000,000 LCS table).
"""

import argparse
import time

from sophiavl_trl.rewards import accuracy_reward
from sophiavl_trl.rewards.accuracy_rewards import MAX_ANSWER_CHARS


def cjk(n: int, offset: int = 0) -> str:
    return "".join(chr(0x4E00 + (7 * i + offset) % 2000) for i in range(n))  # distinct-ish letters, one token each


def ascii_words(n: int, offset: int = 0) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    return " ".join(letters[(7 * i + offset) % 36] for i in range(n))  # n one-letter tokens: 2 characters each


CASES = [  # (name, problem type, answer, truth); offset 7: truth[i] == answer[i + 1], a long common subsequence
    ("free-form, CJK 9,990 chars vs 2,000", "free-form", cjk(MAX_ANSWER_CHARS - 10), cjk(2000, 7)),
    ("text, CJK 9,990 chars vs 300", "text", cjk(MAX_ANSWER_CHARS - 10), cjk(300, 7)),
    ("free-form, ASCII 5,000 tokens vs 1,500", "free-form", ascii_words(4995), ascii_words(1500, 7)),
    ("free-form, CJK 9,990 chars vs 2 MB", "free-form", cjk(MAX_ANSWER_CHARS - 10), cjk(2_000_000, 7)),
    ("free-form, ASCII 2,500 words vs 2,500", "free-form", ascii_words(2495, 0).replace(" ", "xy "), ascii_words(2500, 7).replace(" ", "xy ")),
    ("OCR, ASCII 5,000 words vs 1,500", "OCR", ascii_words(4995), ascii_words(1500, 7)),
    ("OCR, CJK 9,990 chars vs 2,000", "OCR", cjk(MAX_ANSWER_CHARS - 10), cjk(2000, 7)),
    ("OCR, ASCII 5,000 words vs 2 MB", "OCR", ascii_words(4995), ascii_words(1_000_000, 7)),
    ("numerical, 9,990 digits", "numerical", "1" * (MAX_ANSWER_CHARS - 10), "1" * 2000),
    ("numerical, 9,989 digits + a letter", "numerical", "1" * (MAX_ANSWER_CHARS - 11) + "x", "1" * 2000),
    ("multiple choice, 9,990 chars", "multiple choice", "A," * ((MAX_ANSWER_CHARS - 10) // 2), "A,B"),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="run the cases whose name contains this (e.g. '2,000')")
    args = parser.parse_args()
    accuracy_reward(["<think>.</think><answer>a b</answer>"] * 3, ["a b"] * 3, ["OCR", "text", "numerical"])  # imports
    for name, problem_type, answer, truth in (case for case in CASES if args.only in case[0]):
        completion = f"<think>.</think><answer>{answer}</answer>"
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            score = accuracy_reward([completion], [truth], problem_type)[0]
            times.append(time.perf_counter() - start)
        print(f"{name:<40} worst {max(times):6.3f} s  (score {score:.3f}, answer {len(answer):,} chars)")


if __name__ == "__main__":
    main()
