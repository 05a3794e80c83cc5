#!/usr/bin/env bash
# SophiaVL-R1's figure in miniature: plain GRPO, GRPO + thinking reward (constant weight alpha, no trust factor) and
# Trust-GRPO from the same cold start, seed, data and judge as scripts/quickstart.sh (whose cache it reuses); their
# accuracy-reward curves on one PNG and a table of first-5 / last-5 logged steps (docs/quickstart.md).
# Usage: bash scripts/compare.sh [RUN_DIR] [extra training args for every arm...]   (RUN_DIR default: runs/compare)
set -euo pipefail
run=${1:-runs/compare}
shift || true
export QUICKSTART_ARMS="grpo=--use_thinking_reward,false \
grpo+thinking=--trust_correct_threshold,0.0,--trust_anneal_steps,1000000000 trust-grpo="
exec bash "$(dirname "$0")/quickstart.sh" "$run" "$@"
