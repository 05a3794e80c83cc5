# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The red team's bad inputs (issue 20 and the rounds after it), one row per input: each must end in a clear error, a
warning or a bound, before any work starts. The next round adds rows."""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


# --- config (recipes, resumed runs, the output folder, CLI arguments: issue 20 items 8, 11-16) ---

BASE_RECIPE = "dataset_name: d\nuse_cpu: true\nbf16: false\nreport_to: none\n"

# (item, recipe lines added to a valid recipe, the error it must raise at parse time)
RECIPE_ROWS = [
    ("20.8", "min_pixels: 1", r"min_pixels must be at least one 28x28 patch \(784 pixels\), got 1"),
    ("20.8", "max_pixels: 500\nmin_pixels: 400", "min_pixels must be at least one 28x28 patch"),
    ("20.11", "trust_alpha: 0.3\nbeta: 0.0\ntrust_alpha: 0.5",
     r"recipe.yaml: 'trust_alpha' is set twice \(lines 5 and 7\)"),
    ("20.12", "learning_rate: .nan", "learning_rate must be a finite number, got nan"),
    ("20.12", "learning_rate: -0.1", r"learning_rate must be >= 0, got -0.1"),
    ("20.12", "beta: .inf", "beta must be a finite number, got inf"),
    ("20.12", "max_completion_length: 0", "max_completion_length must be > 0, got 0"),
    ("20.12", "per_device_train_batch_size: 0", "per_device_train_batch_size must be > 0, got 0"),
    ("20.12", "num_iterations: 0", "num_iterations must be > 0, got 0"),
    ("20.12", "max_steps: 0\nnum_train_epochs: 0", "Nothing to train: max_steps is 0 and num_train_epochs 0"),
    ("20.12", "save_steps: 0", "save_steps must be > 0, got 0"),
    ("20.12", "top_p: 0.0", r"top_p must be in \(0, 1\], got 0.0"),
]  # fmt: skip

# (item, recipe lines, the warning logged before training starts)
WARNING_ROWS = [
    ("20.12", "temperature: 0.0", "temperature: 0 samples one completion num_generations times"),
    ("20.12", "reward_funcs: []", "reward_funcs: [] leaves no outcome reward"),
    ("20.12", "reward_funcs: [accuracy, accuracy]", "reward_funcs names a reward twice"),
    ("20.12", "eval_files: x\neval_strategy: 'no'", "eval_files is set but eval_strategy is 'no'"),
]


def parse_recipe(tmp_path: Path, lines: str):
    from trl import ModelConfig

    from sophiavl_trl import TrustGRPOConfig
    from sophiavl_trl.configs import RecipeParser, SophiaVLScriptArguments

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(BASE_RECIPE + lines + "\n")
    parser = RecipeParser((SophiaVLScriptArguments, TrustGRPOConfig, ModelConfig))
    return parser.parse_args_and_config(["--config", str(recipe), "--output_dir", str(tmp_path / "run")])


@pytest.mark.parametrize(("item", "lines", "error"), RECIPE_ROWS, ids=[f"{r[0]}:{r[1]}" for r in RECIPE_ROWS])
def test_config_bad_recipe_fails_at_parse_time_naming_the_field(tmp_path, item, lines, error):
    with pytest.raises(ValueError, match=error):
        parse_recipe(tmp_path, lines)


@pytest.mark.parametrize(("item", "lines", "warning"), WARNING_ROWS, ids=[f"{r[0]}:{r[1]}" for r in WARNING_ROWS])
def test_config_suspicious_recipe_warns(tmp_path, caplog, item, lines, warning):
    from sophiavl_trl.configs import warn_suspicious

    assert warn_suspicious(*parse_recipe(tmp_path, "")[:2]) == []  # the base recipe is not suspicious
    with caplog.at_level(logging.WARNING, logger="sophiavl_trl.configs"):
        assert any(warning in w for w in warn_suspicious(*parse_recipe(tmp_path, lines)[:2]))
    assert warning in caplog.text


def train_script():
    spec = importlib.util.spec_from_file_location("train_sophiavl", ROOT / "examples" / "train_sophiavl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def saved_checkpoint(run: Path, **settings) -> Path:
    """`run/checkpoint-2` as `Trainer` writes it (weights, state, the run's config pickled in training_args.bin)."""
    import torch
    from safetensors.torch import save_file

    from sophiavl_trl import TrustGRPOConfig

    checkpoint = run / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    save_file({"w": torch.zeros(64, 64)}, str(checkpoint / "model.safetensors"))
    (checkpoint / "trainer_state.json").write_text('{"global_step": 2, "log_history": []}')
    torch.save(
        TrustGRPOConfig(output_dir=str(run), use_cpu=True, bf16=False, **settings), checkpoint / "rng_state.pth"
    )
    torch.save(
        TrustGRPOConfig(output_dir=str(run), use_cpu=True, bf16=False, **settings), checkpoint / "training_args.bin"
    )
    return checkpoint


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


# (item, settings the checkpoint was trained with, what is done to it, this run's arguments, the error)
RESUME_ROWS = [
    ("20.13", {"trust_mode": "paper"}, None, ["--trust_mode", "reference"], r"trust_mode: 'paper' -> 'reference'"),
    ("20.13", {"num_generations": 4}, None, ["--num_generations", "2"], r"num_generations: 4 -> 2"),
    ("20.13", {"trust_alpha": 0.3}, None, ["--trust_alpha", "0.5"], r"trust_alpha: 0.3 -> 0.5"),
    ("20.14", {}, "model.safetensors", [], r"checkpoint-2/model.safetensors is corrupt or truncated"),
    ("20.14", {}, "rng_state.pth", [], r"checkpoint-2/rng_state.pth is corrupt or truncated"),
    ("20.14", {}, "trainer_state.json", [], r"checkpoint-2/trainer_state.json is corrupt or truncated"),
]  # fmt: skip


def train_args(tmp_path: Path, *extra: str):
    from trl import ModelConfig

    from sophiavl_trl import TrustGRPOConfig
    from sophiavl_trl.configs import RecipeParser, SophiaVLScriptArguments

    model = tmp_path / "model"  # exists: the model check passes; nothing can load from it
    model.mkdir(exist_ok=True)
    argv = ["--model_name_or_path", str(model), "--dataset_name", "d", "--output_dir", str(tmp_path / "run"),
            "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--resume_from_checkpoint", "true",
            "--num_generations", "4", *extra]  # fmt: skip
    return RecipeParser((SophiaVLScriptArguments, TrustGRPOConfig, ModelConfig)).parse_args_and_config(argv)


@pytest.mark.parametrize(
    ("item", "saved", "damaged", "extra", "error"), RESUME_ROWS, ids=[r[2] or r[3][0] for r in RESUME_ROWS]
)
def test_config_resume_refuses_before_model_and_data_work(tmp_path, item, saved, damaged, extra, error):
    checkpoint = saved_checkpoint(tmp_path / "run", **{"num_generations": 4, **saved})
    if damaged:
        truncate(checkpoint / damaged)
    script = train_script()
    with pytest.raises(ValueError, match=error):
        script.main(*train_args(tmp_path, *extra))


def test_config_resume_with_changed_reward_and_the_override_is_logged(tmp_path, caplog):
    saved_checkpoint(tmp_path / "run", num_generations=4, trust_mode="paper")
    args = train_args(tmp_path, "--trust_mode", "reference", "--allow_resume_with_changed_reward", "true")
    with caplog.at_level(logging.WARNING), pytest.raises(Exception) as failure:
        train_script().main(*args)
    assert "changed reward settings: trust_mode: 'paper' -> 'reference'" in caplog.text
    assert "reward settings" not in str(failure.value)  # it went on, and failed only at the (empty) model folder


def test_config_second_training_into_one_output_dir_refuses_naming_the_first(tmp_path):
    script = train_script()
    run = tmp_path / "run"
    holder = script.lock_output_dir(str(run))  # the first training (this process)
    (tmp_path / "model").mkdir()
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_sophiavl.py"), "--model_name_or_path", str(tmp_path / "model"),
         "--dataset_name", "d", "--output_dir", str(run), "--use_cpu", "true", "--bf16", "false"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "RANK": "0"},
    )  # fmt: skip
    assert result.returncode != 0
    assert f"output_dir {run} is in use by another training (PID {os.getpid()} on " in result.stderr
    # The other processes of the same launch do not take it; the lock goes with its holder.
    os.environ["RANK"] = "1"
    try:
        assert script.lock_output_dir(str(run)) is None
    finally:
        del os.environ["RANK"]
    holder.close()
    with open(run / script.LOCK_FILE) as probe:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A PNG whose header says `side` x `side` pixels (PIL refuses it before decoding anything)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


# (item, command line; {tmp} is a folder with model/ (a config.json), bomb.png and file.txt; the one-line error)
CLI_ROWS = [
    ("20.16", "infer --model {tmp}/model --question q --type numerical --image {tmp}/bomb.png",
     r"image .*bomb.png: Image size \(400000000 pixels\) exceeds limit of \d+ pixels.* raise the limit with "
     r"--max_image_pixels N"),
    ("20.16", "infer --model {tmp}/model --question q --type numerical --device tpu9",
     "--device tpu9: not a torch device; use cpu, cuda, cuda:N or mps"),
    ("20.16", "infer --model {tmp}/model --question q --type numerical --device cuda:63",
     "--device cuda:63: this machine has"),
    ("20.16", "infer --config {tmp}/missing.yaml --model {tmp}/model --question q --type numerical",
     "No such file or directory: .*missing.yaml"),
    ("20.16", "eval --model {tmp}/model --data {tmp}/file.txt --output {tmp}/file.txt",
     "--output .*file.txt is a file"),
    ("20.16", "eval --model {tmp}/model --data {tmp}/file.txt --output {tmp}/o --image_dir {tmp}/none",
     "--image_dir .*none: no such folder"),
    ("20.16", "plot {tmp}/no-run", "run folder not found: .*no-run"),
    ("20.8", "infer --model {tmp}/model --question q --type numerical --max_pixels 500",
     r"max_pixels must be at least one 28x28 patch \(784 pixels\), got 500"),
]  # fmt: skip


@pytest.mark.parametrize(("item", "command", "error"), CLI_ROWS, ids=[r[1].split(" --")[-1] for r in CLI_ROWS])
def test_config_cli_path_and_device_errors_are_one_line(tmp_path, capsys, item, command, error):
    import re

    from sophiavl_trl.cli import main

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "file.txt").write_text("x")
    bomb_png(tmp_path / "bomb.png")
    assert main(command.format(tmp=tmp_path).split()) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sophiavl-trl {command.split()[0]}: error: "), lines
    assert re.search(error, lines[0]), lines[0]
