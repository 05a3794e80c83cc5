# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""`sophiavl-trl plot`: reward curves of training runs (TRL's `trainer_state.json`), several runs overlaid, raw and
EMA-smoothed; optionally where each step's time went (`timing/*`, first run)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sophiavl_trl._fields import option
from sophiavl_trl.scripts import CLIError, parse_args


# (metric key in the log history, panel title); a panel is drawn when any run logged its metric.
PANELS = [
    ("rewards/accuracy_reward/mean", "accuracy reward"),
    ("rewards/format_reward/mean", "format reward"),
    ("trust/thinking_score_mean", "thinking score (judge)"),
    ("trust/gamma_mean", "trust factor gamma"),
    ("trust/weight_mean", "thinking weight w"),
    ("reward", "total reward"),
]
# The phases on a step's critical path, stacked; the judge's wall time overlaps the log-prob pass (drawn as a line).
TIMING = ["generation", "weight_sync", "logprobs", "outcome_rewards", "judge_wait", "forward_backward", "optimizer"]


@dataclass
class PlotArguments:
    r"""Reward curves (accuracy, format, thinking score, trust factor, weight, total reward) from the log history of
    training runs (trainer_state.json, or the newest checkpoint's), raw and EMA-smoothed; runs are given as RUN_DIR
    positional arguments (or --run_dirs)."""

    run_dirs: list[str] = option([], "Training output folders.")
    output: str = option("reward_curves.png", "PNG to write.", aliases=["-o"])
    smoothing: float = option(0.6, "EMA smoothing in [0, 1); 0 for none.")
    labels: list[str] | None = option(None, "Legend names, one per run.")
    timing_output: str | None = option(None, "Also draw the first run's timing/* per step, stacked, into this PNG.")

    def __post_init__(self) -> None:
        if not 0 <= self.smoothing < 1:
            raise CLIError(f"--smoothing must be in [0, 1), got {self.smoothing}")


def read_log_history(run_dir: str | Path) -> list[dict]:
    r"""The log history of a run folder: its `trainer_state.json`, else its last checkpoint's."""
    from transformers.trainer_utils import get_last_checkpoint

    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir} (give a training output_dir)")
    for folder in (run_dir, get_last_checkpoint(run_dir)):
        if folder is not None and (state := Path(folder) / "trainer_state.json").is_file():
            return json.loads(state.read_text())["log_history"]
    raise FileNotFoundError(f"no trainer_state.json in {run_dir} or its checkpoints: is it a training output folder?")


def _save(fig: Any, output: str) -> Path:
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    return Path(output)


def plot_runs(
    run_dirs: Sequence[str], output: str, smoothing: float = 0.6, labels: Sequence[str] | None = None
) -> Path:
    r"""Draw the reward curves of `run_dirs` (legend: `labels`, default the folder names) into the PNG `output`."""
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    histories = [read_log_history(d) for d in run_dirs]
    labels = labels or [Path(d).name for d in run_dirs]
    panels = [(key, title) for key, title in PANELS if any(key in h for history in histories for h in history)]
    if not panels:
        raise ValueError(f"no reward metrics in the logs of {list(run_dirs)}")
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="tight")  # no pyplot: no global state, no GUI backend
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (key, title) in zip(axes.flat, panels):
        for i, (history, label) in enumerate(zip(histories, labels, strict=True)):
            values = {h["step"]: h[key] for h in history if "step" in h and isinstance(h.get(key), int | float)}
            values = pd.Series(values, dtype=float)
            values = values[np.isfinite(values)]  # NaN (a step the judge scored nothing) would poison the average
            if len(values):
                # Raw, and the EMA with TensorBoard's bias correction (pandas' `adjust=True`); a line style per run
                # as well: coinciding runs stay visible.
                ax.plot(values.index, values, color=f"C{i % 10}", alpha=0.25, linewidth=1)
                ema, style = values.ewm(alpha=1 - smoothing).mean(), ("-", "--", ":", "-.")[i % 4]
                ax.plot(values.index, ema, color=f"C{i % 10}", linewidth=2, label=label, linestyle=style)
        ax.set(title=title, xlabel="step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    return _save(fig, output)


def plot_timing(run_dir: str, output: str) -> Path:
    r"""Draw one stacked bar per step of the run's `timing/*` metrics (seconds) into the PNG `output`."""
    from matplotlib.figure import Figure

    history = [h for h in read_log_history(run_dir) if "timing/generation" in h and "step" in h]
    if not history:
        raise ValueError(f"no timing/* metrics in the log of {run_dir} (written by TrustGRPOTrainer)")
    steps = [h["step"] for h in history]
    fig = Figure(figsize=(max(6.0, 0.25 * len(steps)), 3.6), layout="tight")
    ax = fig.subplots()
    bottom = [0.0] * len(steps)
    for i, phase in enumerate(TIMING):
        if any(values := [h.get(f"timing/{phase}", 0.0) or 0.0 for h in history]):
            ax.bar(steps, values, bottom=bottom, color=f"C{i}", label=phase.replace("_", " "))
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    if any("timing/judge" in h for h in history):
        judge = [h.get("timing/judge", math.nan) for h in history]
        ax.plot(steps, judge, "k.--", linewidth=1, label="judge wall time (overlaps log-probs)")
    ax.set(xlabel="step", ylabel="seconds", title=f"where each step's time went: {Path(run_dir).name}")
    ax.legend(fontsize=7, ncols=2)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, output)


def main(argv: list[str]) -> int:
    r"""`sophiavl-trl plot ARGS`."""
    args = parse_args(PlotArguments, argv, "plot", positionals="run_dirs")
    if not args.run_dirs:
        raise CLIError("give at least one RUN_DIR (a training output folder)")
    if args.labels is not None and len(args.labels) != len(args.run_dirs):
        raise CLIError(f"got {len(args.labels)} --labels for {len(args.run_dirs)} runs")
    print(f"wrote {plot_runs(args.run_dirs, args.output, args.smoothing, args.labels)}")
    if args.timing_output:
        print(f"wrote {plot_timing(args.run_dirs[0], args.timing_output)}")
    return 0
