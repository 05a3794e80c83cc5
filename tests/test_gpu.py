# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The GPU path: the trust math, the rewards and the thinking column on CUDA tensors in bf16, and two training steps of
the tiny model on CUDA (marked `gpu`, skipped without CUDA: run them with `pytest -m gpu`, or through the GPU check
kit `benchmarks/gpu_check.py`). `test_kit_cpu_mode` runs that kit on the CPU, so that it cannot rot."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()


def gpu(test):
    """Mark `test` as a GPU test: selected by `-m gpu`, skipped (never passed) where there is no CUDA device."""
    return pytest.mark.gpu(pytest.mark.skipif(not CUDA, reason="needs a CUDA device")(test))


def outcomes_and_thinking(groups: int = 64, G: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Outcome scores from the real accuracy reward, and thinking scores with some NaN (no score)."""
    from sophiavl_trl.rewards import accuracy_reward

    gen = torch.Generator().manual_seed(seed)
    answers = torch.randint(0, 3, (groups * G,), generator=gen).tolist()
    completions = [f"<think>counting</think><answer>{a}</answer>" for a in answers]
    outcome = torch.tensor(accuracy_reward(completions, ["1"] * len(completions)))
    thinking = torch.rand(groups * G, generator=gen)
    thinking[torch.rand(groups * G, generator=gen) < 0.1] = float("nan")
    return outcome.view(groups, G), thinking.view(groups, G)


@gpu
@pytest.mark.parametrize("skip_uniform", [None, (0.1, 0.9)])
def test_trust_weights_on_cuda_bf16_match_the_cpu(skip_uniform):
    from sophiavl_trl.trust import judge_query_mask, trust_weights

    outcome, thinking = outcomes_and_thinking()
    assert 0 < outcome.mean() < 1  # both sides of the split exist
    # The rewards as a bf16 pipeline holds them on the GPU; the reference is the same values in float32 on the CPU.
    outcome_gpu, thinking_gpu = outcome.to("cuda", torch.bfloat16), thinking.to("cuda", torch.bfloat16)
    kwargs = {"step": 7, "alpha": 0.3, "anneal_steps": 100, "skip_uniform": skip_uniform}
    on_gpu = trust_weights(outcome_gpu, thinking_gpu, **kwargs)
    on_cpu = trust_weights(outcome_gpu.float().cpu(), thinking_gpu.float().cpu(), **kwargs)
    for field in ("weight", "gamma", "mu_correct", "mu_incorrect", "skipped"):
        got, want = getattr(on_gpu, field), getattr(on_cpu, field)
        assert got.device.type == "cuda", field
        torch.testing.assert_close(got.cpu(), want, equal_nan=True, rtol=1e-5, atol=1e-6, msg=field)
    assert (on_gpu.gamma < 1).any()  # the distrust branch ran on the GPU
    mask = judge_query_mask(outcome_gpu, query_threshold=0.2, skip_uniform=skip_uniform)
    assert mask.device.type == "cuda"
    assert mask.cpu().equal(judge_query_mask(outcome, query_threshold=0.2, skip_uniform=skip_uniform))


@gpu
def test_the_thinking_column_on_cuda_adds_nothing_for_unscored_completions():
    """TRL sums the reward columns with nansum: the weighted thinking column, NaN where unscored, as the trainer fills
    it (`rewards_per_func[:, -1] = weight * thinking`), on a CUDA tensor."""
    from sophiavl_trl.trust import trust_weights

    outcome, thinking = outcomes_and_thinking(groups=8, G=4, seed=1)
    rewards_per_func = torch.stack([outcome.view(-1), torch.full_like(outcome.view(-1), float("nan"))], dim=1)
    rewards_per_func = rewards_per_func.to("cuda")
    tw = trust_weights(outcome.cuda(), thinking.cuda(), step=0, anneal_steps=10, skip_uniform=None)
    rewards_per_func[:, -1] = tw.weight.repeat_interleave(4) * thinking.view(-1).cuda()
    total = rewards_per_func.nansum(dim=1)
    assert total.device.type == "cuda"
    weight = tw.weight.cpu().repeat_interleave(4)
    expected = outcome.view(-1) + torch.nan_to_num(weight * thinking.view(-1), nan=0.0)
    torch.testing.assert_close(total.cpu(), expected)


@gpu
def test_the_trust_math_makes_no_host_device_synchronisation():
    """Per step the trust math (`sophiavl_trl.trust`) runs on the gathered CUDA tensors; torch's sync debug mode raises
    at any `.item()`, `.tolist()`, `nonzero` or tensor truth test in it."""
    from sophiavl_trl.trust import judge_query_mask, trust_weights

    outcome, thinking = outcomes_and_thinking(groups=16, G=8, seed=2)
    outcome, thinking = outcome.cuda(), thinking.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for skip_uniform in (None, (0.1, 0.9)):
            mask = judge_query_mask(outcome, query_threshold=0.2, skip_uniform=skip_uniform)
            tw = trust_weights(outcome, thinking, step=3, anneal_steps=100, skip_uniform=skip_uniform)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    # (the trainer's own syncs around it are counted, per line, by the kit's `sync_audit` stage)
    assert mask.shape == (16, 8) and torch.isfinite(tw.weight).all()


@gpu
def test_two_training_steps_of_the_tiny_model_on_cuda_bf16(tiny_model_dir, tmp_path):
    from test_trainer import mixed_dataset
    from transformers import AutoProcessor

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    scores: list[float] = []

    def accuracy_reward(completion_ids, **kwargs):
        return [float(sum(c) % 2) for c in completion_ids]

    def thinking(completion_ids, data_type, **kwargs):
        assert len(data_type) == len(completion_ids)
        batch = [(sum(c) % 11) / 10 for c in completion_ids]
        scores.extend(batch)
        return batch

    config = TrustGRPOConfig(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, num_generations=4,
        max_completion_length=16, beta=0.04, bf16=True, gradient_checkpointing=True, report_to="none",
        logging_steps=1, save_strategy="no", seed=0, disable_tqdm=True,
        model_init_kwargs={"dtype": "bfloat16", "attn_implementation": "sdpa"},
        generation_kwargs=forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=False),
    )  # fmt: skip
    trainer = TrustGRPOTrainer(model=str(tiny_model_dir), reward_funcs=[accuracy_reward], args=config,
                               train_dataset=mixed_dataset(8), processing_class=processor, thinking_reward=thinking)  # fmt: skip
    assert type(trainer._get_train_sampler()).__name__ == "ModalityGroupedRepeatSampler"
    before = {n: p.detach().float().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()

    assert trainer.state.global_step == 2
    assert next(trainer.model.parameters()).device.type == "cuda"
    assert next(trainer.model.parameters()).dtype == torch.bfloat16
    after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(before[n], after[n].detach().float()) for n in before)  # the optimizer stepped
    logs = [h for h in trainer.state.log_history if "trust/weight_mean" in h]
    assert len(logs) == 2
    assert len(scores) == 8  # paper mode: every completion of both steps judged
    for h in logs:
        for key in ("loss", "trust/weight_mean", "trust/thinking_score_mean", "timing/generation", "timing/logprobs"):
            assert math.isfinite(h[key]), key
    # the logged mean of the scores equals the mean of what the judge returned, step by step
    assert [h["trust/thinking_score_mean"] for h in logs] == pytest.approx(
        [sum(scores[:4]) / 4, sum(scores[4:]) / 4], abs=1e-6
    )


# --------------------------------------------------------------------------------------------------------------------
# The kit itself, in CPU mode (what CI runs of it)
# --------------------------------------------------------------------------------------------------------------------
def test_kit_cpu_mode(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path), "--device", "cpu"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    figures = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert figures["failed_stages"] == []
    stages = {"env", "recipes", "pytest_gpu", "models", "sync_audit", "judge_server", "grpo", "trust_grpo", "overhead"}
    assert set(figures["stages"]) == stages
    for kind in ("grpo", "trust_grpo"):
        r = figures["results"][kind]
        assert r["steps"] == 3
        assert r["median_step_s"] > 0
        # 1 prompt x G = 4 completions, forced to the full 8 tokens
        assert r["generated_tokens_per_step"] == 4 * 8
        assert r["generated_tokens_per_s"] > 0
    trust = figures["results"]["trust_grpo"]
    for phase in ("generation", "logprobs", "outcome_rewards", "judge", "judge_wait", "optimizer"):
        assert trust["timing"][f"timing/{phase}"] >= 0, phase
    # after the 2 warm-up steps the judge's latency follows the log-prob pass, and the judge's time (the median over
    # the steps after the warm-up) shows it
    latencies = trust["judge_latency_per_step_s"]
    assert latencies[:2] == [0, 0] and len(latencies) == 3 and latencies[2] > 0
    assert trust["timing"]["timing/judge"] >= latencies[2]
    assert figures["overhead"]["ratio"] > 0
    # the sync audit ran its steps; with no CUDA there is nothing to synchronise with
    assert figures["sync_audit"]["steps"] == 1 and figures["sync_audit"]["all_per_step"] == 0
    # on the CPU every gpu test is skipped, and a skip is not counted as a pass
    counts = figures["pytest_gpu"]
    assert counts["skipped"] >= 4 and counts["passed"] == 0 and counts["all_passed"] is False
    assert (tmp_path / "gpu_check.log").read_text().count("--- ") == len(figures["stages"])
    # no flash-attn on a CPU: each GPU recipe that asks for it gets the error a launch would stop with
    assert figures["recipes"] and all("pip install flash-attn" in v for v in figures["recipes"].values())


# --------------------------------------------------------------------------------------------------------------------
# flash-attn: the check that stops a GPU recipe before the model loads, naming the fix
# --------------------------------------------------------------------------------------------------------------------
from sophiavl_trl.model_utils import check_attn_implementation  # noqa: E402


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash-attn is installed here")
def test_flash_attention_2_without_flash_attn_fails_naming_the_fix():
    with pytest.raises(RuntimeError, match=r"config_x\.yaml: flash_attention_2 .* not installed.*pip install flash-attn "
                       r"--no-build-isolation.*attn_implementation: sdpa"):  # fmt: skip
        check_attn_implementation("flash_attention_2", where="config_x.yaml")


@pytest.mark.parametrize("attn_implementation", [None, "sdpa", "eager"])
def test_attention_without_an_extra_package_passes_the_check(attn_implementation):
    check_attn_implementation(attn_implementation)


def test_flash_attention_2_passes_where_flash_attn_can_run(monkeypatch):
    import transformers.utils

    monkeypatch.setattr(transformers.utils, "is_flash_attn_2_available", lambda: True)
    check_attn_implementation("flash_attention_2")


def _pins(text: str) -> dict[str, str]:
    """`name==version` lines, names normalised as pip does."""
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def test_the_gpu_wheel_set_pins_the_versions_the_cpu_suite_runs():
    wheels = _pins((ROOT / "scripts" / "gpu_wheels.sh").read_text())
    constraints = _pins((ROOT / ".ci" / "constraints.txt").read_text())
    shared = wheels.keys() & constraints.keys()
    assert shared >= {"trl", "datasets", "openai", "mathruler", "pylatexenc", "jiwer", "rouge-score", "qwen-vl-utils"}
    assert {name: wheels[name] for name in shared} == {name: constraints[name] for name in shared}
    assert "pyarrow" not in wheels and "torch" not in wheels  # the machine's own (and over the size budget)
