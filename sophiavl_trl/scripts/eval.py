# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""`sophiavl-trl eval`: accuracy of a trained policy per problem type, with the training verifiers
(`accuracy_reward`, format-gated), on registry entries or benchmark-style files. See docs/evaluation.md."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from sophiavl_trl._fields import option
from sophiavl_trl.scripts import CLIError, check_positive, infer, parse_args


@dataclass(kw_only=True)
class EvalArguments(infer.GenerationArguments):
    r"""Evaluate a trained policy: greedy generation with the training prompt, scoring with the training verifiers
    (accuracy_reward), accuracy per problem type. Writes results.json, report.md and predictions.jsonl to --output."""

    data: str = option(help="A .json/.jsonl/.parquet file or folder, or registry names with --registry.")
    output: str = option(help="Output folder.")
    registry: str | None = option(None, "A SophiaVL dataset_info.json registry.")
    batch_size: int = option(8, "Prompts generated together.")
    limit: int | None = option(None, "Evaluate the first N rows only.")
    image_dir: str | None = option(None, "Folder of relative image paths (default: file's).")
    default_type: str | None = option(None, "Problem type of rows without one.")
    on_invalid: Literal["error", "skip"] = option("error", "Invalid rows: stop, or skip.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "batch_size", "limit")


def load_eval_dataset(args: EvalArguments, bounds: tuple[int, int]) -> Any:
    r"""The validated rows of `args.data` (TRL-style: `prompt`, `images`, `solution`, `problem_type`, ...)."""
    from sophiavl_trl.data import load_sophiavl_dataset, prepare_dataset, read_table

    options = {"min_pixels": bounds[0], "max_pixels": bounds[1], "on_invalid": args.on_invalid}
    options |= {"system_prompt": args.system_prompt}
    options["default_problem_type"] = args.default_type and infer.problem_type_key(args.default_type)
    if args.registry is not None:
        return load_sophiavl_dataset(args.data, args.registry, **options)
    path = Path(args.data)
    table = read_table(path)
    # Benchmark names: a `question` / `type` column is the problem / problem type when the file has no such column.
    columns = {c: r for c, r in (("question", "problem"), ("type", "problem_type")) if c in table.column_names}
    columns = {c: r for c, r in columns.items() if r not in table.column_names}
    base = args.image_dir or (path if path.is_dir() else path.parent)
    return prepare_dataset(table, base, columns=columns, source=str(path), **options)


def summarize(predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    r"""`accuracy`, `num_samples`, `format_rate`, and `per_type` / `per_source` (`{"accuracy", "count"}`)."""

    def group(key: str) -> dict[str, dict[str, float]]:
        buckets: dict[str, list[float]] = {}
        for row in predictions:
            buckets.setdefault(str(row[key]), []).append(row["accuracy"])
        return {name: {"accuracy": sum(v) / len(v), "count": len(v)} for name, v in sorted(buckets.items())}

    n = len(predictions)
    summary = {"accuracy": sum(row["accuracy"] for row in predictions) / n, "num_samples": n}
    summary["format_rate"] = sum(row["well_formatted"] for row in predictions) / n
    return summary | {"per_type": group("problem_type"), "per_source": group("source")}


def report(results: Mapping[str, Any]) -> str:
    r"""`results` as markdown: the per-type table (and per-source table when there are several sources)."""
    config = results["config"]
    lines = [
        "# Evaluation report\n",
        f"Model: `{config['model']}`; data: `{config['data']}`; backend: {config['backend']}, greedy decoding, up to "
        f"{config['max_new_tokens']} new tokens.\n",
    ]
    for title, key in (("problem type", "per_type"), ("source", "per_source")):
        if key == "per_source" and len(results[key]) < 2:
            continue
        lines += [f"| {title} | count | accuracy |", "|---|---:|---:|"]
        lines += [f"| {name} | {e['count']} | {100 * e['accuracy']:.2f}% |" for name, e in results[key].items()]
        lines += [f"| **all** | **{results['num_samples']}** | **{100 * results['accuracy']:.2f}%** |", ""]
    lines += [
        "Well-formatted completions (`<think>...</think><answer>...</answer>`): "
        f"{100 * results['format_rate']:.2f}%.\n",
        "Accuracy is the mean score of the training verifiers (`sophiavl_trl.rewards.accuracy_reward`, format-gated): "
        "exact match for numerical and multiple choice, exp(-WER) for OCR, mean ROUGE F1 for free-form and text.\n",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    r"""`sophiavl-trl eval ARGS`."""
    from tqdm.auto import tqdm

    from sophiavl_trl.rewards import accuracy_reward

    args = parse_args(EvalArguments, argv, "eval")
    if args.registry is not None and not Path(args.registry).is_file():
        raise CLIError(f"registry not found: {args.registry}")
    if args.registry is None and not Path(args.data).exists():
        raise CLIError(
            f"evaluation data not found: {args.data} (pass a .json/.jsonl/.parquet file or folder, or registry names "
            "with --registry dataset_info.json)"
        )
    if args.image_dir is not None and not Path(args.image_dir).is_dir():
        raise CLIError(f"--image_dir {args.image_dir}: no such folder")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise CLIError(f"--output {args.output} is a file; give a folder for results.json, report.md, ...")
    processor, bounds = infer.load_processor(args)
    dataset = load_eval_dataset(args, bounds)  # validated before the model loads
    generate = infer.load_generator(args, processor)
    dataset = dataset.take(args.limit) if args.limit is not None else dataset
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    start, predictions = time.monotonic(), []
    columns = ("source", "row_index", "problem_type", "problem", "options", "solution")
    with open(output / "predictions.jsonl", "w", encoding="utf-8") as f, tqdm(total=len(dataset), desc="eval") as bar:
        for batch in dataset.iter(args.batch_size):
            texts = generate(batch["prompt"], batch["images"])
            scores = accuracy_reward(texts, solution=batch["solution"], problem_type=batch["problem_type"])
            for offset, (text, score) in enumerate(zip(texts, scores, strict=True)):
                record = {"index": len(predictions), **{c: batch[c][offset] for c in columns}, "completion": text}
                record |= {k: v for k, v in infer.parse_completion(text).items() if k != "raw"}
                record["accuracy"] = score
                predictions.append(record)
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            bar.update(len(texts))
    results = summarize(predictions)
    results["config"] = {**asdict(args), "decoding": "greedy", "min_pixels": bounds[0], "max_pixels": bounds[1]}
    results["elapsed_seconds"] = round(time.monotonic() - start, 3)
    (output / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (output / "report.md").write_text(text := report(results), encoding="utf-8")
    print(f"{text}\nwrote {output / 'results.json'}, report.md, predictions.jsonl")
    return 0
