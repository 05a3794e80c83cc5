# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Train TrustGRPOTrainer for a few steps on the tiny model and record what every reward and the judge saw.

Run directly (one process) or under `accelerate launch` (several). Writes, under --out:
- `outcome-<rank>.jsonl`: per call of the outcome reward: step, completion ids and outcome of every local completion;
- `judge-<rank>.jsonl`: per call of the thinking callable: step and the completion ids it was asked to score;
- `log_history.json` (main process): the trainer's logged metrics;
- `events-<rank>.jsonl`: when each judge call and each log-prob pass (no grad) started and ended;
- `error-<rank>.txt`: the error that stopped training on that process, if any.
The outcome reward and the judge are deterministic functions of the completion ids, so a test can recompute
everything from these files.
"""

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import torch
from datasets import Dataset


def outcome_of(ids: list[int], graded: bool) -> float:
    # Deterministic and mixed: about half of the completions are "correct".
    if graded:
        return (sum(ids) % 5) / 4
    return float(sum(ids) % 2 == 0)


def thinking_of(ids: list[int]) -> float:
    return (sum(ids) * 7 % 11) / 10


def parameters(trainer, zero_stage) -> dict[str, torch.Tensor]:
    """A copy of the model's full parameters (gathered from the ZeRO-3 shards when needed)."""
    params = dict(trainer.accelerator.unwrap_model(trainer.model).named_parameters())
    gather = contextlib.nullcontext()
    if zero_stage == 3:
        import deepspeed

        gather = deepspeed.zero.GatheredParameters(list(params.values()))
    with gather:
        return {name: p.detach().cpu().clone() for name, p in params.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mode", default="paper")
    parser.add_argument("--graded", action="store_true")
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--per-device-batch", type=int, default=3)
    parser.add_argument("--num-generations", type=int, default=2)
    parser.add_argument("--no-judge", action="store_true")
    parser.add_argument("--save-steps", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--fail-judge", action="store_true", help="the judge returns None for everything")
    parser.add_argument("--registry", default=None, help="train on this SophiaVL registry (all its entries) instead")
    parser.add_argument("--no-overlap", action="store_true", help="judge after the log-prob pass (judge_overlap off)")
    parser.add_argument("--beta", type=float, default=0.0, help="> 0: a reference log-prob pass every step")
    parser.add_argument("--judge-sleep", type=float, default=0.0, help="the judge takes this long per call")
    parser.add_argument("--logps-sleep", type=float, default=0.0, help="the log-prob pass takes this much longer")
    parser.add_argument("--raise-on-rank", type=int, default=None, help="the judge raises on this process")
    args = parser.parse_args()

    from transformers import AutoProcessor

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.testing import vision_token_ids

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    graded = args.graded

    def correctness(completion_ids, trainer_state, data_type=None, **kwargs):
        scores = [outcome_of(ids, graded) for ids in completion_ids]
        record = {"step": trainer_state.global_step, "ids": completion_ids, "outcome": scores, "data_type": data_type}
        with open(out / f"outcome-{rank}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        return scores

    correctness.__name__ = "accuracy_reward"

    def event(name: str, step: int, start: float) -> None:
        with open(out / f"events-{rank}.jsonl", "a") as f:
            f.write(json.dumps({"event": name, "step": step, "start": start, "end": time.monotonic()}) + "\n")

    def judge(prompts, completions, completion_ids, trainer_state, problem, **kwargs):
        start = time.monotonic()
        assert len(problem) == len(completions) == len(completion_ids)  # dataset columns are subset too
        with open(out / f"judge-{rank}.jsonl", "a") as f:
            f.write(json.dumps({"step": trainer_state.global_step, "ids": completion_ids}) + "\n")
        if args.raise_on_rank == rank:
            raise ConnectionError(f"judge down on rank {rank}")
        time.sleep(args.judge_sleep)
        event("judge", trainer_state.global_step, start)
        if args.fail_judge:
            return [None] * len(completion_ids)
        return [thinking_of(ids) for ids in completion_ids]

    processor = AutoProcessor.from_pretrained(args.model)
    bias = {str(i): -100 for i in vision_token_ids(processor.tokenizer)}
    if args.registry:
        from sophiavl_trl.data import load_registry, load_sophiavl_dataset

        names = sorted(load_registry(args.registry))
        dataset = load_sophiavl_dataset(names, args.registry, min_pixels=28 * 28, max_pixels=56 * 56)
    else:
        dataset = Dataset.from_dict(
            {
                "prompt": [[{"role": "user", "content": f"What is {i} plus {i}?"}] for i in range(64)],
                "problem": [f"What is {i} plus {i}?" for i in range(64)],
            }
        )
    config = TrustGRPOConfig(
        output_dir=str(out / "run"),
        trust_mode=args.mode,
        trust_anneal_steps=10,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.per_device_batch,
        num_generations=args.num_generations,
        max_completion_length=8,
        learning_rate=0.1,  # large, so that parameters visibly change in a few steps
        logging_steps=1,
        save_steps=args.save_steps or 1000,
        save_strategy="steps" if args.save_steps else "no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=42,
        shuffle_dataset=bool(args.registry),
        generation_kwargs={"suppress_tokens": [int(i) for i in bias]},
        judge_max_failed_steps=2,
        judge_overlap=not args.no_overlap,
        beta=args.beta,
    )
    trainer = TrustGRPOTrainer(
        model=args.model,
        reward_funcs=[correctness],
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        thinking_reward=None if args.no_judge else judge,
    )
    state = trainer.accelerator.state
    zero_stage = state.deepspeed_plugin.zero_stage if state.deepspeed_plugin is not None else None
    (out / f"env-{rank}.json").write_text(
        json.dumps(
            {
                "world_size": state.num_processes,
                "distributed_type": str(state.distributed_type),
                "zero_stage": zero_stage,
            }
        )
    )
    # TRL's canonical check: which parameters did training change? (Gathered first under ZeRO-3.)
    initial = parameters(trainer, zero_stage)
    logps = trainer._get_per_token_logps_and_entropies

    def timed_logps(*a, **k):
        start = time.monotonic()
        if torch.is_grad_enabled():  # the loss's forward
            return logps(*a, **k)
        time.sleep(args.logps_sleep)  # the old / reference pass: as long as a large model's
        result = logps(*a, **k)
        event("logps", trainer.state.global_step, start)
        return result

    trainer._get_per_token_logps_and_entropies = timed_logps
    try:
        trainer.train(resume_from_checkpoint=True if args.resume else None)
    except Exception as exc:
        (out / f"error-{rank}.txt").write_text(repr(exc))
        raise
    final = parameters(trainer, zero_stage)
    changed = [name for name, value in initial.items() if not torch.equal(value, final[name])]
    (out / f"changed-{rank}.json").write_text(json.dumps({"changed": changed, "total": len(initial)}))
    if trainer.accelerator.is_main_process:
        (out / "log_history.json").write_text(json.dumps(trainer.state.log_history))


if __name__ == "__main__":
    main()
