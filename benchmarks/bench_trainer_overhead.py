# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Per-step overhead of TrustGRPOTrainer over GRPOTrainer, with an instant judge (target: under 3%).

Both trainers train the same tiny Qwen2.5-VL on the same prompts with the same seed (so they generate the same
completions); the Trust-GRPO one adds a thinking callable that answers at once. Prints the median step time of each,
their ratio, and the time spent in `_calculate_rewards` (where all of Trust-GRPO's work happens).

    python benchmarks/bench_trainer_overhead.py [--steps 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)


def run(kind: str, model_dir: str, steps: int, batch: int, generations: int) -> tuple[list[float], list[float]]:
    from datasets import Dataset
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs

    processor = AutoProcessor.from_pretrained(model_dir)
    dataset = Dataset.from_dict(
        {"prompt": [[{"role": "user", "content": f"What is {i} plus {i}?"}] for i in range(batch * steps)]}
    )

    def outcome(completion_ids, **kwargs):
        return [float(sum(c) % 2) for c in completion_ids]

    outcome.__name__ = "accuracy_reward"

    def instant_judge(completion_ids, **kwargs):
        return [(sum(c) % 11) / 10 for c in completion_ids]

    common = {
        "output_dir": tempfile.mkdtemp(), "max_steps": steps, "per_device_train_batch_size": batch,
        "num_generations": generations, "max_completion_length": 32, "report_to": "none", "use_cpu": True,
        "bf16": False, "seed": 0, "shuffle_dataset": False, "logging_steps": 1, "save_strategy": "no",
        "disable_tqdm": True,
        "generation_kwargs": forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=False),
    }  # fmt: skip
    timer = StepTimer()
    if kind == "grpo":
        trainer = GRPOTrainer(model=model_dir, reward_funcs=[outcome], args=GRPOConfig(**common),
                              train_dataset=dataset, processing_class=processor, callbacks=[timer])  # fmt: skip
    else:
        trainer = TrustGRPOTrainer(model=model_dir, reward_funcs=[outcome], args=TrustGRPOConfig(**common),
                                   train_dataset=dataset, processing_class=processor, callbacks=[timer],
                                   thinking_reward=instant_judge)  # fmt: skip
    reward_times: list[float] = []
    calculate = trainer._calculate_rewards

    def timed_calculate(*args, **kwargs):
        start = time.perf_counter()
        out = calculate(*args, **kwargs)
        reward_times.append(time.perf_counter() - start)
        return out

    trainer._calculate_rewards = timed_calculate
    trainer.train()
    return timer.times[2:], reward_times[2:]  # the first steps warm caches up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the two trainers this many times each")
    parser.add_argument("--batch", type=int, default=16, help="completions per step")
    parser.add_argument("--generations", type=int, default=8, help="G, completions per prompt")
    parser.add_argument("--model", default=None, help="model folder (default: a tiny Qwen2.5-VL built here)")
    args = parser.parse_args()

    from sophiavl_trl.testing import build_tiny_qwen2_5_vl

    model_dir = args.model or str(build_tiny_qwen2_5_vl(tempfile.mkdtemp()))
    steps = {"grpo": [], "trust": []}
    rewards = {"grpo": [], "trust": []}
    for _ in range(args.rounds):
        for kind in ("grpo", "trust"):
            s, r = run(kind, model_dir, args.steps, args.batch, args.generations)
            steps[kind] += s
            rewards[kind] += r
    med = {k: statistics.median(v) for k, v in steps.items()}
    rmed = {k: statistics.median(v) for k, v in rewards.items()}
    print(f"steps measured per trainer: {len(steps['grpo'])} ({args.batch} completions, G={args.generations})")
    print(
        f"median step time   GRPOTrainer {med['grpo'] * 1e3:8.1f} ms   TrustGRPOTrainer {med['trust'] * 1e3:8.1f} ms"
    )
    print(
        f"step-time ratio    {med['trust'] / med['grpo']:.4f}  (overhead {100 * (med['trust'] / med['grpo'] - 1):+.2f}%)"
    )
    print(
        f"_calculate_rewards GRPOTrainer {rmed['grpo'] * 1e3:8.2f} ms   TrustGRPOTrainer {rmed['trust'] * 1e3:8.2f} ms"
    )
    extra = rmed["trust"] - rmed["grpo"]
    print(f"Trust-GRPO's own work per step: {extra * 1e3:.2f} ms = {100 * extra / med['grpo']:.2f}% of a GRPO step")


if __name__ == "__main__":
    main()
