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

from dataclasses import dataclass

from transformers import AutoProcessor
from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser

from sophiavl_trl.model_utils import set_pixel_bounds


PIXELS = {"min_pixels": 3136, "max_pixels": 12544}  # the quickstart recipe's image bounds (at most 16 image tokens)


@dataclass
class ColdStartArguments:
    dataset_registry: str
    train_files: str = "quickstart_sft"


def sft_dataset(registry: str, name: str):
    """Rows `{prompt, completion, images}`: the prompt GRPO will see (the shared loader's, validated), and the
    cold-start completion (the file's `completion` column, which the loader does not carry)."""
    from datasets import Image, List, load_dataset

    from sophiavl_trl.data import load_sophiavl_dataset

    dataset = load_sophiavl_dataset(name, registry, **PIXELS)
    files = sorted(set(dataset["source"]))
    completions = {f: load_dataset("json", data_files=f, split="train")["completion"] for f in files}
    keep = ("prompt", "images") if "image" in dataset["data_type"] else ("prompt",)  # text only: no image column
    parts = lambda c: c if isinstance(c, list) else [{"type": "text", "text": c}]  # noqa: E731 (one Arrow type)
    dataset = dataset.map(
        lambda row: {
            "prompt": [{**m, "content": parts(m["content"])} for m in row["prompt"]],
            "completion": [{"role": "assistant", "content": parts(completions[row["source"]][row["row_index"]])}],
            **({"images": row["images"]} if "images" in keep else {}),  # opened and resized by the loader
        },
        remove_columns=[c for c in dataset.column_names if c != "prompt"],
    ).with_format(None)  # the map read the images through the loader's transform; SFTTrainer refuses a transform
    # The map stored them under the loader's undecoded image feature: decode them to PIL images on access.
    return dataset.cast_column("images", List(Image())) if "images" in keep else dataset


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
    from sophiavl_trl.data import load_sophiavl_dataset

    rows = load_sophiavl_dataset(name, registry, **PIXELS).select(range(n))
    texts = []
    for row in rows:
        text = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], images=row["images"] or None, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=True, temperature=1.0, max_new_tokens=32)
        texts.append(processor.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))
    right = accuracy_reward(texts, rows["solution"], "numerical")
    value = lambda r: int(re.search(r"\d+", r["solution"])[0])  # noqa: E731
    think = [re.search(r"<think>(.*?)</think>", t, re.S) for t in texts]
    sound = [bool(m) and soundness(r["problem"], m[1], value(r)) for m, r in zip(think, rows, strict=True)]
    return {"format": sum(map(is_well_formatted, texts)) / n, "accuracy": sum(right) / n, "sound": sum(sound) / n,
            "examples": texts[:24]}  # fmt: skip


def main(args: ColdStartArguments, training_args: SFTConfig, model_args: ModelConfig) -> None:
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
    set_pixel_bounds(processor, PIXELS["min_pixels"], PIXELS["max_pixels"])
    dataset = sft_dataset(args.dataset_registry, args.train_files)
    # Text only: the tokenizer tokenizes once, much faster than the VLM collator.
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
