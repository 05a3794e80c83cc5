# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Lazy exports for the package `__init__`s (the role of TRL's `_lazy_module.py`): a leaf module, so that the lowest
layers (`data`, `testing`) can use it without importing the top-level package's names."""

from importlib import import_module
from typing import Any


def lazy_exports(namespace: dict[str, Any], exports: dict[str, str]) -> tuple[Any, list[str]]:
    """A module's `__getattr__` (PEP 562), which imports each name of `exports` (`{"module": "name name ..."}`) on first
    use, and its `__all__`."""
    where = {name: module for module, names in exports.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        namespace[name] = getattr(import_module(where[name]), name)
        return namespace[name]

    return __getattr__, sorted(where)
