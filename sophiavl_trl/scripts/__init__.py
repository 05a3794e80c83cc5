# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The `sophiavl-trl` commands (`infer`, `eval`, `plot`, `judge`) and what they share: `TrlParser` argument parsing
and the one-line input error."""

from __future__ import annotations

from typing import Any


class CLIError(ValueError):
    r"""An input problem, printed as `sophiavl-trl <command>: error: ...`; `status` is the exit status (2, or 1 for a
    judge that cannot be reached or scores nothing)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def parse_args(dataclass_type: type, argv: list[str], command: str, *, positionals: str | None = None) -> Any:
    r"""Parse `argv` (and `--config FILE.yaml`) into `dataclass_type` with TRL's `TrlParser` (as `RecipeParser`:
    a key set twice in the recipe is an error); `positionals` names a `list[str]` field that takes bare arguments."""
    from sophiavl_trl.configs import RecipeParser

    parser = RecipeParser(dataclass_type, prog=f"sophiavl-trl {command}", description=dataclass_type.__doc__)
    args, rest = parser.parse_args_and_config(argv, return_remaining_strings=True)
    if positionals and rest and not any(arg.startswith("-") for arg in rest):
        setattr(args, positionals, [*getattr(args, positionals), *rest])
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args


def check_positive(args: Any, *names: str) -> None:
    r"""Raise a `CLIError` naming the option when one of `names` is set to less than 1."""
    for name in names:
        if (value := getattr(args, name)) is not None and value < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
