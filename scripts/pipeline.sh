#!/usr/bin/env bash
# Sourced by quickstart.sh and compare.sh: the steps they share (run folder, phase timing, cached SFT of the cold
# start and of the judge, the judge served by vLLM, judge-eval). Usage: pipeline_init TAG RUN_DIR, then the steps.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
QS=examples/quickstart

pipeline_init() {  # TAG RUN_DIR: sets $tag, $run (absolute), $start; stops the judge on exit
  tag=$1; run=$2; mkdir -p "$run"; run=$(cd "$run" && pwd)
  start=$(date +%s); t0=$start; judge_pid=""
  trap cleanup EXIT
}
cleanup() { if [ -n "$judge_pid" ]; then kill -TERM -- "-$judge_pid" 2>/dev/null || true; fi; judge_pid=""; }
phase() { echo "[$tag] $*"; t0=$(date +%s); }
took() { echo "[$tag]     ... $(( $(date +%s) - t0 )) s"; }
fail() { echo "[$tag] failed; the end of $1:"; tail -n 30 "$1"; exit 1; }

# The cold start's and the judge's SFT arguments; each script adds its own.
COLD_ARGS=(--num_train_epochs 2 --per_device_train_batch_size 16 --learning_rate 2e-3 --use_cpu --report_to none
  --save_strategy no --logging_steps 50 --disable_tqdm true --seed 0)
JUDGE_ARGS=(--config examples/recipes/thinking_reward_model/config_cpu.yaml --learning_rate 1e-3
  --lr_scheduler_type cosine --per_device_train_batch_size 16 --disable_tqdm true)

cache_key() {  # TASK_FILES...: a hash of what produces the cached models (with the SFT arguments and environment)
  (cat "$@" "$QS"/cold_start.py examples/train_thinking_reward_model.py \
    examples/recipes/thinking_reward_model/config_cpu.yaml sophiavl_trl/testing/tiny_model.py \
    sophiavl_trl/data/prompts.py sophiavl_trl/judge/prompt.py sophiavl_trl/judge/sft.py
  echo "$VENV ${COLD_ARGS[*]} ${JUDGE_ARGS[*]}") | sha256sum | cut -c1-12
}

cached_sft() {  # OUT LOG SCRIPT ARGS...: run an SFT script into OUT unless OUT holds a model (written via OUT.tmp)
  local out=$1 log=$2; shift 2
  if [ -f "$out/model.safetensors" ]; then echo "[$tag]     cached"; return; fi
  "$PY" "$@" --output_dir "$out.tmp" > "$log" 2>&1 || fail "$log"
  rm -rf "$out"; mv "$out.tmp" "$out"
}
cold_start_sft() {  # the policy's cold start -> $cache/cold_start, on the task's SFT rows
  cached_sft "$cache/cold_start" "$run/cold_start.log" "$QS"/cold_start.py --model_name_or_path "$cache/model" \
    --dataset_registry "$run/data/dataset_info.json" "${COLD_ARGS[@]}"
}
judge_sft() {  # the judge recipe from the cold start -> $cache/judge, on the task's judge records
  cached_sft "$cache/judge" "$run/judge_sft.log" examples/train_thinking_reward_model.py "${JUDGE_ARGS[@]}" \
    --model_name_or_path "$cache/cold_start" --judge_records "$run/data/judge_train.jsonl"
}

serve_judge() {  # MODEL: a vLLM judge server for MODEL; sets $judge_pid and $judge_url
  "$PY" -m sophiavl_trl.testing.judge_server --model "$1" --log "$run/judge.log" --pid-file "$run/judge.pid" \
    > "$run/judge.env"
  judge_pid=$(cat "$run/judge.pid")
  judge_url=$(sed -n 's/^BASE_URL=//p' "$run/judge.env")
}

judge_eval() {  # RECORDS NAME: judge-eval of the served judge; $run/NAME_predictions.jsonl, $run/NAME_report.json
  "$PY" -m sophiavl_trl.cli judge-eval --records "$1" --base-url "$judge_url" --model thinking-reward-model \
    --constrained-decoding true --quiet true --predictions "$run/$2_predictions.jsonl" | sed 's/^/    /'
  "$PY" "$QS"/report.py judge "$run/$2_predictions.jsonl" | tee "$run/$2_report.json" | sed 's/^/    /'
}
