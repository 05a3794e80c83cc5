# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The `sophiavl-trl` commands (`infer`, `eval`, `plot`, `judge`) and what they share: `TrlParser` argument parsing,
the one-line input error, and reading data files with `datasets`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit


if TYPE_CHECKING:
    from datasets import Dataset

DATA_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}


class CLIError(ValueError):
    r"""An input problem, printed as `sophiavl-trl <command>: error: ...`; `status` is the exit status (2, or 1 for a
    judge that cannot be reached or scores nothing)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def parse_args(dataclass_type: type, argv: list[str], command: str, *, positionals: str | None = None) -> Any:
    r"""Parse `argv` (and `--config FILE.yaml`) into `dataclass_type` with TRL's `TrlParser`; `positionals` names a
    `list[str]` field that collects bare (positional) arguments."""
    from trl import TrlParser

    parser = TrlParser(dataclass_type, prog=f"sophiavl-trl {command}", description=dataclass_type.__doc__)
    args, rest = parser.parse_args_and_config(argv, return_remaining_strings=True)
    if positionals and rest and not any(arg.startswith("-") for arg in rest):
        setattr(args, positionals, [*getattr(args, positionals), *rest])
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args


def check_positive(args: Any, *names: str) -> None:
    r"""Raise a `CLIError` naming the option when one of `names` is set to less than 1."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")


def redact(text: str, url: str) -> str:
    r"""`text` without the password of `url` (`http://user:password@host/...`), which must never be printed."""
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


def data_files(path: str | os.PathLike, what: str = "data") -> list[Path]:
    r"""The `.json`/`.jsonl`/`.parquet` files of `path`: the file itself, or a folder's files in name order."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    files = sorted(p for p in path.iterdir() if p.suffix in DATA_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no .json, .jsonl or .parquet files in {path}")
    return files


def load_file(path: str | os.PathLike) -> Dataset:
    r"""Read one `.json` (array or JSON lines), `.jsonl` or `.parquet` file with `datasets`; a `ValueError` names the
    file for an unknown suffix or a file that does not parse."""
    from datasets import load_dataset

    path = Path(path)
    builder = DATA_SUFFIXES.get(path.suffix)
    if builder is None:
        raise ValueError(f"{path}: unknown file format {path.suffix!r} (expected .json, .jsonl or .parquet)")
    try:
        return load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # datasets wraps the parser's error (pyarrow, json, OS) in DatasetGenerationError
        cause = exc.__cause__ or exc
        raise ValueError(f"cannot read {path}: {type(cause).__name__}: {str(cause).splitlines()[0]}") from exc
