# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""`option`: the dataclass field of every argument and config class (a leaf module, for every layer)."""

from dataclasses import MISSING, field
from typing import Any


def option(default: Any = MISSING, help: str = "", **metadata: Any) -> Any:
    r"""A dataclass field with its `--help` text and more `metadata` (e.g. `aliases`); no `default`: required."""
    if isinstance(default, list):  # a fresh list per instance
        return field(default_factory=default.copy, metadata={"help": help, **metadata})
    return field(default=default, metadata={"help": help, **metadata})
