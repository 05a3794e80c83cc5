# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
#
# /// script
# dependencies = [
#     "sophiavl-trl[deepspeed]",
# ]
# ///
"""
Train your own thinking reward model (SophiaVL-R1's judge): supervised fine-tuning of a Qwen2.5-VL model with TRL's
`SFTTrainer` on judge records (question, optional image, reasoning, score in {0, 0.1, ..., 1.0}).

Each record is rendered with exactly the request that `ThinkingRewardClient` sends at training time (the published
judge's evaluator prompt, built by `sophiavl_trl.judge.build_judge_messages`; the image as the client encodes
it), and the model learns to answer with the score string (`"0.7"`); by default the loss is on that answer only. The
saved folder is a judge: serve it with vLLM and point `ThinkingRewardClient` / `--judge_base_url` at it.

Record format (see `sophiavl_trl/judge/sft.py`): JSON lines, JSON or parquet with columns `question`, `reasoning`,
`score` and an optional `image` path, given directly (`--judge_records`) or through a SophiaVL `dataset_info.json`
registry (`--dataset_registry ... --train_files ...`, entries with `file_path`, `image_base_path` and `columns`).
To build records from a Trust-GRPO run's logged completions and any scorer behind an OpenAI-compatible URL:

```sh
sophiavl-trl judge-records --completions runs/my-grpo-run --registry data/dataset_info.json --datasets Chart,OCR \\
    --base-url http://teacher-host:8000/v1 --model teacher --out data/judge/records.jsonl
```

Prerequisites:

```sh
pip install "sophiavl-trl[deepspeed]"
```

Qwen2.5-VL-3B-Instruct, full fine-tuning on 8 GPUs (DeepSpeed ZeRO-2):

```sh
accelerate launch --config_file accelerate_configs/zero2.yaml examples/train_thinking_reward_model.py \\
    --config examples/recipes/thinking_reward_model/config_sft.yaml \\
    --dataset_registry data/judge/dataset_info.json --train_files judge_train --eval_files judge_eval
```

or with a records file and one GPU:

```sh
accelerate launch --config_file accelerate_configs/single_gpu.yaml examples/train_thinking_reward_model.py \\
    --config examples/recipes/thinking_reward_model/config_sft.yaml \\
    --judge_records data/judge/records.jsonl --gradient_accumulation_steps 32
```

On a CPU, the tiny offline model for a few steps:

```sh
python -c "from sophiavl_trl.testing import build_tiny_qwen2_5_vl; build_tiny_qwen2_5_vl('/tmp/tiny-qwen2.5-vl')"
python examples/train_thinking_reward_model.py --config examples/recipes/thinking_reward_model/config_cpu.yaml \\
    --model_name_or_path /tmp/tiny-qwen2.5-vl --judge_records /tmp/judge/records.jsonl
```

With `--use_peft true` the folder holds a LoRA adapter: merge it (`PeftModel.from_pretrained(base, path)
.merge_and_unload().save_pretrained(...)`, with the processor) before serving, or serve it with vLLM's `--enable-lora`.

Then serve and evaluate it on held-out records:

```sh
bash examples/serve_thinking_reward_model.sh runs/thinking-reward-model-3b 8000
sophiavl-trl judge-eval --records data/judge/heldout.jsonl --base-url http://127.0.0.1:8000/v1 \\
    --model thinking-reward-model --constrained-decoding
```
"""

from __future__ import annotations

import logging

from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config

from sophiavl_trl.judge.sft import JudgeSFTScriptArguments
from sophiavl_trl.model_utils import load_training_processor


logger = logging.getLogger(__name__)


def main(script_args: JudgeSFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig) -> SFTTrainer:
    ################
    # Dataset (validated here, before any model is loaded)
    ################
    train_dataset, eval_dataset = script_args.load_datasets()
    if training_args.eval_strategy == "no":
        eval_dataset = None
    if training_args.max_length is not None:
        # The collator cuts sequences at the end: a truncated example loses its score, the only target.
        logger.warning(
            "max_length=%d: records longer than that lose their score target; set max_length to null unless you "
            "know every record fits.",
            training_args.max_length,
        )

    ################
    # Model
    ################
    # Saved with the model: the served judge then resizes images exactly as in training.
    processor = load_training_processor(model_args, training_args, script_args)

    ################
    # Training
    ################
    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    resume = training_args.resume_from_checkpoint
    if isinstance(resume, str) and resume.lower() in ("true", "latest"):
        resume = True  # the latest checkpoint in output_dir
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.train_files or script_args.judge_records)
    return trainer


if __name__ == "__main__":
    parser = TrlParser((JudgeSFTScriptArguments, SFTConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args)
