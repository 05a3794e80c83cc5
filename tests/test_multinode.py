# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""examples/launch_multinode.sh: the command each node runs, and the multi-node path for real on one machine (two
launchers, machine ranks 0 and 1, rendezvous on 127.0.0.1, ZeRO-3, colocated vLLM, the real judge)."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest


ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "launch_multinode.sh"
ROLE_VARS = ("NUM_MACHINES", "MACHINE_RANK", "GPUS_PER_NODE", "MAIN_IP", "MAIN_PORT", "GEN_HOST", "GEN_PORT",
             "JUDGE_HOST", "JUDGE_PORT", "ACCELERATE_CONFIG", "NODES", "SLURM_NODEID", "POLICY", "JUDGE")  # fmt: skip


def run_script(*args: str, timeout: float = 30, **env_vars: str) -> subprocess.CompletedProcess:
    dist = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")
    env = {k: v for k, v in os.environ.items() if k not in ROLE_VARS + dist}
    return subprocess.run(["bash", str(SCRIPT), *args], env={**env, **env_vars}, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)  # fmt: skip


def dry_run(*args: str, **env_vars: str) -> list[str]:
    result = run_script(*args, DRY_RUN="1", **env_vars)
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_training_node_command():
    command = dry_run("train", "recipe.yaml", "--max_steps", "5", NUM_MACHINES="2", MACHINE_RANK="1",
                      GPUS_PER_NODE="8", MAIN_IP="node0", GEN_HOST="gen", JUDGE_HOST="judge")  # fmt: skip
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert option(command, "--config_file") == "accelerate_configs/zero3_multinode.yaml"
    assert (option(command, "--num_machines"), option(command, "--machine_rank")) == ("2", "1")
    assert option(command, "--num_processes") == "16"  # every GPU of every node
    assert (option(command, "--main_process_ip"), option(command, "--main_process_port")) == ("node0", "29500")
    assert option(command, "--config") == "recipe.yaml"
    assert option(command, "--vllm_server_base_url") == "http://gen:8000"
    assert option(command, "--vllm_group_port") == "51216"
    assert option(command, "--judge_base_url") == "http://judge:8001/v1"
    assert command[-2:] == ["--max_steps", "5"]


def test_server_nodes_commands():
    generation = dry_run("generation", POLICY="/models/policy", GPUS_PER_NODE="4")
    assert "VLLM_SERVER_DEV_MODE=1" in generation and option(generation, "--model") == "/models/policy"
    assert option(generation, "--data-parallel-size") == "4" and option(generation, "--host") == "0.0.0.0"
    assert json.loads(option(generation, "--weight-transfer-config")) == {"backend": "nccl"}  # TRL's weight sync
    judge = dry_run("judge", JUDGE="/models/judge", GPUS_PER_NODE="4")
    assert judge[:5] == ["env", "HOST=0.0.0.0", "TP=1", "DP=4", "bash"] and judge[-2:] == ["/models/judge", "8001"]


@pytest.mark.parametrize(("node", "role"), [("0", "generation"), ("1", "judge"), ("2", "train"), ("3", "train")])
def test_slurm_assigns_one_role_per_node(node, role):
    command = dry_run("slurm", "recipe.yaml", NODES="g j t0 t1", SLURM_NODEID=node, POLICY="p", GPUS_PER_NODE="8")
    if role == "train":
        assert option(command, "--machine_rank") == str(int(node) - 2) and option(command, "--num_machines") == "2"
        assert option(command, "--main_process_ip") == "t0" and option(command, "--num_processes") == "16"
        assert option(command, "--vllm_server_base_url") == "http://g:8000"
        assert option(command, "--judge_base_url") == "http://j:8001/v1"
    elif role == "generation":
        assert "vllm.entrypoints.openai.api_server" in command
    else:
        assert "examples/serve_thinking_reward_model.sh" in command


def test_bad_launches_say_what_is_wrong():
    too_few = run_script("slurm", "recipe.yaml", NODES="a b", SLURM_NODEID="0", DRY_RUN="1")
    assert too_few.returncode == 2 and "need at least 3 nodes" in too_few.stderr
    unknown = run_script("trainer", DRY_RUN="1")
    assert unknown.returncode == 2 and "unknown role 'trainer'" in unknown.stderr
    no_recipe = run_script("train", DRY_RUN="1")
    assert no_recipe.returncode != 0 and "give the recipe" in no_recipe.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.distributed
def test_two_training_nodes_on_one_machine(tiny_model_dir, vllm_judge, tmp_path):
    from synthetic import write_synthetic_dataset

    registry = write_synthetic_dataset(tmp_path / "data", num_samples=32, seed=2)
    judge = urlsplit(vllm_judge.base_url)
    run = tmp_path / "run"
    # Generation stays colocated: TRL's server-mode weight sync needs CUDA (README, "Scaling out").
    env = {"NUM_MACHINES": "2", "GPUS_PER_NODE": "1", "MAIN_IP": "127.0.0.1", "MAIN_PORT": str(free_port()),
           "JUDGE_HOST": judge.hostname, "JUDGE_PORT": str(judge.port), "PYTHON": sys.executable,
           "ACCELERATE_CONFIG": "accelerate_configs/zero3_cpu.yaml", "VLLM_CPU_KVCACHE_SPACE": "1",
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    args = ["train", "examples/recipes/tiny/config_cpu.yaml", "--model_name_or_path", str(tiny_model_dir),
            "--dataset_registry", str(registry), "--output_dir", str(run), "--max_steps", "2", "--save_strategy", "no",
            "--num_generations", "2", "--per_device_train_batch_size", "2", "--max_completion_length", "8"]  # fmt: skip
    nodes = []
    for rank in (0, 1):
        node_env = {**{k: v for k, v in os.environ.items() if k not in ROLE_VARS}, **env, "MACHINE_RANK": str(rank)}
        nodes.append(subprocess.Popen(["bash", str(SCRIPT), *args], env=node_env, cwd=ROOT, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))  # fmt: skip
    outputs = [node.communicate(timeout=1200)[0] for node in nodes]
    for rank, (node, output) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, f"machine rank {rank} failed:\n{output[-6000:]}"
    state = json.loads((run / "trainer_state.json").read_text())
    logged = [h for h in state["log_history"] if "loss" in h]
    assert [h["step"] for h in logged] == [1, 2]
    assert all(h["trust/frac_judged"] > 0 and h["trust/judge_failures"] == 0 for h in logged)  # the real judge
    # One run of 2 processes, not two runs: only the global main process (on machine 0) logs the metrics.
    assert "'train_runtime'" in outputs[0] and "'train_runtime'" not in outputs[1]
