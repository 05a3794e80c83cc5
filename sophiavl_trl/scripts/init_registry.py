# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""`sophiavl-trl init-registry DOWNLOAD_DIR`: the registry of a local copy of SophiaVL-R1-130k, one entry per data
file of `json/` and `SophiaVL-R1-130k` for all of them, each loaded back and summarized (docs/dataset.md)."""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sophiavl_trl._fields import option
from sophiavl_trl.scripts import CLIError, parse_args


SUBSETS = ("Chart", "General", "Knowledge", "Math", "OCR")  # the paper's five categories (zips of the download)
ALL = "SophiaVL-R1-130k"  # every data file of json/, the paper's recipe (`train_files: SophiaVL-R1-130k`)
SUFFIXES = (".json", ".jsonl", ".parquet")
# The released files' columns (problem, solution, path, problem_type, data_type, options), in the original's mapping.
COLUMNS = {"problem": "prompt", "solution": "answer", "path": "images"}
MISSING = "image file not found"
DOWNLOAD = "huggingface-cli download bunny127/SophiaVL-R1-130k --repo-type dataset --local-dir"


@dataclass
class InitRegistryArguments:
    r"""Write the dataset_info.json registry of a downloaded SophiaVL-R1-130k (its json/ folder and unzipped image
    folders, given as the DOWNLOAD_DIR positional argument), check every entry loads, and print what each holds."""

    download_dir: list[str] = option([], "The download folder (holds json/).")
    output: str | None = option(None, "Registry to write (default DOWNLOAD_DIR/dataset_info.json).", aliases=["-o"])
    overwrite: bool = option(False, "Replace an existing registry file.")
    verify_images: bool = option(False, "Decode every image (slow), not only find it.")


def subset_name(relative: Path) -> str:
    r"""The subset a `json/` path names (`Chart/merged_output_chart.json` -> `Chart`), else the path without suffix."""
    words = {word.lower() for part in relative.with_suffix("").parts for word in re.split(r"[^A-Za-z0-9]+", part)}
    return next((name for name in SUBSETS if name.lower() in words), relative.with_suffix("").as_posix())


def find_entries(root: Path) -> dict[str, Path]:
    r"""Subset name -> data file under `root/json`; a `CLIError` if `root` is not a download, saying what is wrong."""
    if not root.is_dir():
        raise CLIError(f"download folder not found: {root} (get it with `{DOWNLOAD} {root}`)")
    if not (root / "json").is_dir():
        if any(p.suffix in SUFFIXES for p in root.iterdir()):
            raise CLIError(f"no json/ folder in {root}: give the folder above it, {root.parent}")
        raise CLIError(f"no json/ folder in {root}: is it a download of SophiaVL-R1-130k? (`{DOWNLOAD} {root}`)")
    files = sorted(p.relative_to(root / "json") for p in (root / "json").rglob("*") if p.suffix in SUFFIXES)
    if not files:
        raise CLIError(f"no .json, .jsonl or .parquet files in {root / 'json'}: is the download complete?")
    names = [subset_name(file) for file in files]
    shared = {name for name, count in Counter(names).items() if count > 1}  # such files keep their own names
    return {(f.with_suffix("").as_posix() if n in shared else n): root / "json" / f for f, n in zip(files, names)}


def write_registry(root: Path, entries: dict[str, Path], output: Path) -> None:
    r"""Write the registry: paths relative to its folder when it sits in the download, absolute otherwise."""
    folder = output.resolve().parent
    where = partial(os.path.relpath, start=folder) if folder.is_relative_to(root.resolve()) else str
    registry = {
        name: {"file_path": where(path.resolve()), "image_base_path": where(root.resolve()), "columns": COLUMNS}
        for name, path in [*entries.items(), (ALL, root / "json")]
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(registry, indent=4) + "\n", encoding="utf-8")


def summarize(name: str, registry: dict, root: Path, verify_images: bool) -> tuple[tuple, list[str], str | None]:
    r"""Load the entry `name` (invalid rows skipped): its table row (rows, problem types, image/text rows, rows with a
    missing image, other invalid rows), the lines that explain its invalid rows, and why a file cannot be read."""
    from sophiavl_trl.data import DatasetValidationError, load_sophiavl_dataset

    options = {"on_invalid": "skip", "verify_images": verify_images, "return_report": True}
    try:
        dataset, report = load_sophiavl_dataset([name], registry, **options)
        kept = dataset.with_format(None)  # no image transform: only the two text columns are read
        types, modality = Counter(kept["problem_type"]), Counter(kept["data_type"])
    except DatasetValidationError as exc:  # no row left, or an unreadable file
        report, types, modality = exc.report, Counter(), Counter()
    missing, notes = [issue for issue in report.issues if MISSING in issue], []
    rows_missing = len({issue.partition(", field ")[0] for issue in missing})
    invalid = len(report.invalid_rows) - rows_missing
    error = next((i for i in report.issues if ", row " not in i), None) if not report.total_rows else None
    if missing:
        zipped = f"; unzip {name}.zip in {root}" if (root / f"{name}.zip").is_file() else ""
        first = missing[0].rpartition(f"{MISSING}: ")[2]
        notes.append(f"{name}: {rows_missing} row(s) name images that are not there (first: {first}){zipped}")
    if invalid and not error:
        first = next(issue for issue in report.issues if MISSING not in issue)
        notes.append(f"{name}: {invalid} other invalid row(s), first: {first}")
    types = ", ".join(f"{t} {n}" for t, n in sorted(types.items())) or "-"
    row = (name, report.total_rows, types, f"{modality['image']}/{modality['text']}", rows_missing, invalid)
    return row, notes, error


def main(argv: list[str]) -> int:
    r"""`sophiavl-trl init-registry ARGS`."""
    from sophiavl_trl.data import load_registry

    args = parse_args(InitRegistryArguments, argv, "init-registry", positionals="download_dir")
    if len(args.download_dir) != 1:
        raise CLIError(f"give one DOWNLOAD_DIR (the folder holding json/ and the zips), got {len(args.download_dir)}")
    root = Path(args.download_dir[0]).expanduser()
    entries = find_entries(root)
    output = Path(args.output).expanduser() if args.output else root / "dataset_info.json"
    if output.resolve().is_relative_to((root / "json").resolve()):
        raise CLIError(f"write the registry outside {root / 'json'} (every file there is read as data): {output}")
    if output.exists() and not args.overwrite:
        raise CLIError(f"{output} exists; pass --overwrite to replace it")
    write_registry(root, entries, output)
    registry = load_registry(output)  # what training reads
    logging.getLogger("sophiavl_trl.data.registry").setLevel(logging.ERROR)  # skipped rows: counted in the table
    rows, notes, errors = zip(*(summarize(name, registry, root, args.verify_images) for name in entries))
    header = ("subset", "rows", "problem types", "image/text", "missing images", "other invalid")
    lines = [header, *rows, ("total", sum(row[1] for row in rows), "", "", sum(row[4] for row in rows), "")]
    widths = [max(len(str(cell)) for cell in column) for column in zip(*lines)]
    print(f"wrote {output}: {', '.join([*entries, ALL])} ({ALL}: every file of {root / 'json'})")
    for line in lines:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    for note in sum(notes, []):
        print(note)
    if errors := [error for error in errors if error]:
        raise CLIError("\n".join([f"cannot load {len(errors)} file(s) (the registry was written):", *errors]))
    print(f"train with --dataset_registry {output} --train_files {ALL} (or a list: {','.join(entries)})")
    return 0
