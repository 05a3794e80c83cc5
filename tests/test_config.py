# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Malformed recipes and arguments fail at parse time, naming the field (the way users pass them: a YAML recipe
through `TrlParser`, as `examples/train_sophiavl.py` does)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml


ROOT = Path(__file__).resolve().parents[1]


def parse(tmp_path, **recipe):
    from trl import ModelConfig

    from sophiavl_trl import TrustGRPOConfig
    from sophiavl_trl.configs import RecipeParser, SophiaVLScriptArguments

    path = tmp_path / "recipe.yaml"
    base = {"dataset_name": "d", "output_dir": str(tmp_path), "use_cpu": True, "bf16": False}
    path.write_text(yaml.safe_dump({**base, **recipe}))
    parser = RecipeParser((SophiaVLScriptArguments, TrustGRPOConfig, ModelConfig))
    return parser.parse_args_and_config(["--config", str(path)])


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({"judge_max_retries": 2.5}, r"judge_max_retries must be int, got 2\.5"),
        ({"trust_alpha": [1, 2]}, r"trust_alpha must be float, got \[1, 2\]"),
        ({"trust_alpha": float("nan")}, "trust_alpha must be a finite number"),
        ({"trust_alpha": float("inf")}, "trust_alpha must be a finite number"),
        ({"trust_correct_threshold": float("nan")}, "trust_correct_threshold must be a finite number"),
        ({"trust_anneal_steps": 10.5}, r"trust_anneal_steps must be int \| None, got 10\.5"),
        ({"judge_timeout": True}, "judge_timeout must be float"),
        ({"use_thinking_reward": 2}, "use_thinking_reward must be bool"),
        ({"trust_alpha": -1}, "trust_alpha must be >= 0"),
        ({"trust_mode": "papers"}, r"trust_mode must be one of \('paper', 'reference'\), got 'papers'"),
        ({"on_invalid": "drop"}, "on_invalid must be one of"),
        ({"judge_query_threshold": 1.5}, r"judge_query_threshold must be in \[0, 1\], got 1.5"),
        ({"judge_max_concurrency": 0}, "judge_max_concurrency must be > 0, got 0"),
    ],
)
def test_a_malformed_recipe_value_names_the_field(tmp_path, recipe, message):
    with pytest.raises(ValueError, match=message):
        parse(tmp_path, **recipe)


def test_a_bare_string_where_a_list_is_expected_means_a_list(tmp_path):
    script_args, _, _ = parse(tmp_path, reward_funcs="accuracy", judge_base_url="http://a:1/v1, http://b:2/v1")
    assert script_args.reward_funcs == ["accuracy"]
    assert script_args.judge_base_url == ["http://a:1/v1", "http://b:2/v1"]


def test_well_formed_values_pass(tmp_path):
    # (argparse converts string values, as on the command line)
    script_args, args, _ = parse(tmp_path, trust_alpha=1, judge_max_retries=0, trust_anneal_steps="10")
    assert (args.trust_alpha, script_args.judge_max_retries, args.trust_anneal_steps) == (1, 0, 10)


def test_a_missing_local_model_fails_at_once_naming_the_path():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_sophiavl.py"), "--model_name_or_path", "/no/such/dir",
         "--dataset_name", "d", "--output_dir", "/tmp/unused", "--use_cpu", "true", "--bf16", "false"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "model_name_or_path: no such folder: /no/such/dir" in result.stderr
    assert "Repo id" not in result.stderr  # not the Hub's error
