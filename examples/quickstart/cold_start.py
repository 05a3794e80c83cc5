# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""
The quickstart's cold start: supervised fine-tuning (TRL's `SFTTrainer`) of the tiny Qwen2.5-VL on the
`quickstart_sft` rows of `make_task.py`, in the training format (the SophiaVL prompt, then
`<think>...</think><answer>...</answer>`, loss on the completion only), so that the policy writes the format and is
right some of the time. Any `SFTConfig` / `ModelConfig` option works on the command line:

```sh
python examples/quickstart/cold_start.py --model_name_or_path MODEL --dataset_registry DATA/dataset_info.json \
    --output_dir OUT --num_train_epochs 2
```
"""

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from transformers import AutoProcessor
from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser

from sophiavl_trl.data import build_prompt
from sophiavl_trl.model_utils import set_pixel_bounds


@dataclass
class ColdStartArguments:
    dataset_registry: str
    train_files: str = "quickstart_sft"


def sft_dataset(registry: str, name: str):
    """Rows `{prompt, completion, images}`: the prompt GRPO will see, and the cold-start completion."""
    from datasets import Dataset

    entry = json.loads(Path(registry).read_text())[name]
    base = Path(registry).parent
    rows = json.loads((base / entry["file_path"]).read_text())
    images = base / entry["image_base_path"]
    parts = lambda c: c if isinstance(c, list) else [{"type": "text", "text": c}]  # noqa: E731 (one Arrow type)
    return Dataset.from_list([{
        "prompt": [{**m, "content": parts(m["content"])} for m in build_prompt(
            r["problem"], r["problem_type"], num_images=int(r["path"] is not None))],
        "completion": [{"role": "assistant", "content": parts(r.get("completion", ""))}],
        "images": [Image.open(images / r["path"]).convert("RGB")] if r["path"] else [],
    } for r in rows])  # fmt: skip


def evaluate(model_dir: str, registry: str, name: str = "quickstart", n: int = 96, seed: int = 0) -> dict:
    """Sample one completion (temperature 1) for each of the first `n` prompts of `name`: the fractions well formatted,
    right (the accuracy reward), and with sound reasoning (`make_task.soundness`)."""
    import re

    import torch
    from make_task import soundness
    from transformers import AutoModelForImageTextToText

    from sophiavl_trl.rewards.accuracy_rewards import accuracy_reward
    from sophiavl_trl.rewards.format_rewards import is_well_formatted

    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    rows = sft_dataset(registry, name).select(range(n))
    raw = json.loads((Path(registry).parent / f"{name}.json").read_text())
    texts = []
    for row in rows:
        text = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], images=row["images"] or None, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=True, temperature=1.0, max_new_tokens=32)
        texts.append(processor.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))
    right = accuracy_reward(texts, [r["solution"] for r in raw[:n]], "numerical")
    value = lambda r: int(re.search(r"\d+", r["solution"])[0])  # noqa: E731
    think = [re.search(r"<think>(.*?)</think>", t, re.S) for t in texts]
    sound = [bool(m) and soundness(r["problem"], m[1], value(r)) for m, r in zip(think, raw, strict=False)]
    return {"format": sum(map(is_well_formatted, texts)) / n, "accuracy": sum(right) / n, "sound": sum(sound) / n,
            "examples": texts[:24]}  # fmt: skip


def main(args: ColdStartArguments, training_args: SFTConfig, model_args: ModelConfig) -> None:
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
    set_pixel_bounds(processor, 3136, 12544)
    dataset = sft_dataset(args.dataset_registry, args.train_files)
    if not any(dataset["images"]):  # text only: the tokenizer tokenizes once, much faster than the VLM collator
        dataset = dataset.remove_columns("images")
    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        processing_class=processor if "images" in dataset.column_names else processor.tokenizer,
    )
    trainer.train()
    trainer.save_model(training_args.output_dir)
    processor.save_pretrained(training_args.output_dir)


if __name__ == "__main__":
    main(*TrlParser((ColdStartArguments, SFTConfig, ModelConfig)).parse_args_and_config())
