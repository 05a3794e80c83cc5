# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""
Build judge training records from a training run's completions, and evaluate a served judge on held-out records.

**Completions.** With `log_completions=True`, TRL 1.16's `GRPOTrainer` (hence `TrustGRPOTrainer`) writes, at every
logging step, the last generation batch to `<output_dir>/completions/completions_<step>.parquet` (and, only with
`report_to` wandb or trackio, a table there). Columns: `step`, `prompt` and `completion` (conversations; images are
replaced by `{"type": "image"}` placeholders, the pixels are not stored), one column per reward function, the columns
added with `log_extra` (`TrustGRPOTrainer` adds `outcome`, `thinking_score`, `trust_weight`) and `advantage`.
Consecutive files can hold the same completions (the table is the last generation batch at each log); identical
(question, reasoning, image) items are kept once.

[`read_completions`] reads those files (a run folder, its `completions/` folder, or single files) and plain JSON lines
with `question`, `reasoning` (or `completion`) and an optional `image` path:

```json
{"question": "How many red shapes are there?", "reasoning": "I see two red circles...", "image": "images/0001.png"}
```

The question sent to the judge at training time is the data set's `problem` column. A completions table only has the
rendered prompt, so the question is recovered by removing the training templates (`QUESTION_TEMPLATE`,
`TYPE_TEMPLATE`; for multiple choice the options stay appended). Images are recovered from the training data
(`registry` and `names`, as given to the training script): a prompt whose text matches exactly one row's prompt (or
whose `source`/`row_index` columns name a row) gets that row's `problem` and first image; prompts with an image but no
unambiguous match are left out and counted.

**Scoring.** [`score_completions`] sends every item to a scorer behind an OpenAI-compatible URL through
[`~sophiavl_trl.judge.ThinkingRewardClient`] (the evaluator prompt of the published judge), rounds each score to the
nearest of 0, 0.1, ..., 1.0, and drops the items that got no score. [`write_judge_records`] writes the records that
[`~sophiavl_trl.judge.sft.load_judge_records`] reads.

**Judge evaluation.** [`evaluate_judge`] scores held-out records with a served judge through the same client and
reports the mean absolute error and the agreement within 0.1 over the items that got a score, with the count of
those that did not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from sophiavl_trl.judge.client import ThinkingRewardClient
    from sophiavl_trl.judge.sft import JudgeRecord


__all__ = [
    "CompletionItem",
    "RecordStats",
    "attach_training_images",
    "deduplicate",
    "evaluate_judge",
    "find_completion_files",
    "question_from_prompt_text",
    "read_completions",
    "score_completions",
    "snap_score",
    "write_judge_records",
]

logger = logging.getLogger(__name__)

_AGREEMENT_TOLERANCE = 0.1 + 1e-9


@dataclass
class CompletionItem:
    r"""
    One completion to score.

    Args:
        question (`str`): the question (as the judge receives it).
        reasoning (`str`): the reasoning (the `<think>` content, or the whole completion).
        prompt_text (`str`): the text of the prompt's last user message (used to find the training row).
        has_image (`bool`): whether the prompt had an image.
        image (`str`, `dict` or `None`): the image (path or `{"bytes", "path"}`), when known.
        origin (`str`): `file:row` the item was read from.
        row_key (`tuple` or `None`): `(source, row_index)` of the training row, when the table logged them.
        ambiguous (`bool`): several training rows with different images match the prompt.
    """

    question: str
    reasoning: str
    prompt_text: str = ""
    has_image: bool = False
    image: Any = None
    origin: str = ""
    row_key: tuple[str, int] | None = None
    ambiguous: bool = False


@dataclass
class RecordStats:
    r"""
    Counts of `sophiavl-trl judge-records`. Every row read ends up in exactly one of `unusable` (no question or
    reasoning), `duplicates`, `missing_image` / `ambiguous_image` (an image prompt whose image could not be
    recovered), `unscored` (the scorer gave no score) and `written`.
    """

    rows_read: int = 0
    duplicates: int = 0
    missing_image: int = 0
    ambiguous_image: int = 0
    unusable: int = 0
    unscored: int = 0
    written: int = 0
    score_histogram: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ---------------------------------------------------------------------------------------------------------------------
# Reading completions
# ---------------------------------------------------------------------------------------------------------------------


def question_from_prompt_text(text: str) -> str:
    r"""
    The question inside a training prompt: the user text without SophiaVL-R1's question template and per-type
    instruction (the inverse of [`~sophiavl_trl.data.build_question`]; for multiple choice the options stay appended).

    Args:
        text (`str`):
            The user message's text.

    Returns:
        `str`: the question, or `text` unchanged when it does not end with the templates.

    Example:
    ```python
    >>> from sophiavl_trl.data import build_question
    >>> from sophiavl_trl.judge.records import question_from_prompt_text

    >>> question_from_prompt_text(build_question("How many cubes?", "numerical"))
    'How many cubes?'

    ```
    """
    from sophiavl_trl.data.prompts import QUESTION_TEMPLATE, TYPE_TEMPLATE

    head, _, tail = QUESTION_TEMPLATE.partition("{Question}")
    for instruction in sorted(TYPE_TEMPLATE.values(), key=len, reverse=True):
        suffix = tail + instruction
        if text.startswith(head) and text.endswith(suffix) and len(text) >= len(head) + len(suffix):
            return text[len(head) : len(text) - len(suffix)]
    return text


def _parts_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            part.get("text") or "" for part in content if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def _prompt_info(prompt: Any) -> tuple[str, bool]:
    """The last user message's text, and whether any user message has an image part."""
    if isinstance(prompt, str):
        return prompt, False
    if hasattr(prompt, "tolist"):
        prompt = prompt.tolist()
    user = [m for m in prompt or [] if isinstance(m, Mapping) and m.get("role") == "user"]
    has_image = any(
        isinstance(part, Mapping) and part.get("type") in ("image", "image_url")
        for message in user
        if not isinstance(message.get("content"), str)
        for part in message.get("content") or []
    )
    return (_parts_text(user[-1].get("content")) if user else ""), has_image


def _completion_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if hasattr(completion, "tolist"):
        completion = completion.tolist()
    from sophiavl_trl.rewards.format_rewards import completion_to_text

    messages = [{**m, "content": _parts_text(m.get("content"))} for m in completion or [] if isinstance(m, Mapping)]
    return completion_to_text(messages)


def find_completion_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    r"""
    The completion files named by `paths`: a training output folder (its `completions/*.parquet`), a folder of
    `.parquet`/`.jsonl`/`.json` files, or files.

    Args:
        paths (`Iterable[str | os.PathLike]`):
            Folders and files.

    Returns:
        `list[Path]`: the files, each folder's in name order (TRL's names sort by step).

    Raises:
        `FileNotFoundError`: for a path that does not exist or a folder without completion files.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            files.append(path)
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"completions not found: {path}")
        folder = path / "completions" if (path / "completions").is_dir() else path
        found = sorted(p for p in folder.iterdir() if p.suffix in (".parquet", ".jsonl", ".json") and p.is_file())
        if not found:
            raise FileNotFoundError(
                f"no completion files in {folder}: train with log_completions=True (TRL writes "
                "<output_dir>/completions/completions_<step>.parquet), or pass .jsonl files"
            )
        files.extend(found)
    return files


def _read_rows(path: Path) -> list[Any]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    from sophiavl_trl.data.registry import read_records

    records, issues = read_records(path)
    if issues:
        raise ValueError(f"cannot read {path}: {issues[0].message}")
    return [record for _, _, record in records]


def read_completions(
    paths: Iterable[str | os.PathLike],
    *,
    reasoning_source: str = "think",
    image_dir: str | os.PathLike | None = None,
) -> tuple[list[CompletionItem], int]:
    r"""
    Read completions from TRL completions tables and plain JSON lines.

    A row gives its question from `question` or `problem` (a string), else from `prompt` (a string or a conversation,
    see [`question_from_prompt_text`]); its reasoning from `reasoning`, else from `completion` (the `<think>` content
    with `reasoning_source="think"`, as `ThinkingReward` sends by default, or the whole text); its image from `image`,
    `images` or `path` (relative to `image_dir`, by default the file's folder). Rows without a question or reasoning
    are skipped with a warning.

    Args:
        paths (`Iterable[str | os.PathLike]`):
            Run folders, `completions/` folders, `.parquet`/`.jsonl`/`.json` files.
        reasoning_source (`str`, *optional*, defaults to `"think"`):
            `"think"` or `"completion"`.
        image_dir (`str` or `os.PathLike`, *optional*):
            Folder of relative image paths.

    Returns:
        `tuple[list[CompletionItem], int]`: the items and the number of rows read.
    """
    from sophiavl_trl.rewards.format_rewards import extract_thinking

    if reasoning_source not in ("think", "completion"):
        raise ValueError(f"reasoning_source must be 'think' or 'completion', got {reasoning_source!r}.")
    items: list[CompletionItem] = []
    rows_read = 0
    skipped = 0
    for path in find_completion_files(paths):
        base = Path(image_dir) if image_dir is not None else path.parent
        for index, row in enumerate(_read_rows(path)):
            rows_read += 1
            if not isinstance(row, Mapping):
                skipped += 1
                continue
            prompt_text, has_image = _prompt_info(row.get("prompt")) if "prompt" in row else ("", False)
            question = next((row[k] for k in ("question", "problem") if isinstance(row.get(k), str)), None)
            if question is None and prompt_text:
                question = question_from_prompt_text(prompt_text)
            if isinstance(row.get("reasoning"), str):
                reasoning = row["reasoning"]
            elif "completion" in row:
                text = _completion_text(row["completion"])
                reasoning = extract_thinking(text) if reasoning_source == "think" else text
            else:
                reasoning = None
            if not question or not reasoning or not question.strip() or not reasoning.strip():
                skipped += 1
                continue
            image = next((row[k] for k in ("image", "images", "path") if row.get(k) not in (None, "", [])), None)
            if isinstance(image, list | tuple):
                image = image[0]
            if isinstance(image, str) and not os.path.isabs(image):
                image = str(base / image)
            row_key = None
            if row.get("source") is not None and row.get("row_index") is not None:
                row_key = (str(row["source"]), int(row["row_index"]))
            items.append(
                CompletionItem(
                    question=question,
                    reasoning=reasoning,
                    prompt_text=prompt_text or question,
                    has_image=has_image or image is not None,
                    image=image,
                    origin=f"{path}:{index}",
                    row_key=row_key,
                )
            )
    if skipped:
        logger.warning("Skipped %d completion row(s) without a question or a reasoning.", skipped)
    return items, rows_read


def attach_training_images(
    items: Sequence[CompletionItem],
    registry: str | os.PathLike,
    names: str | Sequence[str],
) -> tuple[int, int]:
    r"""
    Give items from a completions table the training row's `problem` and first image, found in the training data.

    An item matches the row named by its `source`/`row_index` columns when the table has them, else the rows whose
    prompt text equals the item's. With several matching rows that differ in problem or image, the item is ambiguous
    and keeps no image.

    Args:
        items (`Sequence[CompletionItem]`):
            Items from [`read_completions`] (updated in place).
        registry (`str` or `os.PathLike`):
            The training `dataset_info.json`.
        names (`str` or `Sequence[str]`):
            The training data set names (`train_files`).

    Returns:
        `tuple[int, int]`: the number of items matched, and of image items that stay ambiguous.
    """
    from sophiavl_trl.data.prompts import TYPE_TEMPLATE
    from sophiavl_trl.data.registry import load_sophiavl_dataset

    dataset = load_sophiavl_dataset(
        names, registry, problem_types=list(TYPE_TEMPLATE), verify_images=False, on_invalid="skip"
    ).with_format(None)
    by_text: dict[str, list[tuple[str, Any]]] = {}
    by_key: dict[tuple[str, int], tuple[str, Any]] = {}
    for row in dataset:
        text, _ = _prompt_info(row["prompt"])
        image = row["images"][0] if row["images"] else None
        entry = (row["problem"], image)
        by_text.setdefault(text, []).append(entry)
        by_key[(row["source"], int(row["row_index"]))] = entry
    matched = ambiguous = 0
    for item in items:
        entry = by_key.get(item.row_key) if item.row_key is not None else None
        if entry is None:
            candidates = by_text.get(item.prompt_text, [])
            distinct = {(problem, json.dumps(_image_id(image))) for problem, image in candidates}
            if len(distinct) == 1:
                entry = candidates[0]
            elif len(distinct) > 1 and item.has_image and item.image is None:
                item.ambiguous = True
                ambiguous += 1
        if entry is None:
            continue
        matched += 1
        item.question = entry[0]
        if item.image is None and entry[1] is not None:
            item.image = entry[1]
            item.has_image = True
    return matched, ambiguous


def _image_id(image: Any) -> Any:
    if isinstance(image, Mapping):
        data = image.get("bytes")
        return hashlib.sha1(data).hexdigest() if data else image.get("path")
    return image


# ---------------------------------------------------------------------------------------------------------------------
# Scoring and writing
# ---------------------------------------------------------------------------------------------------------------------


def snap_score(score: float) -> float:
    r"""
    The nearest of 0, 0.1, ..., 1.0 (halves round up), for a score in [0, 1].

    Example:
    ```python
    >>> from sophiavl_trl.judge.records import snap_score

    >>> [snap_score(s) for s in (0.0, 0.74, 0.75, 1.0)]
    [0.0, 0.7, 0.8, 1.0]

    ```
    """
    return min(10, max(0, math.floor(score * 10 + 0.5 + 1e-9))) / 10


def _chunks(n: int, size: int) -> Iterable[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def score_completions(
    items: Sequence[CompletionItem],
    client: ThinkingRewardClient,
    *,
    chunk_size: int = 256,
    progress: bool = True,
) -> list[float]:
    r"""
    Score items with a scorer behind an OpenAI-compatible server, through `client` (the judge's evaluator prompt).

    Args:
        items (`Sequence[CompletionItem]`):
            The items (their image, when set, is sent).
        client ([`~sophiavl_trl.judge.ThinkingRewardClient`]):
            The client.
        chunk_size (`int`, *optional*, defaults to `256`):
            Items per `client.score` call (the progress bar advances per chunk).
        progress (`bool`, *optional*, defaults to `True`):
            Show a progress bar.

    Returns:
        `list[float]`: the raw scores in [0, 1], NaN where none was obtained.
    """
    from tqdm.auto import tqdm

    scores: list[float] = []
    with tqdm(total=len(items), desc="scoring", unit="item", disable=not progress) as bar:
        for chunk in _chunks(len(items), chunk_size):
            part = [items[i] for i in chunk]
            images = [_image_source(item.image) for item in part]
            scores.extend(
                client.score(
                    [item.question for item in part],
                    [item.reasoning for item in part],
                    images if any(image is not None for image in images) else None,
                )
            )
            bar.update(len(part))
    return scores


def _image_source(image: Any) -> Any:
    if isinstance(image, Mapping):
        return image.get("bytes") or image.get("path")
    return image


def _image_for_record(image: Any, image_dir: Path, out_dir: Path) -> str | None:
    """A path for the record file: absolute for files, a written file (relative to `out_dir`) for embedded bytes."""
    if image is None:
        return None
    if isinstance(image, Mapping):
        if image.get("bytes"):
            data = image["bytes"]
            suffix = ".jpg" if data.startswith(b"\xff\xd8\xff") else ".png"
            image_dir.mkdir(parents=True, exist_ok=True)
            target = image_dir / f"{hashlib.sha1(data).hexdigest()[:20]}{suffix}"
            if not target.exists():
                if suffix == ".png" and not data.startswith(b"\x89PNG"):
                    import io

                    from PIL import Image

                    with Image.open(io.BytesIO(data)) as decoded:
                        decoded.save(target, format="PNG")
                else:
                    target.write_bytes(data)
            return os.path.relpath(target, out_dir)
        image = image.get("path")
    return os.path.abspath(os.fspath(image)) if image else None


def write_judge_records(
    items: Sequence[CompletionItem],
    scores: Sequence[float],
    out: str | os.PathLike,
    stats: RecordStats | None = None,
) -> RecordStats:
    r"""
    Write the scored items as judge records (JSON lines: `question`, `reasoning`, `image`, `score` on the 0.1 grid,
    `teacher_score` as returned), leaving out the items without a score.

    Embedded images are written next to the file (`<out stem>_images/`); file images are referenced by absolute path.

    Args:
        items (`Sequence[CompletionItem]`):
            The items.
        scores (`Sequence[float]`):
            Their scores (NaN: not written).
        out (`str` or `os.PathLike`):
            The `.jsonl` file to write.
        stats ([`RecordStats`], *optional*):
            Counts to complete (`unscored`, `written`, `score_histogram`).

    Returns:
        [`RecordStats`]: the counts.
    """
    stats = stats or RecordStats()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image_dir = out.parent / f"{out.stem}_images"
    histogram: dict[str, int] = {}
    with open(out, "w", encoding="utf-8") as sink:
        for item, score in zip(items, scores, strict=True):
            if score is None or math.isnan(score):
                stats.unscored += 1
                continue
            snapped = snap_score(score)
            record = {
                "question": item.question,
                "reasoning": item.reasoning,
                "image": _image_for_record(item.image, image_dir, out.parent),
                "score": snapped,
                "teacher_score": score,
            }
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            stats.written += 1
            histogram[f"{snapped:.1f}"] = histogram.get(f"{snapped:.1f}", 0) + 1
    stats.score_histogram = dict(sorted(histogram.items()))
    return stats


def deduplicate(items: Sequence[CompletionItem]) -> tuple[list[CompletionItem], int]:
    r"""Keep the first of items with the same question, reasoning and image; return them and the count removed."""
    seen: set[tuple[str, str, Any]] = set()
    kept = []
    for item in items:
        key = (item.question, item.reasoning, json.dumps(_image_id(item.image), default=str))
        if key in seen:
            continue
        seen.add(key)
        kept.append(item)
    return kept, len(items) - len(kept)


# ---------------------------------------------------------------------------------------------------------------------
# Judge evaluation
# ---------------------------------------------------------------------------------------------------------------------


def evaluate_judge(
    records: Sequence[JudgeRecord],
    client: ThinkingRewardClient,
    *,
    chunk_size: int = 256,
    progress: bool = True,
) -> tuple[dict[str, Any], list[float]]:
    r"""
    Score held-out judge records with a served judge and compare with their target scores.

    Args:
        records (`Sequence[JudgeRecord]`):
            Records from [`~sophiavl_trl.judge.sft.load_judge_records`].
        client ([`~sophiavl_trl.judge.ThinkingRewardClient`]):
            The client of the judge under test.
        chunk_size (`int`, *optional*, defaults to `256`):
            Items per `client.score` call.
        progress (`bool`, *optional*, defaults to `True`):
            Show a progress bar.

    Returns:
        `tuple[dict, list[float]]`: the metrics and the predicted scores (NaN: none). Metrics: `num_records`,
        `num_scored`, `num_unparsed` (answers without a score), `num_failed` (requests that failed), `mae` (mean absolute
        error over the scored records), `agreement_0.1` (fraction of scored records with |prediction - target| <= 0.1),
        `exact_agreement` (prediction equal to the target), `mean_prediction`, `mean_target`.
    """
    items = [
        CompletionItem(question=r.question, reasoning=r.reasoning, image=r.image, has_image=r.image is not None)
        for r in records
    ]
    before = client.stats
    predictions = score_completions(items, client, chunk_size=chunk_size, progress=progress)
    after = client.stats
    pairs = [(p, r.score) for p, r in zip(predictions, records, strict=True) if not math.isnan(p)]
    errors = [abs(p - t) for p, t in pairs]
    n = len(pairs)
    metrics = {
        "num_records": len(records),
        "num_scored": n,
        "num_unparsed": after.parse_failures - before.parse_failures,
        "num_failed": after.request_failures - before.request_failures,
        "mae": sum(errors) / n if n else math.nan,
        "agreement_0.1": sum(e <= _AGREEMENT_TOLERANCE for e in errors) / n if n else math.nan,
        "exact_agreement": sum(e <= 1e-9 for e in errors) / n if n else math.nan,
        "mean_prediction": sum(p for p, _ in pairs) / n if n else math.nan,
        "mean_target": sum(t for _, t in pairs) / n if n else math.nan,
    }
    return metrics, predictions
