# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The `sophiavl-trl` command, a dispatcher over `sophiavl_trl.scripts` (see docs/evaluation.md and
docs/thinking-reward-model.md). Bad input (`CLIError`, `ValueError`, `OSError` or PIL's `DecompressionBombError`)
prints one `sophiavl-trl <command>: error: ...` line (data validation lists the rows after it) and exits with status
2, or 1 for a judge that cannot be reached or scores nothing. Commands load on use: `--help` is fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence


PROG = "sophiavl-trl"
# command -> (module of sophiavl_trl.scripts, its entry point, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "infer": ("infer", "main", "answer one question with a trained model (training prompt, greedy decoding)"),
    "eval": ("eval", "main", "accuracy per problem type on benchmark-style data, with the training verifiers"),
    "plot": ("plot", "main", "reward curves of training runs (trainer_state.json), several runs overlaid"),
    "init-registry": ("init_registry", "main", "write the dataset_info.json of a downloaded SophiaVL-R1-130k"),
    "judge-records": ("judge", "records_main", "judge training records from a run's completions and a scorer"),
    "judge-eval": ("judge", "eval_main", "mean absolute error and agreement of a served judge on held-out records"),
}


def build_parser() -> argparse.ArgumentParser:
    r"""The top-level parser (the command names and their help); each command parses its own arguments."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="SophiaVL-R1 on TRL: inference, evaluation, reward curves and thinking-judge tools."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, _, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)  # `sophiavl-trl CMD --help` is the command's own
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    r"""Run `sophiavl-trl` with `argv` (default: `sys.argv[1:]`); returns the exit status (0, 2 or 1, see above)."""
    from PIL.Image import DecompressionBombError

    from sophiavl_trl.scripts import CLIError

    argv = list(sys.argv[1:] if argv is None else argv)
    command = build_parser().parse_known_args(argv)[0].command
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # one bar per data file read: noise in a CLI
    module, entry, _ = COMMANDS[command]
    try:
        return getattr(importlib.import_module(f"sophiavl_trl.scripts.{module}"), entry)(
            argv[argv.index(command) + 1 :]
        )
    except (OSError, ValueError, DecompressionBombError) as exc:
        message = str(exc).strip() or type(exc).__name__
        if isinstance(exc, DecompressionBombError):  # PIL's guard, whichever command opened the image
            bound = ", or raise the limit with --max_image_pixels N (images over 2 N pixels are refused)"
            message += f" Downscale the image{bound if command in ('infer', 'eval') else ''}."
        first, *rest = message.splitlines()
        sys.stderr.write("".join([f"{PROG} {command}: error: {first}\n", *(f"  {line}\n" for line in rest)]))
        return exc.status if isinstance(exc, CLIError) else 2


if __name__ == "__main__":
    sys.exit(main())
