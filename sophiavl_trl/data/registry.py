# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""
Load training data registered in SophiaVL-R1's `dataset_info.json` format, as a TRL-ready `datasets.Dataset`.

A registry is a JSON object of named entries:

```json
{
    "Chart": {
        "file_path": "dataset/json/chart.json",
        "image_base_path": "dataset",
        "columns": {"problem": "prompt", "solution": "answer", "path": "images"}
    }
}
```

- `file_path`: a `.json` file (a JSON array of rows, or JSON lines), a `.jsonl` file, a `.parquet` file, or a
  directory of such files. Relative paths are relative to the registry file's directory (or to `base_dir`); when
  nothing exists there but the path exists relative to the working directory (where the original's relative paths
  point), that one is used.
- `image_base_path`: directory that the rows' relative image paths are relative to (same resolution rule).
- `columns` (optional): how the file's columns map to the canonical ones. Accepted forms, per entry:
  - the original's: *file column* → *role*, where the role is `prompt`, `answer` or `images` (the original
    renames file columns to these), or a canonical name (`{"question": "problem"}`);
  - *canonical name* → *file column* (`{"problem": "question"}`);
  - `column_reponses_to_<role>` (the original README's spelling, or `column_responses_to_<role>`) → *file column*.

  Columns that are not mapped are used under their own names when they are canonical.

Canonical columns: `problem` (question text), `solution` (ground truth, usually inside `<answer>` tags),
`problem_type` (`numerical`, `multiple choice`, `OCR`, `free-form`, `text`, or a registered type), `data_type`
(`image` or `text`), `options` (list of strings, for multiple choice) and `path` (image path, or list of paths,
relative to `image_base_path`; embedded images in the `datasets.Image` storage format also work).

The returned data set has the columns `prompt` (TRL conversational messages), `images` (a list of PIL images, empty
for text rows), `problem`, `solution`, `problem_type`, `data_type`, `options`, `source` and `row_index`. Images are
decoded and resized only when a row is read (see `ImageTransform`).
"""

import dataclasses
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sophiavl_trl.data.prompts import build_prompt
from sophiavl_trl.data.validation import (
    DatasetValidationError,
    OnInvalid,
    RowIssue,
    ValidationReport,
    _Row,
    check_images,
    finalize,
    known_problem_types,
    normalize_record,
)


if TYPE_CHECKING:
    from datasets import Dataset
    from PIL import Image


logger = logging.getLogger(__name__)

CANONICAL_COLUMNS: tuple[str, ...] = ("problem", "solution", "problem_type", "data_type", "options", "path")

# Names the original code (and common datasets) use for the canonical columns.
COLUMN_ALIASES: dict[str, str] = {
    "prompt": "problem",
    "answer": "solution",
    "images": "path",
    "image": "path",
    **{name: name for name in CANONICAL_COLUMNS},
}

# The released recipe's image pixel bounds (`data.min_pixels` / `data.max_pixels`).
DEFAULT_MIN_PIXELS = 262144
DEFAULT_MAX_PIXELS = 4194304

_ROLE_KEY = re.compile(r"^column_re(?:s|)ponses_to_(\w+)$")
_DATA_SUFFIXES = (".json", ".jsonl", ".parquet")


@dataclass(frozen=True)
class DatasetSpec:
    r"""
    One registry entry.

    Args:
        name (`str`):
            The entry's name (what `train_files` lists).
        file_path (`Path`):
            The data file or directory, resolved.
        image_base_path (`Path` or `None`):
            Directory of the relative image paths, resolved; `None` when the entry gives none.
        columns (`dict[str, str]`):
            The entry's `columns` mapping, as written.
    """

    name: str
    file_path: Path
    image_base_path: Path | None = None
    columns: dict[str, str] = field(default_factory=dict)


def _resolve_path(value: str, base_dir: Path) -> Path:
    path = Path(os.path.expanduser(value))
    if path.is_absolute():
        return path
    candidate = base_dir / path
    if not candidate.exists() and Path.cwd().joinpath(path).exists():
        # The original resolved registry paths against the working directory (it runs from its repository root).
        return Path.cwd().joinpath(path)
    return candidate


def load_registry(path: str | os.PathLike, *, base_dir: str | os.PathLike | None = None) -> dict[str, DatasetSpec]:
    r"""
    Read a registry in SophiaVL-R1's `dataset_info.json` format.

    Args:
        path (`str` or `os.PathLike`):
            The registry JSON file.
        base_dir (`str` or `os.PathLike`, *optional*):
            Directory that relative `file_path` / `image_base_path` values are relative to. Defaults to the
            registry's directory (with a fallback to the working directory, see the module docstring).

    Returns:
        `dict[str, DatasetSpec]`: entry name to spec.

    Example:
    ```python
    >>> from sophiavl_trl.data import load_registry, write_synthetic_dataset
    >>> registry = load_registry(write_synthetic_dataset("/tmp/synthetic_doc", num_samples=8))
    >>> sorted(registry)
    ['synthetic_image', 'synthetic_text']
    ```
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Dataset registry not found: {path}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"Dataset registry {path} is not valid JSON: {exc}") from exc
    if not isinstance(entries, dict):
        raise ValueError(
            f"Dataset registry {path} must be a JSON object of named entries, got {type(entries).__name__}"
        )
    root = Path(base_dir) if base_dir is not None else path.parent
    specs = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file_path"), str):
            raise ValueError(f"Dataset registry {path}: entry {name!r} needs a string 'file_path'.")
        columns = entry.get("columns") or {}
        if not isinstance(columns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
        ):
            raise ValueError(f"Dataset registry {path}: 'columns' of entry {name!r} must map strings to strings.")
        image_base = entry.get("image_base_path")
        specs[name] = DatasetSpec(
            name=name,
            file_path=_resolve_path(entry["file_path"], root),
            image_base_path=_resolve_path(image_base, root) if image_base else None,
            columns=dict(columns),
        )
    return specs


def resolve_columns(
    columns: Mapping[str, str] | None, file_columns: Iterable[str], *, source: str = "<data>"
) -> tuple[dict[str, str], list[RowIssue]]:
    r"""
    Work out which file column holds each canonical column.

    Args:
        columns (`Mapping[str, str]` or `None`):
            A registry entry's `columns` mapping (any of the forms in the module docstring).
        file_columns (`Iterable[str]`):
            The columns present in the file.
        source (`str`, *optional*):
            Name of the file, for messages.

    Returns:
        `tuple[dict[str, str], list[RowIssue]]`: canonical name to file column, and the mapping's problems.

    Example:
    ```python
    >>> from sophiavl_trl.data.registry import resolve_columns
    >>> resolve_columns({"problem": "prompt", "path": "images"}, ["problem", "solution", "path"])[0]
    {'problem': 'problem', 'path': 'path', 'solution': 'solution'}
    ```
    """
    file_columns = list(file_columns)
    present = set(file_columns)
    mapping: dict[str, str] = {}
    issues: list[RowIssue] = []
    for key, value in (columns or {}).items():
        role_match = _ROLE_KEY.match(key)
        if role_match and role_match.group(1) in COLUMN_ALIASES:
            canonical, column = COLUMN_ALIASES[role_match.group(1)], value
        elif key in present and value in COLUMN_ALIASES:
            canonical, column = COLUMN_ALIASES[value], key  # the original's direction: file column -> role
        elif value in present and key in COLUMN_ALIASES:
            canonical, column = COLUMN_ALIASES[key], value
        else:
            issues.append(
                RowIssue(
                    source,
                    None,
                    "columns",
                    f"mapping entry {key!r}: {value!r} names no column of the file (columns: {sorted(present)}) "
                    f"and no known role (roles: {sorted(COLUMN_ALIASES)})",
                )
            )
            continue
        if column not in present:
            issues.append(RowIssue(source, None, "columns", f"mapped column {column!r} is not in the file"))
            continue
        if canonical in mapping and mapping[canonical] != column:
            issues.append(
                RowIssue(
                    source,
                    None,
                    "columns",
                    f"canonical column {canonical!r} is mapped twice ({mapping[canonical]!r} and {column!r})",
                )
            )
            continue
        mapping[canonical] = column
    mapped_columns = set(mapping.values())
    # Unmapped columns are used under their own (or their conventional) names.
    for column in file_columns:
        canonical = COLUMN_ALIASES.get(column)
        if canonical and canonical not in mapping and column not in mapped_columns:
            mapping[canonical] = column
            mapped_columns.add(column)
    return mapping, issues


def _read_json(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError("expected a JSON array of rows")
        return data
    if path.suffix != ".jsonl" and stripped.startswith("{"):
        try:  # one object holding the whole table is not a row format we know, but a single-row file is JSON lines
            data = json.loads(text)
            if isinstance(data, dict):
                return [data]
        except json.JSONDecodeError:
            pass
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {line_number} is not valid JSON ({exc})") from exc
    return rows


def _read_parquet(path: Path) -> list[Any]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _data_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _DATA_SUFFIXES)
    return [path]


def read_records(path: str | os.PathLike) -> tuple[list[tuple[str, int, Any]], list[RowIssue]]:
    r"""
    Read the rows of a data file (or of every data file in a directory).

    Args:
        path (`str` or `os.PathLike`):
            A `.json` (array or JSON lines), `.jsonl` or `.parquet` file, or a directory of them.

    Returns:
        `tuple[list[tuple[str, int, Any]], list[RowIssue]]`: `(file, row index, record)` triples, and the files'
        problems (missing, unreadable, unknown format).
    """
    path = Path(path)
    if not path.exists():
        return [], [RowIssue(str(path), None, "file_path", "data file not found")]
    files = _data_files(path)
    if not files:
        return [], [RowIssue(str(path), None, "file_path", f"no {'/'.join(_DATA_SUFFIXES)} files in the directory")]
    records: list[tuple[str, int, Any]] = []
    issues: list[RowIssue] = []
    for file in files:
        suffix = file.suffix.lower()
        try:
            if suffix in (".json", ".jsonl"):
                rows = _read_json(file)
            elif suffix == ".parquet":
                rows = _read_parquet(file)
            else:
                issues.append(RowIssue(str(file), None, "file_path", f"unknown data file format {suffix!r}"))
                continue
        except Exception as exc:  # json, pyarrow and OS errors alike: report the file, keep the cause
            issues.append(RowIssue(str(file), None, "file_path", f"cannot read data file: {exc}"))
            continue
        records.extend((str(file), index, row) for index, row in enumerate(rows))
    return records, issues


class ImageTransform:
    r"""
    Row transform that loads images on access: `Dataset.with_transform(ImageTransform(...))`.

    Each row stores its images as `{"bytes", "path"}` references. When rows are read (by indexing, iteration or a
    `DataLoader`), this opens the referenced images, converts them to RGB and resizes them with qwen-vl-utils'
    `fetch_image` (`smart_resize`: both sides multiples of 28, pixel count within `[min_pixels, max_pixels]`, aspect
    ratio kept), and it returns the `prompt` messages in TRL's canonical form (Arrow storage forces every message
    content to a list of `{"type", "text"}` parts; plain text contents are turned back into strings and unused keys
    are dropped). Columns may be missing (e.g. after `remove_columns`): only those present are transformed.

    Args:
        min_pixels (`int`, *optional*, defaults to `262144`):
            Lower bound on each image's pixel count.
        max_pixels (`int`, *optional*, defaults to `4194304`):
            Upper bound on each image's pixel count.
    """

    def __init__(self, min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS):
        if min_pixels <= 0 or max_pixels < min_pixels:
            raise ValueError(
                f"Need 0 < min_pixels <= max_pixels, got min_pixels={min_pixels}, max_pixels={max_pixels}."
            )
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels

    def load_image(self, ref: Mapping[str, Any]) -> "Image.Image":
        r"""Open one image reference, convert it to RGB and resize it within the pixel bounds."""
        from PIL import Image
        from qwen_vl_utils import fetch_image

        source = BytesIO(ref["bytes"]) if ref.get("bytes") else ref.get("path")
        try:
            with Image.open(source) as image:
                # image_patch_size 14 -> factor 28 (patch 14 x spatial merge 2), as Qwen2.5-VL's processor expects.
                return fetch_image(
                    {"image": image, "min_pixels": self.min_pixels, "max_pixels": self.max_pixels}, image_patch_size=14
                )
        except Exception as exc:
            raise RuntimeError(f"Cannot load image {ref.get('path') or '<embedded bytes>'}: {exc}") from exc

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if "images" in batch:
            batch["images"] = [[self.load_image(ref) for ref in refs or []] for refs in batch["images"]]
        if "prompt" in batch:
            batch["prompt"] = [_from_storage(messages) for messages in batch["prompt"]]
        return batch

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_pixels={self.min_pixels}, max_pixels={self.max_pixels})"


def _to_storage(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Give every message a list-of-parts content, so all rows share one Arrow schema."""
    stored = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        else:
            parts = [{"type": part["type"], "text": part.get("text")} for part in content]
        stored.append({"role": message["role"], "content": parts})
    return stored


def _from_storage(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Inverse of `_to_storage`: one text part becomes a string; `None` fields (Arrow's filler) are dropped."""
    restored = []
    for message in messages:
        parts = [{key: value for key, value in part.items() if value is not None} for part in message["content"]]
        if len(parts) == 1 and parts[0].get("type") == "text":
            restored.append({"role": message["role"], "content": parts[0].get("text", "")})
        else:
            restored.append({"role": message["role"], "content": parts})
    return restored


def _features() -> Any:
    from datasets import Features, List, Value

    return Features(
        {
            "prompt": List(
                {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
            ),
            "images": List({"bytes": Value("binary"), "path": Value("string")}),
            "problem": Value("string"),
            "solution": Value("string"),
            "problem_type": Value("string"),
            "data_type": Value("string"),
            "options": List(Value("string")),
            "source": Value("string"),
            "row_index": Value("int64"),
        }
    )


def _build_dataset(rows: Sequence[_Row], *, min_pixels: int, max_pixels: int, system_prompt: str | None) -> "Dataset":
    import pyarrow as pa
    from datasets import Dataset

    from sophiavl_trl.data.prompts import SYSTEM_PROMPT

    system = SYSTEM_PROMPT if system_prompt is None else system_prompt
    columns: dict[str, list[Any]] = {name: [] for name in _features()}
    for row in rows:
        prompt = build_prompt(
            row.problem, row.problem_type, row.options, num_images=len(row.images), system_prompt=system
        )
        columns["prompt"].append(_to_storage(prompt))
        columns["images"].append(row.images)
        columns["problem"].append(row.problem)
        columns["solution"].append(row.solution)
        columns["problem_type"].append(row.problem_type)
        columns["data_type"].append(row.data_type)
        columns["options"].append(row.options)
        columns["source"].append(row.source)
        columns["row_index"].append(row.row_index)
    # pyarrow converts the nested columns in C; Dataset.from_dict's per-value feature encoding is ~10x slower.
    table = pa.Table.from_pydict(columns, schema=_features().arrow_schema)
    dataset = Dataset(table)
    return dataset.with_transform(ImageTransform(min_pixels=min_pixels, max_pixels=max_pixels))


def _prepare_rows(
    records: Sequence[tuple[str, int, Any]],
    *,
    columns: Mapping[str, str] | None,
    image_base_path: str | None,
    report: ValidationReport,
    problem_types: Iterable[str] | None,
    default_problem_type: str | None,
) -> list[_Row]:
    known = set(problem_types) if problem_types is not None else known_problem_types()
    # JSON rows may differ in keys: a source's columns are the union of its rows' keys.
    source_columns: dict[str, dict[str, None]] = {}
    for source, _, record in records:
        keys = source_columns.setdefault(source, {})
        if isinstance(record, Mapping):
            keys.update(dict.fromkeys(record))
    column_maps: dict[str, dict[str, str]] = {}
    for source, keys in source_columns.items():
        column_maps[source], issues = resolve_columns(columns, keys, source=source)
        report.issues.extend(issues)

    rows: list[_Row] = []
    for source, index, record in records:
        report.total_rows += 1
        if not isinstance(record, Mapping):
            report.issues.append(RowIssue(source, index, "row", f"expected an object, got {type(record).__name__}"))
            continue
        row, issues = normalize_record(
            record,
            column_map=column_maps[source],
            source=source,
            row_index=index,
            image_base_path=image_base_path,
            known_types=known,
            default_problem_type=default_problem_type,
        )
        report.issues.extend(issues)
        if row is not None:
            rows.append(row)
    return rows


def _check_arguments(on_invalid: str, min_pixels: int, max_pixels: int) -> None:
    if on_invalid not in ("error", "skip"):
        raise ValueError(f"on_invalid must be 'error' or 'skip', got {on_invalid!r}.")
    ImageTransform(min_pixels=min_pixels, max_pixels=max_pixels)  # validates the bounds


def _finish(
    rows: list[_Row],
    report: ValidationReport,
    *,
    sources: Sequence[str],
    on_invalid: OnInvalid,
    verify_images: bool,
    min_pixels: int,
    max_pixels: int,
    system_prompt: str | None,
    return_report: bool,
) -> "Dataset | tuple[Dataset, ValidationReport]":
    if not report.file_issues:
        report.issues.extend(check_images(rows, verify=verify_images))
        # Keep the issues in load order (source, then row), so the message lists the first offending rows first.
        rank = {source: i for i, source in enumerate(dict.fromkeys(issue.source for issue in report.issues))}
        rank.update({source: i for i, source in enumerate(dict.fromkeys(sources))})
        report.issues.sort(key=lambda issue: (rank[issue.source], -1 if issue.row is None else issue.row))
    rows = finalize(rows, report, on_invalid)
    if not rows:
        raise DatasetValidationError("No valid rows left.\n" + report.format(), report)
    dataset = _build_dataset(rows, min_pixels=min_pixels, max_pixels=max_pixels, system_prompt=system_prompt)
    return (dataset, report) if return_report else dataset


def parse_dataset_names(names: str | Sequence[str]) -> list[str]:
    r"""
    Split `train_files`-style names (`"Chart,OCR"`) into a list. A `name@train` suffix is accepted; other splits are
    not (each registry entry is one file set).
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    parsed = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, _, split = item.partition("@")
        if split and split != "train":
            raise ValueError(
                f"Dataset {item!r}: only the 'train' split is supported (a registry entry is one file or folder)."
            )
        parsed.append(name)
    if not parsed:
        raise ValueError(f"No dataset names given ({names!r}).")
    return parsed


def load_sophiavl_dataset(
    names: str | Sequence[str],
    registry_path: str | os.PathLike | Mapping[str, DatasetSpec],
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_invalid: OnInvalid = "error",
    system_prompt: str | None = None,
    default_problem_type: str | None = None,
    problem_types: Iterable[str] | None = None,
    verify_images: bool = True,
    return_report: bool = False,
) -> "Dataset | tuple[Dataset, ValidationReport]":
    r"""
    Load registered data sets, validate them, and combine them into one TRL-ready training set.

    Args:
        names (`str` or `Sequence[str]`):
            Registry names, as a list or comma-separated like the original's `train_files` (`"Chart,OCR"`).
        registry_path (`str`, `os.PathLike` or `Mapping[str, DatasetSpec]`):
            The `dataset_info.json` file, or an already loaded registry.
        min_pixels (`int`, *optional*, defaults to `262144`):
            Lower bound on each image's pixel count after resizing.
        max_pixels (`int`, *optional*, defaults to `4194304`):
            Upper bound on each image's pixel count after resizing.
        on_invalid (`str`, *optional*, defaults to `"error"`):
            `"error"` raises a `DatasetValidationError` listing the first offending rows; `"skip"` drops invalid
            rows and logs a warning with their count and the first of them. Problems with whole files always raise.
        system_prompt (`str`, *optional*):
            System message of every prompt. `None` uses `SYSTEM_PROMPT` (the released recipe's); `""` adds none.
        default_problem_type (`str`, *optional*):
            Problem type of rows that have none (e.g. `"numerical"` for a math set without the column).
        problem_types (`Iterable[str]`, *optional*):
            Accepted problem types. Defaults to those of the accuracy reward's verifier registry.
        verify_images (`bool`, *optional*, defaults to `True`):
            Open every image's header during validation (catches corrupt files); `False` only checks existence.
        return_report (`bool`, *optional*, defaults to `False`):
            Also return the `ValidationReport` (what was skipped and why).

    Returns:
        `datasets.Dataset` (or `(Dataset, ValidationReport)` with `return_report=True`): columns `prompt`, `images`
        (loaded lazily), `problem`, `solution`, `problem_type`, `data_type`, `options`, `source`, `row_index`.

    Example:
    ```python
    >>> from sophiavl_trl.data import load_sophiavl_dataset, write_synthetic_dataset
    >>> registry = write_synthetic_dataset("/tmp/synthetic_doc", num_samples=8)
    >>> dataset = load_sophiavl_dataset("synthetic_image,synthetic_text", registry, min_pixels=3136, max_pixels=12544)
    >>> len(dataset), sorted(set(dataset["data_type"]))
    (8, ['image', 'text'])
    ```
    """
    _check_arguments(on_invalid, min_pixels, max_pixels)
    registry = registry_path if isinstance(registry_path, Mapping) else load_registry(registry_path)
    specs = []
    for name in parse_dataset_names(names):
        if name not in registry:
            raise ValueError(f"Dataset {name!r} is not in the registry. Registered names: {sorted(registry)}.")
        specs.append(registry[name])

    report = ValidationReport()
    rows: list[_Row] = []
    sources: list[str] = []
    for spec in specs:
        records, file_issues = read_records(spec.file_path)
        report.issues.extend(file_issues)
        sources.extend(dict.fromkeys(source for source, _, _ in records))
        rows.extend(
            _prepare_rows(
                records,
                columns=spec.columns,
                image_base_path=str(spec.image_base_path) if spec.image_base_path else None,
                report=report,
                problem_types=problem_types,
                default_problem_type=default_problem_type,
            )
        )
    return _finish(
        rows,
        report,
        sources=sources,
        on_invalid=on_invalid,
        verify_images=verify_images,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        system_prompt=system_prompt,
        return_report=return_report,
    )


def _undecoded(dataset: "Dataset") -> "Dataset":
    """The same data set with image features left undecoded, so that reading rows does not decode every image."""
    from datasets import Image as ImageFeature

    def undecode(feature: Any) -> Any:
        if isinstance(feature, ImageFeature):
            return ImageFeature(decode=False)
        if isinstance(feature, dict):
            return {key: undecode(value) for key, value in feature.items()}
        if dataclasses.is_dataclass(feature) and hasattr(feature, "feature"):  # List / LargeList
            inner = undecode(feature.feature)
            if inner is not feature.feature:
                return dataclasses.replace(feature, feature=inner)
        return feature

    features = dataset.features
    changed = {name: undecode(feature) for name, feature in features.items()}
    if all(changed[name] is features[name] for name in features):
        return dataset
    return dataset.cast(type(features)(changed))


def prepare_dataset(
    dataset: "Dataset",
    image_base_path: str | os.PathLike | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_invalid: OnInvalid = "error",
    system_prompt: str | None = None,
    default_problem_type: str | None = None,
    problem_types: Iterable[str] | None = None,
    verify_images: bool = True,
    return_report: bool = False,
) -> "Dataset | tuple[Dataset, ValidationReport]":
    r"""
    Validate and convert a Hugging Face `datasets.Dataset` with SophiaVL columns into the TRL-ready format.

    The same as `load_sophiavl_dataset`, for data already in memory (e.g. from `datasets.load_dataset`). Images may
    be paths (relative to `image_base_path`) or `datasets.Image` columns (named `path`, `images` or `image`, or mapped
    with `columns`); they are not decoded here.

    Args:
        dataset (`datasets.Dataset`):
            Rows with the canonical columns, or columns mapped with `columns`.
        image_base_path (`str` or `os.PathLike`, *optional*):
            Directory that relative image paths are relative to.
        columns (`Mapping[str, str]`, *optional*):
            Column mapping, in any form a registry entry accepts.
        source (`str`, *optional*):
            Name used for this data in messages and in the `source` column. Defaults to the data set's name.
        min_pixels (`int`, *optional*, defaults to `262144`):
            Lower bound on each image's pixel count after resizing.
        max_pixels (`int`, *optional*, defaults to `4194304`):
            Upper bound on each image's pixel count after resizing.
        on_invalid (`str`, *optional*, defaults to `"error"`):
            `"error"` or `"skip"`, as in `load_sophiavl_dataset`.
        system_prompt (`str`, *optional*):
            System message; `None` uses `SYSTEM_PROMPT`, `""` adds none.
        default_problem_type (`str`, *optional*):
            Problem type of rows that have none.
        problem_types (`Iterable[str]`, *optional*):
            Accepted problem types. Defaults to those of the accuracy reward's verifier registry.
        verify_images (`bool`, *optional*, defaults to `True`):
            Open every image's header during validation.
        return_report (`bool`, *optional*, defaults to `False`):
            Also return the `ValidationReport`.

    Returns:
        `datasets.Dataset` (or `(Dataset, ValidationReport)`): as `load_sophiavl_dataset`.
    """
    _check_arguments(on_invalid, min_pixels, max_pixels)
    name = source or dataset.info.dataset_name or "dataset"
    raw = _undecoded(dataset.with_format(None))
    report = ValidationReport()
    records = [(name, index, record) for index, record in enumerate(raw)]
    rows = _prepare_rows(
        records,
        columns=columns,
        image_base_path=os.fspath(image_base_path) if image_base_path is not None else None,
        report=report,
        problem_types=problem_types,
        default_problem_type=default_problem_type,
    )
    return _finish(
        rows,
        report,
        sources=[name],
        on_invalid=on_invalid,
        verify_images=verify_images,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        system_prompt=system_prompt,
        return_report=return_report,
    )
