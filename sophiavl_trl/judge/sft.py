# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""
Supervised fine-tuning data for a thinking reward model (a judge): records, their validation, and their conversion to
TRL's conversational format, rendered with exactly the request that [`~sophiavl_trl.judge.ThinkingRewardClient`] sends.

A *judge record* is one scored reasoning trace:

| column | type | meaning |
|---|---|---|
| `question` | `str` | the question the policy answered (what the client sends as the question) |
| `reasoning` | `str` | the reasoning to score (usually the `<think>` content of a completion) |
| `score` | `float` or `str` | the target, one of {0, 0.1, ..., 1.0} (`0.7`, `"0.7"`) |
| `image` | `str`, `{"bytes", "path"}` or `null` | optional: image path (relative to `image_base_path`), or an embedded image |

Records are read from `.json` (array or JSON lines), `.jsonl` or `.parquet` files, or a directory of them, directly or
through a registry in SophiaVL-R1's `dataset_info.json` format (see [`~sophiavl_trl.data.registry.load_registry`]):

```json
{
    "judge_train": {
        "file_path": "judge/records.jsonl",
        "image_base_path": "judge/images",
        "columns": {"question": "prompt", "reasoning": "thinking", "score": "label", "image": "image_path"}
    }
}
```

`columns` maps the canonical names to the file's columns in any of the registry's forms (*canonical* -> *file column*,
*file column* -> *canonical*, or `column_reponses_to_<canonical>` -> *file column*). Unmapped file columns are used
under their own name when it is canonical or a known alias (`problem`/`prompt` -> `question`, `thinking` ->
`reasoning`, `images`/`path`/`image_path` -> `image`).

Each record becomes one training example whose prompt is the evaluator request of the published judge
([`~sophiavl_trl.judge.prompt.build_judge_messages`], the same function the client calls, with the same template, image
size limit and image encoding), and whose answer is the score as the judge should write it (`SCORE_CHOICES`, e.g.
`"0.7"`). The client's OpenAI-style `image_url` part becomes TRL's `{"type": "image"}` placeholder at the same position,
and the image is the one the server receives (the client's data URL, decoded).
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sophiavl_trl.data.validation import DatasetValidationError, RowIssue, ValidationReport
from sophiavl_trl.judge.prompt import (
    DEFAULT_MAX_IMAGE_PIXELS,
    SCORE_CHOICES,
    build_judge_messages,
    encode_image_data_url,
    validate_template,
)


if TYPE_CHECKING:
    from datasets import Dataset
    from PIL import Image

    from sophiavl_trl.data.registry import DatasetSpec


__all__ = [
    "JUDGE_RECORD_COLUMNS",
    "JudgeRecord",
    "JudgeSFTScriptArguments",
    "JudgeSFTTransform",
    "build_judge_sft_dataset",
    "client_messages_to_trl",
    "decode_data_url",
    "judge_sft_example",
    "load_judge_records",
    "parse_score_label",
    "score_to_text",
]

logger = logging.getLogger(__name__)

JUDGE_RECORD_COLUMNS: tuple[str, ...] = ("question", "reasoning", "score", "image")

# Conventional names of the canonical columns (a file's columns are used under these when the mapping is silent).
RECORD_COLUMN_ALIASES: dict[str, str] = {
    "question": "question",
    "problem": "question",
    "prompt": "question",
    "reasoning": "reasoning",
    "thinking": "reasoning",
    "score": "score",
    "image": "image",
    "images": "image",
    "path": "image",
    "image_path": "image",
}

SFTFormat = Literal["prompt_completion", "messages"]

_ROLE_KEY = re.compile(r"^column_re(?:s|)ponses_to_(\w+)$")
_PLACEHOLDER_URL = "data:,sophiavl-trl-image-placeholder"
_SCORE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class JudgeRecord:
    r"""
    One validated judge record.

    Args:
        question (`str`):
            The question.
        reasoning (`str`):
            The reasoning to score.
        score (`float`):
            The target score, one of 0, 0.1, ..., 1.0.
        image (`dict` or `None`):
            `{"bytes": bytes | None, "path": str | None}` (the path resolved against `image_base_path`), or `None` for a
            text-only record.
        source (`str`):
            The file the record comes from.
        row_index (`int`):
            Its 0-based row index in that file.
    """

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


# ---------------------------------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------------------------------


def parse_score_label(value: Any) -> tuple[float | None, str | None]:
    r"""
    Read a record's target score: a number or numeric string equal to one of 0, 0.1, ..., 1.0.

    Args:
        value (`Any`):
            The cell (`0.7`, `"0.7"`, `1`, `"1.0"`).

    Returns:
        `tuple[float | None, str | None]`: the score on the 0.1 grid, or `None` and why it is not a valid label.

    Example:
    ```python
    >>> from sophiavl_trl.judge.sft import parse_score_label

    >>> parse_score_label("0.7"), parse_score_label(1)
    ((0.7, None), (1.0, None))
    >>> parse_score_label(0.75)[1]
    'score 0.75 is not one of {0, 0.1, ..., 1.0} (round it to one decimal first)'

    ```
    """
    if isinstance(value, bool) or value is None:
        return None, f"expected a number in {{0, 0.1, ..., 1.0}}, got {value!r}"
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None, f"expected a number in {{0, 0.1, ..., 1.0}}, got the string {value!r}"
    elif isinstance(value, int | float):
        number = float(value)
    elif hasattr(value, "item"):  # numpy scalars from pandas-written parquet
        return parse_score_label(value.item())
    else:
        return None, f"expected a number in {{0, 0.1, ..., 1.0}}, got {type(value).__name__}"
    if not math.isfinite(number) or not -_SCORE_TOLERANCE <= number <= 1 + _SCORE_TOLERANCE:
        return None, f"score {value!r} is outside [0, 1]"
    tenths = round(number * 10)
    if abs(number * 10 - tenths) > _SCORE_TOLERANCE * 10:
        return None, f"score {value!r} is not one of {{0, 0.1, ..., 1.0}} (round it to one decimal first)"
    return tenths / 10, None


def score_to_text(score: float) -> str:
    r"""
    The answer the judge is trained to write for `score`: an element of `SCORE_CHOICES` (what constrained decoding
    allows).

    Args:
        score (`float`):
            A score on the 0.1 grid.

    Returns:
        `str`: `"0"`, `"0.1"`, ..., `"0.9"` or `"1.0"`.

    Example:
    ```python
    >>> from sophiavl_trl.judge.sft import score_to_text

    >>> [score_to_text(s) for s in (0.0, 0.7, 1.0)]
    ['0', '0.7', '1.0']

    ```
    """
    value, error = parse_score_label(score)
    if error is not None:
        raise ValueError(error)
    return SCORE_CHOICES[round(value * 10)]


# ---------------------------------------------------------------------------------------------------------------------
# Reading and validating records
# ---------------------------------------------------------------------------------------------------------------------


def _resolve_columns(
    columns: Mapping[str, str] | None, file_columns: Iterable[str], source: str
) -> tuple[dict[str, str], list[RowIssue]]:
    """Canonical record column -> file column, in the registry's mapping forms, and the mapping's problems."""
    present = list(dict.fromkeys(file_columns))
    mapping: dict[str, str] = {}
    issues: list[RowIssue] = []
    for key, value in (columns or {}).items():
        role = _ROLE_KEY.match(key)
        if role and role.group(1) in RECORD_COLUMN_ALIASES:
            canonical, column = RECORD_COLUMN_ALIASES[role.group(1)], value
        elif key in RECORD_COLUMN_ALIASES and value in present:
            canonical, column = RECORD_COLUMN_ALIASES[key], value
        elif value in RECORD_COLUMN_ALIASES and key in present:
            canonical, column = RECORD_COLUMN_ALIASES[value], key
        else:
            issues.append(
                RowIssue(
                    source,
                    None,
                    "columns",
                    f"mapping entry {key!r}: {value!r} maps no column of the file (columns: {present}) to a record "
                    f"column (record columns: {list(JUDGE_RECORD_COLUMNS)})",
                )
            )
            continue
        if canonical in mapping and mapping[canonical] != column:
            issues.append(
                RowIssue(
                    source, None, "columns", f"{canonical!r} is mapped twice ({mapping[canonical]!r}, {column!r})"
                )
            )
            continue
        mapping[canonical] = column
    used = set(mapping.values())
    for canonical in JUDGE_RECORD_COLUMNS:  # exact canonical names first, then aliases
        if canonical not in mapping and canonical in present and canonical not in used:
            mapping[canonical] = canonical
            used.add(canonical)
    for column in present:
        canonical = RECORD_COLUMN_ALIASES.get(column)
        if canonical and canonical not in mapping and column not in used:
            mapping[canonical] = column
            used.add(column)
    return mapping, issues


def _image_ref(value: Any, image_base_path: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """A record's image cell as `{"bytes", "path"}`, `None` for no image, or why it is unusable."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if isinstance(value, list | tuple):
        if len(value) > 1:
            return None, f"a judge record takes one image, got {len(value)} (the client sends the first image only)"
        value = value[0] if value else None
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None, None
    if isinstance(value, str):
        if value.startswith(("http://", "https://", "data:")):
            return None, f"expected a local image path, got a URL ({value[:40]!r}...); download the image first"
        path = value[len("file://") :] if value.startswith("file://") else value
        path = os.path.expanduser(path)
        if image_base_path and not os.path.isabs(path):
            path = os.path.join(image_base_path, path)
        return {"bytes": None, "path": os.path.normpath(path)}, None
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value), "path": None}, None
    if isinstance(value, Mapping) and (value.get("bytes") or value.get("path")):
        data, path = value.get("bytes"), value.get("path")
        if not data and path and image_base_path and not os.path.isabs(path):
            path = os.path.join(image_base_path, path)
        return {"bytes": bytes(data) if data else None, "path": path}, None
    return None, f"expected an image path, embedded image or null, got {type(value).__name__}"


def _check_image(ref: Mapping[str, Any], verify: bool) -> str | None:
    data, path = ref.get("bytes"), ref.get("path")
    if not data and (not path or not os.path.isfile(path)):
        return f"image file not found: {path}"
    if not verify:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data) if data else path) as image:
            width, height = image.size
    except Exception as exc:  # PIL raises many types
        return f"unreadable image {path or '<embedded bytes>'}: {type(exc).__name__}: {exc}"
    if min(width, height) < 1:
        return f"empty image {path or '<embedded bytes>'} ({width}x{height})"
    return None


def _normalize(
    record: Any, column_map: Mapping[str, str], source: str, row: int, image_base_path: str | None, verify: bool
) -> tuple[JudgeRecord | None, list[RowIssue]]:
    issues: list[RowIssue] = []
    if not isinstance(record, Mapping):
        return None, [RowIssue(source, row, "row", f"expected an object, got {type(record).__name__}")]

    def get(name: str) -> Any:
        column = column_map.get(name)
        return record.get(column) if column is not None else None

    texts = {}
    for name in ("question", "reasoning"):
        value = get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            issues.append(RowIssue(source, row, name, f"missing {name}"))
        elif not isinstance(value, str):
            issues.append(RowIssue(source, row, name, f"expected a string, got {type(value).__name__}"))
        elif not value.strip():
            issues.append(RowIssue(source, row, name, f"empty {name}"))
        else:
            texts[name] = value
    score, why = parse_score_label(get("score"))
    if why is not None:
        issues.append(RowIssue(source, row, "score", why if get("score") is not None else "missing score"))
    image, why = _image_ref(get("image"), image_base_path)
    if why is not None:
        issues.append(RowIssue(source, row, "image", why))
    elif image is not None:
        problem = _check_image(image, verify)
        if problem is not None:
            issues.append(RowIssue(source, row, "image", problem))
    if issues:
        return None, issues
    record = JudgeRecord(texts["question"], texts["reasoning"], score, image, source=source, row_index=row)
    return record, []


def _read_source(
    file_path: Path,
    columns: Mapping[str, str] | None,
    image_base_path: str | None,
    verify: bool,
    report: ValidationReport,
) -> list[JudgeRecord]:
    from sophiavl_trl.data.registry import read_records

    raw, file_issues = read_records(file_path)
    report.issues.extend(file_issues)
    keys: dict[str, dict[str, None]] = {}
    for source, _, record in raw:
        if isinstance(record, Mapping):
            keys.setdefault(source, {}).update(dict.fromkeys(record))
    maps: dict[str, dict[str, str]] = {}
    for source, file_columns in keys.items():
        maps[source], issues = _resolve_columns(columns, file_columns, source)
        report.issues.extend(issues)
        missing = [name for name in ("question", "reasoning", "score") if name not in maps[source]]
        if missing:
            report.issues.append(
                RowIssue(
                    source,
                    None,
                    "columns",
                    f"no column for {missing} (file columns: {list(file_columns)}); map them with the registry's "
                    "'columns' entry",
                )
            )
    records = []
    for source, row, record in raw:
        report.total_rows += 1
        judge_record, issues = _normalize(record, maps.get(source, {}), source, row, image_base_path, verify)
        report.issues.extend(issues)
        if judge_record is not None:
            records.append(judge_record)
    return records


def load_judge_records(
    data: str | os.PathLike | Sequence[str],
    registry: str | os.PathLike | Mapping[str, DatasetSpec] | None = None,
    *,
    image_base_path: str | os.PathLike | None = None,
    columns: Mapping[str, str] | None = None,
    on_invalid: Literal["error", "skip"] = "error",
    verify_images: bool = True,
    return_report: bool = False,
) -> list[JudgeRecord] | tuple[list[JudgeRecord], ValidationReport]:
    r"""
    Read and validate judge records, from a file (or directory) or from registry entries.

    Every row is checked before anything is returned: `question` and `reasoning` are non-empty strings, `score` is one
    of 0, 0.1, ..., 1.0, and an image, when given, exists and opens. Problems are reported with the file, the row and
    the field.

    Args:
        data (`str`, `os.PathLike` or `Sequence[str]`):
            Without `registry`: a `.json`/`.jsonl`/`.parquet` file or a directory of them. With `registry`: entry names,
            as a list or comma-separated (`"judge_a,judge_b"`).
        registry (`str`, `os.PathLike` or `Mapping[str, DatasetSpec]`, *optional*):
            A `dataset_info.json` registry (or one loaded with `load_registry`).
        image_base_path (`str` or `os.PathLike`, *optional*):
            For a file given directly: the directory relative image paths are relative to. Defaults to the file's
            directory. (Registry entries use their own `image_base_path`.)
        columns (`Mapping[str, str]`, *optional*):
            For a file given directly: a column mapping, as a registry entry's `columns`.
        on_invalid (`str`, *optional*, defaults to `"error"`):
            `"error"` raises a `DatasetValidationError` listing the first offending rows; `"skip"` drops them with a
            warning. Problems with whole files (missing, unreadable, unmapped columns) always raise.
        verify_images (`bool`, *optional*, defaults to `True`):
            Open each image's header; `False` only checks that the files exist.
        return_report (`bool`, *optional*, defaults to `False`):
            Also return the `ValidationReport`.

    Returns:
        `list[JudgeRecord]` (or `(records, report)` with `return_report=True`).

    Example:
    ```python
    >>> import json
    >>> from sophiavl_trl.judge.sft import load_judge_records

    >>> with open("/tmp/judge_records.jsonl", "w") as f:
    ...     _ = f.write(json.dumps({"question": "What is 2+2?", "reasoning": "2+2=4.", "score": 1.0}) + "\n")
    >>> [(r.question, r.score_text) for r in load_judge_records("/tmp/judge_records.jsonl")]
    [('What is 2+2?', '1.0')]

    ```
    """
    if on_invalid not in ("error", "skip"):
        raise ValueError(f"on_invalid must be 'error' or 'skip', got {on_invalid!r}.")
    report = ValidationReport()
    records: list[JudgeRecord] = []
    if registry is None:
        if not isinstance(data, str | os.PathLike):
            raise ValueError("Without a registry, `data` must be one file or directory path.")
        path = Path(data)
        base = image_base_path if image_base_path is not None else (path if path.is_dir() else path.parent)
        records = _read_source(path, columns, os.fspath(base), verify_images, report)
    else:
        from sophiavl_trl.data.registry import load_registry, parse_dataset_names

        specs = registry if isinstance(registry, Mapping) else load_registry(registry)
        for name in parse_dataset_names(data if isinstance(data, str) else list(data)):
            if name not in specs:
                raise ValueError(f"Judge data {name!r} is not in the registry. Registered names: {sorted(specs)}.")
            spec = specs[name]
            base = os.fspath(spec.image_base_path) if spec.image_base_path else None
            records.extend(_read_source(spec.file_path, spec.columns, base, verify_images, report))

    if report.file_issues:
        raise DatasetValidationError("Judge record validation failed.\n" + report.format(), report)
    if report.issues:
        if on_invalid == "error":
            raise DatasetValidationError(
                "Judge record validation failed.\n"
                + report.format()
                + "\nFix these rows, or pass on_invalid='skip' to drop invalid rows (they are reported).",
                report,
            )
        report.skipped = report.invalid_rows
        logger.warning(
            "Skipped %d invalid judge record(s) out of %d; %d kept.\n%s",
            len(report.skipped),
            report.total_rows,
            len(records),
            report.format(),
        )
    if not records:
        raise DatasetValidationError("No valid judge records.\n" + report.format(), report)
    return (records, report) if return_report else records


# ---------------------------------------------------------------------------------------------------------------------
# Conversion to TRL's conversational format
# ---------------------------------------------------------------------------------------------------------------------


def decode_data_url(url: str) -> Image.Image:
    r"""
    Decode a base64 `data:image/...` URL (what the client sends) into an RGB PIL image, the way vLLM's server does:
    an image with transparency (RGBA, LA, PA, or a `transparency` entry) is pasted on white through its alpha
    channel; any other mode is converted to RGB.

    Args:
        url (`str`):
            A `data:image/...;base64,...` URL.

    Returns:
        `PIL.Image.Image`: the image, in RGB mode.
    """
    from PIL import Image

    header, _, payload = url.partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        raise ValueError(f"Expected a base64 data URL, got {url[:40]!r}...")
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    image.load()
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        converted = Image.new("RGB", rgba.size, (255, 255, 255))
        converted.paste(rgba, mask=rgba.split()[3])
        return converted
    return image.convert("RGB")


def client_messages_to_trl(messages: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    r"""
    Turn the client's OpenAI-style judge messages into TRL's conversational format.

    Text and string contents are kept as they are; every `image_url` part becomes a `{"type": "image"}` placeholder at
    the same position, and its URL is returned in order (TRL takes the images from a separate `images` column).

    Args:
        messages (`Sequence[Mapping]`):
            Messages as built by [`~sophiavl_trl.judge.prompt.build_judge_messages`].

    Returns:
        `tuple[list[dict], list[str]]`: the messages and the image URLs.

    Example:
    ```python
    >>> from sophiavl_trl.judge.sft import client_messages_to_trl

    >>> messages = [{"role": "user", "content": [{"type": "text", "text": "Q"}, {"type": "image_url", "image_url": {"url": "data:,x"}}]}]
    >>> client_messages_to_trl(messages)
    ([{'role': 'user', 'content': [{'type': 'text', 'text': 'Q'}, {'type': 'image'}]}], ['data:,x'])

    ```
    """
    converted: list[dict[str, Any]] = []
    urls: list[str] = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            converted.append({"role": message["role"], "content": content})
            continue
        parts = []
        for part in content:
            if part.get("type") == "image_url":
                urls.append(part["image_url"]["url"])
                parts.append({"type": "image"})
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": part["text"]})
            else:
                raise ValueError(f"Unsupported content part type {part.get('type')!r} in a judge message.")
        converted.append({"role": message["role"], "content": parts})
    return converted, urls


def _image_source(image: Any) -> Any:
    """What `encode_image_data_url` takes: a `{"bytes", "path"}` reference becomes its bytes or its path."""
    if isinstance(image, Mapping) and ("bytes" in image or "path" in image):
        return image.get("bytes") or image.get("path")
    return image


def judge_sft_example(
    question: str,
    reasoning: str,
    score: float,
    image: Any = None,
    *,
    template: str | None = None,
    max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
    image_format: str = "PNG",
    sft_format: SFTFormat = "prompt_completion",
) -> dict[str, Any]:
    r"""
    One judge training example in TRL's conversational format, built from the exact request the client sends.

    The prompt is [`~sophiavl_trl.judge.prompt.build_judge_messages`]'s output for the image's data URL (the same
    function, template, size limit and encoding as [`~sophiavl_trl.judge.ThinkingRewardClient`]), with the `image_url`
    part turned into TRL's image placeholder; the image is that data URL decoded; the answer is `score_to_text(score)`.

    Args:
        question (`str`):
            The question.
        reasoning (`str`):
            The reasoning.
        score (`float`):
            The target score, on the 0.1 grid.
        image (`PIL.Image.Image`, `str`, `bytes` or `dict`, *optional*):
            The image (path, bytes, PIL image or `{"bytes", "path"}` reference), or `None`.
        template (`str`, *optional*):
            The client's `template` (defaults to the published judge's prompt).
        max_image_pixels (`int` or `None`, *optional*, defaults to `4194304`):
            The client's `max_image_pixels`.
        image_format (`str`, *optional*, defaults to `"PNG"`):
            The client's `image_format`.
        sft_format (`str`, *optional*, defaults to `"prompt_completion"`):
            `"prompt_completion"`: `prompt` (system and user messages) and `completion` (the assistant's score), so
            that TRL's `SFTTrainer` computes the loss on the score only (its `completion_only_loss` default).
            `"messages"`: one `messages` conversation (TRL 1.16 then trains on every token, the prompt included).

    Returns:
        `dict`: `{"prompt", "completion", "images"}` or `{"messages", "images"}`; `images` is a list with zero or one
        RGB PIL image.
    """
    url = None
    if image is not None:
        url = encode_image_data_url(_image_source(image), max_pixels=max_image_pixels, image_format=image_format)
    messages = build_judge_messages(
        question, reasoning, image=url, template=template, max_pixels=max_image_pixels, image_format=image_format
    )
    prompt, urls = client_messages_to_trl(messages)
    completion = [{"role": "assistant", "content": score_to_text(score)}]
    images = [decode_data_url(u) for u in urls]
    if sft_format == "messages":
        return {"messages": prompt + completion, "images": images}
    if sft_format != "prompt_completion":
        raise ValueError(f"sft_format must be 'prompt_completion' or 'messages', got {sft_format!r}.")
    return {"prompt": prompt, "completion": completion, "images": images}


def _to_storage(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every content as a list of `{"type", "text"}` parts, so that all rows share one Arrow schema."""
    stored = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        else:
            parts = [{"type": part["type"], "text": part.get("text")} for part in content]
        # The string contents are marked, so that they come back as strings (a list content renders the same text
        # with Qwen's template, but the client sends strings).
        stored.append({"role": message["role"], "content": parts, "is_string": isinstance(content, str)})
    return stored


def _from_storage(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    restored = []
    for message in messages:
        parts = message["content"]
        if message.get("is_string"):
            restored.append({"role": message["role"], "content": parts[0]["text"]})
            continue
        content = []
        for part in parts:
            if part["type"] == "image":
                content.append({"type": "image"})
            else:
                content.append({"type": part["type"], "text": part["text"]})
        restored.append({"role": message["role"], "content": content})
    return restored


class JudgeSFTTransform:
    r"""
    Row transform of [`build_judge_sft_dataset`]: restores the messages and loads the images on access, through the
    client's encoding (`encode_image_data_url`) and [`decode_data_url`], so the model trains on the pixels the server
    receives.

    Args:
        max_image_pixels (`int` or `None`, *optional*, defaults to `4194304`):
            The client's `max_image_pixels`.
        image_format (`str`, *optional*, defaults to `"PNG"`):
            The client's `image_format`.
    """

    def __init__(self, max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS, image_format: str = "PNG") -> None:
        self.max_image_pixels = max_image_pixels
        self.image_format = image_format

    def load_image(self, ref: Mapping[str, Any]) -> Image.Image:
        r"""The image the client would send for `ref` (`{"bytes", "path"}`), decoded."""
        url = encode_image_data_url(
            _image_source(ref), max_pixels=self.max_image_pixels, image_format=self.image_format
        )
        return decode_data_url(url)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key in ("prompt", "completion", "messages"):
            if key in batch:
                batch[key] = [_from_storage(messages) for messages in batch[key]]
        if "images" in batch:
            batch["images"] = [[self.load_image(ref) for ref in refs or []] for refs in batch["images"]]
        return batch

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_image_pixels={self.max_image_pixels}, image_format={self.image_format!r})"


def build_judge_sft_dataset(
    records: Sequence[JudgeRecord],
    *,
    template: str | None = None,
    max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
    image_format: str = "PNG",
    sft_format: SFTFormat = "prompt_completion",
) -> Dataset:
    r"""
    Build the `SFTTrainer` data set of a judge from validated records.

    The text of every prompt is rendered now, with [`~sophiavl_trl.judge.prompt.build_judge_messages`]; images are
    loaded when a row is read ([`JudgeSFTTransform`]). A row equals `judge_sft_example(...)` of its record.

    Args:
        records (`Sequence[JudgeRecord]`):
            Records from [`load_judge_records`].
        template (`str`, *optional*):
            The evaluator template the client will use (defaults to the published judge's prompt).
        max_image_pixels (`int` or `None`, *optional*, defaults to `4194304`):
            The client's `max_image_pixels`.
        image_format (`str`, *optional*, defaults to `"PNG"`):
            The client's `image_format`.
        sft_format (`str`, *optional*, defaults to `"prompt_completion"`):
            See [`judge_sft_example`].

    Returns:
        `datasets.Dataset`: columns `prompt` and `completion` (or `messages`), `images` (zero or one image), `score`.

    Example:
    ```python
    >>> from sophiavl_trl.judge.sft import JudgeRecord, build_judge_sft_dataset

    >>> dataset = build_judge_sft_dataset([JudgeRecord("What is 2+2?", "2+2=4.", 1.0)])
    >>> dataset[0]["completion"], dataset[0]["images"]
    ([{'role': 'assistant', 'content': '1.0'}], [])

    ```
    """
    import pyarrow as pa
    from datasets import Dataset, Features, List, Value

    if template is not None:
        validate_template(template)
    if sft_format not in ("prompt_completion", "messages"):
        raise ValueError(f"sft_format must be 'prompt_completion' or 'messages', got {sft_format!r}.")
    message_feature = List(
        {
            "role": Value("string"),
            "content": List({"type": Value("string"), "text": Value("string")}),
            "is_string": Value("bool"),
        }
    )
    text_columns = ["prompt", "completion"] if sft_format == "prompt_completion" else ["messages"]
    features = Features(
        {
            **dict.fromkeys(text_columns, message_feature),
            "images": List({"bytes": Value("binary"), "path": Value("string")}),
            "score": Value("float64"),
        }
    )
    columns: dict[str, list[Any]] = {name: [] for name in features}
    for record in records:
        # A placeholder URL stands for the image: the text does not depend on the image's bytes, only on its presence
        # (the card's "<image> " prefix), and the image part's position is what the placeholder records.
        url = _PLACEHOLDER_URL if record.image is not None else None
        messages = build_judge_messages(record.question, record.reasoning, image=url, template=template)
        prompt, _ = client_messages_to_trl(messages)
        completion = [{"role": "assistant", "content": record.score_text}]
        if sft_format == "prompt_completion":
            columns["prompt"].append(_to_storage(prompt))
            columns["completion"].append(_to_storage(completion))
        else:
            columns["messages"].append(_to_storage(prompt + completion))
        columns["images"].append([dict(record.image)] if record.image is not None else [])
        columns["score"].append(record.score)
    table = pa.Table.from_pydict(columns, schema=features.arrow_schema)
    return Dataset(table).with_transform(
        JudgeSFTTransform(max_image_pixels=max_image_pixels, image_format=image_format)
    )


# ---------------------------------------------------------------------------------------------------------------------
# Script arguments of examples/train_thinking_reward_model.py
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class JudgeSFTScriptArguments:
    r"""
    Data arguments of `examples/train_thinking_reward_model.py`, beside TRL's `SFTConfig` and `ModelConfig`. Every
    field can be set on the command line or in a recipe YAML (`--config recipe.yaml`).

    Parameters:
        judge_records (`str`, *optional*):
            A `.json`/`.jsonl`/`.parquet` file (or a folder of them) of judge records. Either this, or
            `dataset_registry` with `train_files`.
        dataset_registry (`str`, *optional*):
            A `dataset_info.json` registry whose entries hold judge records.
        train_files (`str`, *optional*):
            Comma-separated registry names to train on.
        eval_files (`str`, *optional*):
            Comma-separated registry names to evaluate on (with `eval_strategy` other than `"no"`).
        eval_records (`str`, *optional*):
            A records file to evaluate on, when no registry is used.
        image_base_path (`str`, *optional*):
            Folder of the relative image paths of `judge_records` / `eval_records` (defaults to the file's folder).
        on_invalid (`str`, *optional*, defaults to `"error"`):
            `"error"`: stop before training with the list of invalid records; `"skip"`: drop them and report which.
        judge_template_file (`str`, *optional*):
            A text file with the evaluator template (`{question}`, `{reasoning}`), when the client will use a custom
            `template`. Defaults to the published judge's prompt.
        judge_max_image_pixels (`int`, *optional*, defaults to `4194304`):
            The client's `max_image_pixels`: larger images are downscaled as the client does before sending them.
        judge_image_format (`str`, *optional*, defaults to `"PNG"`):
            The client's `image_format`.
        sft_format (`str`, *optional*, defaults to `"prompt_completion"`):
            `"prompt_completion"` (loss on the score only) or `"messages"` (loss on every token).
        min_pixels (`int`, *optional*):
            Lower bound of the image processor's pixel count; saved with the model, so the served judge uses it too.
            Defaults to the processor's.
        max_pixels (`int`, *optional*):
            Upper bound of the image processor's pixel count (saved likewise). Defaults to the processor's.
    """

    judge_records: str | None = field(default=None, metadata={"help": "Judge records file or folder."})
    dataset_registry: str | None = field(default=None, metadata={"help": "dataset_info.json of judge records."})
    train_files: str | None = field(default=None, metadata={"help": "Comma-separated registry names to train on."})
    eval_files: str | None = field(default=None, metadata={"help": "Comma-separated registry names to evaluate on."})
    eval_records: str | None = field(default=None, metadata={"help": "Judge records file to evaluate on."})
    image_base_path: str | None = field(default=None, metadata={"help": "Folder of relative image paths."})
    on_invalid: str = field(
        default="error",
        metadata={"help": "Invalid records: 'error' (stop and list them) or 'skip'.", "choices": ["error", "skip"]},
    )
    judge_template_file: str | None = field(default=None, metadata={"help": "Custom evaluator template file."})
    judge_max_image_pixels: int = field(
        default=DEFAULT_MAX_IMAGE_PIXELS, metadata={"help": "The client's max_image_pixels."}
    )
    judge_image_format: str = field(
        default="PNG", metadata={"help": "The client's image_format.", "choices": ["PNG", "JPEG"]}
    )
    sft_format: str = field(
        default="prompt_completion",
        metadata={
            "help": "'prompt_completion' (loss on the score only) or 'messages' (loss on every token).",
            "choices": ["prompt_completion", "messages"],
        },
    )
    min_pixels: int | None = field(default=None, metadata={"help": "Image processor's minimum pixels."})
    max_pixels: int | None = field(default=None, metadata={"help": "Image processor's maximum pixels."})

    def __post_init__(self) -> None:
        if self.judge_records is None and self.dataset_registry is None:
            raise ValueError(
                "Give judge records: --judge_records FILE, or --dataset_registry PATH --train_files NAMES."
            )
        if self.judge_records is not None and self.dataset_registry is not None:
            raise ValueError("Give either --judge_records or --dataset_registry, not both.")
        if self.dataset_registry is not None and not self.train_files:
            raise ValueError(f"--dataset_registry {self.dataset_registry} needs --train_files (registry names).")
        if self.on_invalid not in ("error", "skip"):
            raise ValueError(f"on_invalid must be 'error' or 'skip', got {self.on_invalid!r}.")
        if self.sft_format not in ("prompt_completion", "messages"):
            raise ValueError(f"sft_format must be 'prompt_completion' or 'messages', got {self.sft_format!r}.")
        if self.judge_image_format.upper() not in ("PNG", "JPEG", "JPG"):
            raise ValueError(f"judge_image_format must be 'PNG' or 'JPEG', got {self.judge_image_format!r}.")
        if self.min_pixels is not None and self.max_pixels is not None and not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"Need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}.")

    def load_template(self) -> str | None:
        r"""The evaluator template from `judge_template_file`, validated (`None`: the published judge's prompt)."""
        if self.judge_template_file is None:
            return None
        template = Path(self.judge_template_file).read_text(encoding="utf-8")
        validate_template(template)
        return template

    def load_datasets(self) -> tuple[Dataset, Dataset | None]:
        r"""
        The train and eval data sets (eval `None` when no eval data is named), validated before any model is loaded.

        Returns:
            `tuple[Dataset, Dataset | None]`: see [`build_judge_sft_dataset`].
        """
        options = {
            "template": self.load_template(),
            "max_image_pixels": self.judge_max_image_pixels,
            "image_format": self.judge_image_format,
            "sft_format": self.sft_format,
        }
        if self.dataset_registry is not None:
            train = load_judge_records(self.train_files, self.dataset_registry, on_invalid=self.on_invalid)
            evaluation = (
                load_judge_records(self.eval_files, self.dataset_registry, on_invalid=self.on_invalid)
                if self.eval_files
                else None
            )
        else:
            train = load_judge_records(
                self.judge_records, image_base_path=self.image_base_path, on_invalid=self.on_invalid
            )
            evaluation = (
                load_judge_records(self.eval_records, image_base_path=self.image_base_path, on_invalid=self.on_invalid)
                if self.eval_records
                else None
            )
        train_dataset = build_judge_sft_dataset(train, **options)
        eval_dataset = build_judge_sft_dataset(evaluation, **options) if evaluation else None
        return train_dataset, eval_dataset
