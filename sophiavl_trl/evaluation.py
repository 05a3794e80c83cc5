# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""
Evaluate a trained policy on benchmark-style data with the training verifiers (`sophiavl-trl eval`).

Rows hold an image (or none), a question, options (multiple choice), the ground-truth answer and the problem type:

| column | also read from | meaning |
|---|---|---|
| `problem` | `question`, `prompt` | the question text |
| `solution` | `answer` | the ground truth (`<answer>` tags and `$` are ignored) |
| `problem_type` | `type` | `numerical`, `multiple choice`, `OCR`, `free-form` or `text` |
| `options` | | list of options for multiple choice (may be empty when the question holds them) |
| `path` | `image`, `images` | image path relative to the image folder, or an embedded image |

A row is scored with the accuracy reward of training ([`~sophiavl_trl.rewards.accuracy_reward`], format-gated): 1/0 for
numerical and multiple-choice questions, exp(-WER) for OCR, the mean ROUGE F-measure for free-form and text. The
accuracy of a problem type is the mean score of its rows. Prompts are the training ones
([`~sophiavl_trl.data.build_prompt`]); decoding is greedy.

Outputs, in the output folder:

- `results.json`: `accuracy` (mean over all rows), `num_samples`, `format_rate`, `per_type` and `per_source`
  (`{"accuracy", "count"}` each), `config` (model, data, backend, batch size, decoding, pixel bounds, ...) and
  `elapsed_seconds`;
- `report.md`: the same as a markdown table;
- `predictions.jsonl`: one line per row: `index`, `source`, `row_index`, `problem_type`, `problem`, `options`,
  `solution`, `completion` (the raw text), `thinking`, `answer`, `well_formatted`, `accuracy`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from datasets import Dataset

    from sophiavl_trl.data.registry import DatasetSpec
    from sophiavl_trl.inference import Generator


__all__ = [
    "VLMEVALKIT_SYSTEM_PROMPT",
    "evaluate",
    "load_eval_dataset",
    "summarize",
    "write_report",
]

logger = logging.getLogger(__name__)

# The system prompt the SophiaVL-R1 authors used to evaluate every model in VLMEvalKit (their README), verbatim,
# typos included ("systemt prompt" there; "tagsdd" here).
VLMEVALKIT_SYSTEM_PROMPT = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. Please "
    "think about this question as if you were a human pondering deeply. Engage in an internal dialogue using "
    "expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other natural "
    "language thought expressions. It's encouraged to include self-reflection or verification in the reasoning "
    "process.The reasoning process MUST BE enclosed within <think> </think> tagsdd. The final answer MUST BE enclosed "
    "within <answer> </answer> tags, for example <think>your_thinking_process</think><answer>your_final_answer</answer>. "
    "If you use formula, please use LaTeX format."
)

# Benchmark column names read as the registry's canonical columns (the registry itself knows answer/image/images).
_EVAL_ALIASES: dict[str, tuple[str, ...]] = {"problem": ("question",), "problem_type": ("type",)}

RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"
PREDICTIONS_FILE = "predictions.jsonl"


def _with_eval_aliases(spec: DatasetSpec) -> DatasetSpec:
    """The spec with `question`/`type` file columns read as `problem`/`problem_type` when nothing else provides them."""
    import dataclasses

    from sophiavl_trl.data.registry import COLUMN_ALIASES, read_records

    records, _ = read_records(spec.file_path)
    file_columns: dict[str, None] = {}
    for _, _, record in records:
        if isinstance(record, Mapping):
            file_columns.update(dict.fromkeys(record))
    mentioned = set(spec.columns) | set(spec.columns.values())
    columns = dict(spec.columns)
    for canonical, aliases in _EVAL_ALIASES.items():
        mapped = canonical in mentioned  # mapped explicitly, in either direction
        native = any(COLUMN_ALIASES.get(column) == canonical for column in file_columns)  # e.g. a `problem` column
        if mapped or native:
            continue
        alias = next((a for a in aliases if a in file_columns and a not in mentioned), None)
        if alias is not None:
            columns[alias] = canonical  # the original's direction: file column -> role
    return dataclasses.replace(spec, columns=columns)


def load_eval_dataset(
    data: str | os.PathLike,
    registry: str | os.PathLike | None = None,
    *,
    image_dir: str | os.PathLike | None = None,
    min_pixels: int = 3136,
    max_pixels: int = 12845056,
    system_prompt: str | None = None,
    default_problem_type: str | None = None,
    on_invalid: str = "error",
) -> Dataset:
    r"""
    Load and validate evaluation rows, from registry entries or from a file, as a TRL-style data set (`prompt`,
    `images`, `problem`, `solution`, `problem_type`, `options`, `source`, `row_index`).

    Args:
        data (`str` or `os.PathLike`):
            With `registry`: entry names, comma-separated. Without: a `.json`/`.jsonl`/`.parquet` file or a directory.
        registry (`str` or `os.PathLike`, *optional*):
            A `dataset_info.json` registry.
        image_dir (`str` or `os.PathLike`, *optional*):
            For a file: the folder relative image paths are relative to (defaults to the file's folder).
        min_pixels (`int`, *optional*, defaults to `3136`):
            Images are resized (Qwen2.5-VL's smart resize) to at least this many pixels.
        max_pixels (`int`, *optional*, defaults to `12845056`):
            ... and at most this many.
        system_prompt (`str`, *optional*):
            The system prompt; SophiaVL-R1's training one when `None`.
        default_problem_type (`str`, *optional*):
            Problem type of rows that have none.
        on_invalid (`str`, *optional*, defaults to `"error"`):
            `"error"` or `"skip"` invalid rows.

    Returns:
        `datasets.Dataset`: the rows, images loaded on access.
    """
    from sophiavl_trl.data.registry import DatasetSpec, load_registry, load_sophiavl_dataset, parse_dataset_names

    if registry is not None:
        specs = load_registry(registry)
        names = parse_dataset_names(str(data))
        for name in names:
            if name not in specs:
                raise ValueError(f"Data set {name!r} is not in the registry {registry}. Registered: {sorted(specs)}.")
        specs = {name: _with_eval_aliases(specs[name]) for name in names}
    else:
        path = Path(data).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"evaluation data not found: {path}")
        base = Path(image_dir) if image_dir is not None else (path if path.is_dir() else path.parent)
        name = path.stem
        names = [name]
        specs = {name: _with_eval_aliases(DatasetSpec(name=name, file_path=path, image_base_path=base))}
    return load_sophiavl_dataset(
        names,
        specs,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        on_invalid=on_invalid,
        system_prompt=system_prompt,
        default_problem_type=default_problem_type,
    )


def summarize(predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    r"""
    Accuracy overall, per problem type and per source, from prediction records (`accuracy`, `problem_type`, `source`,
    `well_formatted`).

    Args:
        predictions (`Sequence[Mapping]`):
            One record per evaluated row.

    Returns:
        `dict`: `accuracy`, `num_samples`, `format_rate`, `per_type` and `per_source` (`{"accuracy", "count"}` each).

    Example:
    ```python
    >>> from sophiavl_trl.evaluation import summarize

    >>> rows = [
    ...     {"accuracy": 1.0, "problem_type": "numerical", "source": "a", "well_formatted": True},
    ...     {"accuracy": 0.0, "problem_type": "numerical", "source": "a", "well_formatted": False},
    ...     {"accuracy": 0.5, "problem_type": "OCR", "source": "b", "well_formatted": True},
    ... ]
    >>> summarize(rows)["per_type"]
    {'OCR': {'accuracy': 0.5, 'count': 1}, 'numerical': {'accuracy': 0.5, 'count': 2}}

    ```
    """

    def group(key: str) -> dict[str, dict[str, float | int]]:
        buckets: dict[str, list[float]] = {}
        for row in predictions:
            buckets.setdefault(str(row[key]), []).append(float(row["accuracy"]))
        return {name: {"accuracy": sum(v) / len(v), "count": len(v)} for name, v in sorted(buckets.items())}

    n = len(predictions)
    return {
        "accuracy": sum(float(row["accuracy"]) for row in predictions) / n if n else float("nan"),
        "num_samples": n,
        "format_rate": sum(bool(row["well_formatted"]) for row in predictions) / n if n else float("nan"),
        "per_type": group("problem_type"),
        "per_source": group("source"),
    }


def write_report(results: Mapping[str, Any], path: str | os.PathLike) -> Path:
    r"""
    Write `results` (as in `results.json`) as a markdown report: per-type and per-source tables and the settings.

    Args:
        results (`Mapping`):
            The results.
        path (`str` or `os.PathLike`):
            The markdown file.

    Returns:
        `Path`: the file.
    """
    config = results.get("config", {})
    lines = [
        "# Evaluation report",
        "",
        f"Model: `{config.get('model')}`; data: `{config.get('data')}`; backend: {config.get('backend')}, "
        f"{config.get('decoding', 'greedy')} decoding, up to {config.get('max_new_tokens')} new tokens.",
        "",
        "| problem type | count | accuracy |",
        "|---|---:|---:|",
    ]
    for name, entry in results["per_type"].items():
        lines.append(f"| {name} | {entry['count']} | {100 * entry['accuracy']:.2f}% |")
    lines.append(f"| **all** | **{results['num_samples']}** | **{100 * results['accuracy']:.2f}%** |")
    formatted = f"{100 * results['format_rate']:.2f}%"
    lines += ["", f"Well-formatted completions (`<think>...</think><answer>...</answer>`): {formatted}.", ""]
    if len(results.get("per_source", {})) > 1:
        lines += ["| source | count | accuracy |", "|---|---:|---:|"]
        for name, entry in results["per_source"].items():
            lines.append(f"| {name} | {entry['count']} | {100 * entry['accuracy']:.2f}% |")
        lines.append("")
    lines += [
        "Accuracy is the mean score of the training verifiers (`sophiavl_trl.rewards.accuracy_reward`, format-gated): "
        "exact match for numerical and multiple choice, exp(-WER) for OCR, mean ROUGE F1 for free-form and text.",
        "",
    ]
    path = Path(path)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def evaluate(
    generator: Generator,
    dataset: Dataset,
    output_dir: str | os.PathLike,
    *,
    batch_size: int = 8,
    limit: int | None = None,
    config: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    r"""
    Generate a completion for every row, score it with the accuracy reward, and write `results.json`, `report.md`
    and `predictions.jsonl` to `output_dir`.

    Args:
        generator ([`~sophiavl_trl.inference.Generator`]):
            The loaded model ([`~sophiavl_trl.inference.load_generator`]).
        dataset (`datasets.Dataset`):
            Rows from [`load_eval_dataset`].
        output_dir (`str` or `os.PathLike`):
            Where the files go (created if needed).
        batch_size (`int`, *optional*, defaults to `8`):
            Prompts generated together.
        limit (`int`, *optional*):
            Evaluate only the first `limit` rows.
        config (`Mapping`, *optional*):
            More settings to record in `results.json` (e.g. the data source).
        progress (`bool`, *optional*, defaults to `True`):
            Show a progress bar (tqdm).

    Returns:
        `dict`: the content of `results.json`.
    """
    from tqdm.auto import tqdm

    from sophiavl_trl.inference import GenerationRequest, parse_completion
    from sophiavl_trl.rewards import accuracy_reward

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}.")
        dataset = dataset.select(range(min(limit, len(dataset))))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    predictions: list[dict[str, Any]] = []
    with (
        open(output_dir / PREDICTIONS_FILE, "w", encoding="utf-8") as sink,
        tqdm(total=len(dataset), desc="eval", unit="row", disable=not progress) as bar,
    ):
        for begin in range(0, len(dataset), batch_size):
            batch = dataset[begin : begin + batch_size]
            requests = [
                GenerationRequest(messages=messages, images=list(images))
                for messages, images in zip(batch["prompt"], batch["images"], strict=True)
            ]
            texts = generator.generate(requests)
            scores = accuracy_reward(texts, solution=batch["solution"], problem_type=batch["problem_type"])
            for offset, (text, score) in enumerate(zip(texts, scores, strict=True)):
                parsed = parse_completion(text)
                record = {
                    "index": begin + offset,
                    "source": batch["source"][offset],
                    "row_index": batch["row_index"][offset],
                    "problem_type": batch["problem_type"][offset],
                    "problem": batch["problem"][offset],
                    "options": batch["options"][offset],
                    "solution": batch["solution"][offset],
                    "completion": text,
                    "thinking": parsed["thinking"],
                    "answer": parsed["answer"],
                    "well_formatted": parsed["well_formatted"],
                    "accuracy": score,
                }
                predictions.append(record)
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            bar.update(len(texts))
    results = summarize(predictions)
    results["config"] = {**generator.config(), "batch_size": batch_size, "limit": limit, **(config or {})}
    results["elapsed_seconds"] = round(time.monotonic() - start, 3)
    (output_dir / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_report(results, output_dir / REPORT_FILE)
    return results
