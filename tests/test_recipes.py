# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Every recipe parses with the training script's parser, names only fields this TRL version has, and has consistent
batch arithmetic for the accelerate config it is meant for."""

import dataclasses
from pathlib import Path

import pytest
import yaml


ROOT = Path(__file__).resolve().parents[1]
# Trust-GRPO recipes. The thinking reward model's SFT recipes (examples/recipes/thinking_reward_model/) parse with
# another parser and are tested in test_judge_sft.py.
RECIPES = sorted(p for p in (ROOT / "examples" / "recipes").rglob("*.yaml") if "thinking_reward_model" not in p.parts)
# The accelerate config each recipe is written for (its launch line says so too).
LAUNCH_CONFIG = {
    "config_paper.yaml": "zero3.yaml",
    "config_reference.yaml": "zero3.yaml",
    "config_lora.yaml": "single_gpu.yaml",
    "config_cpu.yaml": "zero3_cpu.yaml",
    "config_quickstart.yaml": "zero3_cpu.yaml",
    "config_server.yaml": "zero3_multinode.yaml",
}


def parse(recipe: Path, *extra: str):
    from trl import ModelConfig

    from sophiavl_trl import TrustGRPOConfig
    from sophiavl_trl.configs import RecipeParser, SophiaVLScriptArguments

    parser = RecipeParser((SophiaVLScriptArguments, TrustGRPOConfig, ModelConfig))
    # The CPU recipe leaves the paths to the command line, as quickstart.sh does. This machine has no GPU, where
    # TrainingArguments refuses bf16: parse GPU recipes with bf16 off.
    args = ["--config", str(recipe), "--dataset_registry", "x/dataset_info.json", "--model_name_or_path", "m", *extra]
    if yaml.safe_load(recipe.read_text()).get("bf16"):
        args += ["--bf16", "false"]
    return parser.parse_args_and_config(args)


def test_every_recipe_has_a_launch_config():
    assert RECIPES, "no recipes found"
    for recipe in RECIPES:
        assert recipe.name in LAUNCH_CONFIG, recipe
        assert (ROOT / "accelerate_configs" / LAUNCH_CONFIG[recipe.name]).exists()
        assert f"accelerate_configs/{LAUNCH_CONFIG[recipe.name]}" in recipe.read_text() or recipe.name in (
            "config_cpu.yaml",
            "config_quickstart.yaml",
        )


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(ROOT / "examples" / "recipes")))
def test_recipe_fields_exist_and_parse(recipe, tmp_path):
    from trl import ModelConfig

    from sophiavl_trl import TrustGRPOConfig
    from sophiavl_trl.configs import SophiaVLScriptArguments

    keys = set(yaml.safe_load(recipe.read_text()))
    known = {
        f.name for cls in (SophiaVLScriptArguments, TrustGRPOConfig, ModelConfig) for f in dataclasses.fields(cls)
    }
    assert keys <= known, f"unknown fields in {recipe.name}: {sorted(keys - known)}"

    script_args, training_args, model_args = parse(recipe, "--output_dir", str(tmp_path))
    for key, value in yaml.safe_load(recipe.read_text()).items():
        if key in ("model_name_or_path", "dataset_registry", "output_dir", "report_to", "bf16"):
            continue
        actual = next(getattr(a, key) for a in (script_args, training_args, model_args) if hasattr(a, key))
        if key == "judge_base_url" and isinstance(value, str):
            value = [value]
        assert actual == value or str(actual) == str(value), key


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_batch_arithmetic(recipe, tmp_path):
    _, args, _ = parse(recipe, "--output_dir", str(tmp_path))
    accel = yaml.safe_load((ROOT / "accelerate_configs" / LAUNCH_CONFIG[recipe.name]).read_text())
    world = accel["num_processes"]
    steps_per_generation = args.steps_per_generation or args.gradient_accumulation_steps
    generation_batch = args.per_device_train_batch_size * world * steps_per_generation
    assert generation_batch % args.num_generations == 0, (generation_batch, args.num_generations)


def test_paper_and_reference_recipes_match_the_published_numbers(tmp_path):
    folder = ROOT / "examples" / "recipes" / "Qwen2.5-VL-7B-Instruct" / "trust_grpo"
    _, paper, _ = parse(folder / "config_paper.yaml", "--output_dir", str(tmp_path))
    _, reference, _ = parse(folder / "config_reference.yaml", "--output_dir", str(tmp_path))
    for args in (paper, reference):
        assert args.num_generations == 8
        # 16 prompts x 8 completions per optimiser step on 8 GPUs
        assert args.per_device_train_batch_size * 8 * args.gradient_accumulation_steps == 16 * 8
        assert (args.max_steps, args.beta, args.epsilon, args.max_grad_norm) == (1500, 0.04, 0.2, 4.0)
        assert (args.entropy_coef, args.temperature, args.max_completion_length) == (1e-3, 1.0, 1024)
        assert args.trust_alpha == 0.3 and args.use_vllm and args.vllm_mode == "colocate"
        assert args.top_p == 0.9  # the released RolloutConfig
        assert args.eval_strategy == "no"  # the released run does not validate (val_freq: -1)
    assert "8 x A800 80GB" in (folder / "config_paper.yaml").read_text()  # not A100
    assert (paper.trust_mode, paper.learning_rate, paper.trust_anneal_steps) == ("paper", 5e-7, None)
    assert (reference.trust_mode, reference.learning_rate, reference.trust_anneal_steps) == ("reference", 6e-7, 12000)
    assert reference.judge_query_threshold == 0.2 and reference.trust_skip_uniform
    assert paper.judge_query_threshold is None and not paper.trust_skip_uniform


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(ROOT / "examples" / "recipes")))
def test_outcome_reward_is_the_gated_accuracy_alone(recipe, tmp_path):
    # The released outcome reward is format-gated accuracy; a separate format bonus would change the reward scale and
    # Trust-GRPO's correct/incorrect split.
    script_args, args, _ = parse(recipe, "--output_dir", str(tmp_path))
    assert script_args.reward_funcs == ["accuracy"]
    if "Qwen2.5-VL-7B-Instruct" in recipe.parts:
        assert args.top_p == 0.9
