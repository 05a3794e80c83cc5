# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Step time of TrustGRPOTrainer with the judge before the log-prob pass (`judge_overlap`) and after it (TRL's order).

A tiny Qwen2.5-VL trains with `beta > 0` (a reference log-prob pass every step) and long completions; the judge is
the project's `ThinkingReward` client against a local fake OpenAI server that answers after L seconds. First a run
with L = 0 measures the log-prob pass P (`timing/logprobs`); then L = P and L = 2P, each with the overlap off
("before") and on ("after"). Prints the median step time and the `timing/*` breakdown of every run, and the targets:
with L <= P the step is within 10% of the L = 0 step; with L = 2P within 10% of (L = 0 step) + (L - P).

    python benchmarks/bench_overlap.py [--steps 8] [--batch 16] [--completion-length 128] [--gpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback


sys.path.insert(0, str(Path(__file__).parent))
from bench_judge import start_fake_server  # noqa: E402


PHASES = ("generation", "weight_sync", "logprobs", "outcome_rewards", "judge", "judge_wait", "forward_backward",
          "optimizer")  # fmt: skip


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.start)


def run(model_dir: str, base_url: str, overlap: bool, args: argparse.Namespace) -> tuple[float, dict[str, float]]:
    """Train `args.steps` steps; return the median step time and the median of each `timing/*` (first 2 steps out)."""
    from datasets import Dataset
    from transformers import AutoProcessor

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs
    from sophiavl_trl.rewards import ThinkingReward

    processor = AutoProcessor.from_pretrained(model_dir)
    n = args.batch * args.steps
    dataset = Dataset.from_dict(
        {"prompt": [[{"role": "user", "content": f"What is {i} plus {i}? Think first."}] for i in range(n)]}
    )

    def accuracy_reward(completion_ids, **kwargs):
        return [float(sum(c) % 2) for c in completion_ids]  # mixed groups: every completion is judged (paper)

    config = TrustGRPOConfig(
        output_dir=tempfile.mkdtemp(), max_steps=args.steps, per_device_train_batch_size=args.batch,
        num_generations=args.generations, max_completion_length=args.completion_length, beta=0.04,
        report_to="none", use_cpu=not args.gpu, bf16=args.gpu, seed=0, shuffle_dataset=False, logging_steps=1,
        save_strategy="no", disable_tqdm=True, judge_overlap=overlap,
        generation_kwargs={  # every completion runs to the full length: the same work in every step
            **forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=False),
            "min_new_tokens": args.completion_length,
        },
    )  # fmt: skip
    timer = StepTimer()
    judge = ThinkingReward(base_url=base_url, model="thinking-reward-model", max_concurrency=256, timeout=60)
    trainer = TrustGRPOTrainer(model=model_dir, reward_funcs=[accuracy_reward], args=config, train_dataset=dataset,
                               processing_class=processor, callbacks=[timer], thinking_reward=judge)  # fmt: skip
    trainer.train()
    logs = [h for h in trainer.state.log_history if "timing/generation" in h][2:]
    timing = {p: statistics.median(h.get(f"timing/{p}", 0.0) for h in logs) for p in PHASES}
    return statistics.median(timer.times[2:]), timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16, help="completions per step")
    parser.add_argument("--generations", type=int, default=4, help="G, completions per prompt")
    parser.add_argument("--completion-length", type=int, default=128)
    parser.add_argument("--gpu", action="store_true", help="train on the GPU in bf16")
    parser.add_argument("--model", default=None, help="model folder (default: a tiny Qwen2.5-VL built here)")
    args = parser.parse_args()

    from sophiavl_trl.testing import build_tiny_qwen2_5_vl

    model_dir = args.model or str(build_tiny_qwen2_5_vl(tempfile.mkdtemp()))
    rows: list[tuple[str, str, float, dict[str, float]]] = []

    def measure(latency: float, label: str, overlaps: tuple[bool, ...]) -> dict[bool, float]:
        server, base_url = start_fake_server(latency)
        try:
            steps = {}
            for overlap in overlaps:
                steps[overlap], timing = run(model_dir, base_url, overlap, args)
                rows.append((label, "after" if overlap else "before", steps[overlap], timing))
                print(f"  {label:<12} {rows[-1][1]:<6} step {steps[overlap]:.3f} s", flush=True)
            return steps
        finally:
            server.kill()

    base = measure(0.0, "L=0", (False, True))
    P = rows[-1][3]["logprobs"]
    print(f"log-prob pass P = {P:.3f} s", flush=True)
    at_p = measure(P, "L=P", (False, True))
    at_2p = measure(2 * P, "L=2P", (False, True))

    # `step - generation`: the part of the step the judge can lengthen (generation varies most between runs on a CPU).
    print(
        f"\n{'judge latency':<14}{'trainer':<8}{'step s':>8}{'step-gen s':>11}" + "".join(f"{p:>16}" for p in PHASES)
    )
    for label, kind, step, timing in rows:
        rest = step - timing["generation"] - timing["weight_sync"]
        print(f"{label:<14}{kind:<8}{step:>8.3f}{rest:>11.3f}" + "".join(f"{timing[p]:>16.3f}" for p in PHASES))
    s0 = base[True]
    print(f"\nL = P:  after {at_p[True]:.3f} s vs L = 0 {s0:.3f} s: {at_p[True] / s0 - 1:+.1%} (target within +10%); "
          f"before {at_p[False]:.3f} s ({at_p[False] / s0 - 1:+.1%})")  # fmt: skip
    goal = s0 + P
    print(f"L = 2P: after {at_2p[True]:.3f} s vs (L = 0) + (L - P) = {goal:.3f} s: {at_2p[True] / goal - 1:+.1%} "
          f"(target within +10%); before {at_2p[False]:.3f} s ({at_2p[False] / goal - 1:+.1%})")  # fmt: skip
    # On a shared CPU the generation time of two runs can differ by more than the judge's latency; the judge's cost on
    # the critical path, `judge_wait` against this run's own log-prob pass, is the figure that noise does not blur.
    print("\njudge on the critical path (timing/judge_wait), this run's own P = timing/logprobs:")
    for label, kind, _, timing in rows[2:]:
        latency, own_p, wait = timing["judge"], timing["logprobs"], timing["judge_wait"]
        ideal = max(0.0, latency - own_p) if kind == "after" else latency
        print(f"  {label:<5} {kind:<6} judge {latency:.3f} s, P {own_p:.3f} s, waited {wait:.3f} s "
              f"(ideal {ideal:.3f} s; {wait / s0:.1%} of the L = 0 step)")  # fmt: skip


if __name__ == "__main__":
    main()
