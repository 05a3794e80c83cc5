#!/usr/bin/env bash
# The offline quickstart, on a CPU: builds the environment, a tiny Qwen2.5-VL and a synthetic data set, starts a real
# vLLM judge server, trains Trust-GRPO for 30 steps with 2 processes under DeepSpeed ZeRO-3 and TRL's colocated vLLM
# generation, saves a checkpoint, stops the judge, and plots the reward curves.
# Usage: bash scripts/quickstart.sh [RUN_DIR] [extra training args...]     (RUN_DIR default: runs/quickstart)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
run=${1:-runs/quickstart}
shift || true
mkdir -p "$run"
run=$(cd "$run" && pwd)
start=$(date +%s)

judge_pid=""
cleanup() { if [ -n "$judge_pid" ]; then kill -TERM -- "-$judge_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

echo "[quickstart] 1/5 tiny Qwen2.5-VL -> $run/model; synthetic data -> $run/data"
"$PY" -c "from sophiavl_trl.testing import build_tiny_qwen2_5_vl as b; b('$run/model')"
"$PY" -m sophiavl_trl.data.synthetic "$run/data" --num-samples 256 --seed 0 >/dev/null

echo "[quickstart] 2/5 starting the vLLM judge (log: $run/judge.log; about a minute)"
"$PY" -m sophiavl_trl.testing.judge_server --model "$run/model" --log "$run/judge.log" \
  --pid-file "$run/judge.pid" > "$run/judge.env"
judge_pid=$(cat "$run/judge.pid")
judge_url=$(sed -n 's/^BASE_URL=//p' "$run/judge.env")
echo "[quickstart]     judge at $judge_url (pid $judge_pid)"

echo "[quickstart] 3/5 training: 2 CPU processes, ZeRO-3, colocated vLLM generation (log: $run/train.log)"
set +e
VLLM_CPU_KVCACHE_SPACE=1 "$PY" -m accelerate.commands.launch --config_file accelerate_configs/zero3_cpu.yaml \
  examples/train_sophiavl.py --config examples/recipes/tiny/config_cpu.yaml \
  --model_name_or_path "$run/model" --dataset_registry "$run/data/dataset_info.json" \
  --judge_base_url "$judge_url" --output_dir "$run/train" "$@" 2>&1 | tee "$run/train.log" | "$PY" -u scripts/progress.py
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "[quickstart] training failed (exit $status); the end of $run/train.log:"
  tail -n 30 "$run/train.log"
  exit "$status"
fi

echo "[quickstart] 4/5 stopping the judge"
cleanup; judge_pid=""

echo "[quickstart] 5/5 plotting"
"$PY" -m sophiavl_trl.cli plot "$run/train" -o "$run/reward_curves.png" --labels trust-grpo-tiny

echo "[quickstart] done in $(( $(date +%s) - start )) s"
echo "  checkpoint: $run/train (from_pretrained-ready), $run/train/checkpoint-30"
echo "  metrics:    $run/train/trainer_state.json (trust/* = judge and trust-factor metrics)"
echo "  plot:       $run/reward_curves.png"
