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

cache_key() {  # FILES... -- WORDS...: a hash of what produces the cached models (and of the environment)
  local files=() ; while [ "$1" != -- ]; do files+=("$1"); shift; done; shift
  (cat "${files[@]}"; echo "$VENV $*") | sha256sum | cut -c1-12
}

cached_sft() {  # OUT LOG SCRIPT ARGS...: run an SFT script into OUT unless OUT holds a model (written via OUT.tmp)
  local out=$1 log=$2; shift 2
  if [ -f "$out/model.safetensors" ]; then echo "[$tag]     cached"; return; fi
  "$PY" "$@" --output_dir "$out.tmp" > "$log" 2>&1 || fail "$log"
  rm -rf "$out"; mv "$out.tmp" "$out"
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
