# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The `sophiavl-trl` command line: `plot` (reward curves of training runs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _plot(args: argparse.Namespace) -> int:
    from sophiavl_trl.plotting import plot_runs

    path = plot_runs(args.run_dirs, args.output, smoothing=args.smoothing, labels=args.labels)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sophiavl-trl", description="SophiaVL-R1 / Trust-GRPO tools for TRL.")
    sub = parser.add_subparsers(dest="command", required=True)

    plot = sub.add_parser("plot", help="Draw reward curves (accuracy, thinking score, trust factor, weight) of runs.")
    plot.add_argument("run_dirs", nargs="+", help="training output folders (with trainer_state.json)")
    plot.add_argument("-o", "--output", default="reward_curves.png", help="PNG to write (default: %(default)s)")
    plot.add_argument("--smoothing", type=float, default=0.6, help="EMA smoothing in [0, 1) (default: %(default)s)")
    plot.add_argument("--labels", nargs="+", default=None, help="legend names, one per run")
    plot.set_defaults(func=_plot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
