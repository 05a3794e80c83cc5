#!/usr/bin/env bash
# Sourced by the scripts here: builds (or reuses) the CPU environment, sets $VENV / $PY, and puts this clone first on
# PYTHONPATH (the shared environment holds the dependencies, never a copy of the package).
# The environment lives outside the clone (SOPHIAVL_CACHE, default ~/.cache/sophiavl-trl), keyed by the hash of
# the files that define it, so repeated runs reuse it and a changed stack gets a fresh one.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${SOPHIAVL_CACHE:-$HOME/.cache/sophiavl-trl}
mkdir -p "$CACHE"
key=$( (cat "$ROOT/.ci/constraints.txt" "$ROOT/.ci/setup_env.sh" "$ROOT/.ci/fix_torchvision.py";
        ${PYTHON:-python3} "$ROOT/.ci/requirements.py") | sha256sum | cut -c1-12)
VENV=${SOPHIAVL_VENV:-$CACHE/venv-$key}
bash "$ROOT/.ci/setup_env.sh" "$VENV"
PY="$VENV/bin/python"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
