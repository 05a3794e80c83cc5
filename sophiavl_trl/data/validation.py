# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Validation of training rows before training starts.

Every row is checked once, up front, so that a bad row fails the run in seconds with a message naming the file, the
row and the field, instead of crashing (or silently training on garbage) hours later. The checks:

- file level: the data file exists and parses; the `columns` mapping names existing columns;
- `problem`: present, a string, not empty (the prompt);
- `solution`: present and not empty;
- `problem_type`: present (or a default given) and known to both the accuracy reward's verifier registry and the
  prompt instructions (`TYPE_TEMPLATE`);
- `data_type`: `"image"` or `"text"` (inferred from the presence of an image when absent);
- `options`: a list of strings for multiple-choice rows (it may be empty when the problem text holds the options);
- images (`path`): an image row has at least one image; each file exists, opens, and has an aspect ratio that
  Qwen2.5-VL's resizing accepts; `<image>` markers in the question match the number of images.

By default any invalid row raises a `DatasetValidationError`; with `on_invalid="skip"` invalid rows are dropped, and
a warning says how many and which. File-level problems always raise.
"""

import hashlib
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Literal

from sophiavl_trl.data.prompts import IMAGE_PLACEHOLDER, TYPE_TEMPLATE


logger = logging.getLogger(__name__)

# The outcome verifiers that ship with sophiavl_trl (see the accuracy reward). Used when the rewards module cannot be
# imported or exposes no list of registered types.
BUILTIN_PROBLEM_TYPES: frozenset[str] = frozenset({"numerical", "multiple choice", "OCR", "free-form", "text"})

DATA_TYPES: frozenset[str] = frozenset({"image", "text"})

# Qwen2.5-VL's resizing (qwen_vl_utils.smart_resize) refuses images whose long side exceeds 200 times the short one.
MAX_ASPECT_RATIO = 200

OnInvalid = Literal["error", "skip"]


@dataclass(frozen=True)
class RowIssue:
    r"""
    One problem found in the data.

    Args:
        source (`str`):
            Where the row comes from: the data file's path, or the dataset's name for an in-memory dataset.
        row (`int` or `None`):
            0-based index of the row in its source; `None` for a problem with the whole source (missing file, ...).
        field (`str`):
            The canonical field concerned (`problem`, `solution`, `problem_type`, `data_type`, `options`, `path`),
            or `file_path` / `columns` for file-level problems.
        message (`str`):
            What is wrong.
    """

    source: str
    row: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}, row {self.row}" if self.row is not None else self.source
        return f"{where}, field {self.field!r}: {self.message}"


@dataclass
class ValidationReport:
    r"""
    Outcome of validating a data set.

    Args:
        total_rows (`int`):
            Rows read, over all sources.
        issues (`list[RowIssue]`):
            Every problem found (a row may have several).
        skipped (`list[tuple[str, int]]`):
            `(source, row)` of the rows dropped with `on_invalid="skip"`.
    """

    total_rows: int = 0
    issues: list[RowIssue] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)

    @property
    def invalid_rows(self) -> list[tuple[str, int]]:
        r"""`(source, row)` of every row with at least one issue, in order of discovery."""
        return list(dict.fromkeys((issue.source, issue.row) for issue in self.issues if issue.row is not None))

    @property
    def num_invalid(self) -> int:
        r"""Number of distinct invalid rows."""
        return len(self.invalid_rows)

    @property
    def file_issues(self) -> list[RowIssue]:
        r"""Problems with whole sources (missing or unreadable files, bad column mappings)."""
        return [issue for issue in self.issues if issue.row is None]

    def format(self, max_issues: int = 10) -> str:
        r"""
        Human-readable summary: counts, then the first `max_issues` issues, one per line.

        Args:
            max_issues (`int`, *optional*, defaults to `10`):
                How many issues to list.

        Returns:
            `str`: the summary.
        """
        lines = []
        if self.file_issues:
            lines.append(f"{len(self.file_issues)} data file problem(s).")
        if self.num_invalid:
            lines.append(
                f"{self.num_invalid} invalid row(s) out of {self.total_rows} ({len(self.issues) - len(self.file_issues)} "
                "row issue(s))."
            )
        shown = self.issues[:max_issues]
        lines.append(f"First {len(shown)} of {len(self.issues)} issue(s):" if shown else "No issues.")
        lines.extend(f"  - {issue}" for issue in shown)
        return "\n".join(lines)


class DatasetValidationError(ValueError):
    r"""
    Raised when the data fails validation. `str(error)` lists the first offending rows (file, row index, field, what
    is wrong) and the total count; `error.report` holds the full `ValidationReport`.
    """

    def __init__(self, message: str, report: ValidationReport):
        super().__init__(message)
        self.report = report


def known_problem_types() -> set[str]:
    r"""
    Problem types that the accuracy reward can score: the verifier registry of `sophiavl_trl.rewards.accuracy_rewards`
    (so types that users register with `register_verifier` are accepted), as normalized keys.

    Returns:
        `set[str]`: the normalized problem types (see `sophiavl_trl.rewards.accuracy_rewards.normalize_problem_type`).
    """
    from sophiavl_trl.rewards.accuracy_rewards import registered_problem_types

    return set(registered_problem_types())


def check_problem_type(problem_type: str, known_types: Iterable[str]) -> str | None:
    r"""Why `problem_type` cannot be trained on, or `None` when it can."""
    from sophiavl_trl.rewards.accuracy_rewards import normalize_problem_type

    known = {normalize_problem_type(t) for t in known_types}
    if normalize_problem_type(problem_type) not in known:
        return (
            f"unknown problem type {problem_type!r}; known types: {sorted(known)} (register a verifier with "
            "sophiavl_trl.rewards.register_verifier to add one)"
        )
    if normalize_problem_type(problem_type) not in {normalize_problem_type(t) for t in TYPE_TEMPLATE}:
        return (
            f"no prompt instruction for problem type {problem_type!r}; add one to "
            "sophiavl_trl.data.prompts.TYPE_TEMPLATE"
        )
    return None


# ---------------------------------------------------------------------------------------------------------------
# Row normalisation: from a raw record (file column names) to a canonical row, collecting issues on the way.
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Row:
    problem: str
    solution: str
    problem_type: str
    data_type: str
    options: list[str]
    images: list[dict[str, Any]]  # {"bytes": bytes | None, "path": str | None}
    source: str
    row_index: int


def _as_text(value: Any) -> str | None:
    """Strings as is, numbers as their text (JSON answers are often bare numbers), anything else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return str(value)
    return None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _image_refs(value: Any, image_base_path: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Normalise a `path` cell to a list of `{"bytes", "path"}` refs, or return why it cannot be."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()  # numpy arrays from pandas-written data
    if _is_missing(value) or value == "":
        return [], None
    items = list(value) if isinstance(value, list | tuple) else [value]
    refs = []
    for item in items:
        if isinstance(item, str):
            if not item:
                return [], "empty image path"
            if item.startswith(("http://", "https://")):
                return [], f"remote image URLs are not supported: {item!r}; download the images first"
            path = item[len("file://") :] if item.startswith("file://") else item
            if image_base_path and not os.path.isabs(path):
                path = os.path.join(image_base_path, path)
            refs.append({"bytes": None, "path": os.path.normpath(path)})
        elif isinstance(item, Mapping) and (item.get("bytes") or item.get("path")):
            # The storage format of `datasets.Image` (parquet files with embedded images).
            data = item.get("bytes")
            path = item.get("path")
            if not data and path and image_base_path and not os.path.isabs(path):
                path = os.path.join(image_base_path, path)
            refs.append({"bytes": bytes(data) if data else None, "path": path})
        elif type(item).__module__.startswith("PIL."):
            buffer = BytesIO()
            item.save(buffer, format="PNG")
            refs.append({"bytes": buffer.getvalue(), "path": None})
        else:
            return [], f"expected an image path (or a list of paths), got {type(item).__name__}"
    return refs, None


def normalize_record(
    record: Mapping[str, Any],
    *,
    column_map: Mapping[str, str],
    source: str,
    row_index: int,
    image_base_path: str | None,
    known_types: Iterable[str],
    default_problem_type: str | None = None,
) -> tuple[_Row | None, list[RowIssue]]:
    r"""
    Turn one raw record into a canonical row and collect its issues (images are checked later, in bulk).

    Args:
        record (`Mapping[str, Any]`):
            The raw row, keyed by the file's column names.
        column_map (`Mapping[str, str]`):
            Canonical column name to file column name (from `resolve_columns`).
        source (`str`):
            The row's source, for messages.
        row_index (`int`):
            The row's 0-based index in its source.
        image_base_path (`str` or `None`):
            Directory that relative image paths are relative to.
        known_types (`Iterable[str]`):
            The accepted problem types.
        default_problem_type (`str`, *optional*):
            Problem type of rows that have none.

    Returns:
        `tuple[_Row | None, list[RowIssue]]`: the row (`None` when it is invalid) and its issues.
    """
    issues: list[RowIssue] = []

    def issue(field_name: str, message: str) -> None:
        issues.append(RowIssue(source, row_index, field_name, message))

    def get(name: str) -> Any:
        column = column_map.get(name)
        return record.get(column) if column is not None else None

    raw_problem = get("problem")
    problem = _as_text(raw_problem)
    if _is_missing(raw_problem):
        issue("problem", "missing problem (the prompt is empty)")
    elif problem is None:
        issue("problem", f"expected a string, got {type(raw_problem).__name__}")
    elif not problem.replace(IMAGE_PLACEHOLDER, "").strip():
        issue("problem", "empty prompt")

    raw_solution = get("solution")
    solution = _as_text(raw_solution)
    if _is_missing(raw_solution) or solution == "":
        issue("solution", "missing solution")
    elif solution is None:
        issue("solution", f"expected a string, got {type(raw_solution).__name__}")
    elif not solution.replace("<answer>", "").replace("</answer>", "").strip():
        issue("solution", "empty solution")

    raw_type = get("problem_type")
    problem_type = raw_type if isinstance(raw_type, str) and raw_type else None
    if problem_type is None and (_is_missing(raw_type) or raw_type == ""):
        problem_type = default_problem_type
        if problem_type is None:
            issue("problem_type", "missing problem_type (pass default_problem_type to set one for such rows)")
    elif problem_type is None:
        issue("problem_type", f"expected a string, got {type(raw_type).__name__}")
    if problem_type is not None:
        why = check_problem_type(problem_type, known_types)
        if why:
            issue("problem_type", why)

    raw_options = get("options")
    if hasattr(raw_options, "tolist") and not isinstance(raw_options, str):
        raw_options = raw_options.tolist()  # numpy arrays from pandas-written data
    options: list[str] = []
    if _is_missing(raw_options):
        if problem_type == "multiple choice":
            issue("options", "missing options for a multiple-choice row")
    elif isinstance(raw_options, list | tuple):
        if any(_is_missing(option) or isinstance(option, Mapping | list) for option in raw_options):
            issue("options", "options must be a list of strings")
        else:
            # An empty list is accepted: some sources keep the options inside the problem text.
            options = [str(option) for option in raw_options]
    elif problem_type == "multiple choice":
        issue("options", f"options must be a list for multiple choice, got {type(raw_options).__name__}")

    images, image_error = _image_refs(get("path"), image_base_path)
    if image_error:
        issue("path", image_error)
    raw_data_type = get("data_type")
    if _is_missing(raw_data_type) or raw_data_type == "":
        data_type = "image" if images or image_error else "text"
    elif not isinstance(raw_data_type, str) or raw_data_type not in DATA_TYPES:
        issue("data_type", f"unsupported data_type {raw_data_type!r}; expected one of {sorted(DATA_TYPES)}")
        data_type = str(raw_data_type)
    else:
        data_type = raw_data_type
    if data_type == "image" and not images and not image_error:
        issue("path", "data_type is 'image' but the row has no image path")
    if data_type == "text":
        images = []  # as in the original: a text row's image column is ignored
    elif problem is not None and images:
        markers = problem.count(IMAGE_PLACEHOLDER)
        if markers and markers != len(images):
            issue("problem", f"{markers} {IMAGE_PLACEHOLDER} placeholder(s) but {len(images)} image(s)")

    if issues:
        return None, issues
    return (
        _Row(
            problem=problem,
            solution=solution,
            problem_type=problem_type,
            data_type=data_type,
            options=options,
            images=images,
            source=source,
            row_index=row_index,
        ),
        [],
    )


def _check_image(ref: Mapping[str, Any], verify: bool) -> str | None:
    """Why an image cannot be used, or None. Opens the header only (no decoding) when `verify`."""
    data, path = ref.get("bytes"), ref.get("path")
    if not data:
        if not path or not os.path.isfile(path):
            return f"image file not found: {path}"
        if not verify:
            return None
    if not verify:
        return None
    from PIL import Image

    try:
        with Image.open(BytesIO(data) if data else path) as image:
            width, height = image.size
    except Exception as exc:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        return f"unreadable image {path or '<embedded bytes>'}: {type(exc).__name__}: {exc}"
    if min(width, height) < 1:
        return f"empty image {path or '<embedded bytes>'} ({width}x{height})"
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        return (
            f"image {path or '<embedded bytes>'} is {width}x{height}: aspect ratio above {MAX_ASPECT_RATIO}, which "
            "Qwen2.5-VL's resizing rejects"
        )
    return None


def check_images(rows: Sequence[_Row], *, verify: bool = True, num_workers: int | None = None) -> list[RowIssue]:
    r"""
    Check that every image of `rows` exists and, when `verify`, opens (header only) with a usable aspect ratio.

    Args:
        rows (`Sequence[_Row]`):
            Normalised rows.
        verify (`bool`, *optional*, defaults to `True`):
            Open each image; if `False`, only check that files exist.
        num_workers (`int`, *optional*):
            Threads used for the file system access (default: up to 16).

    Returns:
        `list[RowIssue]`: one issue per bad image, in row order.
    """
    jobs = [(row, ref) for row in rows for ref in row.images]
    if not jobs:
        return []
    # Rows often share images (several questions per image): check each file once.
    keys = [_ref_key(ref) for _, ref in jobs]
    unique: dict[Any, Mapping[str, Any]] = {}
    for key, (_, ref) in zip(keys, jobs, strict=True):
        unique.setdefault(key, ref)
    refs = list(unique.values())
    workers = num_workers or min(16, (os.cpu_count() or 1) * 4)
    if workers > 1 and len(refs) > 256:
        # One task per slice, not per image: per-task overhead would dominate header reads.
        size = -(-len(refs) // workers)
        slices = [refs[start : start + size] for start in range(0, len(refs), size)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = [
                message
                for part in pool.map(lambda part: [_check_image(r, verify) for r in part], slices)
                for message in part
            ]
    else:
        results = [_check_image(ref, verify) for ref in refs]
    verdicts = dict(zip(unique, results, strict=True))
    return [
        RowIssue(row.source, row.row_index, "path", verdicts[key])
        for key, (row, _) in zip(keys, jobs, strict=True)
        if verdicts[key] is not None
    ]


def _ref_key(ref: Mapping[str, Any]) -> Any:
    data = ref.get("bytes")
    return ("bytes", hashlib.sha1(data).hexdigest()) if data else ("path", ref.get("path"))


def finalize(
    rows: list[_Row],
    report: ValidationReport,
    on_invalid: OnInvalid,
    *,
    max_listed: int = 10,
) -> list[_Row]:
    r"""
    Apply the `on_invalid` policy once all issues are in `report`.

    File-level issues always raise. Row issues raise with `on_invalid="error"`; with `"skip"` the invalid rows are
    dropped, recorded in `report.skipped`, and logged with a warning.

    Args:
        rows (`list[_Row]`):
            The rows that passed normalisation (image checks may still have failed some).
        report (`ValidationReport`):
            The issues so far; updated in place.
        on_invalid (`str`):
            `"error"` or `"skip"`.
        max_listed (`int`, *optional*, defaults to `10`):
            How many issues the message lists.

    Returns:
        `list[_Row]`: the valid rows.
    """
    if on_invalid not in ("error", "skip"):
        raise ValueError(f"on_invalid must be 'error' or 'skip', got {on_invalid!r}.")
    if report.file_issues:
        raise DatasetValidationError("Dataset validation failed.\n" + report.format(max_listed), report)
    if not report.issues:
        return rows
    if on_invalid == "error":
        raise DatasetValidationError(
            "Dataset validation failed.\n"
            + report.format(max_listed)
            + "\nFix these rows, or pass on_invalid='skip' to drop invalid rows (they are reported).",
            report,
        )
    invalid = set(report.invalid_rows)
    kept = [row for row in rows if (row.source, row.row_index) not in invalid]
    report.skipped = report.invalid_rows
    logger.warning(
        "Skipped %d invalid row(s) out of %d (on_invalid='skip'); %d row(s) kept.\n%s",
        len(report.skipped),
        report.total_rows,
        len(kept),
        report.format(max_listed),
    )
    return kept
