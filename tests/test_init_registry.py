# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""`sophiavl-trl init-registry` on a small fake copy of the SophiaVL-R1-130k download (docs/dataset.md): `json/` with
one file per subset (the released columns) next to `Chart.zip`, ... and their unzipped folders of generated images."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sophiavl_trl import cli as cli_module
from sophiavl_trl.scripts.init_registry import ALL, COLUMNS, SUBSETS


ROOT = Path(__file__).resolve().parents[1]
# Rows per subset as (problem_type, data_type, options); the image of Chart's row 1 is missing from the download.
ROWS = {
    "Chart": [("numerical", "image", []), ("multiple choice", "image", ["A. 3", "B. 4"]), ("numerical", "image", [])],
    "General": [("multiple choice", "image", ["A. cat", "B. dog"]), ("free-form", "image", [])],
    "Knowledge": [("text", "image", []), ("text", "image", []), ("text", "text", [])],
    "Math": [("numerical", "image", []), ("numerical", "text", []), ("multiple choice", "text", ["A. 1", "B. 2"])],
    "OCR": [("OCR", "image", []), ("OCR", "image", [])],
}
IMAGE_ROWS = {name: sum(data_type == "image" for _, data_type, _ in rows) for name, rows in ROWS.items()}
TOTAL = sum(map(len, ROWS.values()))
MISSING = "Chart/chartqa/images/00001.png"
# File names in json/: the download's are not documented (docs/dataset.md); the tool must handle these styles.
STYLES = {"plain": "{}.json", "lower": "{}.json", "merged": "merged_output_{}.json"}


def build_download(root: Path, style: str = "plain") -> Path:
    r"""A fake download in `root`: json/<subset file> (released columns, `./<Subset>/<source>/images/<n>.png` paths,
    relative to the download folder), <Subset>.zip and the unzipped <Subset>/ folders; one image missing."""
    from PIL import Image

    (root / "json").mkdir(parents=True)
    for s, (name, rows) in enumerate(ROWS.items()):
        records = []
        for i, (problem_type, data_type, options) in enumerate(rows):
            path = f"{name}/{name.lower()}qa/images/{i:05d}.png" if data_type == "image" else ""
            if path:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (56 + 8 * i, 42), (40 * s, 30 * i, 200)).save(root / path)
            records.append(
                {
                    "problem_id": 100 * s + i,
                    "problem": f"{name} question {i}?",
                    "data_type": data_type,
                    "problem_type": problem_type,
                    "options": options,
                    "solution": f"<answer>{'A' if options else i}</answer>",
                    "path": f"./{path}" if path else "",
                    "data_source": f"{name.lower()}qa",
                }
            )
        stem = name if style == "plain" else name.lower()
        (root / "json" / STYLES[style].format(stem)).write_text(json.dumps(records, indent=1), encoding="utf-8")
        with zipfile.ZipFile(root / f"{name}.zip", "w") as archive:
            for file in sorted((root / name).rglob("*.png")):
                archive.write(file, file.relative_to(root).as_posix())
    (root / MISSING).unlink()
    return root


@pytest.fixture(autouse=True, scope="module")
def no_progress_bars():
    """In this process `datasets` is imported before the command can turn its bars off (as `sophiavl-trl` does)."""
    import datasets

    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


@pytest.fixture(scope="module")
def download(tmp_path_factory) -> Path:
    return build_download(tmp_path_factory.mktemp("SophiaVL-R1-130k"))


def table(stdout: str) -> dict[str, list[str]]:
    r"""The printed table's rows by subset: cells split on runs of 2+ spaces."""
    names = {*SUBSETS, "total", "subset"}
    return {
        cells[0]: cells for cells in (re.split(r" {2,}", line) for line in stdout.splitlines()) if cells[0] in names
    }


def run(capsys, *args: str) -> tuple[int, str, str]:
    r"""`sophiavl-trl init-registry ARGS` in this process: exit status, stdout, stderr."""
    code = cli_module.main(["init-registry", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sophiavl-trl init-registry: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err


def test_writes_registry_and_table_that_train_on_every_subset(download):
    from sophiavl_trl.data import DatasetValidationError, load_sophiavl_dataset

    result = subprocess.run(
        [sys.executable, "-m", "sophiavl_trl.cli", "init-registry", str(download)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    registry_path = download / "dataset_info.json"
    registry = json.loads(registry_path.read_text())
    assert list(registry) == [*SUBSETS, ALL]  # General included, plus the whole download
    for name in SUBSETS:
        assert registry[name] == {"file_path": f"json/{name}.json", "image_base_path": ".", "columns": COLUMNS}
    assert registry[ALL]["file_path"] == "json"

    rows = table(result.stdout)
    assert rows["subset"] == ["subset", "rows", "problem types", "image/text", "missing images", "other invalid"]
    assert rows["Chart"] == ["Chart", "3", "numerical 2", "2/0", "1", "0"]  # types: usable rows
    assert rows["General"] == ["General", "2", "free-form 1, multiple choice 1", "2/0", "0", "0"]
    assert rows["Knowledge"] == ["Knowledge", "3", "text 3", "2/1", "0", "0"]
    assert rows["Math"] == ["Math", "3", "multiple choice 1, numerical 2", "1/2", "0", "0"]
    assert rows["OCR"] == ["OCR", "2", "OCR 2", "2/0", "0", "0"]
    assert rows["total"][:2] == ["total", str(TOTAL)] and rows["total"][-1] == "1"
    assert f"Chart: 1 row(s) name images that are not there (first: {download / MISSING})" in result.stdout
    assert f"--train_files {ALL}" in result.stdout

    # Training on any subset list works from the registry as written.
    clean = load_sophiavl_dataset("General,Knowledge,Math,OCR", registry_path)
    assert len(clean) == TOTAL - len(ROWS["Chart"])
    plain = clean.with_format(None)
    knowledge = [row for row in plain if row["source"].endswith("Knowledge.json")]
    assert [ref["path"] for ref in knowledge[1]["images"]] == [
        str(download / "Knowledge/knowledgeqa/images/00001.png")
    ]
    assert knowledge[2]["images"] == [] and knowledge[2]["data_type"] == "text"
    assert clean[0]["images"][0].mode == "RGB"  # the image opens (and is resized) when the row is read
    with pytest.raises(DatasetValidationError, match=re.escape(str(download / MISSING))):
        load_sophiavl_dataset(["Chart"], registry_path)
    everything = load_sophiavl_dataset([ALL], registry_path, on_invalid="skip").with_format(None)
    assert len(everything) == TOTAL - 1
    assert {Path(source).stem for source in everything["source"]} == set(SUBSETS)


@pytest.mark.parametrize("style", ["lower", "merged"])
def test_other_file_names_map_to_the_subsets(tmp_path, capsys, style):
    root = build_download(tmp_path / "download", style)
    output = tmp_path / "elsewhere" / "registry.json"  # outside the download: absolute paths
    code, out, err = run(capsys, str(root), "-o", str(output))
    assert code == 0, err
    registry = json.loads(output.read_text())
    assert list(registry) == [*SUBSETS, ALL]
    assert registry["Math"]["file_path"] == str((root / "json" / STYLES[style].format("math")).resolve())
    assert registry["Math"]["image_base_path"] == str(root.resolve())
    assert table(out)["OCR"][1:5] == ["2", "OCR 2", "2/0", "0"]
    from sophiavl_trl.data import load_sophiavl_dataset

    assert len(load_sophiavl_dataset(["OCR", "Knowledge"], output)) == 5


def test_zip_not_unzipped_is_reported_with_the_fix(download, tmp_path, capsys):
    root = tmp_path / "download"
    shutil.copytree(download, root, ignore=shutil.ignore_patterns("dataset_info.json"))
    shutil.rmtree(root / "OCR")
    code, out, err = run(capsys, str(root))
    assert code == 0, err
    assert table(out)["OCR"] == ["OCR", "2", "-", "0/0", "2", "0"]
    assert f"unzip OCR.zip in {root}" in out
    assert "General: " not in out  # only subsets with missing images get a hint


def test_existing_registry_needs_overwrite(download, tmp_path, capsys):
    root = tmp_path / "download"
    shutil.copytree(download, root, ignore=shutil.ignore_patterns("dataset_info.json"))
    (root / "dataset_info.json").write_text("{}")
    one_line_error(*run(capsys, str(root))[::2], "dataset_info.json exists", "--overwrite")
    assert (root / "dataset_info.json").read_text() == "{}"
    code, _, err = run(capsys, str(root), "--overwrite")
    assert code == 0, err
    assert list(json.loads((root / "dataset_info.json").read_text())) == [*SUBSETS, ALL]


def test_wrong_folders_are_one_line_errors(download, tmp_path, capsys):
    one_line_error(*run(capsys, str(tmp_path / "nowhere"))[::2], "download folder not found", "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(*run(capsys, str(empty))[::2], f"no json/ folder in {empty}", "bunny127/SophiaVL-R1-130k")
    one_line_error(
        *run(capsys, str(download / "json"))[::2], "no json/ folder", f"give the folder above it, {download}"
    )
    (empty / "json").mkdir()
    one_line_error(*run(capsys, str(empty))[::2], "no .json, .jsonl or .parquet files")
    inside = download / "json" / "dataset_info.json"
    one_line_error(*run(capsys, str(download), "-o", str(inside))[::2], "outside")
    assert not inside.exists()
    one_line_error(*run(capsys)[::2], "give one DOWNLOAD_DIR")
    one_line_error(*run(capsys, str(download), str(empty))[::2], "give one DOWNLOAD_DIR", "got 2")


def test_unreadable_file_fails_after_the_table(download, tmp_path, capsys):
    root = tmp_path / "download"
    shutil.copytree(download, root, ignore=shutil.ignore_patterns("dataset_info.json"))
    (root / "json" / "General.json").write_text('[{"problem": "broken"', encoding="utf-8")
    code, out, err = run(capsys, str(root))
    assert code == 2
    assert err.startswith("sophiavl-trl init-registry: error: cannot load 1 file(s) (the registry was written):")
    assert "General.json: cannot read data file" in err
    assert table(out)["Math"][1] == "3" and table(out)["General"][1] == "0"
    assert (root / "dataset_info.json").is_file()


def test_verify_images_finds_unreadable_images(download, tmp_path, capsys):
    root = tmp_path / "download"
    shutil.copytree(download, root, ignore=shutil.ignore_patterns("dataset_info.json"))
    broken = root / "General/generalqa/images/00001.png"
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated PNG: the file is there, its pixels are not
    code, out, err = run(capsys, str(root))
    assert code == 0, err
    assert table(out)["General"][1:] == ["2", "free-form 1, multiple choice 1", "2/0", "0", "0"]
    code, out, err = run(capsys, str(root), "--overwrite", "--verify_images")
    assert code == 0, err
    assert table(out)["General"][1:] == ["2", "multiple choice 1", "1/0", "0", "1"]
    assert f"General: 1 other invalid row(s), first: {root / 'json/General.json'}, row 1" in out
    assert f"unreadable image {broken}" in out
