# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
#
# /// script
# dependencies = [
#     "sophiavl-trl[vllm,deepspeed]",
# ]
# ///
"""
Train a Qwen2.5-VL model with SophiaVL-R1's Trust-GRPO: outcome rewards plus a trust-weighted, annealed thinking
reward from a judge model served by vLLM.

Prerequisites:

```sh
pip install "sophiavl-trl[vllm,deepspeed]"
# the thinking reward model, on its own GPUs (OpenAI-compatible API):
bash examples/serve_thinking_reward_model.sh /path/to/SophiaVL-R1-Thinking-Reward-Model-3B 8000
```

The paper's run (8 GPUs, ZeRO-3, TRL's colocated vLLM generation):

```sh
accelerate launch --config_file accelerate_configs/zero3.yaml examples/train_sophiavl.py \
    --config examples/recipes/Qwen2.5-VL-7B-Instruct/trust_grpo/config_paper.yaml \
    --dataset_registry /data/SophiaVL-R1-130k/dataset_info.json --train_files Chart,OCR,Math \
    --judge_base_url http://judge-host:8000/v1
```

The released code's variant (`trust_mode: reference`, T = 12000):

```sh
accelerate launch --config_file accelerate_configs/zero3.yaml examples/train_sophiavl.py \
    --config examples/recipes/Qwen2.5-VL-7B-Instruct/trust_grpo/config_reference.yaml
```

LoRA on one GPU:

```sh
accelerate launch --config_file accelerate_configs/single_gpu.yaml examples/train_sophiavl.py \
    --config examples/recipes/Qwen2.5-VL-7B-Instruct/trust_grpo/config_lora.yaml
```

On a CPU, 2 processes under ZeRO-3 with the tiny model and synthetic data (what `scripts/quickstart.sh` runs):

```sh
accelerate launch --config_file accelerate_configs/zero3_cpu.yaml examples/train_sophiavl.py \
    --config examples/recipes/tiny/config_cpu.yaml --model_name_or_path /tmp/tiny-qwen2.5-vl \
    --dataset_registry /tmp/synthetic/dataset_info.json --judge_base_url http://127.0.0.1:8000/v1
```

Resume with `--resume_from_checkpoint true` (latest checkpoint in `output_dir`) or a checkpoint path.
"""

from __future__ import annotations

import logging

from transformers import AutoProcessor
from trl import ModelConfig, TrlParser, get_peft_config

from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
from sophiavl_trl.configs import SophiaVLScriptArguments, check_model_path
from sophiavl_trl.judge import api_key_from_env
from sophiavl_trl.model_utils import forbidden_token_generation_kwargs, set_pixel_bounds
from sophiavl_trl.rewards import ThinkingReward, get_reward_funcs


logger = logging.getLogger(__name__)


def load_data(script_args: SophiaVLScriptArguments, names: str | None):
    """The TRL-ready data set for `names` (registry) or `dataset_name` (Hugging Face), validated before training."""
    from sophiavl_trl.data import load_sophiavl_dataset, prepare_dataset

    options = {
        "min_pixels": script_args.min_pixels,
        "max_pixels": script_args.max_pixels,
        "on_invalid": script_args.on_invalid,
        "system_prompt": script_args.system_prompt,
    }
    if script_args.dataset_registry is not None:
        return load_sophiavl_dataset(names, script_args.dataset_registry, **options)
    from datasets import load_dataset

    split = script_args.dataset_train_split if names is None else script_args.dataset_test_split
    dataset = load_dataset(script_args.dataset_name, name=script_args.dataset_config, split=split)
    return prepare_dataset(dataset, script_args.image_base_path, **options)


def build_thinking_reward(script_args: SophiaVLScriptArguments) -> ThinkingReward:
    """The judge, from the `judge_*` settings (environment variables fill what is unset; the key never leaves it)."""
    kwargs = {
        "model": script_args.judge_model,
        "timeout": script_args.judge_timeout,
        "max_retries": script_args.judge_max_retries,
        "max_concurrency": script_args.judge_max_concurrency,
        "constrained_decoding": script_args.judge_constrained_decoding,
        "api_key": api_key_from_env(script_args.judge_api_key_env),
    }
    if script_args.judge_base_url:
        kwargs["base_url"] = script_args.judge_base_url
    return ThinkingReward(
        reasoning_source=script_args.judge_reasoning_source, **{k: v for k, v in kwargs.items() if v is not None}
    )


def main(script_args: SophiaVLScriptArguments, training_args: TrustGRPOConfig, model_args: ModelConfig) -> None:
    check_model_path(model_args.model_name_or_path)
    ################
    # Model
    ################
    training_args.model_init_kwargs = {
        **(training_args.model_init_kwargs or {}),
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    processor = AutoProcessor.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    # The data pipeline already resized the images within [min_pixels, max_pixels]; keep the processor consistent.
    set_pixel_bounds(processor, script_args.min_pixels, script_args.max_pixels)
    if script_args.forbid_vision_tokens:
        training_args.generation_kwargs = {
            **forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=training_args.use_vllm),
            **(training_args.generation_kwargs or {}),
        }

    ################
    # Dataset (validated here, before any model is loaded)
    ################
    train_dataset = load_data(script_args, script_args.train_files)
    eval_dataset = None
    if training_args.eval_strategy != "no" and script_args.eval_files:
        eval_dataset = load_data(script_args, script_args.eval_files)

    ################
    # Rewards
    ################
    reward_funcs = get_reward_funcs(script_args.reward_funcs)
    thinking_reward = build_thinking_reward(script_args) if script_args.use_thinking_reward else None

    ################
    # Training
    ################
    trainer = TrustGRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
        thinking_reward=thinking_reward,
    )
    resume = training_args.resume_from_checkpoint
    if isinstance(resume, str) and resume.lower() in ("true", "latest"):
        resume = True  # the latest checkpoint in output_dir
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()  # trainer_state.json: the metrics, for `sophiavl-trl plot`
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.train_files or script_args.dataset_name)


if __name__ == "__main__":
    parser = TrlParser((SophiaVLScriptArguments, TrustGRPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args)
