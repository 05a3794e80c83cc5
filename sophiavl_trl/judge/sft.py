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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sophiavl_trl.judge import SCORE_CHOICES, build_judge_messages, encode_image_data_url


if TYPE_CHECKING:
    from datasets import Dataset


logger = logging.getLogger(__name__)

RECORD_COLUMNS = ("question", "reasoning", "score", "image")
_ALIASES = {c: c for c in RECORD_COLUMNS} | {"problem": "question", "prompt": "question", "thinking": "reasoning"}
_ALIASES |= {"images": "image", "path": "image", "image_path": "image"}
_ROLE_KEY = re.compile(r"^column_re(?:s|)ponses_to_(\w+)$")
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

    @property
    def score_text(self) -> str:
        """The score as the judge writes it (`"0"`, `"0.1"`, ..., `"1.0"`)."""
        return score_to_text(self.score)


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


def score_to_text(score: float) -> str:
    r"""The answer the judge is trained to write for `score` (an element of `SCORE_CHOICES`, e.g. `"0.7"`)."""
    value, error = parse_score_label(score)
    if error is not None:
        raise ValueError(error)
    return SCORE_CHOICES[round(value * 10)]


def _column_map(columns: Mapping[str, str] | None, present: list[str], source: str) -> dict[str, str]:
    """Record column -> file column, from a registry `columns` entry (any of its forms) and the file's names."""
    mapping: dict[str, str] = {}
    for key, value in (columns or {}).items():
        role = _ROLE_KEY.match(key)
        if role and role.group(1) in _ALIASES:
            canonical, column = _ALIASES[role.group(1)], value
        elif key in _ALIASES and value in present:
            canonical, column = _ALIASES[key], value
        elif value in _ALIASES and key in present:
            canonical, column = _ALIASES[value], key
        else:
            raise _invalid(f"{source}: mapping entry {key!r}: {value!r} maps no column of the file {present} to a "
                           f"record column {list(RECORD_COLUMNS)}")  # fmt: skip
        if mapping.setdefault(canonical, column) != column:
            raise _invalid(f"{source}: {canonical!r} is mapped twice ({mapping[canonical]!r}, {column!r})")
    for column in sorted(present, key=lambda c: c not in RECORD_COLUMNS):  # exact names before aliases
        if _ALIASES.get(column) and _ALIASES[column] not in mapping and column not in mapping.values():
            mapping[_ALIASES[column]] = column
    if missing := [name for name in RECORD_COLUMNS[:3] if name not in mapping]:
        raise _invalid(f"{source}: no column for {missing} (file columns: {present}); map them with the registry's "
                       "'columns' entry")  # fmt: skip
    return mapping


def _invalid(message: str) -> Exception:
    from sophiavl_trl.data import DatasetValidationError

    return DatasetValidationError(message, None)


def _image_ref(value: Any, base: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """A record's image cell as `{"bytes", "path"}` (or `None`), or why it is unusable."""
    if isinstance(value, list):
        if len(value) > 1:
            return None, f"a judge record takes one image, got {len(value)} (the client sends one)"
        value = value[0] if value else None
    data, path = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (None, value)
    if not data and not path:
        return None, None
    if not isinstance(path, str | None) or not isinstance(data, bytes | None):
        return None, f"expected an image path, embedded image or null, got {type(value).__name__}"
    if not data:
        if path.startswith(("http://", "https://", "data:")):
            return None, f"expected a local image path, got a URL ({path[:40]!r}); download the image first"
        path = os.path.expanduser(path.removeprefix("file://"))
        path = os.path.normpath(os.path.join(base, path) if base and not os.path.isabs(path) else path)
        if not os.path.isfile(path):
            return None, f"image file not found: {path}"
    from PIL import Image

    try:
        Image.open(io.BytesIO(data) if data else path).close()  # reads the header
    except Exception as exc:  # PIL raises many types
        return None, f"unreadable image {path or '<embedded bytes>'}: {type(exc).__name__}: {exc}"
    return {"bytes": data, "path": path}, None


def _check_row(
    row: dict, mapping: dict[str, str], source: str, index: int, base: str | None
) -> tuple[JudgeRecord | None, list[str]]:
    cells, why = {name: row.get(column) for name, column in mapping.items()}, {}
    for name in ("question", "reasoning"):
        if cells[name] is None or isinstance(cells[name], str) and not cells[name].strip():
            why[name] = f"{'missing' if cells[name] is None else 'empty'} {name}"
        elif not isinstance(cells[name], str):
            why[name] = f"expected a string, got {type(cells[name]).__name__}"
    score, why["score"] = parse_score_label(cells["score"])
    image, why["image"] = _image_ref(cells.get("image"), base)
    if issues := [f"{source}, row {index}, field {name!r}: {problem}" for name, problem in why.items() if problem]:
        return None, issues
    return JudgeRecord(cells["question"], cells["reasoning"], score, image, source, index), []


def load_judge_records(
    data: str | os.PathLike | Sequence[str],
    registry: str | os.PathLike | None = None,
    *,
    image_base_path: str | os.PathLike | None = None,
    on_invalid: Literal["error", "skip"] = "error",
) -> list[JudgeRecord]:
    r"""
    Read and validate judge records from a file or folder `data` (relative images from `image_base_path`, default the
    file's folder), or from the entries `data` (list or comma-separated names) of a `registry`. Each problem names
    file, row and field; `on_invalid="error"` raises a `DatasetValidationError` listing them, `"skip"` drops the rows
    with a warning. Whole-file problems always raise.
    """
    from sophiavl_trl.data import load_registry, read_table
    from sophiavl_trl.data.registry import data_files

    if registry is None:
        path = Path(data)
        sources = [(path, None, image_base_path or (path if path.is_dir() else path.parent))]
    else:
        specs = load_registry(registry)
        names = [name.strip() for name in (data.split(",") if isinstance(data, str) else data) if name.strip()]
        if unknown := [name for name in names if name not in specs]:
            raise ValueError(f"judge data {unknown[0]!r} is not in the registry; registered: {sorted(specs)}")
        sources = [(specs[n].file_path, specs[n].columns, specs[n].image_base_path) for n in names]
    records, issues, total = [], [], 0
    for path, mapping, base in sources:
        for file in data_files(Path(path)):
            table = read_table(file)
            column_map = _column_map(mapping, table.column_names, str(file))
            # The Arrow rows as stored: embedded images stay {"bytes", "path"}, whatever the file's features say.
            for index, row in enumerate(table.data.to_pylist()):
                record, problems = _check_row(row, column_map, str(file), index, base and os.fspath(base))
                records += [record] if record else []
                issues += problems
            total += len(table)
    if issues:
        summary = f"{total - len(records)} invalid record(s) out of {total}; the first {min(10, len(issues))} of " + \
            f"{len(issues)} issue(s):\n" + "\n".join(f"  - {issue}" for issue in issues[:10])  # fmt: skip
        if on_invalid == "error":
            raise _invalid(f"Judge record validation failed: {summary}\nFix these rows, or pass on_invalid='skip' to "
                           "drop invalid rows (they are reported).")  # fmt: skip
        logger.warning("Skipped %s", summary)
    if not records:
        raise _invalid(f"no valid judge records in {data}")
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


def _sent_images(image: Any) -> list[Any]:
    """The image the client sends for `image` (downscaled and encoded as `build_judge_messages` does), decoded as the
    server decodes it; none for `None`."""
    return [] if image is None else [decode_data_url(encode_image_data_url(image))]


def _conversation(question: str, reasoning: str, score: float, image: Any, sft_format: str) -> dict[str, Any]:
    messages = build_judge_messages(question, reasoning, image=None if image is None else _PLACEHOLDER_PNG)
    for message in messages:
        if not isinstance(message["content"], str):
            message["content"] = [{"type": "image"} if p["type"] == "image_url" else p for p in message["content"]]
    completion = [{"role": "assistant", "content": score_to_text(score)}]
    if sft_format == "messages":
        return {"messages": messages + completion}
    if sft_format != "prompt_completion":
        raise ValueError(f"sft_format must be 'prompt_completion' or 'messages', got {sft_format!r}.")
    return {"prompt": messages, "completion": completion}


def judge_sft_example(
    question: str, reasoning: str, score: float, image: Any = None, *, sft_format: str = "prompt_completion"
) -> dict[str, Any]:
    r"""One judge training example from the exact request the client sends: `prompt` and `completion` (loss on the
    score only), or `messages` with `sft_format="messages"`, and `images` (zero or one RGB PIL image). `image` may be a
    PIL image, a path, bytes or `{"bytes", "path"}`."""
    return {**_conversation(question, reasoning, score, image, sft_format), "images": _sent_images(image)}


def judge_sft_transform(batch: dict[str, list]) -> dict[str, list]:
    r"""Row transform of [`build_judge_sft_dataset`]: turns each image reference into the image the client sends, as
    the server decodes it."""
    if "images" in batch:
        batch["images"] = [[image for ref in refs for image in _sent_images(ref)] for refs in batch["images"]]
    return batch


def build_judge_sft_dataset(records: Sequence[JudgeRecord], *, sft_format: str = "prompt_completion") -> Dataset:
    r"""The `SFTTrainer` data set of a judge: row `i` equals `judge_sft_example(...)` of `records[i]` (plus `score`).
    The prompt text is rendered now; images are encoded and decoded as the client and server do when a row is read
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

    judge_records: str | None = field(default=None, metadata={"help": "Judge records file or folder."})
    dataset_registry: str | None = field(default=None, metadata={"help": "dataset_info.json of judge records."})
    train_files: str | None = field(default=None, metadata={"help": "Comma-separated registry names to train on."})
    eval_files: str | None = field(default=None, metadata={"help": "Comma-separated registry names to evaluate on."})
    eval_records: str | None = field(default=None, metadata={"help": "Judge records file to evaluate on."})
    image_base_path: str | None = field(default=None, metadata={"help": "Folder of relative image paths."})
    on_invalid: Literal["error", "skip"] = field(default="error", metadata={"help": "Invalid records: error or skip."})
    sft_format: Literal["prompt_completion", "messages"] = field(
        default="prompt_completion", metadata={"help": "Loss on the score only (prompt_completion) or every token."}
    )
    min_pixels: int | None = field(default=None, metadata={"help": "Image processor's minimum pixels."})
    max_pixels: int | None = field(default=None, metadata={"help": "Image processor's maximum pixels."})

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
        names = (
            (self.train_files, self.eval_files) if registry is not None else (self.judge_records, self.eval_records)
        )
        options = {"image_base_path": self.image_base_path, "on_invalid": self.on_invalid}
        records = [load_judge_records(data, registry, **options) if data else None for data in names]
        return tuple(data and build_judge_sft_dataset(data, sft_format=self.sft_format) for data in records)
