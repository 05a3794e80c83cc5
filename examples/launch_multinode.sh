#!/usr/bin/env bash
# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
#
# Trust-GRPO across nodes: N training nodes under accelerate (DeepSpeed ZeRO-3), generation on a vLLM server node
# (TRL's `vllm_mode: server`), the thinking judge on its own node (data-parallel replicas). Each node runs one ROLE:
#
#   generation   VLLM_SERVER_DEV_MODE=1 vLLM server of the policy, with the NCCL weight-transfer engine TRL pushes the
#                weights through after every step (what the deprecated `trl vllm-serve` runs)        port GEN_PORT
#   judge        examples/serve_thinking_reward_model.sh on 0.0.0.0 (needs VLLM_API_KEY)            port JUDGE_PORT
#   train        accelerate launch ... examples/train_sophiavl.py on machine MACHINE_RANK of NUM_MACHINES
#                (rank 0 is the rendezvous at MAIN_IP:MAIN_PORT and the only process talking to the generation server,
#                which joins it on WEIGHT_PORT for the weight transfer)
#   slurm        inside an allocation (`srun --nodes=N+2 --ntasks-per-node=1 bash examples/launch_multinode.sh slurm
#                RECIPE ...`): node 0 is generation, node 1 the judge, nodes 2.. train (machine rank = node - 2)
#
# Plain launch, e.g. 2 training nodes of 8 GPUs (GPU path; on CPUs generation must stay colocated, see README):
#   gen-host$   POLICY=Qwen/Qwen2.5-VL-7B-Instruct bash examples/launch_multinode.sh generation
#   judge-host$ VLLM_API_KEY=... JUDGE=/models/judge-3b bash examples/launch_multinode.sh judge
#   node0$      NUM_MACHINES=2 MACHINE_RANK=0 MAIN_IP=node0 GEN_HOST=gen-host JUDGE_HOST=judge-host OPENAI_API_KEY=... \
#                 bash examples/launch_multinode.sh train examples/recipes/Qwen2.5-VL-7B-Instruct/trust_grpo/config_server.yaml \
#                 --dataset_registry /data/SophiaVL-R1-130k/dataset_info.json
#   node1$      the same with MACHINE_RANK=1
# Extra arguments after RECIPE go to examples/train_sophiavl.py. DRY_RUN=1 prints the command instead of running it.
set -euo pipefail
cd "$(dirname "$0")/.."

role=${1:?usage: launch_multinode.sh generation|judge|train|slurm [RECIPE] [training args...]}
shift
NUM_MACHINES=${NUM_MACHINES:-1}
MACHINE_RANK=${MACHINE_RANK:-0}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MAIN_IP=${MAIN_IP:-127.0.0.1}
MAIN_PORT=${MAIN_PORT:-29500}
GEN_HOST=${GEN_HOST:-127.0.0.1}
GEN_PORT=${GEN_PORT:-8000}
WEIGHT_PORT=${WEIGHT_PORT:-51216}
JUDGE_HOST=${JUDGE_HOST:-127.0.0.1}
JUDGE_PORT=${JUDGE_PORT:-8001}
ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-accelerate_configs/zero3_multinode.yaml}
PYTHON=${PYTHON:-python}

if [[ "$role" == "slurm" ]]; then
    # NODES overrides the allocation's host list (space-separated), e.g. for a dry run outside SLURM.
    read -r -a hosts <<<"${NODES:-$(scontrol show hostnames "$SLURM_JOB_NODELIST" | tr '\n' ' ')}"
    node=${SLURM_NODEID:?slurm role: run under srun (SLURM_NODEID unset)}
    (( ${#hosts[@]} >= 3 )) || { echo "error: need at least 3 nodes (generation, judge, training), got ${#hosts[@]}" >&2; exit 2; }
    export GEN_HOST=${hosts[0]} JUDGE_HOST=${hosts[1]} MAIN_IP=${hosts[2]} NUM_MACHINES=$(( ${#hosts[@]} - 2 ))
    case "$node" in
        0) role=generation ;;
        1) role=judge ;;
        *) role=train; export MACHINE_RANK=$(( node - 2 )) ;;
    esac
    exec env DRY_RUN="${DRY_RUN:-0}" bash "$0" "$role" "$@"
fi

case "$role" in
    generation)
        cmd=(env VLLM_SERVER_DEV_MODE=1 "$PYTHON" -m vllm.entrypoints.openai.api_server
             --model "${POLICY:?set POLICY to the policy model (path or Hub id)}" --host 0.0.0.0 --port "$GEN_PORT"
             --data-parallel-size "${GEN_DP:-$GPUS_PER_NODE}" --enable-scale-out
             --weight-transfer-config '{"backend": "nccl"}' --logprobs-mode processed_logprobs --max-logprobs -1) ;;
    judge)
        cmd=(env HOST=0.0.0.0 TP="${JUDGE_TP:-1}" DP="${JUDGE_DP:-$GPUS_PER_NODE}"
             bash examples/serve_thinking_reward_model.sh "${JUDGE:-bunny127/SophiaVL-R1-Thinking-Reward-Model-3B}"
             "$JUDGE_PORT") ;;
    train)
        recipe=${1:?train role: give the recipe (YAML) first}
        shift
        cmd=("$PYTHON" -m accelerate.commands.launch --config_file "$ACCELERATE_CONFIG"
             --num_machines "$NUM_MACHINES" --machine_rank "$MACHINE_RANK"
             --num_processes $(( NUM_MACHINES * GPUS_PER_NODE )) --main_process_ip "$MAIN_IP"
             --main_process_port "$MAIN_PORT"
             examples/train_sophiavl.py --config "$recipe"
             --vllm_server_base_url "http://$GEN_HOST:$GEN_PORT" --vllm_group_port "$WEIGHT_PORT"
             --judge_base_url "http://$JUDGE_HOST:$JUDGE_PORT/v1" "$@") ;;
    *)
        echo "error: unknown role '$role' (generation, judge, train or slurm)" >&2
        exit 2 ;;
esac

if [[ "${DRY_RUN:-0}" == "1" ]]; then
    printf '%q ' "${cmd[@]}"
    printf '\n'
    exit 0
fi
exec "${cmd[@]}"
