# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""Supervised fine-tuning data for a thinking reward model (a judge) from *judge records* (`question`, `reasoning`,
`score` on the 0.1 grid, optional `image`) in `.json`/`.jsonl`/`.parquet` files or a `dataset_info.json` registry: each
becomes exactly the request [`~sophiavl_trl.judge.ThinkingRewardClient`] sends (in TRL's form, the image decoded as vLLM
decodes it) and the score as the judge writes it. See docs/thinking-reward-model.md."""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sophiavl_trl._fields import option
from sophiavl_trl.judge import SCORE_CHOICES, build_judge_messages, encode_image_data_url
from sophiavl_trl.judge.prompt import DEFAULT_MAX_IMAGE_PIXELS


if TYPE_CHECKING:
    from datasets import Dataset


logger = logging.getLogger(__name__)

# Judge record columns: canonical name (`path` for the image, as in training data) <- the names files use.
_ALIASES = {"question": "question", "problem": "question", "prompt": "question", "reasoning": "reasoning"}
_ALIASES |= {"thinking": "reasoning", "score": "score", "path": "path", "image": "path", "images": "path"}
# A 1x1 PNG stands for the image when the prompt text is rendered: the text depends on the image's presence only.
_PLACEHOLDER_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@dataclass(frozen=True)
class JudgeRecord:
    r"""One validated judge record: `score` on the 0.1 grid, `image` a `{"bytes", "path"}` reference (path resolved)
    or `None`, `source` the file and `row_index` the row it was read from."""

    question: str
    reasoning: str
    score: float
    image: dict[str, Any] | None = None
    source: str = "<memory>"
    row_index: int = 0


def parse_score_label(value: Any) -> tuple[float | None, str | None]:
    r"""A record's target score (a number or numeric string on the 0.1 grid): `(score, None)`, or `(None, why)`."""
    if value is None:
        return None, "missing score"
    try:
        number = float(value.strip() if isinstance(value, str) else value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        return None, f"expected a number in {{0, 0.1, ..., 1.0}}, got {value!r}"
    if not -1e-6 <= number <= 1 + 1e-6:  # NaN fails too
        return None, f"score {value!r} is outside [0, 1]"
    if abs(number * 10 - round(number * 10)) > 1e-5:  # float noise (0.30000000000000004) is not an error
        return None, f"score {value!r} is not one of {{0, 0.1, ..., 1.0}} (round it to one decimal first)"
    return round(number * 10) / 10, None


def _read_rows(file: Path, columns: Mapping[str, str] | None, base: Any, report: Any) -> list[JudgeRecord | None]:
    """The file's rows as records (`None`: invalid, the problems in `report`), checked with the training data's column
    mapper and image checks (`image_base_path` containment, full decoding)."""
    from sophiavl_trl.data.images import check_images, image_refs
    from sophiavl_trl.data.registry import read_table, resolve_columns

    table = read_table(file)
    mapping, problems = resolve_columns(columns, table.column_names, _ALIASES)
    problems += [f"no column for {name!r} (file columns: {table.column_names}); map it with the registry's 'columns' "
                 "entry" for name in ("question", "reasoning", "score") if name not in mapping]  # fmt: skip
    report.issues += [f"{file}, field 'columns': {problem}" for problem in problems]
    if problems:
        return []
    rows, refs, issues = table.data.to_pylist(), [], []  # Arrow rows as stored: embedded images stay {"bytes", "path"}
    for row in rows:
        cells, why = {name: row.get(column) for name, column in mapping.items()}, {}
        for name in ("question", "reasoning"):
            if not isinstance(cells[name], str) or not cells[name].strip():
                why[name] = f"expected a non-empty string, got {cells[name]!r:.40}"
        _, why["score"] = parse_score_label(cells["score"])
        images, why["path"] = image_refs(cells.get("path"), base)
        if len(images) > 1:
            images, why["path"] = images[:1], f"a judge record takes one image, got {len(images)}"
        refs.append(images)
        issues.append([f"field {name!r}: {problem}" for name, problem in why.items() if problem])
    bounds = (28 * 28, DEFAULT_MAX_IMAGE_PIXELS)  # the judge's vision tower sees the image the client sends
    issues = check_images(refs, issues, verify=True, seen={}, bounds=bounds)["issues"]
    report.total_rows += len(rows)
    report.issues += [f"{file}, row {index}, {issue}" for index, row in enumerate(issues) for issue in row]
    report.invalid_rows += [(str(file), index) for index, row in enumerate(issues) if row]
    question, reasoning, score = (mapping[name] for name in ("question", "reasoning", "score"))
    return [
        None
        if problems
        else JudgeRecord(
            row[question], row[reasoning], parse_score_label(row[score])[0], (images or [None])[0], str(file), index
        )
        for index, (row, images, problems) in enumerate(zip(rows, refs, issues, strict=True))
    ]


def load_judge_records(
    data: str | os.PathLike | Sequence[str],
    registry: str | os.PathLike | None = None,
    *,
    image_base_path: str | os.PathLike | None = None,
    on_invalid: Literal["error", "skip"] = "error",
) -> list[JudgeRecord]:
    r"""
    Read and validate judge records from a file or folder `data` (relative images from `image_base_path`, default the
    file's folder), or from the entries `data` (list or comma-separated names) of a `registry`. Columns are mapped and
    images checked as training data is, with the same messages (file, row and field). `on_invalid="error"` raises a
    `DatasetValidationError` listing them, `"skip"` drops the rows with a warning. Whole-file problems always raise.
    """
    from sophiavl_trl.data import DatasetValidationError, ValidationReport, load_registry
    from sophiavl_trl.data.registry import data_files, select_entries

    if registry is None:
        path = Path(data)
        sources = [(path, None, image_base_path or (path if path.is_dir() else path.parent))]
    else:
        entries = select_entries(data, load_registry(registry))
        sources = [(entry.file_path, entry.columns, entry.image_base_path) for entry in entries]
    report, rows = ValidationReport(), []
    for path, columns, base in sources:
        for file in data_files(Path(path)):
            rows += _read_rows(file, columns, base, report)
    records = [record for record in rows if record is not None]
    whole_file = len(report.issues) > sum(1 for issue in report.issues if ", row " in issue)
    if report.issues and (on_invalid == "error" or whole_file):
        fix = "\nFix these rows, or pass on_invalid='skip' to drop invalid rows (they are reported)."
        raise DatasetValidationError("Judge record validation failed.\n" + report.format() + fix, report)
    if report.issues:
        logger.warning(
            "Skipped invalid judge records (on_invalid='skip'); %d kept.\n%s", len(records), report.format()
        )
    if not records:
        raise DatasetValidationError(f"No valid judge records in {data}.\n" + report.format(), report)
    return records


def decode_data_url(url: str) -> Any:
    r"""The RGB PIL image of a base64 `data:image/...` URL, as vLLM's server decodes it: an image with transparency is
    pasted on white through its alpha channel."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2])))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.split()[3])
    return image.convert("RGB")


def _conversation(question: str, reasoning: str, score: float, image: Any, sft_format: str) -> dict[str, Any]:
    messages = build_judge_messages(question, reasoning, image=None if image is None else _PLACEHOLDER_PNG)
    for message in messages:
        if not isinstance(message["content"], str):
            message["content"] = [{"type": "image"} if p["type"] == "image_url" else p for p in message["content"]]
    completion = [{"role": "assistant", "content": SCORE_CHOICES[round(score * 10)]}]  # as the judge writes it
    if sft_format == "messages":
        return {"messages": messages + completion}
    if sft_format != "prompt_completion":
        raise ValueError(f"sft_format must be 'prompt_completion' or 'messages', got {sft_format!r}.")
    return {"prompt": messages, "completion": completion}


def judge_sft_transform(batch: dict[str, list]) -> dict[str, list]:
    r"""Row transform of [`build_judge_sft_dataset`]: turns each image reference into the image the client sends, as
    the server decodes it."""
    if "images" in batch:  # downscaled and encoded as the client does, decoded as the server does
        batch["images"] = [[decode_data_url(encode_image_data_url(ref)) for ref in refs] for refs in batch["images"]]
    return batch


def build_judge_sft_dataset(records: Sequence[JudgeRecord], *, sft_format: str = "prompt_completion") -> Dataset:
    r"""The `SFTTrainer` data set of a judge: row `i` is the exact request the client sends for `records[i]` (`prompt`
    and `completion`, the score as the judge writes it, or `messages`), its `images` and `score`. The prompt text is
    rendered now; images are encoded and decoded as the client and server do when a row is read
    ([`judge_sft_transform`])."""
    from datasets import Dataset, Features, Json, List, Value

    rows = [_conversation(r.question, r.reasoning, r.score, r.image, sft_format) for r in records]
    for row, record in zip(rows, records):
        row.update(images=[record.image] if record.image else [], score=record.score)
    columns = ["messages"] if sft_format == "messages" else ["prompt", "completion"]
    image = {"bytes": Value("binary"), "path": Value("string")}
    features = Features({**dict.fromkeys(columns, Json()), "images": List(image), "score": Value("float64")})
    return Dataset.from_list(rows, features=features).with_transform(judge_sft_transform)


@dataclass
class JudgeSFTScriptArguments:
    r"""Data arguments of `examples/train_thinking_reward_model.py`: records from files (`judge_records`,
    `eval_records`) or registry entries (`dataset_registry`, `train_files`, `eval_files`). `min_pixels`/`max_pixels` are
    saved with the processor, so the served judge resizes images as in training."""

    judge_records: str | None = option(None, "Judge records file or folder.")
    dataset_registry: str | None = option(None, "dataset_info.json of judge records.")
    train_files: str | None = option(None, "Comma-separated registry names to train on.")
    eval_files: str | None = option(None, "Comma-separated registry names to evaluate on.")
    eval_records: str | None = option(None, "Judge records file to evaluate on.")
    image_base_path: str | None = option(None, "Folder of relative image paths.")
    on_invalid: Literal["error", "skip"] = option("error", "Invalid records: error or skip.")
    sft_format: Literal["prompt_completion", "messages"] = option(
        "prompt_completion", "Loss on the score only (prompt_completion) or every token."
    )
    min_pixels: int | None = option(None, "Image processor's minimum pixels.")
    max_pixels: int | None = option(None, "Image processor's maximum pixels.")

    def __post_init__(self) -> None:
        if (self.judge_records is None) == (self.dataset_registry is None):
            raise ValueError(
                "Give judge records: --judge_records FILE, or --dataset_registry PATH --train_files NAMES."
            )
        if self.dataset_registry is not None and not self.train_files:
            raise ValueError(f"--dataset_registry {self.dataset_registry} needs --train_files (registry names).")

    def load_datasets(self) -> tuple[Dataset, Dataset | None]:
        r"""The train and eval data sets (eval `None` when none is named), validated before any model is loaded."""
        registry = self.dataset_registry  # with a registry, image folders come from its entries
        names = (self.train_files, self.eval_files) if registry else (self.judge_records, self.eval_records)
        options = {"image_base_path": self.image_base_path, "on_invalid": self.on_invalid}
        records = [load_judge_records(data, registry, **options) if data else None for data in names]
        return tuple(data and build_judge_sft_dataset(data, sft_format=self.sft_format) for data in records)
