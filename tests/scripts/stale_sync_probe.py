# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Train 3 steps with colocated vLLM while TRL's weight sync to vLLM is disabled; print the logp differences as JSON.

Run as a subprocess: colocated vLLM sets torch.distributed variables and keeps an engine alive in its process.
"""

import json
import sys


def main(model_dir: str, output_dir: str) -> None:
    from datasets import Dataset
    from spread_rewards import spread_reward
    from transformers import AutoProcessor

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs

    processor = AutoProcessor.from_pretrained(model_dir)
    dataset = Dataset.from_dict(
        {"prompt": [[{"role": "user", "content": f"What is {i} plus {i}?"}] for i in range(32)]}
    )
    config = TrustGRPOConfig(
        output_dir=output_dir, use_vllm=True, vllm_mode="colocate", vllm_max_model_length=512, use_cpu=True,
        bf16=False, max_steps=3, per_device_train_batch_size=4, num_generations=2, max_completion_length=16,
        learning_rate=0.05, logging_steps=1, report_to="none", save_strategy="no",
        generation_kwargs=forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=True),
    )  # fmt: skip
    trainer = TrustGRPOTrainer(
        model=model_dir, reward_funcs=[spread_reward], args=config, train_dataset=dataset, processing_class=processor
    )
    trainer.vllm_generation.sync_weights = lambda: None  # vLLM keeps the initial weights
    trainer.train()
    diffs = [h["sampling/sampling_logp_difference/mean"] for h in trainer.state.log_history if "loss" in h]
    print("DIFFS=" + json.dumps(diffs))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
