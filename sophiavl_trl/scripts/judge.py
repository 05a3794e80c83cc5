# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""`sophiavl-trl judge-records` (judge records from a run's logged completions and any OpenAI-compatible scorer) and
`sophiavl-trl judge-eval` (a served judge on held-out records), through `ThinkingRewardClient`. See
docs/thinking-reward-model.md."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sophiavl_trl._fields import option
from sophiavl_trl.judge.client import image_key
from sophiavl_trl.scripts import CLIError, check_positive, parse_args


@dataclass(kw_only=True)
class ScorerArguments:
    r"""The scorer: an OpenAI-compatible server (e.g. vLLM) behind `ThinkingRewardClient`."""

    base_url: str = option(help="Server URL, e.g. http://127.0.0.1:8000/v1.")
    model: str = option(help="Served model name, e.g. thinking-reward-model.")
    api_key_env: str | None = option(None, "Variable with the API key (must be set; default OPENAI_API_KEY if set).")
    constrained_decoding: bool = option(False, "vLLM: answers limited to 0, 0.1, ..., 1.0.")
    max_concurrency: int = option(64, "Requests in flight.")
    timeout: float = option(60.0, "Seconds per request attempt.")
    max_retries: int = option(3, "Retries per item.")
    quiet: bool = option(False, "No progress bar.")

    def __post_init__(self) -> None:
        from sophiavl_trl.judge import api_key_from_env, normalize_base_url

        check_positive(self, "max_concurrency", *(name for name in ("max_records", "limit") if hasattr(self, name)))
        try:  # before any work: a key variable named but unset, a URL with a password
            api_key_from_env(self.api_key_env), normalize_base_url(self.base_url)
        except ValueError as exc:
            raise CLIError(str(exc)) from None


@dataclass(kw_only=True)
class JudgeRecordsArguments(ScorerArguments):
    r"""Read the completions a training run logged (log_completions=True: <output_dir>/completions/*.parquet) or JSON
    lines with question/reasoning/image, score each reasoning with a scorer behind an OpenAI-compatible URL (the
    judge's evaluator prompt), and write judge records (question, reasoning, image, score on the 0.1 grid)."""

    completions: list[str] = option(help="Run folders, completions/ folders, .parquet/.jsonl files.")
    out: str = option(help="Records file to write (.jsonl).")
    registry: str | None = option(None, "Training dataset_info.json (to recover images).")
    datasets: str | None = option(None, "Training data set names (train_files).")
    image_dir: str | None = option(None, "Folder of relative image paths in .jsonl files.")
    reasoning_source: Literal["think", "completion"] = option("think", "What is scored.")
    max_records: int | None = option(None, "Score at most N items.")


@dataclass(kw_only=True)
class JudgeEvalArguments(ScorerArguments):
    r"""Score held-out judge records with a served judge (through ThinkingRewardClient) and report the mean absolute
    error, the agreement within 0.1 and the numbers of unparsed answers and failed requests."""

    records: str = option(help="Records file or folder (or registry names with --registry).")
    registry: str | None = option(None, "A dataset_info.json registry of judge records.")
    limit: int | None = option(None, "Evaluate the first N records only.")
    on_invalid: Literal["error", "skip"] = option("error", "Invalid records: stop or skip.")
    output: str | None = option(None, "Write the metrics to this JSON file.")
    predictions: str | None = option(None, "Write per-record predictions (.jsonl).")
    json: bool = option(False, "Print the metrics as JSON.")


def read_completions(
    paths: list[str], reasoning_source: str = "think", image_dir: str | None = None
) -> tuple[list[dict], int]:
    r"""Items to score (`question`, `reasoning`, `image`, `row_key`, `has_image`) from a run's completions tables (with
    the `question`, `source` and `row_index` the trainer logs) or JSON lines (`question`, `completion` or `reasoning`,
    `image`), and the number of rows read (rows without a question or reasoning are no items)."""
    from sophiavl_trl.data import read_table
    from sophiavl_trl.data.registry import data_files
    from sophiavl_trl.rewards.format_rewards import completion_to_text, extract_thinking

    files = []
    for path in (Path(raw).expanduser() for raw in paths):
        folder = path / "completions" if (path / "completions").is_dir() else path
        try:
            files += data_files(folder)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no completion files in {folder}: train with log_completions=True (TRL writes <output_dir>/"
                "completions/completions_<step>.parquet), or pass .jsonl files"
            ) from None
    items, rows_read = [], 0
    for file in files:  # one by one: a run's tables and hand-made JSON lines need not share columns
        rows = read_table(file).data.to_pylist()
        rows_read += len(rows)
        for row in rows:
            question, reasoning, image = row.get("question"), row.get("reasoning"), row.get("image")
            if not isinstance(reasoning, str) and row.get("completion") is not None:
                reasoning = completion_to_text(row["completion"])  # a string, or TRL's conversational completion
                reasoning = extract_thinking(reasoning) if reasoning_source == "think" else reasoning
            if not all(isinstance(text, str) and text.strip() for text in (question, reasoning)):
                continue
            if isinstance(image, str) and not os.path.isabs(image):
                image = str(Path(image_dir or file.parent) / image)
            contents = [m.get("content") for m in row.get("prompt") or [] if isinstance(m, dict)]
            types = {p.get("type") for c in contents if isinstance(c, list) for p in c if isinstance(p, dict)}
            key = (row["source"], int(row["row_index"])) if row.get("row_index") is not None else None
            item = {"question": question, "reasoning": reasoning, "image": image or None, "row_key": key}
            items.append(item | {"has_image": bool(image) or bool(types & {"image", "image_url"})})
    return items, rows_read


def attach_training_images(items: list[dict], registry: str, names: str) -> None:
    r"""Give items their training row's first image reference: a join on the logged `(source, row_index)`."""
    from sophiavl_trl.data import TYPE_TEMPLATE, load_sophiavl_dataset

    dataset = load_sophiavl_dataset(
        names, registry, problem_types=list(TYPE_TEMPLATE), verify_images=False, on_invalid="skip"
    )
    columns = dataset.with_format(None).select_columns(["source", "row_index", "images"])  # references, not pixels
    refs = {(row["source"], row["row_index"]): row["images"][0] for row in columns if row["images"]}
    for item in items:
        item["image"] = item["image"] or refs.get(item["row_key"])


def _score(args: ScorerArguments, items: list[dict], what: str) -> tuple[list[float], dict[str, Any]]:
    """Scores of `items` (NaN: none), in chunks so that the progress bar moves, and the client's counters. Status 1 for
    an unreachable server (or one without the model) and for a scorer that scores none of the items."""
    from tqdm.auto import tqdm

    from sophiavl_trl.judge import JudgeUnavailableError, ThinkingRewardClient, api_key_from_env

    names = ("model", "timeout", "max_retries", "max_concurrency", "constrained_decoding")
    options = {name: getattr(args, name) for name in names}
    client, scores = ThinkingRewardClient(args.base_url, api_key=api_key_from_env(args.api_key_env), **options), []
    try:
        client.check_server()
    except JudgeUnavailableError as exc:  # raised by check_server only: scoring gives NaN, never raises
        raise CLIError(str(exc), status=1) from None
    with tqdm(total=len(items), desc="scoring", disable=args.quiet) as bar:
        for chunk in (items[begin : begin + 256] for begin in range(0, len(items), 256)):
            scores += client.score(*([item[name] for item in chunk] for name in ("question", "reasoning", "image")))
            bar.update(len(chunk))
    counters = client.stats.as_dict()  # the scores alone only say scored or not
    if all(math.isnan(score) for score in scores):  # an empty output would look like success
        causes = counters.get("errors", {})  # e.g. {"http_401": 3, "timeout": 1, "unparseable": 2}
        why = ", ".join(f"{'HTTP ' + k[5:] if k.startswith('http_') else k} x{c}" for k, c in causes.items())
        raise CLIError(
            f"the scorer at {args.base_url} (model {args.model!r}) gave no score for any of the {len(items)} {what} "
            f"({why or 'see the warnings above'}); check the URL, the model name and the API key (--api-key-env "
            f"{args.api_key_env or 'OPENAI_API_KEY'}); nothing written",
            status=1,
        )
    return scores, counters


def _record_image(image: Any, images_dir: Path, out_dir: Path) -> str | None:
    """A path for the records file: absolute for a file, a written file (relative to `out_dir`) for embedded bytes."""
    if isinstance(image, dict) and image.get("bytes"):
        from PIL import Image

        with Image.open(io.BytesIO(data := image["bytes"])) as decoded:
            target = images_dir / f"{hashlib.sha1(data).hexdigest()[:20]}.{decoded.format.lower()}"
        images_dir.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return os.path.relpath(target, out_dir)
    image = image.get("path") if isinstance(image, dict) else image
    return os.path.abspath(image) if image else None


def records_main(argv: list[str]) -> int:
    r"""`sophiavl-trl judge-records ARGS`."""
    args = parse_args(JudgeRecordsArguments, argv, "judge-records")
    if (args.registry is None) != (args.datasets is None):
        raise CLIError("--registry and --datasets go together (the training data, to join images on)")
    items, rows_read = read_completions(args.completions, args.reasoning_source, args.image_dir)
    if args.registry is not None:
        attach_training_images(items, args.registry, args.datasets)
    unique: dict[tuple, dict] = {}  # identical items are scored once: the first is kept
    for item in items:
        unique.setdefault((item["question"], item["reasoning"], image_key(item["image"])), item)
    usable = [item for item in unique.values() if item["image"] is not None or not item["has_image"]]
    stats = Counter(rows_read=rows_read, unusable=rows_read - len(items), duplicates=len(items) - len(unique))
    if left_out := stats.setdefault("missing_image", len(unique) - len(usable)):
        why = "no training row with that (source, row_index) has an image"
        if args.registry is None:
            why = "TRL's completions table does not store images; pass --registry and --datasets to join them"
        print(f"sophiavl-trl judge-records: {left_out} image prompt(s) left out ({why})", file=sys.stderr)
    if not (usable := usable[: args.max_records]):
        raise CLIError("no usable completions to score")
    scores, counters = _score(args, usable, "items")
    out = Path(args.out)
    lines, histogram = [], Counter()
    for item, score in zip(usable, scores, strict=True):
        if not math.isnan(score):
            snapped = math.floor(score * 10 + 0.5 + 1e-9) / 10  # scores are in [0, 1]
            image = _record_image(item["image"], out.parent / f"{out.stem}_images", out.parent)
            record = {"question": item["question"], "reasoning": item["reasoning"], "image": image, "score": snapped}
            lines.append(json.dumps({**record, "teacher_score": score}, ensure_ascii=False) + "\n")
            histogram[f"{snapped:.1f}"] += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    (partial := out.with_name(out.name + ".partial")).write_text("".join(lines), encoding="utf-8")
    partial.replace(out)  # the file appears complete or not at all
    stats.update(unscored=len(usable) - len(lines), written=len(lines))
    histogram = dict(sorted(histogram.items()))
    print(json.dumps({"out": str(out.resolve()), **stats, "score_histogram": histogram, "judge": counters}, indent=2))
    return 0


def eval_main(argv: list[str]) -> int:
    r"""`sophiavl-trl judge-eval ARGS`."""
    import numpy as np

    from sophiavl_trl.judge.sft import load_judge_records

    args = parse_args(JudgeEvalArguments, argv, "judge-eval")
    records = load_judge_records(args.records, args.registry, on_invalid=args.on_invalid)[: args.limit]
    items = [{"question": r.question, "reasoning": r.reasoning, "image": r.image} for r in records]
    predictions, counters = _score(args, items, "records")
    scored = ~np.isnan(predictions)
    prediction, target = np.array(predictions)[scored], np.array([r.score for r in records])[scored]
    errors = np.abs(prediction - target)
    metrics = {"num_records": len(records), "num_scored": len(errors), "num_unparsed": counters.get("parse_failures")}
    metrics["num_failed"] = counters.get("request_failures")
    means = {"mae": errors, "agreement_0.1": errors <= 0.1 + 1e-9, "exact_agreement": errors <= 1e-9}
    means |= {"mean_prediction": prediction, "mean_target": target}
    metrics |= {name: float(values.mean()) for name, values in means.items()}
    metrics |= {"model": args.model, "base_url": args.base_url, "records": args.records}
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as sink:
            for record, p in zip(records, predictions, strict=True):
                line = {"source": record.source, "row_index": record.row_index, "target": record.score}
                sink.write(json.dumps({**line, "prediction": None if math.isnan(p) else p}) + "\n")
    if args.output:
        Path(args.output).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    summary = f"records {len(records)}, scored {len(errors)}, unparsed {metrics['num_unparsed']}, failed "
    summary += f"{metrics['num_failed']}\nMAE {metrics['mae']:.4f}, agreement within 0.1 "
    summary += f"{100 * metrics['agreement_0.1']:.2f}%, exact {100 * metrics['exact_agreement']:.2f}%"
    print(json.dumps(metrics, indent=2) if args.json else summary)
    return 0
