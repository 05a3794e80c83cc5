#!/usr/bin/env bash
# The offline quickstart, on a CPU: SophiaVL-R1's whole pipeline in miniature (docs/quickstart.md).
#   1. a synthetic reasoning task (sums and shape counts, sound or unsound reasoning) and a tiny Qwen2.5-VL;
#   2. a cold start: SFT (TRL's SFTTrainer) so the policy writes <think>/<answer> and is right some of the time;
#   3. the thinking judge: SFT of the cold-started model on rule-labelled judge records (examples/train_thinking_reward_model.py);
#   4. the judge served by a real vLLM server (constrained decoding) and scored on held-out records (judge-eval);
#   5. Trust-GRPO: 2 CPU processes under DeepSpeed ZeRO-3 with TRL's colocated vLLM generation and the real judge;
#   6. the reward curves plotted, and the first-5 / last-5 accuracy reward printed.
# The cold-start policy and the judge are cached under ${SOPHIAVL_CACHE:-~/.cache/sophiavl-trl}/quickstart-<key>,
# the key a hash of what produces them; a second run skips phases 2 and 3.
# Usage: bash scripts/quickstart.sh [RUN_DIR] [extra training args...]     (RUN_DIR default: runs/quickstart)
set -euo pipefail
source "$(dirname "$0")/pipeline.sh"
pipeline_init quickstart "${1:-runs/quickstart}"
shift || true
JUDGE_ARGS+=(--max_steps 300 --logging_steps 50)
cache=$CACHE/quickstart-$(cache_key "$QS"/make_task.py "$QS"/synthetic.py)
mkdir -p "$cache"

phase "1/6 synthetic task -> $run/data; tiny Qwen2.5-VL -> $cache/model"
"$PY" "$QS"/make_task.py "$run/data" --model "$cache/model" >/dev/null
took

phase "2/6 cold start: SFT of the policy -> $cache/cold_start (log: $run/cold_start.log)"
cold_start_sft
(cd "$QS" && "$PY" -c "import json, sys; from cold_start import evaluate
r = evaluate(sys.argv[1], sys.argv[2]); json.dump(r, open(sys.argv[3], 'w'))
print({k: r[k] for k in ('format', 'accuracy', 'sound')}, r['examples'][:2])" \
  "$cache/cold_start" "$run/data/dataset_info.json" "$run/cold_start_eval.json") | sed 's/^/    /'
took

phase "3/6 thinking judge: SFT on rule-labelled judge records -> $cache/judge (log: $run/judge_sft.log)"
judge_sft
took

phase "4/6 serving the judge with vLLM (log: $run/judge.log), judge-eval on held-out records"
serve_judge "$cache/judge"
judge_eval "$run/data/judge_heldout.jsonl" judge
took

# Arms: QUICKSTART_ARMS="name=extra,training,args ..." (default: Trust-GRPO alone).
arms=${QUICKSTART_ARMS:-"trust-grpo="}
for arm in $arms; do
  name=${arm%%=*}; extra=${arm#*=}
  phase "5/6 $name: 2 CPU processes, ZeRO-3, colocated vLLM, the judge at $judge_url (log: $run/$name.log)"
  set +e
  # shellcheck disable=SC2086  # the arm's extra args are words
  VLLM_CPU_KVCACHE_SPACE=1 "$PY" -m accelerate.commands.launch --config_file accelerate_configs/zero3_cpu.yaml \
    scripts/progress.py examples/train_sophiavl.py --config examples/recipes/tiny/config_quickstart.yaml \
    --model_name_or_path "$cache/cold_start" --dataset_registry "$run/data/dataset_info.json" \
    --judge_base_url "$judge_url" --output_dir "$run/$name" ${extra//,/ } "$@" 2>&1 | tee "$run/$name.log" \
    | sed -n 's/^\[progress\]/ /p'
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    echo "[quickstart] training failed (exit $status); the end of $run/$name.log:"
    tail -n 30 "$run/$name.log"
    exit "$status"
  fi
  took
done
cleanup

phase "6/6 plotting; mean accuracy reward of the first and last 5 logged steps"
names=(); for arm in $arms; do names+=("${arm%%=*}"); done
"$PY" -m sophiavl_trl.cli plot "${names[@]/#/$run/}" -o "$run/reward_curves.png" --labels "${names[@]}" \
  --timing_output "$run/timing.png"
"$PY" "$QS"/report.py curve "${names[@]/#/$run/}" | tee "$run/curve_report.jsonl" | sed 's/^/    /'
took

echo "[quickstart] done in $(( $(date +%s) - start )) s"
echo "  checkpoints: ${names[*]/#/$run/} (from_pretrained-ready)"
echo "  metrics:     <checkpoint>/trainer_state.json (trust/* = judge and trust-factor metrics)"
echo "  plots:       $run/reward_curves.png, $run/timing.png (where each step's time went: timing/*)"
