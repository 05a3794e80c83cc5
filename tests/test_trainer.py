# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""TrustGRPOTrainer: equivalence with GRPOTrainer without a judge, exact judge requests per mode across processes,
metrics consistent with the scores, ZeRO-3, resume, and judge failures."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "scripts" / "trust_probe.py"
sys.path.insert(0, str(PROBE.parent))
from trust_probe import outcome_of, thinking_of  # noqa: E402


# --------------------------------------------------------------------------------------------------------------------
# Running the probe
# --------------------------------------------------------------------------------------------------------------------
def clean_env() -> dict[str, str]:
    """This environment without the torch.distributed variables an in-process colocated vLLM may have set."""
    dist = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")
    return {k: v for k, v in os.environ.items() if k not in dist}


def run_probe(model_dir, out: Path, *probe_args: str, launcher: str = "single", port: int = 29600) -> None:
    args = [str(PROBE), "--model", str(model_dir), "--out", str(out), *probe_args]
    if launcher == "single":
        cmd = [sys.executable, *args]
    elif launcher == "ddp":
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--main_process_port", str(port), *args]  # fmt: skip
    elif launcher == "zero3":
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "accelerate_configs" / "zero3_cpu.yaml"), "--main_process_port", str(port), *args]  # fmt: skip
    else:
        raise ValueError(launcher)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, env=clean_env())
    if result.returncode != 0:
        raise AssertionError(f"probe failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --------------------------------------------------------------------------------------------------------------------
# An independent, plain-Python statement of what each mode must do (docs/trust-grpo.md), to check the trainer against
# --------------------------------------------------------------------------------------------------------------------
def expected_step(outcomes: list[float], ids: list[list[int]], G: int, mode: str, step: int, T: int = 10):
    """Return (per-completion: judged?, thinking score or None) and the per-group weights."""
    judged, thinking, weights, gammas, mus_c, mus_w, skipped = [], [], [], [], [], [], []
    for g in range(0, len(outcomes), G):
        o, c = outcomes[g : g + G], ids[g : g + G]
        uniform = mode == "reference" and (all(x >= 0.9 for x in o) or all(x <= 0.1 for x in o))
        for oi, ci in zip(o, c):
            ask = not uniform and (mode == "paper" or oi >= 0.2)
            judged.append(ask)
            if ask:
                thinking.append(thinking_of(ci))
            elif mode == "reference" and oi < 0.2:
                thinking.append(0.0)
            else:
                thinking.append(None)
        t = thinking[g : g + G]
        right = [ti for oi, ti in zip(o, t) if oi >= 0.5 and ti is not None]
        wrong = [ti for oi, ti in zip(o, t) if oi < 0.5 and ti is not None]
        mu_c = sum(right) / len(right) if right else math.nan
        mu_w = sum(wrong) / len(wrong) if wrong else math.nan
        gamma = math.exp(mu_c - mu_w) if right and wrong and mu_c < mu_w else 1.0
        weights.append(0.0 if uniform else 0.3 * math.exp(-step / T) * gamma)
        gammas.append(gamma)
        mus_c.append(mu_c)
        mus_w.append(mu_w)
        skipped.append(uniform)
    return judged, thinking, weights, gammas, mus_c, mus_w, skipped


def nanmean(values):
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def check_probe(out: Path, *, mode: str, G: int, world_size: int, graded: bool = False) -> int:
    """Check every step's judge requests and metrics; return the number of judge requests."""
    outcome_calls = {r: read_jsonl(out / f"outcome-{r}.jsonl") for r in range(world_size)}
    judge_calls = {r: read_jsonl(out / f"judge-{r}.jsonl") for r in range(world_size)}
    history = {h["step"]: h for h in json.loads((out / "log_history.json").read_text()) if "trust/weight_mean" in h}
    n_steps = len(outcome_calls[0])
    assert n_steps == len(history) > 0
    total_requests = 0
    for k in range(n_steps):
        records = [outcome_calls[r][k] for r in range(world_size)]
        step = records[0]["step"]
        assert all(rec["step"] == step for rec in records)
        # TRL gathers process 0's completions first: the global batch is the concatenation in rank order.
        ids = [c for rec in records for c in rec["ids"]]
        outcomes = [o for rec in records for o in rec["outcome"]]
        assert outcomes == [outcome_of(c, graded) for c in ids]
        judged, thinking, weights, gammas, mus_c, mus_w, skipped = expected_step(outcomes, ids, G, mode, step)

        n_local = len(records[0]["ids"])
        for r in range(world_size):
            local = range(r * n_local, (r + 1) * n_local)
            expected = sorted(tuple(ids[i]) for i in local if judged[i])
            calls = [c for c in judge_calls[r] if c["step"] == step]
            actual = sorted(tuple(c) for call in calls for c in call["ids"])
            assert actual == expected, f"step {step}, rank {r}: the judge got the wrong completions"
            assert len(calls) <= 1  # one batched call per process and step, none when nothing to judge
            assert (len(calls) == 1) == bool(expected)
            total_requests += len(actual)

        logged = history[step + 1]  # logged after the optimiser step
        groups = len(weights)
        assert logged["trust/frac_judged"] == pytest.approx(sum(judged) / len(judged))
        assert logged["trust/judge_calls_saved"] == len(judged) - sum(judged)
        assert logged["trust/judge_failures"] == 0
        assert logged["trust/frac_groups_skipped"] == pytest.approx(sum(skipped) / groups)
        assert logged["trust/weight_mean"] == pytest.approx(sum(weights) / groups, abs=1e-6)
        active = [g for g, s in zip(gammas, skipped) if not s]
        if active:
            assert logged["trust/gamma_mean"] == pytest.approx(sum(active) / len(active), abs=1e-6)
            assert logged["trust/frac_gamma_below_1"] == pytest.approx(sum(g < 1 for g in active) / len(active))
        scores = [t for t, j in zip(thinking, judged) if j]
        if scores:
            assert logged["trust/thinking_score_mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)
        if not math.isnan(nanmean(mus_c)):
            assert logged["trust/mu_correct"] == pytest.approx(nanmean(mus_c), abs=1e-6)
        # The thinking column TRL logs is the weighted score, w * t, NaN (unscored) left out.
        contributions = [weights[i // G] * t for i, t in enumerate(thinking) if t is not None]
        if contributions:
            assert logged["rewards/thinking/mean"] == pytest.approx(sum(contributions) / len(contributions), abs=1e-5)
        assert logged["reward"] == pytest.approx(
            sum(outcomes) / len(outcomes) + sum(contributions) / len(outcomes), abs=1e-5
        )
    return total_requests


def check_world(out: Path, world_size: int, zero_stage: int | None) -> None:
    for r in range(world_size):
        env = json.loads((out / f"env-{r}.json").read_text())
        assert env["world_size"] == world_size
        assert env["zero_stage"] == zero_stage
        # TRL's canonical check: training changed the parameters (text prompts: the vision tower gets no gradient).
        changed = json.loads((out / f"changed-{r}.json").read_text())
        language = [n for n in changed["changed"] if "language_model" in n]
        assert language, "training did not change the language model's parameters"


# --------------------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------------------
class TestPlainGRPOEquivalence:
    def test_without_thinking_reward_rewards_and_advantages_equal_grpo(self, tiny_model_dir):
        from datasets import Dataset
        from transformers import AutoProcessor
        from trl import GRPOConfig, GRPOTrainer

        from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
        from sophiavl_trl.testing import vision_token_ids

        processor = AutoProcessor.from_pretrained(tiny_model_dir)
        dataset = Dataset.from_dict(
            {"prompt": [[{"role": "user", "content": f"What is {i} + {i}?"}] for i in range(8)]}
        )

        def length_reward(completion_ids, **kwargs):
            return [len(c) / 8 for c in completion_ids]

        def parity_reward(completion_ids, **kwargs):
            return [(sum(c) % 7) / 6 for c in completion_ids]

        common = {
            "output_dir": "unused", "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 8,
            "report_to": "none", "use_cpu": True, "bf16": False, "seed": 0, "shuffle_dataset": False,
            "reward_weights": [1.0, 0.5],
            "generation_kwargs": {"suppress_tokens": vision_token_ids(processor.tokenizer)},
        }  # fmt: skip
        batch = [dataset[i] for i in range(4)]
        results = []
        for trainer_cls, config_cls in ((GRPOTrainer, GRPOConfig), (TrustGRPOTrainer, TrustGRPOConfig)):
            torch.manual_seed(0)
            trainer = trainer_cls(
                model=str(tiny_model_dir),
                reward_funcs=[length_reward, parity_reward],
                args=config_cls(**common),
                train_dataset=dataset,
                processing_class=processor,
            )
            trainer.model.train()
            torch.manual_seed(123)  # same sampling for both
            out = trainer._generate_and_score_completions([dict(x) for x in batch])
            results.append((out, trainer.reward_func_names, dict(trainer._metrics["train"])))
        (grpo, grpo_names, grpo_metrics), (trust, trust_names, trust_metrics) = results
        assert trust_names == grpo_names
        assert torch.equal(grpo["completion_ids"], trust["completion_ids"])
        assert torch.equal(grpo["advantages"], trust["advantages"])
        for key in ("reward", "reward_std", "rewards/length_reward/mean", "rewards/parity_reward/mean"):
            assert grpo_metrics[key] == trust_metrics[key], key
        assert not any(k.startswith("trust/") for k in trust_metrics)
        # the batch is not degenerate: some advantages are non-zero
        assert grpo["advantages"].abs().sum() > 0, (grpo["completion_ids"], grpo["advantages"])


class TestJudgeRequestsAndMetrics:
    @pytest.mark.parametrize(("mode", "graded"), [("paper", False), ("reference", True)])
    def test_one_process(self, tiny_model_dir, tmp_path, mode, graded):
        run_probe(
            tiny_model_dir, tmp_path, "--mode", mode, "--per-device-batch", "4", *(["--graded"] if graded else [])
        )
        check_world(tmp_path, 1, None)
        requests = check_probe(tmp_path, mode=mode, G=2, world_size=1, graded=graded)
        assert requests > 0

    @pytest.mark.distributed
    @pytest.mark.parametrize(("mode", "graded"), [("paper", False), ("reference", True)])
    def test_two_processes_with_groups_split_across_them(self, tiny_model_dir, tmp_path, mode, graded):
        # 3 prompts x 2 generations... per process 3 completions, G = 2: the second group straddles both processes.
        # The judge works during the reference log-prob pass (beta > 0; judge_overlap is on by default).
        run_probe(tiny_model_dir, tmp_path, "--mode", mode, "--per-device-batch", "3", "--num-generations", "2",
                  "--beta", "0.04", *(["--graded"] if graded else []), launcher="ddp",
                  port=29621 + (mode == "reference"))  # fmt: skip
        check_world(tmp_path, 2, None)
        assert check_probe(tmp_path, mode=mode, G=2, world_size=2, graded=graded) > 0

    @pytest.mark.distributed
    @pytest.mark.slow
    def test_deepspeed_zero3_two_processes(self, tiny_model_dir, tmp_path):
        run_probe(tiny_model_dir, tmp_path, "--mode", "reference", "--graded", "--per-device-batch", "3",
                  launcher="zero3", port=29631)  # fmt: skip
        check_world(tmp_path, 2, 3)
        assert check_probe(tmp_path, mode="reference", G=2, world_size=2, graded=True) > 0


def events(out: Path, rank: int = 0) -> tuple[list[dict], list[dict]]:
    records = read_jsonl(out / f"events-{rank}.jsonl")
    return [e for e in records if e["event"] == "judge"], [e for e in records if e["event"] == "logps"]


class TestJudgeOverlap:
    def test_the_judge_works_during_the_logprob_pass_with_the_same_requests(self, tiny_model_dir, tmp_path):
        probe = ("--mode", "reference", "--graded", "--per-device-batch", "4", "--beta", "0.04", "--judge-sleep", "0.5",
                 "--logps-sleep", "0.5")  # fmt: skip
        for name in ("overlap", "sequential"):
            run_probe(tiny_model_dir, tmp_path / name, *probe, *(["--no-overlap"] if name == "sequential" else []))
            assert check_probe(tmp_path / name, mode="reference", G=2, world_size=1, graded=True) > 0
        # Same seed, same completions: the overlap changes when the judge is asked, not what.
        for kind in ("outcome", "judge"):
            assert read_jsonl(tmp_path / "overlap" / f"{kind}-0.jsonl") == read_jsonl(
                tmp_path / "sequential" / f"{kind}-0.jsonl"
            )
        for name, overlapped in (("overlap", True), ("sequential", False)):
            judge_calls, logps = events(tmp_path / name)
            assert judge_calls and len(logps) == 3  # one reference pass per step (beta > 0)
            for call in judge_calls:
                (same_step,) = [e for e in logps if e["step"] == call["step"]]
                if overlapped:  # the two intervals intersect
                    assert call["start"] < same_step["end"] and same_step["start"] < call["end"], (call, same_step)
                else:
                    assert call["start"] > same_step["end"], (call, same_step)
            history = [h for h in json.loads((tmp_path / name / "log_history.json").read_text()) if "loss" in h]
            for h in history:
                for key in ("generation", "logprobs", "outcome_rewards", "judge", "judge_wait", "optimizer"):
                    assert h[f"timing/{key}"] >= 0, (key, h)
                # The phases of TRL's step (the optimizer step is outside it, the judge's wall time overlaps) are
                # disjoint intervals inside it; the loss forward and backward is one of them.
                inside = ("generation", "logprobs", "outcome_rewards", "judge_wait", "forward_backward")
                assert 0 < h["timing/forward_backward"] and sum(h[f"timing/{k}"] for k in inside) <= h["step_time"]
                assert h["timing/judge"] >= 0.5  # the judge's 0.5 s are measured
                if not overlapped:
                    # Nothing hid it: the wait starts just after the submission, so a few ms of the judge's 0.5 s can
                    # pass before it (0.497 s seen on a loaded machine); overlapped, the wait is about 0.
                    assert h["timing/judge_wait"] >= 0.4

    @pytest.mark.distributed
    def test_a_judge_that_raises_on_one_process_stops_every_process(self, tiny_model_dir, tmp_path):
        with pytest.raises(AssertionError):
            run_probe(tiny_model_dir, tmp_path, "--per-device-batch", "3", "--beta", "0.04", "--raise-on-rank", "1",
                      launcher="ddp", port=29651)  # fmt: skip
        # rank 0's judge worked, yet it stops too instead of waiting for rank 1 forever
        assert (
            "thinking_reward raised on process(es) [1]: ConnectionError('judge down on rank 1')"
            in (tmp_path / "error-1.txt").read_text()
        )
        assert (
            "thinking_reward raised on process(es) [1] (its error is in that process's log)"
            in (tmp_path / "error-0.txt").read_text()
        )


class TestMixedModalities:
    @pytest.mark.distributed
    def test_two_processes_train_on_mixed_image_and_text_data(self, tiny_model_dir, tmp_path):
        from synthetic import write_synthetic_dataset

        registry = write_synthetic_dataset(tmp_path / "data", num_samples=48, seed=3, text_fraction=0.5)
        run_probe(tiny_model_dir, tmp_path / "out", "--registry", str(registry), "--per-device-batch", "2",
                  "--max-steps", "6", launcher="ddp", port=29641)  # fmt: skip
        check_world(tmp_path / "out", 2, None)
        seen = set()
        for step_records in zip(*(read_jsonl(tmp_path / "out" / f"outcome-{r}.jsonl") for r in range(2))):
            kinds = {kind for record in step_records for kind in record["data_type"]}
            assert len(kinds) == 1, f"a generation batch mixed modalities: {kinds}"  # TRL 1.16 would crash on it
            seen |= kinds
        assert seen == {"image", "text"}  # both modalities were trained on
        assert check_probe(tmp_path / "out", mode="paper", G=2, world_size=2) > 0


class TestResumeAndFailures:
    def test_resume_continues_the_annealing_from_the_saved_step(self, tiny_model_dir, tmp_path):
        run_probe(tiny_model_dir, tmp_path, "--per-device-batch", "4", "--max-steps", "2", "--save-steps", "2")
        assert (tmp_path / "run" / "checkpoint-2").is_dir()
        (tmp_path / "outcome-0.jsonl").unlink()
        (tmp_path / "judge-0.jsonl").unlink()
        run_probe(tiny_model_dir, tmp_path, "--per-device-batch", "4", "--max-steps", "4", "--resume")
        history = json.loads((tmp_path / "log_history.json").read_text())
        resumed = [h for h in history if "trust/anneal_scale" in h and h["step"] > 2]
        assert [h["step"] for h in resumed] == [3, 4]
        # generation for optimiser step 3 happens at global_step 2: scale 0.3 * exp(-2 / 10), not exp(0)
        assert resumed[0]["trust/anneal_scale"] == pytest.approx(0.3 * math.exp(-2 / 10))
        assert resumed[1]["trust/anneal_scale"] == pytest.approx(0.3 * math.exp(-3 / 10))
        assert [r["step"] for r in read_jsonl(tmp_path / "judge-0.jsonl")] == [2, 3]

    def test_a_judge_that_always_fails_stops_training_with_a_clear_error(self, tiny_model_dir, tmp_path):
        with pytest.raises(AssertionError) as info:
            run_probe(tiny_model_dir, tmp_path, "--per-device-batch", "4", "--max-steps", "5", "--fail-judge")
        assert "Every thinking-judge request failed in 2 consecutive steps" in str(info.value)
        # it stopped after the second failed step, and the failures were counted, not turned into zeros
        assert len(read_jsonl(tmp_path / "judge-0.jsonl")) == 2


def test_evaluation_scores_the_outcome_only_and_training_asks_the_judge(tiny_model_dir, tmp_path):
    """As in the released code, validation uses the rule reward without the judge."""
    from datasets import Dataset

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer

    calls = []

    def judge(completions, **kwargs):
        calls.append(len(completions))
        return [0.5] * len(completions)

    def outcome(completions, **kwargs):
        return [float(i % 2) for i in range(len(completions))]

    data = Dataset.from_dict({"prompt": [f"What is {i}?" for i in range(4)]})
    args = TrustGRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=2,
        per_device_eval_batch_size=2, num_generations=2, max_completion_length=4, max_steps=1, save_strategy="no",
    )  # fmt: skip
    trainer = TrustGRPOTrainer(
        model=str(tiny_model_dir), reward_funcs=[outcome], args=args, train_dataset=data, eval_dataset=data,
        thinking_reward=judge,
    )  # fmt: skip
    metrics = trainer.evaluate()
    assert calls == [] and "eval_rewards/outcome/mean" in metrics
    trainer.train()
    assert sum(calls) == 2  # one group of 2 completions judged (paper mode: all of them)


def mixed_dataset(n: int = 16):
    """Image and text-only prompts alternating, as SophiaVL's data mixes them (TRL's `images` column)."""
    from datasets import Dataset
    from PIL import Image

    image = Image.new("RGB", (56, 56), (200, 30, 30))
    rows = {"prompt": [], "images": [], "data_type": []}
    for i in range(n):
        kind = "image" if i % 2 == 0 else "text"
        content = [{"type": "text", "text": f"What is {i} plus {i}?"}]
        rows["prompt"].append(
            [{"role": "user", "content": ([{"type": "image"}] if kind == "image" else []) + content}]
        )
        rows["images"].append([image] if kind == "image" else [])
        rows["data_type"].append(kind)
    return Dataset.from_dict(rows)


def test_streaming_mixed_data_trains_in_one_modality_batches(tiny_model_dir, tmp_path):
    from transformers import AutoProcessor

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    seen = []

    def outcome(completions, data_type, **kwargs):
        seen.append(set(data_type))
        return [float(i % 2) for i in range(len(completions))]

    args = TrustGRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=4,
        num_generations=2, max_completion_length=4, max_steps=4, save_strategy="no", seed=0,
        generation_kwargs=forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=False),
    )  # fmt: skip
    trainer = TrustGRPOTrainer(
        model=str(tiny_model_dir), reward_funcs=[outcome], args=args, processing_class=processor,
        train_dataset=mixed_dataset().to_iterable_dataset(), thinking_reward=lambda completions, **kw: [0.5] * len(completions),
    )  # fmt: skip
    trainer.train()  # TRL alone fails on the first mixed batch (tests/test_trl_internals.py)
    assert len(seen) == 4 and all(len(kinds) == 1 for kinds in seen), seen
    assert set().union(*seen) == {"image", "text"}
