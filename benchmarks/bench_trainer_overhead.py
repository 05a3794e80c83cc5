# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Whole-step overhead of TrustGRPOTrainer over GRPOTrainer, with a judge that answers after L seconds.

Both trainers train the same tiny Qwen2.5-VL on the same prompts, with the same seed, outcome reward and `beta` (a
reference log-prob pass every step, as in the recipes), so they generate the same completions; TrustGRPOTrainer adds a
thinking judge: a callable that sleeps L seconds, then scores (the judge client's own cost is
`benchmarks/bench_judge.py`'s). Whole steps are timed (callback from step begin to step end: generation, rewards, the
judge, log-probs, loss, optimizer). Prints, per L, the median step time of each trainer and their ratio, and the
judge's wall time and wait (`timing/judge`, `timing/judge_wait`), and the step's CPU time beside its wall time. With
L = 0 the ratio is Trust-GRPO's own work (target: under 3%); with L > 0 the overlap hides the judge up to the
log-prob pass (`timing/logprobs`). Both times inflate when other jobs load the machine (a step's CPU time too:
OpenMP threads spin), so a ratio compares runs only under the same load; `wait` is the judge's own cost on the step.

    python benchmarks/bench_trainer_overhead.py [--steps 12] [--rounds 2] [--latencies 0 0.1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Each step's wall time and this process's CPU time (all its threads)."""

    def __init__(self):
        self.times: list[tuple[float, float]] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append((time.perf_counter() - self.start[0], time.process_time() - self.start[1]))


def run(model_dir: str, latency: float | None, args: argparse.Namespace) -> tuple[list, dict[str, float]]:
    """Train; return the (wall, CPU) step times (first 2 steps out: warm-up) and the median `timing/*` of Trust-GRPO.
    `latency=None` trains GRPOTrainer."""
    from datasets import Dataset
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs

    processor = AutoProcessor.from_pretrained(model_dir)
    dataset = Dataset.from_dict(
        {"prompt": [[{"role": "user", "content": f"What is {i} plus {i}?"}] for i in range(args.batch * args.steps)]}
    )

    def accuracy_reward(completion_ids, **kwargs):
        return [float(sum(c) % 2) for c in completion_ids]  # mixed groups: every completion is judged

    def judge(completion_ids, **kwargs):
        time.sleep(latency)
        return [(sum(c) % 11) / 10 for c in completion_ids]

    common = {
        "output_dir": tempfile.mkdtemp(), "max_steps": args.steps, "per_device_train_batch_size": args.batch,
        "num_generations": args.generations, "max_completion_length": args.completion_length, "beta": 0.04,
        "report_to": "none", "use_cpu": True, "bf16": False, "seed": 0, "shuffle_dataset": False, "logging_steps": 1,
        "save_strategy": "no", "disable_tqdm": True,
        "generation_kwargs": forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=False),
    }  # fmt: skip
    timer = StepTimer()
    kwargs = {"model": model_dir, "reward_funcs": [accuracy_reward], "train_dataset": dataset,
              "processing_class": processor, "callbacks": [timer]}  # fmt: skip
    if latency is None:
        trainer = GRPOTrainer(args=GRPOConfig(**common), **kwargs)
    else:
        trainer = TrustGRPOTrainer(args=TrustGRPOConfig(**common), thinking_reward=judge, **kwargs)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "timing/judge" in h][2:]
    phases = ("judge", "judge_wait", "logprobs") if logs else ()  # GRPOTrainer logs no timing/*
    return timer.times[2:], {p: statistics.median(h[f"timing/{p}"] for h in logs) for p in phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the trainers this many times each")
    parser.add_argument("--batch", type=int, default=16, help="completions per step")
    parser.add_argument("--generations", type=int, default=4, help="G, completions per prompt")
    parser.add_argument("--completion-length", type=int, default=32)
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.1], help="judge latencies L (s)")
    parser.add_argument("--model", default=None, help="model folder (default: a tiny Qwen2.5-VL built here)")
    args = parser.parse_args()

    from sophiavl_trl.testing import build_tiny_qwen2_5_vl

    model_dir = args.model or str(build_tiny_qwen2_5_vl(tempfile.mkdtemp()))
    steps: dict[float | None, list] = {None: [], **{latency: [] for latency in args.latencies}}
    timing: dict[float, list[dict[str, float]]] = {latency: [] for latency in args.latencies}
    for _ in range(args.rounds):
        for latency in steps:
            times, phases = run(model_dir, latency, args)
            steps[latency] += times
            if latency is not None:
                timing[latency].append(phases)

    def medians(times: list) -> tuple[float, float]:
        return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)

    grpo, grpo_cpu = medians(steps[None])
    print(f"{len(steps[None])} steps per trainer, {args.batch} completions of up to {args.completion_length} tokens, "
          f"G={args.generations}, beta=0.04, {args.rounds} alternating rounds")  # fmt: skip
    print("medians per step; wall: seconds; CPU: this process's CPU seconds; judge, wait, logprobs: Trust's timing/*")
    print(f"{'judge L (s)':<12}{'GRPO wall':>10}{'Trust wall':>11}{'ratio':>7}{'GRPO CPU':>10}{'Trust CPU':>10}"
          f"{'ratio':>7}{'judge':>7}{'wait':>7}{'logprobs':>9}")  # fmt: skip
    for latency in args.latencies:
        trust, trust_cpu = medians(steps[latency])
        phase = {p: statistics.median(t[p] for t in timing[latency]) for p in timing[latency][0]}
        print(f"{latency:<12.3f}{grpo:>10.3f}{trust:>11.3f}{trust / grpo:>7.3f}{grpo_cpu:>10.3f}{trust_cpu:>10.3f}"
              f"{trust_cpu / grpo_cpu:>7.3f}{phase['judge']:>7.3f}{phase['judge_wait']:>7.3f}"
              f"{phase['logprobs']:>9.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
