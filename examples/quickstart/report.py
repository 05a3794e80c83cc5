# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""
The quickstart's numbers.

- `python examples/quickstart/report.py judge PREDICTIONS.jsonl`: the rank (Spearman) correlation between the judged
  and the rule's scores of held-out records (`sophiavl-trl judge-eval --predictions`), and the mean judged score of
  sound and unsound reasoning.
- `python examples/quickstart/report.py curve RUN_DIR [RUN_DIR ...]`: per run, the mean accuracy reward of the first
  and last 5 logged steps, and the judge's per-step mean thinking score (range), from `trainer_state.json`.
"""

import json
import sys
from pathlib import Path


def spearman(x: list[float], y: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var if var else 0.0


def judge_report(predictions: str) -> dict:
    rows = [json.loads(line) for line in Path(predictions).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["prediction"] is not None]
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return {
        "num_scored": len(rows),
        "spearman": spearman([r["prediction"] for r in rows], [r["target"] for r in rows]),
        "mean_score_sound": mean([r["prediction"] for r in rows if r["target"] >= 0.5]),
        "mean_score_unsound": mean([r["prediction"] for r in rows if r["target"] < 0.5]),
    }


def curve_report(run: str, k: int = 5) -> dict:
    logs = [x for x in json.loads((Path(run) / "trainer_state.json").read_text())["log_history"] if "loss" in x]
    acc = [x["rewards/accuracy_reward/mean"] for x in logs]
    think = [x["trust/thinking_score_mean"] for x in logs if x.get("trust/thinking_score_mean") is not None]
    out = {"run": run, "steps": len(acc), "acc_first": sum(acc[:k]) / k, "acc_last": sum(acc[-k:]) / k}
    out["acc_gain"] = out["acc_last"] - out["acc_first"]
    if think:
        out |= {"think_min": min(think), "think_max": max(think), "think_distinct": len(set(think))}
    return out


if __name__ == "__main__":
    command, *paths = sys.argv[1:]
    if command == "judge":
        print(json.dumps(judge_report(paths[0]), indent=1))
    else:
        for path in paths:
            print(json.dumps(curve_report(path)))
