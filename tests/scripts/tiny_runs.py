# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Short real training runs on the tiny model, shared by the CLI and judge tests (imported with `sys.path`, as
`trust_probe.py` is):

- `run_trust_grpo`: `TrustGRPOTrainer` for a few steps on the synthetic data, with `log_completions=True`, then
  `save_state()`: a run folder with `trainer_state.json` and TRL's `completions/*.parquet`;
- `train_tiny_policy`: a few dozen SFT steps that teach the tiny model one fixed, well-formatted answer, so that
  evaluation gets a mix of right and wrong answers.
"""

from __future__ import annotations

from pathlib import Path


def thinking_score(completion_ids: list[int]) -> float:
    """A deterministic stand-in score of a completion's thinking (the judge's place in Trust-GRPO)."""
    return (sum(completion_ids) * 7 % 11) / 10


def run_trust_grpo(model_dir, registry, output_dir, *, seed: int = 42, max_steps: int = 2) -> Path:
    from transformers import AutoProcessor

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.data import load_sophiavl_dataset
    from sophiavl_trl.rewards import accuracy_reward, format_reward
    from sophiavl_trl.testing import vision_token_ids

    def judge(prompts, completions, completion_ids, **kwargs):
        return [thinking_score(ids) for ids in completion_ids]

    processor = AutoProcessor.from_pretrained(model_dir)
    dataset = load_sophiavl_dataset("synthetic_image,synthetic_text", registry, min_pixels=3136, max_pixels=12544)
    config = TrustGRPOConfig(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=12,
        learning_rate=0.05,  # large, so that the rewards move in two steps
        logging_steps=1,
        log_completions=True,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=seed,
        generation_kwargs={"suppress_tokens": [int(i) for i in vision_token_ids(processor.tokenizer)]},
    )
    trainer = TrustGRPOTrainer(
        model=str(model_dir),
        reward_funcs=[accuracy_reward, format_reward],
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        thinking_reward=judge,
    )
    trainer.train()
    trainer.save_state()
    return Path(output_dir)


def train_tiny_policy(
    model_dir, registry, output_dir, *, answer: str = "2", max_steps: int = 30, learning_rate: float = 3e-3
) -> Path:
    from datasets import Dataset
    from transformers import AutoProcessor
    from trl import SFTConfig, SFTTrainer

    from sophiavl_trl.data import load_sophiavl_dataset

    data = load_sophiavl_dataset("synthetic_image,synthetic_text", registry, min_pixels=784, max_pixels=12544)
    target = f"<think>{answer}</think><answer>{answer}</answer>"
    rows = []
    for row in data:
        # One Arrow schema for every row: string contents become one text part.
        prompt = [
            {"role": m["role"], "content": [{"type": "text", "text": m["content"]}]}
            if isinstance(m["content"], str)
            else m
            for m in row["prompt"]
        ]
        rows.append(
            {"prompt": prompt, "completion": [{"role": "assistant", "content": target}], "images": row["images"]}
        )
    config = SFTConfig(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",  # converges in ~25 steps (a linear decay needs ~40)
        max_length=None,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
        disable_tqdm=True,
    )
    processor = AutoProcessor.from_pretrained(model_dir)
    trainer = SFTTrainer(
        model=str(model_dir), args=config, train_dataset=Dataset.from_list(rows), processing_class=processor
    )
    trainer.train()
    trainer.save_model(str(output_dir))
    return Path(output_dir)
