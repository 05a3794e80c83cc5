# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The TRL internals this package relies on (the README lists them). When an upgrade of TRL changes one, these tests
fail naming it, instead of training going wrong somewhere else."""

from __future__ import annotations

import inspect

import pytest
import torch


# private GRPOTrainer methods we override or call -> the parameters we rely on
HOOKS = {
    "_calculate_rewards": ["self", "inputs", "prompts", "completions", "completion_ids_list"],  # overridden
    "_generate": ["self", "prompts"],  # overridden: the judge requests go out once the completions are decoded
    "_generate_and_score_completions": ["self", "inputs"],  # overridden: keeps the rows for those requests
    "_get_train_sampler": ["self", "dataset"],  # overridden: modality-grouped batches
    "_get_eval_sampler": ["self", "eval_dataset"],  # overridden: modality-grouped batches
    "_log_completion_extra": ["self", "column", "values"],  # called: extra completions-table columns
    "_prepare_inputs": ["self", "generation_batch"],  # overridden: timed, to leave the loss forward and backward
    "training_step": ["self", "model", "inputs", "num_items_in_batch"],  # overridden: `timing/forward_backward`
}


@pytest.mark.parametrize("name", HOOKS)
def test_private_hooks_keep_their_signature(name):
    from trl import GRPOTrainer

    method = getattr(GRPOTrainer, name, None)
    assert method is not None, f"trl.GRPOTrainer.{name} is gone: TrustGRPOTrainer overrides or calls it"
    params = list(inspect.signature(method).parameters)
    assert params == HOOKS[name], f"trl.GRPOTrainer.{name} now takes {params}, TrustGRPOTrainer expects {HOOKS[name]}"


def test_the_judge_overlap_seam_is_where_we_expect_it():
    """`_generate` returns the completions before the log-prob pass, and `_calculate_rewards` gets the same objects."""
    from trl import GRPOTrainer

    generate = inspect.getsource(GRPOTrainer._generate)
    assert (
        "return prompt_ids, completion_ids, tool_mask, completions, logprobs, extra_fields, images, tool_images"
        in (generate)
    ), "GRPOTrainer._generate no longer returns (prompt_ids, completion_ids, ..., completions, ...) in this order"
    score = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    generated = score.index("= self._generate(prompts)")
    logps = score.index("self._get_per_token_logps_and_entropies(", generated)
    rewards = score.index("self._calculate_rewards(inputs, prompts, completions, completion_ids_list)", logps)
    assert generated < logps < rewards, "GRPOTrainer no longer generates, then computes log-probs, then rewards"


def test_the_step_time_seam_is_where_we_expect_it():
    """`timing/forward_backward` is logged where TRL logs `step_time`: once per optimizer step, counted by `_step`."""
    from trl import GRPOTrainer

    step = inspect.getsource(GRPOTrainer.training_step)
    assert "self._step % self.current_gradient_accumulation_steps == 0" in step
    assert 'self._metrics["train"]["step_time"].append' in step


def test_trainer_state_we_extend_has_the_expected_shape(tiny_model_dir, tmp_path):
    """`_calculate_rewards` appends a reward column the way TRL appends an environment's reward."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=2,
                      num_generations=2, max_steps=1)  # fmt: skip
    trainer = GRPOTrainer(
        model=str(tiny_model_dir), reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=args,
        train_dataset=Dataset.from_dict({"prompt": ["a", "b"]}),
    )  # fmt: skip
    for name, kind in [("reward_funcs", list), ("reward_func_names", list), ("reward_processing_classes", list)]:
        assert isinstance(getattr(trainer, name, None), kind), f"GRPOTrainer.{name} is no longer a {kind.__name__}"
    assert len(trainer.reward_funcs) == len(trainer.reward_func_names) == len(trainer.reward_processing_classes)
    assert isinstance(trainer.reward_weights, torch.Tensor) and trainer.reward_weights.shape == (1,)
    assert set(trainer._metrics) == {"train", "eval"}, "GRPOTrainer._metrics is no longer {'train': ..., 'eval': ...}"


def test_colocated_vllm_generation_keeps_the_seam_we_wrap():
    """`sophiavl_trl.vllm_colocate` wraps `VLLMGeneration.sync_weights` and reads its `mode` and `llm`."""
    from trl.generation.vllm_generation import VLLMGeneration

    assert list(inspect.signature(VLLMGeneration.sync_weights).parameters) == ["self"], "sync_weights changed"
    source = inspect.getsource(VLLMGeneration)
    assert "self.mode" in source and "self.llm = LLM(" in source, "VLLMGeneration no longer holds .mode / .llm"
    assert "model_runner.model.load_weights" in source, "colocated sync no longer calls vLLM's load_weights"


def test_a_plain_grpo_trainer_trains_with_colocated_vllm_on_cpu_with_the_patch(tiny_model_dir, tmp_path):
    """`patch_cpu_weight_sync` is for any TRL trainer: TRL's own GRPOTrainer, vLLM's packed CPU kernels."""
    from test_train_script import SYNCED_LOGP_DIFFERENCE, colocated_probe

    result = colocated_probe(tiny_model_dir, tmp_path, "--gemm", "packed", "--trainer", "grpo")
    assert result["packed_layers"] > 0 and len(result["diffs"]) == 3
    assert max(result["diffs"]) < SYNCED_LOGP_DIFFERENCE, result  # vLLM generated with the updated weights


def test_trl_still_needs_the_cpu_weight_sync_patch(tiny_model_dir, tmp_path):
    """Why `sophiavl_trl/vllm_colocate.py` exists (docs/upstream-cpu-weight-sync.md): TRL's colocated sync fails on
    vLLM's packed CPU kernels. When this test fails, TRL or vLLM fixed it: delete the module."""
    import subprocess
    import sys

    from test_train_script import ROOT, probe_env

    script = ROOT / "tests" / "scripts" / "colocated_sync_probe.py"
    args = [str(tiny_model_dir), str(tmp_path), "--gemm", "packed", "--trainer", "grpo-unpatched"]
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=900,
                            cwd=ROOT, env=probe_env())  # fmt: skip
    assert result.returncode != 0 and "weight_loader" in result.stderr, result.stderr[-3000:]


def test_trl_still_needs_one_modality_per_generation_batch(tiny_model_dir, tmp_path):
    """Why `ModalityGroupedRepeatSampler` exists: TRL 1.16 fails on a batch mixing image and text-only prompts (TRL
    issue 5139). When this test fails, TRL handles mixed batches: remove the sampler and the stream grouping."""
    from test_trainer import mixed_dataset
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    args = GRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=4,
        num_generations=2, max_completion_length=4, max_steps=1, save_strategy="no", shuffle_dataset=False,
        generation_kwargs=forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=False),
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=str(tiny_model_dir), reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=args,
        train_dataset=mixed_dataset(), processing_class=processor,
    )  # fmt: skip
    with pytest.raises(TypeError, match="only a single or a list of entries is supported"):
        trainer.train()
