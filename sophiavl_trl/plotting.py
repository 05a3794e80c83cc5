# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Reward curves from training runs (TRL's `trainer_state.json` log history), several runs overlaid."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path


# (metric key in the log history, panel title). The first present key of each tuple is drawn.
PANELS: list[tuple[tuple[str, ...], str]] = [
    (("rewards/accuracy_reward/mean",), "accuracy reward"),
    (("rewards/format_reward/mean",), "format reward"),
    (("trust/thinking_score_mean",), "thinking score (judge)"),
    (("trust/gamma_mean",), "trust factor gamma"),
    (("trust/weight_mean",), "thinking weight w"),
    (("reward",), "total reward"),
]

LINE_STYLES = ("-", "--", ":", "-.")


def read_log_history(run_dir: str | Path) -> list[dict]:
    """The log history of a run folder: its `trainer_state.json`, or the newest checkpoint's."""
    run_dir = Path(run_dir)
    candidates = [run_dir / "trainer_state.json"]
    checkpoints = sorted(
        run_dir.glob("checkpoint-*"),
        key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1,
    )
    candidates += [c / "trainer_state.json" for c in reversed(checkpoints)]
    for path in candidates:
        if path.exists():
            return json.loads(path.read_text())["log_history"]
    raise FileNotFoundError(f"No trainer_state.json in {run_dir} or its checkpoints: is it a training output folder?")


def smooth(values: Sequence[float], weight: float) -> list[float]:
    r"""
    Exponential moving average with TensorBoard's bias correction: the first points are not pulled towards 0 (or
    towards the first value), so short runs are smoothed fairly. NaN and `None` values are skipped (kept as NaN).

    Args:
        values (`Sequence[float]`):
            The raw values.
        weight (`float`):
            Smoothing weight in [0, 1); 0 returns the values.

    Returns:
        `list[float]`: the smoothed values.

    Example:
    ```python
    >>> from sophiavl_trl.plotting import smooth

    >>> [round(v, 3) for v in smooth([1.0, 0.0, 0.0], 0.5)]
    [1.0, 0.333, 0.143]

    ```
    """
    out: list[float] = []
    last, count = 0.0, 0
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(float("nan"))
            continue
        last = weight * last + (1 - weight) * v
        count += 1
        out.append(last / (1 - weight**count) if weight > 0 else v)
    return out


def plot_runs(
    run_dirs: Sequence[str | Path], output: str | Path, *, smoothing: float = 0.6, labels: Sequence[str] | None = None
) -> Path:
    """Draw the reward curves of one or more runs into a PNG (light raw curve, bold smoothed curve).

    Args:
        run_dirs (`Sequence[str | Path]`): training output folders.
        output (`str | Path`): the PNG to write.
        smoothing (`float`, *optional*, defaults to `0.6`): EMA weight in [0, 1).
        labels (`Sequence[str]`, *optional*): legend names; the folder names by default.

    Returns:
        `Path`: the PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"Got {len(labels)} labels for {len(run_dirs)} runs.")
    from matplotlib.ticker import MaxNLocator

    histories = [read_log_history(d) for d in run_dirs]
    labels = list(labels) if labels else [Path(d).name for d in run_dirs]
    panels = [(keys, title) for keys, title in PANELS if any(k in h for hist in histories for h in hist for k in keys)]
    if not panels:
        raise ValueError(f"No reward metrics in the logs of {[str(d) for d in run_dirs]}.")
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (keys, title) in zip(axes.flat, panels):
        for i, (hist, label) in enumerate(zip(histories, labels)):
            key = next((k for k in keys if any(k in h for h in hist)), None)
            points = [(h["step"], h[key]) for h in hist if key in h and "step" in h and h[key] is not None]
            if not points:
                continue
            steps, values = zip(*points)
            color, style = f"C{i % 10}", LINE_STYLES[i % len(LINE_STYLES)]  # styles keep coinciding runs visible
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=1)
            ax.plot(steps, smooth(values, smoothing), color=color, linestyle=style, linewidth=2, label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
