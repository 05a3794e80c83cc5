# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The shared CPU environment of the README commands: built under a lock, and each clone imports its own code."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def test_a_second_run_waits_for_the_build_then_reuses_the_environment(tmp_path):
    venv = tmp_path / "venv-test"
    venv.mkdir()
    (venv / "marker").write_text("built by the first run")
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a first run is building
        second = subprocess.Popen(
            ["bash", str(ROOT / ".ci" / "setup_env.sh"), str(venv)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        time.sleep(2)
        assert second.poll() is None  # blocked on the lock, not building beside the first run
        (venv / "READY").touch()  # the first run finishes
    out, _ = second.communicate(timeout=30)
    assert second.returncode == 0, out
    assert "waiting for it" in out and "reusing" in out and "(a few minutes" not in out
    assert (venv / "marker").exists()  # the finished environment was kept


def test_each_clone_imports_its_own_code_from_the_shared_environment(tmp_path):
    clone = tmp_path / "other-clone"
    for part in ("scripts", ".ci", "sophiavl_trl"):
        shutil.copytree(ROOT / part, clone / part)
    shutil.copy(ROOT / "pyproject.toml", clone / "pyproject.toml")
    # The environment this test runs in, as both clones' shared venv (it is built, so nothing is installed).
    env = {**os.environ, "SOPHIAVL_VENV": str(Path(sys.executable).parents[1])}
    env.pop("PYTHONPATH", None)
    for root in (ROOT, clone):
        out = subprocess.run(
            ["bash", "-c", 'source scripts/env.sh >/dev/null && "$PY" -c "import sophiavl_trl; print(sophiavl_trl.__file__)"'],
            cwd=root, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert Path(out.stdout.strip()) == root / "sophiavl_trl" / "__init__.py"
