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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sophiavl_trl.judge.client import image_key
from sophiavl_trl.scripts import CLIError, check_positive, parse_args


@dataclass(kw_only=True)
class ScorerArguments:
    r"""The scorer: an OpenAI-compatible server (e.g. vLLM) behind `ThinkingRewardClient`."""

    base_url: str = field(metadata={"help": "Server URL, e.g. http://127.0.0.1:8000/v1."})
    model: str = field(metadata={"help": "Served model name, e.g. thinking-reward-model."})
    api_key_env: str | None = field(default=None, metadata={"help": "Environment variable with the API key (must be set). Default: OPENAI_API_KEY if set."})  # fmt: skip
    constrained_decoding: bool = field(default=False, metadata={"help": "vLLM: answers limited to 0, 0.1, ..., 1.0."})
    max_concurrency: int = field(default=64, metadata={"help": "Requests in flight."})
    timeout: float = field(default=60.0, metadata={"help": "Seconds per request attempt."})
    max_retries: int = field(default=3, metadata={"help": "Retries per item."})
    quiet: bool = field(default=False, metadata={"help": "No progress bar."})

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

    completions: list[str] = field(metadata={"help": "Run folders, completions/ folders, .parquet/.jsonl files."})
    out: str = field(metadata={"help": "Records file to write (.jsonl)."})
    registry: str | None = field(default=None, metadata={"help": "Training dataset_info.json (to recover images)."})
    datasets: str | None = field(default=None, metadata={"help": "Training data set names (train_files)."})
    image_dir: str | None = field(default=None, metadata={"help": "Folder of relative image paths in .jsonl files."})
    reasoning_source: Literal["think", "completion"] = field(default="think", metadata={"help": "What is scored."})
    max_records: int | None = field(default=None, metadata={"help": "Score at most N items."})


@dataclass(kw_only=True)
class JudgeEvalArguments(ScorerArguments):
    r"""Score held-out judge records with a served judge (through ThinkingRewardClient) and report the mean absolute
    error, the agreement within 0.1 and the numbers of unparsed answers and failed requests."""

    records: str = field(metadata={"help": "Records file or folder (or registry names with --registry)."})
    registry: str | None = field(default=None, metadata={"help": "A dataset_info.json registry of judge records."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate the first N records only."})
    on_invalid: Literal["error", "skip"] = field(default="error", metadata={"help": "Invalid records: stop or skip."})
    output: str | None = field(default=None, metadata={"help": "Write the metrics to this JSON file."})
    predictions: str | None = field(default=None, metadata={"help": "Write per-record predictions (.jsonl)."})
    json: bool = field(default=False, metadata={"help": "Print the metrics as JSON."})


def read_completions(paths: list[str], reasoning_source: str = "think", image_dir: str | None = None) -> tuple[list[dict], int]:  # fmt: skip
    r"""Items to score (`question`, `reasoning`, `image`, `row_key`, `has_image`) from the completions tables a run
    logged (the trainer logs each completion's `question`, `source` and `row_index`) or JSON lines (`question`,
    `completion` or `reasoning`, `image`), and the number of rows read (rows without a question or reasoning are not
    items)."""
    from sophiavl_trl.data import read_table
    from sophiavl_trl.data.registry import data_files
    from sophiavl_trl.rewards.format_rewards import completion_to_text, extract_thinking

    files = []
    for raw in paths:
        folder = Path(raw).expanduser() / "completions" if (Path(raw).expanduser() / "completions").is_dir() else Path(raw).expanduser()  # fmt: skip
        try:
            files += data_files(folder)
        except FileNotFoundError:
            raise FileNotFoundError(f"no completion files in {folder}: train with log_completions=True (TRL writes "
                                    "<output_dir>/completions/completions_<step>.parquet), or pass .jsonl files") from None  # fmt: skip
    items, rows_read = [], 0
    for file in files:  # one by one: a run's tables and hand-made JSON lines need not share columns
        rows = read_table(file).data.to_pylist()
        rows_read += len(rows)
        for row in rows:
            reasoning, completion = row.get("reasoning"), row.get("completion")
            if not isinstance(reasoning, str) and completion is not None:
                completion = completion_to_text(completion)  # a string, or TRL's conversational completion
                reasoning = extract_thinking(completion) if reasoning_source == "think" else completion
            question, image = row.get("question"), row.get("image")
            if not isinstance(question, str) or not question.strip() or not isinstance(reasoning, str) or not reasoning.strip():  # fmt: skip
                continue
            if isinstance(image, str) and not os.path.isabs(image):
                image = str(Path(image_dir or file.parent) / image)
            parts = [p for m in row.get("prompt") or [] if isinstance(m, dict) and not isinstance(m.get("content"), str) for p in m["content"] or []]  # fmt: skip
            items.append({
                "question": question, "reasoning": reasoning, "image": image or None,
                "has_image": bool(image) or any(p.get("type") in ("image", "image_url") for p in parts),
                "row_key": (row["source"], int(row["row_index"])) if row.get("row_index") is not None else None,
            })  # fmt: skip
    return items, rows_read


def attach_training_images(items: list[dict], registry: str, names: str) -> None:
    r"""Give items their training row's first image reference: a join on the logged `(source, row_index)`."""
    from sophiavl_trl.data import TYPE_TEMPLATE, load_sophiavl_dataset

    dataset = load_sophiavl_dataset(names, registry, problem_types=list(TYPE_TEMPLATE), verify_images=False, on_invalid="skip")  # fmt: skip
    columns = dataset.with_format(None).select_columns(["source", "row_index", "images"])  # references, not pixels
    refs = {(row["source"], row["row_index"]): row["images"][0] for row in columns if row["images"]}
    for item in items:
        item["image"] = item["image"] or refs.get(item["row_key"])


def _score(args: ScorerArguments, items: list[dict]) -> tuple[list[float], dict[str, Any]]:
    """Scores of `items` (NaN: none), in chunks so that the progress bar moves, and the client's failure counters; an
    unreachable server (or one without the model) is an error with exit status 1."""
    from tqdm.auto import tqdm

    from sophiavl_trl.judge import JudgeUnavailableError, ThinkingRewardClient, api_key_from_env

    names = ("model", "timeout", "max_retries", "max_concurrency", "constrained_decoding")
    options = {name: getattr(args, name) for name in names}
    client, scores = ThinkingRewardClient(args.base_url, api_key=api_key_from_env(args.api_key_env), **options), []
    try:
        client.check_server()
        with tqdm(total=len(items), desc="scoring", disable=args.quiet) as bar:
            for chunk in (items[begin : begin + 256] for begin in range(0, len(items), 256)):
                images = [i["image"] for i in chunk]
                scores += client.score([i["question"] for i in chunk], [i["reasoning"] for i in chunk], images)
                bar.update(len(chunk))
    except JudgeUnavailableError as exc:  # raised by check_server only: scoring gives NaN, never raises
        raise CLIError(str(exc), status=1) from None
    finally:
        client.close()
    return scores, client.stats.as_dict()  # the scores alone only say scored or not


def _nothing_scored(counters: dict[str, Any], n: int, what: str, args: ScorerArguments) -> CLIError:
    causes = counters.get("errors", {})  # e.g. {"http_401": 3, "timeout": 1, "unparseable": 2}
    why = ", ".join(f"{'HTTP ' + k[5:] if k.startswith('http_') else k} x{c}" for k, c in causes.items())
    message = (
        f"the scorer at {args.base_url} (model {args.model!r}) gave no score for any of the {n} {what} "
        f"({why or 'see the warnings above'}); check the URL, the model name and the API key (--api-key-env "
        f"{args.api_key_env or 'OPENAI_API_KEY'}); nothing written"
    )
    return CLIError(message, status=1)


def _record_image(image: Any, images_dir: Path, out_dir: Path) -> str | None:
    """A path for the records file: absolute for a file, a written file (relative to `out_dir`) for embedded bytes."""
    if isinstance(image, dict) and image.get("bytes"):
        from PIL import Image

        data = image["bytes"]
        with Image.open(io.BytesIO(data)) as decoded:
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
    stats = Counter(rows_read=rows_read, unusable=rows_read - len(items))
    if args.registry is not None:
        attach_training_images(items, args.registry, args.datasets)
    unique: dict[tuple, dict] = {}  # identical items are scored once: the first is kept
    for item in items:
        unique.setdefault((item["question"], item["reasoning"], image_key(item["image"])), item)
    stats["duplicates"], items = len(items) - len(unique), list(unique.values())
    usable = [i for i in items if i["image"] is not None or not i["has_image"]]
    if left_out := stats.setdefault("missing_image", len(items) - len(usable)):
        why = "no training row with that (source, row_index) has an image" if args.registry else "TRL's completions table does not store images; pass --registry and --datasets to join them"  # fmt: skip
        print(f"sophiavl-trl judge-records: {left_out} image prompt(s) left out ({why})", file=sys.stderr)
    usable = usable[: args.max_records]
    if not usable:
        raise CLIError("no usable completions to score")
    scores, counters = _score(args, usable)
    out = Path(args.out)
    lines, histogram = [], Counter()
    for item, score in zip(usable, scores, strict=True):
        if not math.isnan(score):
            snapped = min(10, max(0, math.floor(score * 10 + 0.5 + 1e-9))) / 10
            image = _record_image(item["image"], out.parent / f"{out.stem}_images", out.parent)
            record = {"question": item["question"], "reasoning": item["reasoning"], "image": image, "score": snapped}
            lines.append(json.dumps({**record, "teacher_score": score}, ensure_ascii=False) + "\n")
            histogram[f"{snapped:.1f}"] += 1
    if not lines:  # nothing to write: an empty records file would look like success
        raise _nothing_scored(counters, len(usable), "items", args)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text("".join(lines), encoding="utf-8")
    partial.replace(out)  # the file appears complete or not at all
    stats.update(unscored=len(usable) - len(lines), written=len(lines))
    summary = {"out": str(out.resolve()), **stats, "score_histogram": dict(sorted(histogram.items())), "judge": counters}  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0


def eval_main(argv: list[str]) -> int:
    r"""`sophiavl-trl judge-eval ARGS`."""
    from sophiavl_trl.judge.sft import load_judge_records

    args = parse_args(JudgeEvalArguments, argv, "judge-eval")
    records = load_judge_records(args.records, args.registry, on_invalid=args.on_invalid)[: args.limit]
    items = [{"question": r.question, "reasoning": r.reasoning, "image": r.image} for r in records]
    predictions, counters = _score(args, items)
    pairs = [(p, r.score) for p, r in zip(predictions, records, strict=True) if not math.isnan(p)]
    if not pairs:
        raise _nothing_scored(counters, len(records), "records", args)
    errors, n = [abs(p - t) for p, t in pairs], len(pairs)
    metrics = {
        "num_records": len(records), "num_scored": n, "num_unparsed": counters.get("parse_failures"),
        "num_failed": counters.get("request_failures"), "mae": sum(errors) / n,
        "agreement_0.1": sum(e <= 0.1 + 1e-9 for e in errors) / n, "exact_agreement": sum(e <= 1e-9 for e in errors) / n,
        "mean_prediction": sum(p for p, _ in pairs) / n, "mean_target": sum(t for _, t in pairs) / n,
        "model": args.model, "base_url": args.base_url, "records": args.records,
    }  # fmt: skip
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as sink:
            for record, prediction in zip(records, predictions, strict=True):
                line = {"source": record.source, "row_index": record.row_index, "target": record.score}
                sink.write(json.dumps({**line, "prediction": None if math.isnan(prediction) else prediction}) + "\n")
    if args.output:
        Path(args.output).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(metrics, indent=2) if args.json else (
        f"records {len(records)}, scored {n}, unparsed {metrics['num_unparsed']}, failed {metrics['num_failed']}\n"
        f"MAE {metrics['mae']:.4f}, agreement within 0.1 {100 * metrics['agreement_0.1']:.2f}%, exact "
        f"{100 * metrics['exact_agreement']:.2f}%"))  # fmt: skip
    return 0
