# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The docstring examples run as written (what `--doctest-modules` would check, limited to the modules whose examples are
doctests, so the test run imports nothing else; `testing.tiny_model`'s example is left out: it writes a model to /tmp)."""

import doctest
import importlib

import pytest

from sophiavl_trl.rewards import accuracy_rewards


MODULES = [
    "sophiavl_trl.trust",
    "sophiavl_trl.data.prompts",
    "sophiavl_trl.data.sampler",
    "sophiavl_trl.rewards.accuracy_rewards",
    "sophiavl_trl.rewards.format_rewards",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    # The examples register verifiers: keep them out of the registry the other tests see.
    monkeypatch.setattr(accuracy_rewards, "VERIFIERS", dict(accuracy_rewards.VERIFIERS))
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0, f"{name} has no examples: drop it from MODULES"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"
