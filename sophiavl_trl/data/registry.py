# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""Read data with `datasets` (`read_table`), validate every row before training (errors name the file, row and field),
and serve it as a TRL-ready `datasets.Dataset`. docs/dataset.md describes the registry (SophiaVL-R1's
`dataset_info.json`), the column mapping and the columns of the result."""

import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sophiavl_trl.data.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, ImageTransform, check_images, image_refs
from sophiavl_trl.data.prompts import IMAGE_PLACEHOLDER, SYSTEM_PROMPT, TYPE_TEMPLATE, build_prompt
from sophiavl_trl.data.prompts import normalize_problem_type as type_key


if TYPE_CHECKING:
    from datasets import Dataset


logger = logging.getLogger(__name__)

OnInvalid = Literal["error", "skip"]
# The canonical columns, and the names the original code (and common datasets) use for them.
_ALIASES = {"prompt": "problem", "answer": "solution", "images": "path", "image": "path"}
_ALIASES |= {name: name for name in ("problem", "solution", "problem_type", "data_type", "options", "path")}
_ROLE_KEY = re.compile(r"^column_res?ponses_to_(\w+)$")
_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}
_TEMPLATES = "sophiavl_trl.data.prompts.TYPE_TEMPLATE"
# Longer questions are refused before any tokenizer sees them (far beyond a VQA question).
MAX_QUESTION_CHARS = 50_000
_TEXT_FIX = ": set data_type to 'image' to train on the image, or remove the path"
_ADD = f"(add one to {_TEMPLATES}, and its verifier with sophiavl_trl.rewards.register_verifier)"


@dataclass(frozen=True)
class DatasetSpec:
    r"""One registry entry: its `name`, the resolved `file_path` and `image_base_path` (or `None`), and `columns`."""

    name: str
    file_path: Path
    image_base_path: Path | None = None
    columns: dict[str, str] = field(default_factory=dict)


@dataclass
class ValidationReport:
    r"""What validation found: `total_rows` read, `issues` (`"file, row N, field 'x': what"`) and the `(file, row)` of
    the `invalid_rows`."""

    total_rows: int = 0
    issues: list[str] = field(default_factory=list)
    invalid_rows: list[tuple[str, int]] = field(default_factory=list)

    def format(self, max_issues: int = 10) -> str:
        lines = [f"{len(self.invalid_rows)} invalid row(s) out of {self.total_rows}."] if self.invalid_rows else []
        lines.append(f"First {min(max_issues, len(self.issues))} of {len(self.issues)} issue(s):")
        return "\n".join(lines + [f"  - {issue}" for issue in self.issues[:max_issues]])


class DatasetValidationError(ValueError):
    r"""The data failed validation: the message lists the first problems and the counts; `.report` has them all."""

    def __init__(self, message: str, report: ValidationReport):
        super().__init__(message)
        self.report = report


def _resolve_path(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and not (base_dir / path).exists() and (Path.cwd() / path).exists():
        return Path.cwd() / path  # the original resolved registry paths against its working directory
    return base_dir / path  # an absolute `path` stays as it is


def _unique_keys(path: Path, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if duplicate := next((key for i, (key, _) in enumerate(pairs) if key in dict(pairs[:i])), None):
        # json.loads keeps the last of duplicate keys: the first entry would be dropped without a word.
        raise ValueError(f"Dataset registry {path}: {duplicate!r} is defined twice; rename or remove one.")
    return dict(pairs)


def load_registry(path: str | os.PathLike) -> dict[str, DatasetSpec]:
    r"""Entry name -> `DatasetSpec` of a `dataset_info.json`; a malformed one raises a `ValueError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Dataset registry not found: {path}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=partial(_unique_keys, path))
    except UnicodeDecodeError as exc:
        raise ValueError(f"Dataset registry {path} is not UTF-8 text ({exc}); save it as UTF-8.") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"Dataset registry {path} is not valid JSON: {exc}") from exc
    if not isinstance(entries, dict):
        kind = type(entries).__name__
        raise ValueError(f"Dataset registry {path} must be a JSON object of named entries, got {kind}")
    specs = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file_path"), str):
            raise ValueError(f"Dataset registry {path}: entry {name!r} needs a string 'file_path'.")
        columns, image_base = entry.get("columns") or {}, entry.get("image_base_path")
        if not isinstance(columns, dict) or not all(isinstance(value, str) for value in columns.values()):
            raise ValueError(f"Dataset registry {path}: 'columns' of entry {name!r} must map strings to strings.")
        base = _resolve_path(image_base, path.parent) if image_base else None
        specs[name] = DatasetSpec(name, _resolve_path(entry["file_path"], path.parent), base, columns)
    return specs


def data_files(path: Path) -> list[Path]:
    """A data file, or the data files (json, jsonl, parquet) in a folder tree, sorted."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: data file not found")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in _BUILDERS) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path}: no .json, .jsonl or .parquet files in the folder")
    return files


def _json_problem(file: Path) -> str | None:
    """Where a JSON file goes wrong, in file terms (pyarrow counts rows from the start of a block, not of the file)."""
    number = None  # the JSON line being parsed
    try:
        text = file.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            items, unit = list(enumerate(json.loads(text))), "row"
        else:
            items, unit = [], "line"
            for number, line in enumerate(text.splitlines(), start=1):
                items += [(number, json.loads(line))] if line.strip() else []
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"line {number} is not valid JSON ({exc})" if number else f"{type(exc).__name__}: {exc}"
    bad = next(((where, item) for where, item in items if not isinstance(item, dict)), None)
    return f"{unit} {bad[0]} is a JSON {type(bad[1]).__name__}, not an object" if bad else None


def _load_file(file: Path) -> "Dataset":
    from datasets import load_dataset

    builder = _BUILDERS.get(file.suffix.lower())
    if builder is None:
        raise ValueError(f"{file}: unknown data file format {file.suffix!r} (expected .json, .jsonl or .parquet)")
    if file.stat().st_size == 0:
        raise ValueError(f"{file}: empty data file")
    try:
        table = load_dataset(builder, data_files=str(file), split="train")
        table.data.validate(full=True)  # pyarrow keeps invalid UTF-8 (a latin-1 file) and fails only when it is read
        return table
    except Exception as exc:  # datasets wraps the parser's error (pyarrow, json, OS) in a DatasetGenerationError
        cause = exc.__cause__ or exc
        where = _json_problem(file) if builder == "json" else None
        raise ValueError(f"{file}: cannot read data file: {where or f'{type(cause).__name__}: {cause}'}") from exc


def read_table(path: str | os.PathLike) -> "Dataset":
    r"""A `.json` (array or lines), `.jsonl` or `.parquet` file, or a folder of them, read unvalidated; errors name the
    file (and the JSON line or row)."""
    from datasets import concatenate_datasets

    tables = [_load_file(file) for file in data_files(Path(path))]
    try:
        return concatenate_datasets(tables) if len(tables) > 1 else tables[0]
    except ValueError as exc:
        raise ValueError(f"{path}: the files' columns do not match ({exc})") from exc


def resolve_columns(
    columns: Mapping[str, str] | None, names: Sequence[str], aliases: Mapping[str, str] = _ALIASES
) -> tuple[dict[str, str], list[str]]:
    """Canonical name -> file column, and the problems of the mapping (`aliases`: column or role -> canonical name)."""
    present, mapping, problems = set(names), {}, []
    for key, value in (columns or {}).items():
        if (role := _ROLE_KEY.match(key)) and role.group(1) in aliases:
            canonical, column = aliases[role.group(1)], value
        elif key in present and value in aliases:
            canonical, column = aliases[value], key  # the original's direction: file column -> role
        elif value in present and key in aliases:
            canonical, column = aliases[key], value
        else:
            known = f"(columns: {sorted(present)}) and no known role (roles: {sorted(aliases)})"
            problems.append(f"mapping entry {key!r}: {value!r} names no column of the file {known}")
            continue
        if column not in present:
            problems.append(f"mapped column {column!r} is not in the file")
        elif mapping.setdefault(canonical, column) != column:
            problems.append(f"canonical column {canonical!r} is mapped twice ({mapping[canonical]!r} and {column!r})")
    for column in names:  # unmapped columns are used under their own (or their conventional) names
        if (canonical := aliases.get(column)) and canonical not in mapping and column not in mapping.values():
            mapping[canonical] = column
    return mapping, problems


def _text(value: Any, missing: str, empty: str, filler: str) -> tuple[str | None, str | None]:
    """A cell as text (numbers too: JSON answers are often bare numbers), or why not (`empty`: only `filler` in it)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, missing
    if not isinstance(value, str) and (isinstance(value, bool) or not isinstance(value, int | float)):
        return None, f"expected a string, got {type(value).__name__}"
    return str(value), None if re.sub(filler, "", str(value)).strip() else empty


@dataclass
class _Rules:
    """The options of `load_sophiavl_dataset` (checked before any work) and the row converter `Dataset.map` runs."""

    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    on_invalid: OnInvalid = "error"
    system_prompt: str | None = None
    default_problem_type: str | None = None
    problem_types: Sequence[str] | None = None
    verify_images: bool = True
    columns: dict[str, str] = field(default_factory=dict)  # the entry's, then canonical -> file column
    base: str | os.PathLike | None = None  # image_base_path
    source: str = ""

    def __post_init__(self) -> None:
        if self.on_invalid not in ("error", "skip"):
            raise ValueError(f"on_invalid must be 'error' or 'skip', got {self.on_invalid!r}.")
        ImageTransform(self.min_pixels, self.max_pixels)  # checks the bounds
        self.known = frozenset(map(type_key, TYPE_TEMPLATE if self.problem_types is None else self.problem_types))
        self.templated = frozenset(map(type_key, TYPE_TEMPLATE))  # types with a prompt instruction
        self.system_prompt = SYSTEM_PROMPT if self.system_prompt is None else self.system_prompt

    def __call__(self, record: dict[str, Any], index: int) -> dict[str, Any]:
        """One file row as a canonical row, with what is wrong with it (`issues`, empty when it can be trained on)."""
        get = {name: record.get(column) for name, column in self.columns.items()}.get
        row, why = {"source": self.source, "row_index": index}, {}  # why: field -> what is wrong
        problem, why["problem"] = _text(get("problem"), "missing problem", "empty prompt", IMAGE_PLACEHOLDER)
        if not why["problem"] and len(problem) > MAX_QUESTION_CHARS:  # checked before any tokenizer sees it
            why["problem"] = f"the question is {len(problem):,} characters, over the cap of {MAX_QUESTION_CHARS:,}"
        row["problem"] = problem
        row["solution"], why["solution"] = _text(get("solution"), "missing solution", "empty solution", "</?answer>")
        problem_type = row["problem_type"] = get("problem_type") or self.default_problem_type
        key = type_key(problem_type) if isinstance(problem_type, str) else None
        if problem_type is None:
            why["problem_type"] = "missing problem_type (pass default_problem_type to set one for such rows)"
        elif key is None:
            why["problem_type"], row["problem_type"] = f"expected a string, got {type(problem_type).__name__}", None
        elif key not in self.known:
            why["problem_type"] = f"unknown problem type {problem_type!r}; known types: {sorted(self.known)} {_ADD}"
        elif key not in self.templated:
            why["problem_type"] = f"no prompt instruction for problem type {problem_type!r}; add one to {_TEMPLATES}"
        options = get("options")
        if isinstance(options, list) and not all(isinstance(option, str | int | float) for option in options):
            why["options"] = "options must be a list of strings"
        elif key == "multiple choice" and options is None:  # an empty list is fine: options in the problem text
            why["options"] = "missing options for a multiple-choice row"
        elif key == "multiple choice" and not isinstance(options, list):
            why["options"] = f"options must be a list for multiple choice, got {type(options).__name__}"
        row["options"] = [str(option) for option in options] if isinstance(options, list) else []
        images, why["path"] = image_refs(get("path"), self.base)
        data_type = get("data_type") or ("image" if images or why["path"] else "text")
        row["data_type"] = str(data_type)
        if data_type not in ("image", "text"):
            why["data_type"] = f"unsupported data_type {data_type!r}; expected one of ['image', 'text']"
        elif data_type == "image" and not images:
            why["path"] = why["path"] or "data_type is 'image' but the row has no image path"
        elif data_type == "text" and images:  # the original drops them silently: the question may need them
            why["path"] = f"a text row (data_type 'text') with image path(s) {[r['path'] for r in images]}{_TEXT_FIX}"
        row["images"] = images = [] if data_type == "text" else images  # as in the original: text rows have none
        markers = (problem or "").count(IMAGE_PLACEHOLDER)
        if markers and data_type == "text":  # the image is dropped: the marker would reach the prompt as text
            why["problem"] = f"{IMAGE_PLACEHOLDER} in the question of a text-only row (no image): remove it"
        elif markers and images and markers != len(images):
            why["problem"] = f"{markers} {IMAGE_PLACEHOLDER} placeholder(s) but {len(images)} image(s)"
        row["issues"] = [f"field {name!r}: {message}" for name, message in why.items() if message]
        prompt = partial(build_prompt, problem, problem_type, row["options"], system_prompt=self.system_prompt)
        return row | {"prompt": None if row["issues"] else prompt(num_images=len(images))}


def _canonical(table: "Dataset", rules: _Rules, report: ValidationReport) -> "Dataset | None":
    """`table` validated row by row into canonical columns; `None` (problems in `report`) when it is unmappable."""
    from datasets import Features, Json, List, Value
    from datasets import Image as ImageFeature

    mapping, problems = resolve_columns(rules.columns, table.column_names)
    report.issues += [f"{rules.source}, field 'columns': {problem}" for problem in problems]
    if problems:
        return None
    text, rules = Value("string"), replace(rules, columns=mapping)
    features = dict.fromkeys(("problem", "solution", "problem_type", "data_type", "source"), text)
    features |= {"prompt": Json(), "images": List(ImageFeature(decode=False)), "options": List(text)}
    features = Features(features | {"row_index": Value("int64"), "issues": List(text)})
    # keep_in_memory: validation must never be served from datasets' cache (the images may have changed since).
    kwargs = {"remove_columns": table.column_names, "features": features, "desc": f"Validating {rules.source}"}
    return table.with_format(None).map(rules, with_indices=True, keep_in_memory=True, **kwargs)


def _finish(parts: list["Dataset | None"], report: ValidationReport, rules: _Rules, return_report: bool):
    from datasets import concatenate_datasets

    if report.issues or None in parts or not parts:  # whole-file problems fail in any mode: skipping drops a source
        raise DatasetValidationError("Dataset validation failed.\n" + report.format(), report)
    dataset = concatenate_datasets(parts)
    check = partial(check_images, verify=rules.verify_images, seen={}, bounds=(rules.min_pixels, rules.max_pixels))
    dataset = dataset.map(check, input_columns=["images", "issues"], batched=True, keep_in_memory=True, desc="Images")
    invalid = dataset.filter(bool, input_columns="issues", keep_in_memory=True)
    report.total_rows = len(dataset)
    for row in invalid.select_columns(["source", "row_index", "issues"]):
        report.invalid_rows.append((row["source"], row["row_index"]))
        report.issues += [f"{row['source']}, row {row['row_index']}, {issue}" for issue in row["issues"]]
    if report.issues and rules.on_invalid == "error":
        fix = "\nFix these rows, or pass on_invalid='skip' to drop invalid rows (they are reported)."
        raise DatasetValidationError("Dataset validation failed.\n" + report.format() + fix, report)
    if report.issues:
        dataset = dataset.filter(lambda issues: not issues, input_columns="issues", keep_in_memory=True)
        logger.warning("Skipped invalid rows (on_invalid='skip'); %d kept.\n%s", len(dataset), report.format())
    if len(dataset) == 0:
        raise DatasetValidationError("No valid rows left.\n" + report.format(), report)
    dataset = dataset.remove_columns("issues").with_transform(ImageTransform(rules.min_pixels, rules.max_pixels))
    return (dataset, report) if return_report else dataset


def select_entries(names: str | Sequence[str], registry: Mapping[str, DatasetSpec]) -> list[DatasetSpec]:
    """The registry entries of `names` (a list, or the original's `train_files` like `"Chart,OCR@train"`); training
    data and judge records name them alike."""
    parsed = [item.strip() for item in (names.split(",") if isinstance(names, str) else names) if item.strip()]
    if bad := next((item for item in parsed if item.partition("@")[2] not in ("", "train")), None):
        raise ValueError(f"Dataset {bad!r}: only the 'train' split is supported (a registry entry is one file set).")
    if not parsed:
        raise ValueError(f"No dataset names given ({names!r}).")
    if missing := [name for name in (item.partition("@")[0] for item in parsed) if name not in registry]:
        raise ValueError(f"Dataset {missing[0]!r} is not in the registry. Registered names: {sorted(registry)}.")
    return [registry[item.partition("@")[0]] for item in parsed]


def load_sophiavl_dataset(
    names: str | Sequence[str], registry_path: str | os.PathLike | Mapping[str, DatasetSpec], *,
    return_report: bool = False, **options: Any,
) -> "Dataset | tuple[Dataset, ValidationReport]":  # fmt: skip
    r"""
    Load the registered data sets `names` from `registry_path` (a `dataset_info.json` or a `load_registry` result),
    validate every row, and combine them into one TRL-ready data set (docs/dataset.md). `options`: `min_pixels` and
    `max_pixels` (images are resized within them when a row is read); `on_invalid` (`"error"` raises a
    `DatasetValidationError` naming file, row and field; `"skip"` drops such rows with a warning); `system_prompt`
    (`None`: `SYSTEM_PROMPT`, `""`: none); `default_problem_type`; `problem_types` (accepted, default
    `TYPE_TEMPLATE`'s); `verify_images` (decode every image, not only find it).
    """
    rules = _Rules(**options)
    registry = registry_path if isinstance(registry_path, Mapping) else load_registry(registry_path)
    report, parts = ValidationReport(), []
    for spec in select_entries(names, registry):
        try:
            for file in data_files(spec.file_path):
                try:  # one unreadable file: go on, to report every file's problems at once
                    file_rules = replace(rules, columns=spec.columns, base=spec.image_base_path, source=str(file))
                    parts.append(_canonical(_load_file(file), file_rules, report))
                except ValueError as exc:
                    report.issues.append(str(exc))
        except FileNotFoundError as exc:
            report.issues.append(str(exc))
    return _finish(parts, report, rules, return_report)


def prepare_dataset(
    dataset: "Dataset", image_base_path: str | os.PathLike | None = None, *, return_report: bool = False, **options
) -> "Dataset | tuple[Dataset, ValidationReport]":
    r"""`load_sophiavl_dataset` for a `datasets.Dataset` (same `options`, plus `columns`, mapped as in a registry
    entry, and `source`, its name in messages): image paths relative to `image_base_path`, or `datasets.Image`."""
    from datasets import Image as ImageFeature

    source = options.pop("source", None) or dataset.info.dataset_name or "dataset"
    rules = _Rules(**options, base=image_base_path, source=source)
    dataset, features = dataset.with_format(None), dataset.features.copy()  # a deep copy
    images = [f for f in (getattr(f, "feature", f) for f in features.values()) if isinstance(f, ImageFeature)]
    for feature in images:  # `Image()` and `List(Image())` columns: validation reads paths and bytes, not pixels
        feature.decode = False
    dataset = dataset.cast(features) if images else dataset
    report = ValidationReport()
    return _finish([_canonical(dataset, rules, report)], report, rules, return_report)
