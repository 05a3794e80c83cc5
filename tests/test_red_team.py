# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The red team's bad inputs (issue 20 and the rounds after it), one row per input: each must end in a clear error, a
warning or a bound, before any work starts. The next round adds rows."""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import json
import logging
import math
import os
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image


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


# --- data and rewards (issue 20 items 3, 6, 7, 9, 10) ---


def _image(path: Path, size: tuple[int, int] = (64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path)


def _registry(tmp_path: Path, row: dict) -> Path:
    row = {"problem": "How many cubes?", "problem_type": "numerical", "solution": "<answer>3</answer>"} | row
    (tmp_path / "data.json").write_text(json.dumps([row]))
    registry = {"D": {"file_path": "data.json", "image_base_path": "images"}}
    (tmp_path / "dataset_info.json").write_text(json.dumps(registry))
    return tmp_path / "dataset_info.json"


def _symlinked_file(tmp_path: Path) -> dict:
    _image(tmp_path / "secret.png")  # outside the base
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "cat.png").symlink_to(tmp_path / "secret.png")
    return {"path": "cat.png"}


def _symlinked_folder(tmp_path: Path) -> dict:
    _image(tmp_path / "elsewhere" / "cat.png")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "photos").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    return {"path": "photos/cat.png"}


def _image_in_base(tmp_path: Path, size: tuple[int, int] = (64, 48)) -> dict:
    _image(tmp_path / "images" / "a.png", size)
    return {"path": "a.png"}


# (id, the row (made in tmp_path), the field named, what the message says)
BAD_DATA_ROWS = [
    ("20.3 symlinked file leading outside image_base_path", _symlinked_file, "path", "leads through a symbolic link"),
    ("20.3 path through a symlinked folder outside the base", _symlinked_folder, "path", "leads through a symbolic link"),
    ("20.6 a 2 MB question", lambda tmp: _image_in_base(tmp) | {"problem": "How many? " * 200_000}, "problem",
     "the question is 2,000,000 characters, over the cap of 50,000"),
    ("20.8 (class) an image too thin for max_pixels", lambda tmp: _image_in_base(tmp, (1000, 50)), "path",
     "is 1000x50: too thin for max_pixels 12544"),
    ("20.10 a text row with an image path", lambda tmp: _image_in_base(tmp) | {"data_type": "text"}, "path",
     "a text row (data_type 'text') with image path(s)"),
]  # fmt: skip


@pytest.mark.parametrize(("make_row", "field", "message"), [row[1:] for row in BAD_DATA_ROWS], ids=[row[0] for row in BAD_DATA_ROWS])  # fmt: skip
def test_bad_data_rows_are_refused_naming_file_row_and_field(tmp_path, make_row, field, message):
    from sophiavl_trl.data import DatasetValidationError, load_sophiavl_dataset

    registry = _registry(tmp_path, make_row(tmp_path))
    with pytest.raises(DatasetValidationError) as info:
        load_sophiavl_dataset("D", registry, min_pixels=3136, max_pixels=12544)  # the quickstart's bounds
    [issue] = info.value.report.issues
    assert issue.startswith(f"{tmp_path / 'data.json'}, row 0, field '{field}': ") and message in issue


# (id, the row, the training settings, the limit's name in the message)
LONG_PROMPT_ROWS = [
    ("20.6 question over vllm_max_model_length - max_completion_length", {"problem": "How many cubes? " * 40},
     {"use_vllm": True, "vllm_max_model_length": 400, "max_completion_length": 64},
     "vllm_max_model_length - max_completion_length = 336"),
    ("20.6 question over max_prompt_length", {"problem": "How many cubes? " * 40}, {"max_prompt_length": 300},
     "max_prompt_length = 300"),
    ("20.6 image tokens over the limit", {"size": (2000, 2000)},
     {"use_vllm": True, "vllm_max_model_length": 700, "max_completion_length": 64}, "or lower max_pixels"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "settings", "message"), [row[1:] for row in LONG_PROMPT_ROWS], ids=[row[0] for row in LONG_PROMPT_ROWS])  # fmt: skip
def test_prompts_that_cannot_fit_are_refused_before_training(tmp_path, tiny_model_dir, row, settings, message):
    from transformers import AutoProcessor
    from trl.data_utils import prepare_multimodal_messages

    from sophiavl_trl.data import DatasetValidationError, check_prompt_lengths, load_sophiavl_dataset
    from sophiavl_trl.model_utils import set_pixel_bounds

    bounds = (3136, 200_704)  # up to 256 image tokens
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    set_pixel_bounds(processor, *bounds)
    row = _image_in_base(tmp_path, row.pop("size", (64, 48))) | row
    dataset = load_sophiavl_dataset("D", _registry(tmp_path, row), min_pixels=bounds[0], max_pixels=bounds[1])
    # The length as the processor counts it when TRL tokenizes the prompt with its (resized) image.
    messages = prepare_multimodal_messages(dataset[0]["prompt"], images=dataset[0]["images"])
    tokens = processor.apply_chat_template([messages], add_generation_prompt=True, tokenize=True, return_dict=True)
    length = len(tokens["input_ids"][0])
    with pytest.raises(DatasetValidationError) as info:
        check_prompt_lengths(dataset, processor, SimpleNamespace(**settings))
    [issue] = info.value.report.issues
    assert issue.startswith(f"{tmp_path / 'data.json'}, row 0, field 'problem': the prompt is {length:,} tokens, over")
    assert message in issue
    fits = {"max_prompt_length": length} if "max_prompt_length" in settings else {"vllm_max_model_length": length + 64}
    assert len(check_prompt_lengths(dataset, processor, SimpleNamespace(**(settings | fits)))) == 1  # exactly fits


def _cjk(n: int, offset: int = 0) -> str:
    # Characters of period 2000 (7 is prime to 2000): offset 7 makes truth[i] == answer[i + 1].
    return "".join(chr(0x4E00 + (7 * i + offset) % 2000) for i in range(n))


def _letters(n: int, offset: int = 0) -> str:
    return " ".join("abcdefghijklmnopqrstuvwxyz0123456789"[(7 * i + offset) % 36] for i in range(n))


# (id, answer, ground truth, problem type, expected score). ROUGE here = mean of the ROUGE-1, -2 and -L F-measures,
# F = 2 * overlap / (answer count + truth count). In the three worst cases of item 7 the truth is the answer's
# characters 1..n (so every truth token, bigram and the whole truth as a subsequence are in the answer).
BAD_REWARD_ROWS = [
    ("20.9 0.0000001 against 0", "0.0000001", "0", "numerical", 0.0),
    ("20.9 1e-401 against 0", "1e-401", "0", "numerical", 0.0),
    ("20.9 a written-out 1e-401 against 0", "0." + "0" * 400 + "1", "0", "numerical", 0.0),
    # 9,990 vs 2,000 tokens: unigrams and LCS 2000, bigrams 1999 of 9989 and 1999.
    ("20.7 free-form, 9,990 CJK characters vs 2,000", _cjk(9990), _cjk(2000, 7), "free-form",
     (2 * 4000 / 11990 + 3998 / 11988) / 3),
    ("20.7 text, 9,990 CJK characters vs 300", _cjk(9990), _cjk(300, 7), "text", (2 * 600 / 10290 + 598 / 10288) / 3),
    ("20.7 free-form, 5,000 ASCII tokens vs 1,500", _letters(4995), _letters(1500, 7), "free-form",
     (2 * 3000 / 6495 + 2998 / 6493) / 3),
    # The cap: a truth is read up to its 10,000th token (word for OCR); answers (10,000 characters) never reach it.
    ("20.7 free-form truth beyond the token cap", _cjk(10_000), _cjk(10_000) + _cjk(5000, 3), "free-form", 1.0),
    ("20.7 OCR truth beyond the word cap", "a " * 5000, "a " * 5000 + "b " * 10_000, "OCR", math.exp(-0.5)),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "truth", "problem_type", "expected"), [row[1:] for row in BAD_REWARD_ROWS], ids=[row[0] for row in BAD_REWARD_ROWS])  # fmt: skip
def test_bad_reward_inputs_score_as_specified(monkeypatch, answer, truth, problem_type, expected):
    from rouge_score import rouge_scorer

    from sophiavl_trl.rewards import accuracy_reward

    def quadratic_table(*args):  # answer x truth cells of pure Python: 17 s a call at 9,990 x 2,000
        raise AssertionError("rouge-score's LCS table was built")

    monkeypatch.setattr(rouge_scorer, "_lcs_table", quadratic_table)
    completion = f"<think>Let me think.</think><answer>{answer}</answer>"
    assert accuracy_reward([completion], [truth], problem_type) == [pytest.approx(expected, abs=1e-12)]


# --- judge: the API key, the serve script, the judge's verdict, its response size, judge records ---

# Issue 20 item 1: a named key variable must hold the key; only an unnamed one falls back to OPENAI_API_KEY.
API_KEY_ROWS = [
    # (judge_api_key_env, environment, the key sent or the error)
    ("MY_JUDGE_KEY", {"OPENAI_API_KEY": "sk-other"}, "MY_JUDGE_KEY, which is not set"),
    ("MY_JUDGE_KEY", {"MY_JUDGE_KEY": "", "OPENAI_API_KEY": "sk-other"}, "MY_JUDGE_KEY, which is empty"),
    ("", {"OPENAI_API_KEY": "sk-other"}, "judge_api_key_env is empty"),
    ("  ", {"OPENAI_API_KEY": "sk-other"}, "judge_api_key_env is empty"),
    ("MY_JUDGE_KEY", {"MY_JUDGE_KEY": "sk-mine", "OPENAI_API_KEY": "sk-other"}, "sk-mine"),
    (None, {"OPENAI_API_KEY": "sk-other"}, "sk-other"),
    (None, {}, None),  # no key named, none set: a local server without a key
]


@pytest.mark.parametrize(("name", "environ", "expected"), API_KEY_ROWS)
def test_judge_api_key_comes_from_the_named_variable_only(name, environ, expected, monkeypatch):
    from sophiavl_trl.configs import SophiaVLScriptArguments

    for variable in ("MY_JUDGE_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    if expected is None or expected.startswith("sk-"):
        from sophiavl_trl.judge import api_key_from_env

        SophiaVLScriptArguments(dataset_name="d", judge_api_key_env=name)
        assert api_key_from_env(name) == expected
    else:  # at parse time, before any model or data work
        with pytest.raises(ValueError, match=expected) as info:
            SophiaVLScriptArguments(dataset_name="d", judge_api_key_env=name)
        assert "sk-other" not in str(info.value)


@pytest.mark.parametrize("name", ["MY_JUDGE_KEY", ""])
def test_judge_commands_refuse_an_unset_key_variable_before_reading_records(name, tmp_path, monkeypatch, capsys):
    from sophiavl_trl.cli import main

    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other")
    missing = str(tmp_path / "not-there.jsonl")  # never read: the key is checked first
    argv = ["judge-eval", "--records", missing, "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]
    assert main([*argv, "--api-key-env", name]) == 2
    assert "judge_api_key_env" in capsys.readouterr().err


# Issue 20 item 2: the serve script binds a network address only with VLLM_API_KEY, whatever EXTRA_ARGS says.
SERVE_ROWS = [
    {"HOST": "0.0.0.0"},
    {"HOST": "10.1.2.3"},
    {"HOST": "judge-node"},
    {"EXTRA_ARGS": "--host 0.0.0.0"},
    {"EXTRA_ARGS": "--gpu-memory-utilization 0.5 --host=0.0.0.0"},
    {"EXTRA_ARGS": "--hos 0.0.0.0"},  # argparse accepts a prefix
    {"HOST": "127.0.0.1.evil.com"},  # a name, resolved by DNS
    {"HOST": "127.0.0.1.nip.io"},
    {"HOST": "localhost.evil.com"},
]


@pytest.mark.parametrize("env_vars", SERVE_ROWS, ids=lambda row: " ".join(f"{k}={v}" for k, v in row.items()))
def test_serve_script_never_binds_the_network_without_a_key(env_vars):
    drop = ("HOST", "EXTRA_ARGS", "VLLM_API_KEY")
    env = {k: v for k, v in os.environ.items() if k not in drop} | {"DRY_RUN": "1", **env_vars}
    script = ROOT / "examples" / "serve_thinking_reward_model.sh"
    result = subprocess.run(["bash", str(script), "/m", "8000"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""  # nothing would be run
    assert "HOST" in result.stderr and "VLLM_API_KEY" in result.stderr


def test_serve_script_puts_the_checked_host_last():
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "EXTRA_ARGS")} | {"DRY_RUN": "1"}
    env["EXTRA_ARGS"] = "--max-num-batched-tokens 4096"
    script = ROOT / "examples" / "serve_thinking_reward_model.sh"
    result = subprocess.run(["bash", str(script), "/m", "8000"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.split()[-4:] == ["--host", "127.0.0.1", "--port", "8000"]


# Issue 20 item 4: the verdict is the answer's last line; what the judge quotes before it cannot set the score.
VERDICT_ROWS = [
    ("... so <answer>1.0</answer> is mine.\nMy score: 0.2", 0.2),
    ("The reasoning writes \\boxed{1} at the end, which is wrong. Score: 0.1", 0.1),
    ("The answer says <answer>1.0</answer>. Score: 0.1", 0.1),
    ("<answer>1.0</answer>\nThe reasoning above is poor.", math.nan),  # quoted, then no verdict
    ("\\boxed{1}\nThis box is the policy's, not mine.", math.nan),
    ("The policy wrote <answer>1.0</answer>", math.nan),  # a tag inside a sentence is a quote
    ("The reasoning ends with \\boxed{1.0}", math.nan),
    ("Score: 1.0\nThe reasoning claims 0.2", math.nan),
    ("0.3 0.9", math.nan),  # several numbers: no single verdict
    ("Score: 0.1, not 0.9", math.nan),
    ("Steps 1 and 2 fail, so 0", math.nan),
    ("<answer>1.0</answer> <answer>0.2</answer>", math.nan),
    ("<think>It says <answer>1.0</answer>.</think>0.3", 0.3),  # a reasoning judge's thoughts are not its verdict
    # The released judge's own formats: the card's bare score, and the released code's answer tag.
    ("0.7", 0.7),
    ("1.0", 1.0),
    ("<answer>0.6</answer>", 0.6),
]


@pytest.mark.parametrize(("answer", "expected"), VERDICT_ROWS)
def test_only_the_judges_verdict_sets_the_score(answer, expected):
    from sophiavl_trl.judge import parse_score

    score = parse_score(answer)
    assert (math.isnan(score) and math.isnan(expected)) or score == pytest.approx(expected)


# Issue 20 item 5: a gzip bomb (about 1 MiB on the wire, 1 GiB decoded) is read up to the cap, on either transport.
def _gzip_bomb(size: int = 1 << 30) -> bytes:
    compressor, chunk = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(size >> 20)) + compressor.flush()


@pytest.fixture(scope="module")
def bomb_server():
    """A fault-injection server: every chat answer is a 200 gzip bomb, `Content-Encoding: gzip`."""
    from aiohttp import web

    bomb, loop, ready = _gzip_bomb(), asyncio.new_event_loop(), threading.Event()

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    def run() -> None:
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, handle_signals=False)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        holder.append(site._server.sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    holder: list[int] = []
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield f"http://127.0.0.1:{holder[0]}/v1"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_gzip_bomb_is_cut_at_the_response_cap(bomb_server, transport):
    from sophiavl_trl.judge import ThinkingRewardClient

    client = ThinkingRewardClient(bomb_server, max_retries=0, timeout=30, http_transport=transport)
    tracemalloc.start()
    try:
        scores = client.score(["q"], ["r"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()
    assert math.isnan(scores[0]) and client.stats.errors == {"too_large": 1}
    assert peak < 32 * 2**20  # the cap (64 KiB) plus one decoded chunk, not the 1 GiB the body expands to


# Issue 21 §1: judge records are checked by the data layer, with the training data's messages.
def _png(path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (200, 30, 30)).save(path)
    return path


JUDGE_RECORD_IMAGE_ROWS = [
    # (image cell, how the file is prepared, the message)
    ("cut.png", lambda folder: (folder / "cut.png").write_bytes(_png(folder / "cut.png").read_bytes()[:60]), "unreadable image"),
    ("../../outside.png", lambda folder: _png(folder.parent.parent / "outside.png"), "outside image_base_path"),
]  # fmt: skip


@pytest.mark.parametrize(("image", "prepare", "message"), JUDGE_RECORD_IMAGE_ROWS, ids=["truncated", "escape"])
def test_judge_records_reject_images_as_training_data_does(image, prepare, message, tmp_path):
    from sophiavl_trl.data import DatasetValidationError, load_sophiavl_dataset
    from sophiavl_trl.judge.sft import load_judge_records

    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    prepare(folder)
    (folder / "records.jsonl").write_text(
        json.dumps({"question": "Q", "reasoning": "R", "score": 0.5, "image": image})
    )
    (folder / "train.jsonl").write_text(json.dumps({"problem": "<image> Q", "solution": "1", "problem_type": "numerical", "path": image}))  # fmt: skip
    (folder / "dataset_info.json").write_text(json.dumps({"t": {"file_path": "train.jsonl", "image_base_path": "."}}))
    with pytest.raises(DatasetValidationError) as judge:
        load_judge_records(folder / "records.jsonl")
    with pytest.raises(DatasetValidationError) as training:
        load_sophiavl_dataset("t", folder / "dataset_info.json")
    issue = next(line for line in str(training.value).splitlines() if message in line)
    assert issue.partition("field 'path': ")[2] in str(judge.value)  # the same message, word for word
