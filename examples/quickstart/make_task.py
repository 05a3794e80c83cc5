# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""
The quickstart's synthetic reasoning task, where the reasoning can be right or wrong independently of the answer.

Text rows ask "What is a+b?" and reason `<think>a+b=s</think>`; image rows show 1-4 coloured shapes, ask "How many
shapes are there in the image?" and reason `<think>n shapes</think>`. The reasoning is *sound* when its equation or
count is true; the answer is scored by the accuracy reward. Writes to OUT:

- `dataset_info.json`: registry entries `quickstart` (GRPO prompts) and `quickstart_sft` (cold-start prompts, with a
  `completion` column: sound or unsound reasoning, and an answer that is right for about 60% of the rows, including
  "wrong thinking, correct answer" rows);
- `judge_train.jsonl`, `judge_heldout.jsonl`: judge records (question, reasoning, image, score), scored by the rule
  `soundness` (1.0 sound, 0.0 unsound);
- `images/`.

Also: `build_model(path)`, the tiny Qwen2.5-VL whose tokenizer knows the prompt templates as added tokens (a SophiaVL
prompt is about 30 tokens instead of 300). Command line: `python examples/quickstart/make_task.py OUT [--model DIR]`.
"""

import argparse
import json
import random
import re
from pathlib import Path

from synthetic import render_shapes, scene


MAX_TERM, MAX_SHAPES = 4, 4


def problem(rng: random.Random, kind: str) -> dict:
    """One question: its text, true value, the image's shapes (or `None`) and how to write reasoning for a value."""
    if kind == "text":
        a, b = rng.randint(1, MAX_TERM), rng.randint(1, MAX_TERM)
        return {"question": f"What is {a}+{b}?", "value": a + b, "shapes": None, "think": f"{a}+{b}={{}}"}
    shapes = scene(rng, 84, 84, rng.randint(1, MAX_SHAPES))
    return {"question": "How many shapes are there in the image?", "value": len(shapes), "shapes": shapes,
            "think": "{} shapes"}  # fmt: skip


def soundness(question: str, reasoning: str, value: int) -> float:
    """The judge's label: 1.0 when the reasoning's equation (or count) is true for this question, else 0.0."""
    terms = re.fullmatch(r"What is (\d+)\+(\d+)\?", question)
    if terms:
        return float(reasoning.strip() == f"{terms[1]}+{terms[2]}={int(terms[1]) + int(terms[2])}")
    return float(reasoning.strip() == f"{value} shapes")


def wrong(rng: random.Random, item: dict) -> int:
    high = 2 * MAX_TERM if item["shapes"] is None else MAX_SHAPES + 2
    return rng.choice([v for v in range(1, high + 1) if v != item["value"]])


def completion(rng: random.Random, item: dict, p_sound: float = 0.6) -> tuple[str, str]:
    """Cold-start reasoning and answer: sound reasoning 60% of the time; the answer follows the reasoning, except that
    10% of sound and 15% of unsound reasonings come with the other answer (wrong thinking, correct answer)."""
    value, sound = item["value"], rng.random() < p_sound
    thought = value if sound else wrong(rng, item)
    flip = rng.random() < (0.1 if sound else 0.15)
    answer = (wrong(rng, item) if sound else value) if flip else thought
    return item["think"].format(thought), str(answer)


def write_task(out: str | Path, num_grpo: int = 2000, num_sft: int = 6000, num_judge: int = 3000, seed: int = 0,
               image_fraction: float = 0.2) -> Path:  # fmt: skip
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng, count = random.Random(seed), 0

    def draw(n: int) -> list[dict]:
        nonlocal count
        items = [problem(rng, "image" if rng.random() < image_fraction else "text") for _ in range(n)]
        for item in items:
            if item["shapes"] is not None:
                item["path"] = f"{count:05d}.png"
                render_shapes(84, 84, item["shapes"]).save(out / "images" / item["path"])
                count += 1
        return items

    def row(item: dict, **extra) -> dict:
        image = item["shapes"] is not None
        return {"problem": item["question"], "solution": f"<answer>{item['value']}</answer>", "problem_type":
                "numerical", "data_type": "image" if image else "text", "path": item.get("path"), **extra}  # fmt: skip

    (out / "quickstart.json").write_text(json.dumps([row(i) for i in draw(num_grpo)]))
    sft = []
    for item in draw(num_sft):
        think, answer = completion(rng, item)
        sft.append(row(item, completion=f"<think>{think}</think><answer>{answer}</answer>"))
    (out / "quickstart_sft.json").write_text(json.dumps(sft))
    columns = {"problem": "prompt", "solution": "answer", "path": "images"}
    entries = {name: {"file_path": f"{name}.json", "image_base_path": "images", "columns": columns}
               for name in ("quickstart", "quickstart_sft")}  # fmt: skip
    (out / "dataset_info.json").write_text(json.dumps(entries, indent=1))
    records = []
    for item in draw(num_judge):
        think = completion(rng, item, p_sound=0.5)[0]
        image = f"images/{item['path']}" if item.get("path") else None
        score = soundness(item["question"], think, item["value"])
        records.append({"question": item["question"], "reasoning": think, "image": image, "score": score})
    cut = int(0.8 * len(records))
    for name, part in (("judge_train", records[:cut]), ("judge_heldout", records[cut:])):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return out / "dataset_info.json"


def build_model(path: str | Path, seed: int = 0) -> Path:
    """The tiny Qwen2.5-VL whose tokenizer knows the fixed texts of SophiaVL's prompts and of the judge's prompt as
    single tokens (added tokens), so that a training prompt is about 30 tokens instead of 300."""
    from sophiavl_trl.data import prompts
    from sophiavl_trl.judge.prompt import DEFAULT_JUDGE_TEMPLATE, JUDGE_SYSTEM_PROMPT
    from sophiavl_trl.testing import build_tiny_qwen2_5_vl

    judge = DEFAULT_JUDGE_TEMPLATE.format(question="\0", reasoning="\0").split("\0")
    texts = [prompts.SYSTEM_PROMPT, prompts.QUESTION_TEMPLATE.format(Question=""), JUDGE_SYSTEM_PROMPT, *judge]
    texts += list(prompts.TYPE_TEMPLATE.values())
    return build_tiny_qwen2_5_vl(path, seed=seed, added_tokens=texts)


def judge_margins(judge: str | Path, data: Path, records: list[dict]) -> list[float]:
    """Per judge record (`judge_*.jsonl` rows of `data`), the trained judge's logit of "1" minus that of "0" as its
    first answer token, on the exact request the client sends: the judge's ranking of sound over unsound reasoning."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from sophiavl_trl.judge.sft import JudgeRecord, build_judge_sft_dataset

    processor = AutoProcessor.from_pretrained(judge)
    model = AutoModelForImageTextToText.from_pretrained(judge).eval()
    one, zero = processor.tokenizer.convert_tokens_to_ids(["1", "0"])
    image = lambda r: r["image"] and {"path": str(data / r["image"]), "bytes": None}  # noqa: E731
    margins = []
    for example in build_judge_sft_dataset(
        [JudgeRecord(r["question"], r["reasoning"], r["score"], image(r)) for r in records]
    ):
        text = processor.apply_chat_template(example["prompt"], tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], images=example["images"] or None, return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits[0, -1]
        margins.append((logits[one] - logits[zero]).item())
    return margins


def main(write_task=write_task, doc: str | None = __doc__) -> None:
    """The command line of a task module (this one's, or `chain_task`'s): write the task to OUT, the tiny model with
    --model."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--model", help="also build the tiny model here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_task(args.out, seed=args.seed))
    if args.model:
        print(build_model(args.model, seed=args.seed))


if __name__ == "__main__":
    main()
