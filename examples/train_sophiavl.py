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

On a CPU, 2 processes under ZeRO-3 with the tiny model and synthetic data (the CI recipe; `scripts/quickstart.sh`
runs `examples/recipes/tiny/config_quickstart.yaml`, the same setup for longer):

```sh
accelerate launch --config_file accelerate_configs/zero3_cpu.yaml examples/train_sophiavl.py \
    --config examples/recipes/tiny/config_cpu.yaml --model_name_or_path /tmp/tiny-qwen2.5-vl \
    --dataset_registry /tmp/synthetic/dataset_info.json --judge_base_url http://127.0.0.1:8000/v1
```

Resume with `--resume_from_checkpoint true` (latest checkpoint in `output_dir`) or a checkpoint path. Before any model
or data work the checkpoint's files are checked, and its reward settings (`REWARD_SETTINGS`) compared with this run's:
a change is refused unless `--allow_resume_with_changed_reward true` (then logged). One training at a time may write
to an `output_dir` (a lock file, `_sophiavl-trl.lock`, held by the launch's main process).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import zipfile
from pathlib import Path
from typing import IO

from transformers.trainer_utils import get_last_checkpoint
from trl import ModelConfig, get_peft_config

from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
from sophiavl_trl.configs import RecipeParser, SophiaVLScriptArguments, warn_suspicious
from sophiavl_trl.data import check_prompt_lengths
from sophiavl_trl.judge import api_key_from_env
from sophiavl_trl.model_utils import (
    check_attn_implementation,
    forbidden_token_generation_kwargs,
    load_training_processor,
)
from sophiavl_trl.rewards import ThinkingReward, get_reward_funcs
from sophiavl_trl.rewards.accuracy_rewards import VERIFIERS


logger = logging.getLogger(__name__)
# Settings that define the reward: resuming with other values would change it mid-run.
REWARD_SETTINGS = (
    "trust_mode", "trust_alpha", "trust_anneal_steps", "trust_correct_threshold", "judge_query_threshold",
    "trust_skip_uniform", "trust_uniform_low", "trust_uniform_high", "correctness_reward", "num_generations",
    "reward_weights", "scale_rewards", "multi_objective_aggregation",
)  # fmt: skip
LOCK_FILE = "_sophiavl-trl.lock"  # "_*" files are not pushed to the Hub by `Trainer.push_to_hub`


def check_model_path(name_or_path: str) -> None:
    """Fail at once, naming the path, when a local model path does not exist (instead of a Hub error much later)."""
    looks_local = os.path.isabs(name_or_path) or name_or_path.startswith(("./", "../", "~"))
    if looks_local and not os.path.exists(os.path.expanduser(name_or_path)):
        raise FileNotFoundError(f"model_name_or_path: no such folder: {name_or_path}")
    if not looks_local and os.environ.get("HF_HUB_OFFLINE") == "1" and not os.path.exists(name_or_path):
        from huggingface_hub import try_to_load_from_cache

        if try_to_load_from_cache(name_or_path, "config.json") is None:
            raise FileNotFoundError(
                f"model_name_or_path: {name_or_path!r} is neither a local folder nor in the Hub cache, and "
                "HF_HUB_OFFLINE=1 forbids downloading it."
            )


def lock_output_dir(output_dir: str) -> IO | None:
    """Lock `output_dir` for this launch: its main process holds an exclusive `flock` (released when the process
    ends, however it ends); a second training into the folder refuses, naming the holder. Returns the open lock file
    (keep it), or None in the other processes of a launch."""
    import fcntl

    if os.environ.get("RANK", "0") != "0":
        return None
    os.makedirs(output_dir, exist_ok=True)
    handle = open(os.path.join(output_dir, LOCK_FILE), "a+")  # noqa: SIM115 (held until the process exits)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        raise RuntimeError(
            f"output_dir {output_dir} is in use by another training (PID {holder}); wait for it to end or choose "
            "another output_dir."
        ) from None
    except OSError as exc:  # a file system without locks (some network mounts): train, and say it is unguarded
        logger.warning("Cannot lock %s (%s): another training could write into it too.", output_dir, exc)
    handle.truncate(0)
    handle.write(f"{os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    return handle


def find_checkpoint(training_args: TrustGRPOConfig) -> str | None:
    """The checkpoint `resume_from_checkpoint` names (`true`: the latest in `output_dir`), or None."""
    resume = training_args.resume_from_checkpoint
    if resume in (None, False) or str(resume).lower() in ("", "false"):
        return None
    if resume is True or str(resume).lower() in ("true", "latest"):
        last = get_last_checkpoint(training_args.output_dir) if os.path.isdir(training_args.output_dir) else None
        if last is None:
            raise FileNotFoundError(f"resume_from_checkpoint: no checkpoint-* folder in {training_args.output_dir}")
        return last
    if not os.path.isdir(resume):
        raise FileNotFoundError(f"resume_from_checkpoint: no such folder: {resume}")
    return resume


def check_checkpoint(checkpoint: str, training_args: TrustGRPOConfig, allow_changed_reward: bool) -> None:
    """Fail before any model or data work when a file of `checkpoint` is truncated or unreadable (naming it), or when
    its reward settings differ from this run's (unless `allow_changed_reward`, then logged)."""
    import torch
    from safetensors import safe_open

    for path in sorted(Path(checkpoint).rglob("*")):
        try:  # headers and indexes only: a truncated file fails here, in milliseconds
            if path.suffix == ".safetensors":
                with safe_open(path, "pt"):
                    pass
            elif path.suffix in (".bin", ".pt", ".pth"):  # torch.save's zip format: its central directory
                zipfile.ZipFile(path).close()
            elif path.suffix == ".json":
                json.loads(path.read_text())
        except Exception as exc:
            raise ValueError(
                f"resume_from_checkpoint: {path} is corrupt or truncated ({exc}); resume from another checkpoint."
            ) from None
    if not (Path(checkpoint) / "training_args.bin").is_file():
        logger.warning("%s has no training_args.bin: its reward settings cannot be compared.", checkpoint)
        return
    # Trainer's own pickle of the run's config (the user's run, not third-party data).
    saved = torch.load(Path(checkpoint) / "training_args.bin", weights_only=False)
    changed = [
        f"{name}: {getattr(saved, name, None)!r} -> {getattr(training_args, name)!r}"
        for name in REWARD_SETTINGS
        if getattr(saved, name, None) != getattr(training_args, name)
    ]
    if changed and not allow_changed_reward:
        raise ValueError(
            f"resume_from_checkpoint: {checkpoint} was trained with other reward settings ({'; '.join(changed)}); "
            "resuming would change the reward mid-run. Use the checkpoint's settings, or pass "
            "--allow_resume_with_changed_reward true."
        )
    if changed:
        logger.warning("Resuming %s with changed reward settings: %s", checkpoint, "; ".join(changed))


def load_data(script_args: SophiaVLScriptArguments, names: str | None):
    """The TRL-ready data set for `names` (registry) or `dataset_name` (Hugging Face), validated before training."""
    from sophiavl_trl.data import load_sophiavl_dataset, prepare_dataset

    options = {
        "min_pixels": script_args.min_pixels,
        "max_pixels": script_args.max_pixels,
        "on_invalid": script_args.on_invalid,
        "system_prompt": script_args.system_prompt,
        "problem_types": sorted(VERIFIERS),  # rows of types without a verifier would score 0: invalid
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
    check_attn_implementation(model_args.attn_implementation)  # flash-attn missing: now, not at model load
    warn_suspicious(script_args, training_args)
    lock = lock_output_dir(training_args.output_dir)  # noqa: F841 (held until the process exits)
    checkpoint = find_checkpoint(training_args)
    if checkpoint is not None:
        check_checkpoint(checkpoint, training_args, script_args.allow_resume_with_changed_reward)
    ################
    # Model
    ################
    # The data pipeline already resized the images within [min_pixels, max_pixels]; keep the processor consistent.
    processor = load_training_processor(model_args, training_args, script_args)
    if script_args.forbid_vision_tokens:
        training_args.generation_kwargs = {
            **forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=training_args.use_vllm),
            **(training_args.generation_kwargs or {}),
        }

    ################
    # Dataset (validated here, before any model is loaded)
    ################
    train_dataset = load_data(script_args, script_args.train_files)
    train_dataset = check_prompt_lengths(train_dataset, processor, training_args, script_args.on_invalid)
    eval_dataset = None
    if training_args.eval_strategy != "no" and script_args.eval_files:
        eval_dataset = load_data(script_args, script_args.eval_files)
        eval_dataset = check_prompt_lengths(eval_dataset, processor, training_args, script_args.on_invalid)

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
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()  # trainer_state.json: the metrics, for `sophiavl-trl plot`
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.train_files or script_args.dataset_name)


if __name__ == "__main__":
    parser = RecipeParser((SophiaVLScriptArguments, TrustGRPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args)
