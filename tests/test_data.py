# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Tests of `sophiavl_trl.data`: prompts, registry loading, validation, the modality-grouped sampler and the
synthetic data set."""

import hashlib
import json
import logging
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from synthetic import COLORS, OPPOSITES, write_synthetic_dataset

from sophiavl_trl.data import (
    QUESTION_TEMPLATE,
    SYSTEM_PROMPT,
    TYPE_TEMPLATE,
    DatasetValidationError,
    ImageTransform,
    ModalityGroupedRepeatSampler,
    build_prompt,
    build_question,
    load_registry,
    load_sophiavl_dataset,
    modality_labels,
    prepare_dataset,
    read_table,
)
from sophiavl_trl.data import registry as registry_module


MIN_PIXELS = 28 * 28 * 4
MAX_PIXELS = 112 * 112

# ---------------------------------------------------------------------------------------------------------------
# Helpers: a registry in the original's format, with json, json-lines and parquet files and images on disk.
# ---------------------------------------------------------------------------------------------------------------


def _save_image(path: Path, size: tuple[int, int], color: tuple[int, ...] = (200, 30, 30), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def _row(problem: str = "How many cubes?", **overrides: Any) -> dict[str, Any]:
    row = {
        "problem_id": 1,
        "problem": problem,
        "data_type": "image",
        "problem_type": "numerical",
        "options": [],
        "solution": "<answer>3</answer>",
        "path": "./a.png",
        "data_source": "test",
    }
    row.update(overrides)
    return row


def _write_json(path: Path, rows: list[Any], lines: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if lines:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        path.write_text(json.dumps(rows, indent=2))


def _write_registry(path: Path, entries: dict[str, Any]) -> Path:
    path.write_text(json.dumps(entries, indent=4))
    return path


@pytest.fixture
def original_registry(tmp_path: Path) -> Path:
    """Three entries in the original's dataset_info.json format: a JSON array with the original's column mapping
    (file column -> role), a JSON-lines file mapped the other way, and a parquet file of text-only rows mapped with
    the README's `column_reponses_to_*` keys."""
    images = tmp_path / "datasets"
    _save_image(images / "Math" / "a.png", (300, 200))
    _save_image(images / "Math" / "b.png", (40, 30), color=(0, 0, 255, 128), mode="RGBA")
    _save_image(images / "Chart" / "c.png", (900, 700), color=120, mode="L")
    _write_json(
        tmp_path / "json" / "math.json",
        [
            _row("How many cubes?", path="./Math/a.png"),
            _row(
                "Which is larger? ",
                problem_type="multiple choice",
                options=["A. 3", "B. 5"],
                solution="<answer>B</answer>",
                path="./Math/b.png",
            ),
        ],
    )
    _write_json(
        tmp_path / "json" / "chart.jsonl",
        [
            {"question": "Read the title.", "label": "<answer>Sales</answer>", "img": "Chart/c.png", "problem_type": "OCR"},
            {"question": "Describe <image> briefly.", "label": "<answer>a chart</answer>", "img": "Chart/c.png", "problem_type": "free-form"},
        ],
        lines=True,
    )  # fmt: skip
    table = pa.Table.from_pylist(
        [
            {"q": "What is 2+2?", "a": "<answer>4</answer>", "problem_type": "numerical", "data_type": "text"},
            {"q": "Opposite of hot?", "a": "<answer>cold</answer>", "problem_type": "text", "data_type": "text"},
        ]
    )
    pq.write_table(table, tmp_path / "text.parquet")
    return _write_registry(
        tmp_path / "dataset_info.json",
        {
            "Math": {
                "file_path": "json/math.json",
                "image_base_path": "datasets",
                "columns": {"problem": "prompt", "solution": "answer", "path": "images"},
            },
            "Chart": {
                "file_path": "json/chart.jsonl",
                "image_base_path": "datasets",
                "columns": {"problem": "question", "solution": "label", "path": "img"},
            },
            "Text": {
                "file_path": "text.parquet",
                "image_base_path": "",
                "columns": {"column_reponses_to_prompt": "q", "column_reponses_to_answer": "a"},
            },
        },
    )


def _single_entry_registry(tmp_path: Path, rows: list[Any], *, lines: bool = False, **entry: Any) -> Path:
    _save_image(tmp_path / "images" / "a.png", (64, 48))
    _write_json(tmp_path / "data.json", rows, lines=lines)
    spec = {"file_path": "data.json", "image_base_path": "images", **entry}
    return _write_registry(tmp_path / "dataset_info.json", {"D": spec})


# ---------------------------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------------------------


class TestPrompts:
    def test_strings_are_the_released_training_code_s(self):
        # Typos included ("tagsdd", no period after "thought expressions"): the policy was trained on these.
        assert SYSTEM_PROMPT.startswith("You FIRST think about the reasoning process as an internal monologue")
        assert "tagsdd. The final answer MUST BE" in SYSTEM_PROMPT
        assert "\n" not in SYSTEM_PROMPT  # OmegaConf's YAML parsing folded the script's line break
        assert QUESTION_TEMPLATE.startswith("{Question}\nPlease think about this question as if you were a human")
        assert "natural language thought expressions It's encouraged" in QUESTION_TEMPLATE
        assert set(TYPE_TEMPLATE) == {"multiple choice", "numerical", "OCR", "free-form", "text"}
        assert TYPE_TEMPLATE["numerical"] == (
            " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags."
        )

    @pytest.mark.parametrize("problem_type", sorted(TYPE_TEMPLATE))
    def test_question_has_the_per_type_instruction(self, problem_type):
        question = build_question("What {is} this?", problem_type)
        assert question == QUESTION_TEMPLATE.replace("{Question}", "What {is} this?") + TYPE_TEMPLATE[problem_type]

    def test_options_appended_for_multiple_choice_only(self):
        options = ["A. red", "B. blue"]
        assert build_question("Which colour? ", "multiple choice", options).startswith(
            "Which colour? A. red; B. blue\nPlease think"
        )
        assert build_question("Which colour? ", "free-form", options).startswith("Which colour? \nPlease think")

    def test_unknown_type_raises(self):
        with pytest.raises(ValueError, match="No prompt instruction for problem type 'essay'"):
            build_question("Write.", "essay")

    def test_image_prompt_format(self):
        prompt = build_prompt("How many?", "numerical")
        assert prompt[0] == {"role": "system", "content": SYSTEM_PROMPT}
        assert prompt[1]["role"] == "user"
        assert prompt[1]["content"] == [
            {"type": "image"},
            {"type": "text", "text": build_question("How many?", "numerical")},
        ]

    def test_text_prompt_format_and_no_system(self):
        prompt = build_prompt("2+2?", "numerical", num_images=0, system_prompt=None)
        assert prompt == [{"role": "user", "content": build_question("2+2?", "numerical")}]

    def test_image_markers_place_the_images(self):
        content = build_prompt("Compare <image> and <image>.", "free-form", num_images=2)[1]["content"]
        assert [part["type"] for part in content] == ["text", "image", "text", "image", "text"]
        assert content[0]["text"] == "Compare "
        with pytest.raises(ValueError, match="placeholder"):
            build_prompt("Compare <image> and <image>.", "free-form", num_images=1)


# ---------------------------------------------------------------------------------------------------------------
# Registry loading
# ---------------------------------------------------------------------------------------------------------------


class TestRegistry:
    def test_load_registry_resolves_paths(self, original_registry):
        registry = load_registry(original_registry)
        assert sorted(registry) == ["Chart", "Math", "Text"]
        assert registry["Math"].file_path == original_registry.parent / "json" / "math.json"
        assert registry["Math"].image_base_path == original_registry.parent / "datasets"
        assert registry["Text"].image_base_path is None

    def test_paths_relative_to_the_working_directory_as_in_the_original(self, tmp_path, monkeypatch):
        # The original keeps its registry in verl/data/ with paths relative to the repository root (its cwd).
        _save_image(tmp_path / "dataset" / "img" / "a.png", (64, 64))
        _write_json(tmp_path / "dataset" / "json" / "d.json", [_row(path="./img/a.png")])
        (tmp_path / "verl" / "data").mkdir(parents=True)
        registry = _write_registry(
            tmp_path / "verl" / "data" / "dataset_info.json",
            {"D": {"file_path": "dataset/json/d.json", "image_base_path": "dataset"}},
        )
        monkeypatch.chdir(tmp_path)
        spec = load_registry(registry)["D"]
        assert spec.file_path == tmp_path / "dataset" / "json" / "d.json"
        assert len(load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)) == 1

    def test_column_mapping_forms(self):
        # The original's direction (file column -> role), canonical -> file column, and the README's keys.
        resolve = registry_module.resolve_columns
        assert resolve({"problem": "prompt", "solution": "answer"}, ["problem", "solution"]) == (
            {"problem": "problem", "solution": "solution"},
            [],
        )
        assert resolve({"problem": "question"}, ["question", "answer"])[0] == {
            "problem": "question",
            "solution": "answer",
        }
        assert resolve({"column_reponses_to_images": "img"}, ["img", "prompt"]) == (
            {"path": "img", "problem": "prompt"},
            [],
        )
        assert resolve({"column_responses_to_answer": "a"}, ["a"])[0] == {"solution": "a"}
        _, problems = resolve({"problem": "nope"}, ["question"])
        assert len(problems) == 1 and "'nope'" in problems[0]
        _, problems = resolve({"q": "problem", "r": "prompt"}, ["q", "r"])
        assert problems == ["canonical column 'problem' is mapped twice ('q' and 'r')"]

    def test_loads_json_jsonl_and_parquet_into_one_trl_dataset(self, original_registry):
        dataset = load_sophiavl_dataset(
            "Math, Chart,Text", original_registry, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
        )
        assert len(dataset) == 6
        assert set(dataset.column_names) >= {"prompt", "images", "problem", "solution", "problem_type", "data_type"}
        rows = [dataset[i] for i in range(len(dataset))]
        assert [row["data_type"] for row in rows] == ["image"] * 4 + ["text"] * 2
        assert [row["problem_type"] for row in rows] == [
            "numerical",
            "multiple choice",
            "OCR",
            "free-form",
            "numerical",
            "text",
        ]
        assert rows[1]["problem"] == "Which is larger? "  # the raw question, for the judge
        assert rows[1]["options"] == ["A. 3", "B. 5"]
        assert rows[1]["solution"] == "<answer>B</answer>"
        assert rows[2]["source"].endswith("chart.jsonl") and rows[2]["row_index"] == 0

        # Image rows: system + user with an image placeholder; the per-type instruction; options appended.
        assert rows[0]["prompt"][0] == {"role": "system", "content": SYSTEM_PROMPT}
        assert rows[0]["prompt"][1]["content"] == [
            {"type": "image"},
            {"type": "text", "text": build_question("How many cubes?", "numerical")},
        ]
        mc_text = rows[1]["prompt"][1]["content"][1]["text"]
        assert mc_text.startswith("Which is larger? A. 3; B. 5\n") and mc_text.endswith(
            TYPE_TEMPLATE["multiple choice"]
        )
        assert rows[2]["prompt"][1]["content"][1]["text"].endswith(TYPE_TEMPLATE["OCR"])
        assert [part["type"] for part in rows[3]["prompt"][1]["content"]] == ["text", "image", "text"]
        # Text rows: plain string content, no images.
        assert rows[4]["prompt"][1] == {"role": "user", "content": build_question("What is 2+2?", "numerical")}
        assert rows[4]["images"] == [] and rows[5]["images"] == []
        for row in rows[:4]:
            assert len(row["images"]) == 1 and row["images"][0].mode == "RGB"

    @pytest.mark.parametrize(
        "size, min_pixels, max_pixels",
        [((300, 200), MIN_PIXELS, MAX_PIXELS), ((40, 30), MIN_PIXELS, MAX_PIXELS), ((900, 700), 28 * 28, 56 * 56),
         ((1000, 20), 28 * 28 * 16, 28 * 28 * 64), ((123, 457), 262144, 4194304)],
    )  # fmt: skip
    def test_images_resized_within_bounds_like_qwen(self, tmp_path, size, min_pixels, max_pixels):
        from qwen_vl_utils import smart_resize

        registry = _single_entry_registry(tmp_path, [_row(path="a.png")])
        _save_image(tmp_path / "images" / "a.png", size, color=(10, 20, 30, 40), mode="RGBA")
        dataset = load_sophiavl_dataset("D", registry, min_pixels=min_pixels, max_pixels=max_pixels)
        image = dataset[0]["images"][0]
        width, height = image.size
        assert image.mode == "RGB"
        assert width % 28 == 0 and height % 28 == 0
        assert min_pixels <= width * height <= max_pixels
        assert (height, width) == smart_resize(
            size[1], size[0], factor=28, min_pixels=min_pixels, max_pixels=max_pixels
        )

    def test_images_are_loaded_lazily(self, original_registry, monkeypatch):
        loads: list[str] = []
        original = ImageTransform.load_image

        def counting(self, ref):
            loads.append(ref["path"])
            return original(self, ref)

        monkeypatch.setattr(ImageTransform, "load_image", counting)
        dataset = load_sophiavl_dataset(
            "Math,Chart,Text", original_registry, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
        )
        assert loads == []  # nothing decoded while loading and validating
        stored = dataset.with_format(None)[0]["images"]
        assert stored == [{"bytes": None, "path": str(original_registry.parent / "datasets" / "Math" / "a.png")}]
        assert loads == []
        dataset[1]
        assert loads == [str(original_registry.parent / "datasets" / "Math" / "b.png")]
        # The file is read at access time: a file changed after loading is seen changed.
        _save_image(original_registry.parent / "datasets" / "Math" / "a.png", (300, 200), color=(0, 255, 0))
        assert dataset[0]["images"][0].getpixel((5, 5)) == (0, 255, 0)

    def test_rows_survive_trl_style_dataloading(self, original_registry):
        # What GRPOTrainer does: its RepeatSampler-like sampler, a DataLoader with the identity collator, and
        # (with remove_unused_columns=True) Trainer._remove_unused_columns -> Dataset.remove_columns.
        from torch.utils.data import DataLoader
        from trl.trainer.utils import identity

        dataset = load_sophiavl_dataset(
            "Math,Chart,Text", original_registry, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
        )
        labels = modality_labels(dataset)
        assert labels == ["image"] * 4 + ["text"] * 2
        sampler = ModalityGroupedRepeatSampler(dataset, mini_repeat_count=2, batch_size=2, seed=0, modalities=labels)
        batches = list(DataLoader(dataset, batch_size=4, sampler=sampler, collate_fn=identity))
        assert len(batches) == 3
        for batch in batches:
            assert len({row["data_type"] for row in batch}) == 1
            for row in batch:
                assert all(isinstance(image, Image.Image) for image in row["images"])
                assert len(row["images"]) == (1 if row["data_type"] == "image" else 0)
                assert row["solution"].startswith("<answer>")

        trimmed = dataset.remove_columns([c for c in dataset.column_names if c not in ("prompt", "image", "images")])
        row = trimmed[0]
        assert set(row) == {"prompt", "images"} and isinstance(row["images"][0], Image.Image)
        assert row["prompt"][1]["content"][0] == {"type": "image"}

    def test_prepare_dataset_with_paths_and_embedded_images(self, tmp_path):
        from datasets import Dataset, Features, List, Value
        from datasets import Image as ImageFeature

        _save_image(tmp_path / "imgs" / "x.png", (64, 64), color=(1, 2, 3))
        by_path = Dataset.from_dict(
            {
                "problem": ["How many?", "Say hi."],
                "solution": ["<answer>2</answer>", "<answer>hi</answer>"],
                "problem_type": ["numerical", "text"],
                "data_type": ["image", "text"],
                "path": ["x.png", None],
            }
        )
        dataset = prepare_dataset(by_path, tmp_path / "imgs", min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
        assert dataset[0]["images"][0].getpixel((0, 0)) == (1, 2, 3)
        assert dataset[1]["images"] == [] and dataset[1]["prompt"][-1]["content"].startswith("Say hi.")

        embedded = Dataset.from_dict(
            {
                "prompt": ["What colour?"],
                "answer": ["<answer>red</answer>"],
                "images": [[Image.new("RGB", (70, 50), (250, 0, 0))]],
            },
            features=Features({"prompt": Value("string"), "answer": Value("string"), "images": List(ImageFeature())}),
        )
        dataset = prepare_dataset(
            embedded, default_problem_type="free-form", min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, source="emb"
        )
        row = dataset[0]
        assert row["problem"] == "What colour?" and row["source"] == "emb" and row["data_type"] == "image"
        assert row["images"][0].getpixel((3, 3)) == (250, 0, 0) and row["images"][0].size == (56, 56)

    def test_parquet_folder_with_embedded_images_like_geometry3k(self, tmp_path):
        # The original registry's geometry3k entry: a folder of parquet files whose `images` column holds
        # datasets.Image structs ({"bytes", "path"}), no problem_type column, answers without tags.
        import io

        def png(color: tuple[int, int, int]) -> bytes:
            buffer = io.BytesIO()
            Image.new("RGB", (90, 60), color).save(buffer, format="PNG")
            return buffer.getvalue()

        folder = tmp_path / "geometry3k"
        folder.mkdir()
        for shard, color in enumerate([(255, 0, 0), (0, 0, 255)]):
            rows = [
                {
                    "problem": f"<image>Find x. ({shard})",
                    "answer": "12",
                    "images": [{"bytes": png(color), "path": None}],
                }
            ]
            pq.write_table(pa.Table.from_pylist(rows), folder / f"train-{shard}.parquet")
        registry = _write_registry(
            tmp_path / "dataset_info.json",
            {
                "geometry3k": {
                    "file_path": "geometry3k",
                    "image_base_path": "",
                    "columns": {"problem": "prompt", "answer": "answer", "images": "images"},
                }
            },
        )
        dataset = load_sophiavl_dataset(
            "geometry3k", registry, default_problem_type="numerical", min_pixels=MIN_PIXELS
        )
        assert dataset["problem"] == ["<image>Find x. (0)", "<image>Find x. (1)"]
        assert [dataset[i]["images"][0].getpixel((1, 1)) for i in range(2)] == [(255, 0, 0), (0, 0, 255)]
        content = dataset[0]["prompt"][1]["content"]
        assert content[0] == {"type": "image"} and content[1]["text"].startswith("Find x. (0)\nPlease think")

    def test_unknown_name_and_split(self, original_registry):
        with pytest.raises(
            ValueError, match=r"'Nope' is not in the registry. Registered names: \['Chart', 'Math', 'Text'\]"
        ):
            load_sophiavl_dataset("Math,Nope", original_registry)
        with pytest.raises(ValueError, match="only the 'train' split"):
            load_sophiavl_dataset("Math@test", original_registry)
        assert len(load_sophiavl_dataset(["Math@train"], original_registry, min_pixels=MIN_PIXELS)) == 2

    def test_system_prompt_override(self, original_registry):
        dataset = load_sophiavl_dataset("Text", original_registry, system_prompt="Be brief.")
        assert dataset[0]["prompt"][0] == {"role": "system", "content": "Be brief."}
        dataset = load_sophiavl_dataset("Text", original_registry, system_prompt="")
        assert [m["role"] for m in dataset[0]["prompt"]] == ["user"]

    def test_non_utf8_registry_names_the_file(self, tmp_path):
        # Bad input 3: a latin-1 registry used to raise a bare UnicodeDecodeError, without the path.
        path = tmp_path / "dataset_info.json"
        path.write_bytes(json.dumps({"Café": {"file_path": "d.json"}}, ensure_ascii=False).encode("latin-1"))
        with pytest.raises(ValueError, match=rf"Dataset registry {re.escape(str(path))} is not UTF-8 text"):
            load_registry(path)

    def test_name_defined_twice_names_the_name_and_the_file(self, tmp_path):
        # Bad input 7: JSON keeps the last of duplicate keys, so the first entry used to vanish silently.
        path = tmp_path / "dataset_info.json"
        path.write_text('{"D": {"file_path": "a.json"}, "E": {"file_path": "b.json"}, "D": {"file_path": "c.json"}}')
        with pytest.raises(ValueError, match=rf"Dataset registry {re.escape(str(path))}: 'D' is defined twice"):
            load_registry(path)
        path.write_text('{"D": {"file_path": "a.json", "columns": {"q": "prompt", "q": "answer"}}}')
        with pytest.raises(ValueError, match="'q' is defined twice"):
            load_registry(path)

    def test_malformed_registries(self, tmp_path):
        path = tmp_path / "r.json"
        for text, fragment in [
            ("{oops", "is not valid JSON"),
            ("[]", "must be a JSON object of named entries, got list"),
            ('{"D": {"image_base_path": "x"}}', "entry 'D' needs a string 'file_path'"),
            ('{"D": {"file_path": "x", "columns": {"a": 1}}}', "'columns' of entry 'D' must map strings to strings"),
        ]:
            path.write_text(text)
            with pytest.raises(ValueError, match=re.escape(fragment)):
                load_registry(path)
        with pytest.raises(FileNotFoundError, match="Dataset registry not found"):
            load_registry(tmp_path / "nope.json")


class TestReadTable:
    def test_json_jsonl_parquet_and_folders(self, tmp_path):
        rows = [{"question": "q0", "score": 1.0}, {"question": "q1", "score": 0.5}]
        _write_json(tmp_path / "a" / "array.json", rows)
        _write_json(tmp_path / "a" / "lines.json", rows, lines=True)  # JSON lines under a .json name
        _write_json(tmp_path / "a" / "sub" / "more.jsonl", rows[:1], lines=True)
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a" / "table.parquet")
        (tmp_path / "a" / "notes.txt").write_text("ignored")
        for name in ("array.json", "lines.json", "table.parquet"):
            assert read_table(tmp_path / "a" / name).to_list() == rows
        folder = read_table(tmp_path / "a")  # sorted: array.json, lines.json, sub/more.jsonl, table.parquet
        assert folder["question"] == ["q0", "q1", "q0", "q1", "q0", "q0", "q1"]

    @pytest.mark.parametrize(
        "name, content, fragment",
        [("bad.jsonl", '{"a": 1}\n{oops\n', "line 2 is not valid JSON"),
         ("list.json", '[{"a": 1}, ["not", "a", "row"]]', "row 1 is a JSON list, not an object"),
         ("list.jsonl", '{"a": 1}\n\n["not", "a", "row"]\n', "line 3 is a JSON list, not an object"),
         ("latin.jsonl", '{"a": "café"}\n'.encode("latin-1"), "UnicodeDecodeError"),
         ("empty.json", "", "empty data file"),
         ("broken.parquet", b"PAR1 not really", "cannot read data file"),
         ("data.csv", "a,b\n1,2\n", "unknown data file format '.csv'")],
    )  # fmt: skip
    def test_unreadable_files_name_the_file_and_the_place(self, tmp_path, name, content, fragment):
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: .*{re.escape(fragment)}"):
            read_table(path)

    def test_missing_paths(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(tmp_path / 'gone.json'))}: data file not found"):
            read_table(tmp_path / "gone.json")
        with pytest.raises(FileNotFoundError, match="no .json, .jsonl or .parquet files in the folder"):
            read_table(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------


def _truncated_png(path: Path) -> None:
    """A PNG cut in half: its header opens, decoding it fails."""
    import random

    rng = random.Random(0)
    _save_image(path, (64, 48))
    Image.frombytes("RGB", (64, 48), bytes(rng.randrange(256) for _ in range(64 * 48 * 3))).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# Each case: (bad row at index 1, field, fragment of the message). The registry maps the original's columns.
BAD_ROWS = {
    "missing image": (_row(path="./missing.png"), "path", "image file not found"),
    "unknown problem type": (_row(problem_type="essay"), "problem_type", "unknown problem type 'essay'"),
    "empty prompt": (_row(problem="  <image> "), "problem", "empty prompt"),
    "missing prompt": ({k: v for k, v in _row().items() if k != "problem"}, "problem", "missing problem"),
    "prompt not text": (_row(problem=["a"]), "problem", "expected a string, got list"),
    "missing solution": (_row(solution=None), "solution", "missing solution"),
    "empty solution": (_row(solution="<answer> </answer>"), "solution", "empty solution"),
    "options not a list": (
        _row(problem_type="multiple choice", options="A. 1; B. 2"),
        "options",
        "options must be a list for multiple choice, got str",
    ),
    "options missing": (_row(problem_type="multiple choice", options=None), "options", "missing options"),
    "options not strings": (_row(options=[{"A": 1}]), "options", "options must be a list of strings"),
    "image row without path": (_row(path=None), "path", "data_type is 'image' but the row has no image path"),
    "remote image": (_row(path="https://x.org/a.png"), "path", "remote image URLs are not supported"),
    "unsupported data type": (_row(data_type="video"), "data_type", "unsupported data_type 'video'"),
    "unreadable image": (_row(path="./corrupt.png"), "path", "unreadable image"),
    "extreme aspect ratio": (_row(path="./thin.png"), "path", "is 600x2: aspect ratio above 200"),
    "truncated image": (_row(path="./truncated.png"), "path", "truncated.png: OSError: image file is truncated"),
    "image outside the base": (
        _row(path="../../../outside.png"),
        "path",
        "image path '../../../outside.png' resolves to",
    ),
    "placeholder mismatch": (
        _row(problem="<image> vs <image>?"),
        "problem",
        "2 <image> placeholder(s) but 1 image(s)",
    ),
    "placeholder in a text row": (
        _row(problem="What is <image>?", data_type="text"),
        "problem",
        "<image> in the question of a text-only row (no image)",
    ),
    "placeholder in an inferred text row": (
        {k: v for k, v in _row(problem="<image> 2+2?", path="").items() if k != "data_type"},
        "problem",
        "<image> in the question of a text-only row",
    ),
    "missing problem type": (
        {k: v for k, v in _row().items() if k != "problem_type"},
        "problem_type",
        "missing problem_type",
    ),
}


class TestValidation:
    @pytest.mark.parametrize("case", sorted(BAD_ROWS))
    @pytest.mark.parametrize("lines", [False, True], ids=["json", "jsonl"])
    def test_bad_row_fails_with_file_row_and_field(self, tmp_path, case, lines):
        bad_row, field, fragment = BAD_ROWS[case]
        (tmp_path / "images").mkdir()
        (tmp_path / "images" / "corrupt.png").write_bytes(b"definitely not a png")
        _truncated_png(tmp_path / "images" / "truncated.png")
        _save_image(tmp_path / "images" / "thin.png", (600, 2))
        _save_image(tmp_path.parent / "outside.png", (64, 64))  # exists: only where it lies is wrong
        registry = _single_entry_registry(
            tmp_path,
            [_row(path="./a.png"), bad_row, _row(path="a.png")],
            lines=lines,
            columns={"problem": "prompt", "solution": "answer", "path": "images"},
        )
        with pytest.raises(DatasetValidationError) as info:
            load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
        message = str(info.value)
        assert f"{tmp_path / 'data.json'}, row 1, field {field!r}: " in message
        assert fragment in message
        assert "1 invalid row(s) out of 3" in message
        assert "on_invalid='skip'" in message
        assert info.value.report.invalid_rows == [(str(tmp_path / "data.json"), 1)]
        # The same row is dropped, and reported, in skip mode.
        dataset, report = load_sophiavl_dataset(
            "D", registry, on_invalid="skip", min_pixels=MIN_PIXELS, return_report=True
        )
        assert dataset["row_index"] == [0, 2] and report.invalid_rows == info.value.report.invalid_rows

    def test_truncated_image_passes_a_header_read_but_not_validation(self, tmp_path):
        # Bad input 1: the header of a truncated PNG opens (what validation used to check); only decoding fails,
        # which used to happen in the DataLoader, mid-training.
        registry = _single_entry_registry(tmp_path, [_row(path="a.png"), _row(path="t.png")])
        _truncated_png(tmp_path / "images" / "t.png")
        with Image.open(tmp_path / "images" / "t.png") as image:
            assert image.size == (64, 48)
        with pytest.raises(
            DatasetValidationError, match=r"data\.json, row 1, field 'path': unreadable image .*t\.png"
        ):
            load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)
        # verify_images=False only checks that files exist (fast path for trusted data).
        assert len(load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS, verify_images=False)) == 2

    def test_image_paths_must_stay_inside_the_image_base_path(self, tmp_path):
        # Bad input 8: a relative path climbing out of image_base_path used to be trained on silently.
        _save_image(tmp_path / "outside.png", (64, 64))
        _save_image(tmp_path / "images" / "sub" / "b.png", (64, 64))
        rows = [
            _row(path="sub/../a.png"),  # stays inside: fine
            _row(path=str(tmp_path / "outside.png")),  # absolute: the user's explicit choice, fine
            _row(path=["a.png", "sub/../../outside.png"], problem="<image> and <image>"),
        ]
        registry = _single_entry_registry(tmp_path, rows)
        with pytest.raises(DatasetValidationError) as info:
            load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)
        assert info.value.report.issues == [
            f"{tmp_path / 'data.json'}, row 2, field 'path': image path 'sub/../../outside.png' resolves to "
            f"{tmp_path / 'outside.png'}, outside image_base_path {tmp_path / 'images'}"
        ]
        dataset = load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS, on_invalid="skip").with_format(None)
        assert [image["path"] for row in dataset["images"] for image in row] == [
            str(tmp_path / "images" / "a.png"),
            str(tmp_path / "outside.png"),
        ]

    def test_text_row_with_image_placeholder_is_refused(self, tmp_path):
        # Bad input 9: a text-only row's image is dropped; its <image> marker used to stay in the prompt.
        registry = _single_entry_registry(
            tmp_path, [_row(), _row("Is <image> red?", data_type="text", path="a.png", problem_type="text")]
        )
        with pytest.raises(DatasetValidationError, match=r"row 1, field 'problem': <image> in the question of a text"):
            load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)

    def test_row_that_is_not_an_object_names_file_and_row(self, tmp_path):
        registry = _single_entry_registry(tmp_path, [_row(), ["not", "a", "row"]])
        with pytest.raises(DatasetValidationError, match=r"data\.json: cannot read data file: row 1 is a JSON list"):
            load_sophiavl_dataset("D", registry, on_invalid="skip")

    def test_missing_data_file_fails_even_in_skip_mode(self, tmp_path):
        registry = _write_registry(
            tmp_path / "dataset_info.json", {"D": {"file_path": "gone.json", "image_base_path": ""}}
        )
        for on_invalid in ("error", "skip"):
            with pytest.raises(DatasetValidationError, match=r"gone\.json: data file not found"):
                load_sophiavl_dataset("D", registry, on_invalid=on_invalid)

    def test_all_file_problems_are_listed_together(self, tmp_path):
        (tmp_path / "data.jsonl").write_text('{"problem": "a"}\n{oops\n')
        _write_json(tmp_path / "ok.json", [_row()])
        registry = _write_registry(
            tmp_path / "r.json",
            {
                "D": {"file_path": "data.jsonl", "image_base_path": ""},
                "E": {"file_path": "ok.json", "columns": {"problem": "question_text"}},
            },
        )
        with pytest.raises(DatasetValidationError) as info:
            load_sophiavl_dataset("D,E", registry)
        assert info.value.report.issues == [
            f"{tmp_path / 'data.jsonl'}: cannot read data file: line 2 is not valid JSON (Expecting property name "
            "enclosed in double quotes: line 1 column 2 (char 1))",
            f"{tmp_path / 'ok.json'}, field 'columns': mapping entry 'problem': 'question_text' names no column of the "
            "file (columns: ['data_source', 'data_type', 'options', 'path', 'problem', 'problem_id', 'problem_type', "
            "'solution']) and no known role (roles: ['answer', 'data_type', 'image', 'images', 'options', 'path', "
            "'problem', 'problem_type', 'prompt', 'solution'])",
        ]

    def test_message_lists_first_rows_and_total(self, tmp_path):
        rows = [_row(path="./a.png")] + [_row(solution="") for _ in range(12)]
        registry = _single_entry_registry(tmp_path, rows)
        with pytest.raises(DatasetValidationError) as info:
            load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)
        message = str(info.value)
        assert "12 invalid row(s) out of 13" in message
        assert "First 10 of 12 issue(s)" in message
        listed = re.findall(r"row (\d+), field 'solution'", message)
        assert listed == [str(i) for i in range(1, 11)]

    def test_issues_listed_in_load_order_across_files(self, original_registry):
        root = original_registry.parent
        _write_json(root / "json" / "math.json", [_row(path="./Math/a.png"), _row(solution=None, path="./Math/a.png")])
        with (root / "json" / "chart.jsonl").open("a") as handle:
            handle.write(json.dumps({"question": "", "label": "<answer>x</answer>", "img": "Chart/c.png"}) + "\n")
        with pytest.raises(DatasetValidationError) as info:
            load_sophiavl_dataset("Math,Chart", original_registry, default_problem_type="OCR")
        message = str(info.value)
        assert "2 invalid row(s) out of 5" in message
        first, second = (
            message.index("math.json, row 1, field 'solution'"),
            message.index("chart.jsonl, row 2, field 'problem'"),
        )
        assert first < second  # math.json was loaded first (alphabetical order would list chart.jsonl first)

    def test_bad_arguments_fail_before_any_work(self, original_registry):
        with pytest.raises(ValueError, match="on_invalid must be 'error' or 'skip', got 'drop'"):
            load_sophiavl_dataset("Math", original_registry, on_invalid="drop")
        with pytest.raises(ValueError, match="min_pixels <= max_pixels"):
            load_sophiavl_dataset("Math", original_registry, min_pixels=10_000, max_pixels=100)

    def test_skip_mode_drops_and_reports(self, tmp_path, caplog):
        rows = [
            _row("good 0", path="./a.png"),
            _row("bad 1", path="./missing.png"),
            _row("good 2"),
            _row("bad 3", problem_type="essay"),
            _row("bad 4", solution=None, problem_type="essay"),  # two issues, one row
        ]
        registry = _single_entry_registry(tmp_path, rows)
        with caplog.at_level(logging.WARNING, logger="sophiavl_trl.data.registry"):
            dataset, report = load_sophiavl_dataset(
                "D", registry, on_invalid="skip", min_pixels=MIN_PIXELS, return_report=True
            )
        assert dataset["problem"] == ["good 0", "good 2"]
        assert [dataset[i]["images"][0].size for i in range(2)] == [(56, 56), (56, 56)]  # the transform survives
        source = str(tmp_path / "data.json")
        assert report.invalid_rows == [(source, 1), (source, 3), (source, 4)]
        assert report.total_rows == 5 and len(report.issues) == 4
        warning = caplog.text
        assert "Skipped invalid rows (on_invalid='skip'); 2 kept." in warning
        assert "3 invalid row(s) out of 5" in warning
        assert f"{source}, row 1, field 'path'" in warning and f"{source}, row 4, field 'solution'" in warning

    def test_everything_invalid_raises_even_in_skip_mode(self, tmp_path):
        registry = _single_entry_registry(tmp_path, [_row(solution=None)])
        with pytest.raises(DatasetValidationError, match="No valid rows left"):
            load_sophiavl_dataset("D", registry, on_invalid="skip")

    def test_problem_types_default_to_the_prompt_templates(self, tmp_path, monkeypatch):
        rows = [_row(problem_type=t, options=["A. 1"], solution="<answer>A</answer>") for t in ("OCR", "Free_Form")]
        assert len(load_sophiavl_dataset("D", _single_entry_registry(tmp_path, rows), min_pixels=MIN_PIXELS)) == 2
        registry = _single_entry_registry(tmp_path, [_row(problem_type="yes/no", solution="<answer>yes</answer>")])
        with pytest.raises(DatasetValidationError, match="unknown problem type 'yes/no'"):
            load_sophiavl_dataset("D", registry)
        # Accepted (a verifier's type, say) but without a prompt instruction: still refused, with the fix named.
        with pytest.raises(DatasetValidationError, match="no prompt instruction for problem type 'yes/no'"):
            load_sophiavl_dataset("D", registry, problem_types={"yes/no"})
        monkeypatch.setitem(TYPE_TEMPLATE, "yes/no", " Answer yes or no within the <answer> </answer> tags.")
        dataset = load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)  # a template makes it known
        assert dataset[0]["prompt"][1]["content"][1]["text"].endswith(
            " Answer yes or no within the <answer> </answer> tags."
        )

    def test_the_verifiers_types_restrict_what_is_accepted(self, tmp_path, monkeypatch):
        from sophiavl_trl.rewards import accuracy_rewards, register_verifier

        monkeypatch.setattr(accuracy_rewards, "VERIFIERS", dict(accuracy_rewards.VERIFIERS))  # undone after
        monkeypatch.setitem(TYPE_TEMPLATE, "yes_no", " Answer yes or no.")
        registry = _single_entry_registry(tmp_path, [_row(problem_type="yes-no", solution="<answer>yes</answer>")])
        with pytest.raises(DatasetValidationError, match="unknown problem type 'yes-no'"):  # a template, no verifier
            load_sophiavl_dataset("D", registry, problem_types=accuracy_rewards.VERIFIERS)
        register_verifier("Yes-No", lambda prediction, truth: float(prediction.strip() == truth.strip()))
        dataset = load_sophiavl_dataset("D", registry, problem_types=accuracy_rewards.VERIFIERS, min_pixels=MIN_PIXELS)
        assert dataset[0]["prompt"][1]["content"][1]["text"].endswith(" Answer yes or no.")  # spelled three ways
        assert dataset[0]["problem_type"] == "yes-no"  # kept as written, for the reward

    def test_default_problem_type_and_inferred_data_type(self, tmp_path):
        rows = [{"prompt": "2+2?", "answer": "4"}, {"prompt": "Count.", "answer": 3, "images": "a.png"}]
        registry = _single_entry_registry(tmp_path, rows)
        dataset = load_sophiavl_dataset("D", registry, default_problem_type="numerical", min_pixels=MIN_PIXELS)
        assert dataset["data_type"] == ["text", "image"]
        assert dataset["solution"] == ["4", "3"]  # bare JSON numbers are accepted as text, even mixed with strings
        assert dataset["problem_type"] == ["numerical", "numerical"]

    def test_a_text_row_with_an_image_path_is_refused(self, tmp_path):
        # The original dropped the image silently; the question may be about it (issue 20 item 10).
        rows = [_row(data_type="text", path="a.png", problem_type="text"), _row(data_type="text", path="")]
        registry = _single_entry_registry(tmp_path, rows)
        with pytest.raises(DatasetValidationError) as info:
            load_sophiavl_dataset("D", registry)
        assert info.value.report.invalid_rows == [(str(tmp_path / "data.json"), 0)]
        assert "field 'path': a text row (data_type 'text') with image path(s)" in info.value.report.issues[0]
        row = load_sophiavl_dataset("D", registry, on_invalid="skip")[0]  # an empty path is no image
        assert row["images"] == [] and isinstance(row["prompt"][-1]["content"], str)

    def test_image_deleted_after_validation_fails_loudly(self, tmp_path):
        registry = _single_entry_registry(tmp_path, [_row(path="a.png")])
        dataset = load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)
        (tmp_path / "images" / "a.png").unlink()
        with pytest.raises(RuntimeError, match=r"Cannot load image .*a\.png"):
            dataset[0]

    def test_validation_is_never_served_from_a_cache(self, tmp_path):
        # datasets caches map results by fingerprint; a fixed image must be seen fixed, a broken one broken.
        registry = _single_entry_registry(tmp_path, [_row(path="a.png")])
        assert len(load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)) == 1
        (tmp_path / "images" / "a.png").write_bytes(b"broken")
        with pytest.raises(DatasetValidationError, match="unreadable image"):
            load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)
        _save_image(tmp_path / "images" / "a.png", (64, 48))
        assert len(load_sophiavl_dataset("D", registry, min_pixels=MIN_PIXELS)) == 1

    def test_prepare_dataset_validates_in_memory_data(self):
        from datasets import Dataset

        data = Dataset.from_dict(
            {"problem": ["2+2?", "hi"], "solution": ["4", None], "problem_type": ["numerical"] * 2}
        )
        with pytest.raises(DatasetValidationError) as info:
            prepare_dataset(data, source="mem")
        assert str(info.value) == (
            "Dataset validation failed.\n1 invalid row(s) out of 2.\nFirst 1 of 1 issue(s):\n"
            "  - mem, row 1, field 'solution': missing solution\n"
            "Fix these rows, or pass on_invalid='skip' to drop invalid rows (they are reported)."
        )
        with pytest.raises(DatasetValidationError, match=r"dataset, field 'columns': mapping entry 'problem': 'q'"):
            prepare_dataset(data, columns={"problem": "q"})


# ---------------------------------------------------------------------------------------------------------------
# Sampler
# ---------------------------------------------------------------------------------------------------------------


def _trl_repeat_sampler(**kwargs: Any) -> Any:
    from trl.trainer.utils import RepeatSampler

    return RepeatSampler(**kwargs)


def _split_chunks(indices: list[int], batch_size: int, mini: int, repeat: int) -> list[list[int]]:
    """Undo the repeat structure, asserting it: returns the unique indices of each chunk."""
    block = batch_size * mini * repeat
    assert len(indices) % block == 0
    chunks = []
    for start in range(0, len(indices), block):
        blob = indices[start : start + block]
        once = blob[: batch_size * mini]
        assert blob == once * repeat  # the chunk is repeated repeat_count times
        unique = once[::mini]
        assert once == [i for i in unique for _ in range(mini)]  # each index mini_repeat_count times in a row
        chunks.append(unique)
    return chunks


class TestModalityGroupedRepeatSampler:
    @pytest.mark.parametrize("shuffle", [True, False])
    @pytest.mark.parametrize(
        "num_rows, mini, batch_size, repeat, seed",
        [(9, 2, 3, 4, 0), (32, 8, 4, 2, 42), (16, 1, 16, 1, None), (10, 3, 1, 3, 7)],
    )
    def test_full_chunks_of_one_modality_match_trl_repeat_sampler(
        self, num_rows, mini, batch_size, repeat, seed, shuffle
    ):
        kwargs = {
            "data_source": list(range(num_rows)),
            "mini_repeat_count": mini,
            "batch_size": batch_size,
            "repeat_count": repeat,
            "shuffle": shuffle,
            "seed": seed,
        }
        oracle = _trl_repeat_sampler(**kwargs)
        ours = ModalityGroupedRepeatSampler(**kwargs, modalities=["image"] * num_rows)
        for _ in range(3):  # several epochs: the generator advances identically
            assert list(ours) == list(oracle)
        assert len(ours) == len(oracle)

    @settings(max_examples=60, deadline=None)
    @given(
        labels=st.lists(st.sampled_from(["image", "text", "video"]), min_size=1, max_size=60),
        mini=st.integers(1, 4),
        batch_size=st.integers(1, 6),
        repeat=st.integers(1, 3),
        seed=st.integers(0, 2**31),
        shuffle=st.booleans(),
    )
    def test_chunks_are_homogeneous_and_cover_the_data(self, labels, mini, batch_size, repeat, seed, shuffle):
        sampler = ModalityGroupedRepeatSampler(labels, mini, batch_size, repeat, shuffle, seed, modalities=labels)
        indices = list(sampler)
        assert len(indices) == len(sampler)
        chunks = _split_chunks(indices, batch_size, mini, repeat)
        counts = Counter(labels)
        for chunk in chunks:
            assert len({labels[i] for i in chunk}) == 1
            assert len(set(chunk)) == min(batch_size, counts[labels[chunk[0]]])  # repeats only to fill a chunk
        used = Counter(i for chunk in chunks for i in chunk)
        assert set(used) == set(range(len(labels)))  # no row dropped
        # Only each modality's last chunk is completed with rows drawn a second time.
        assert sum(used.values()) - len(labels) == sum(-count % batch_size for count in counts.values())

    def test_deterministic_by_seed_and_identical_across_processes(self):
        labels = ["image" if i % 3 else "text" for i in range(60)]
        first = ModalityGroupedRepeatSampler(labels, 2, 4, 1, True, 123, modalities=labels)
        second = ModalityGroupedRepeatSampler(labels, 2, 4, 1, True, 123, modalities=labels)
        other = ModalityGroupedRepeatSampler(labels, 2, 4, 1, True, 124, modalities=labels)
        epoch_one = list(first)
        assert epoch_one == list(second)
        assert epoch_one != list(other)
        assert list(first) != epoch_one  # a new permutation next epoch, like RepeatSampler

    def test_every_process_batch_is_homogeneous_under_accelerate_sharding(self):
        # GRPOTrainer: the dataloader batch is per_device_batch * steps_per_generation; accelerate hands consecutive
        # batches to the processes in turn; the sampler's batch_size is generation_batch_size // num_generations.
        from accelerate.data_loader import BatchSamplerShard
        from torch.utils.data import BatchSampler

        num_processes, per_device, steps_per_generation, num_generations = 2, 3, 2, 4
        generation_batch = num_processes * per_device * steps_per_generation
        labels = ["text" if i % 4 == 0 else "image" for i in range(90)]
        sampler = ModalityGroupedRepeatSampler(
            labels,
            mini_repeat_count=num_generations,
            batch_size=generation_batch // num_generations,
            repeat_count=1 * steps_per_generation,  # num_iterations * steps_per_generation
            seed=0,
            modalities=labels,
        )
        batch_sampler = BatchSampler(sampler, per_device * steps_per_generation, drop_last=False)
        seen_modalities = set()
        for process in range(num_processes):
            shard = BatchSamplerShard(batch_sampler, num_processes=num_processes, process_index=process)
            for batch in shard:
                modalities = {labels[i] for i in batch}
                assert len(modalities) == 1
                seen_modalities |= modalities
        assert seen_modalities == {"image", "text"}

    def test_reports_the_rows_drawn_twice_to_complete_chunks(self, caplog):
        labels = ["image"] * 10 + ["text"] * 2
        with caplog.at_level(logging.WARNING, logger="sophiavl_trl.data.sampler"):
            sampler = ModalityGroupedRepeatSampler(labels, 2, 4, modalities=labels, seed=0)
        assert "4 of 12 rows are drawn twice each epoch" in caplog.text and "'text': 2 rows" in caplog.text
        indices = list(sampler)
        assert set(indices) == set(range(12))  # the small text modality is trained on too
        assert len(indices) == len(sampler) == 4 * 4 * 2  # 3 image chunks + 1 text chunk, 4 prompts x 2

    def test_streaming_data_comes_in_runs_of_one_modality_and_nothing_is_lost(self):
        from datasets import IterableDataset

        from sophiavl_trl.data.sampler import group_stream_by_modality

        labels = ["text" if i % 3 == 0 else "image" for i in range(40)]
        rows = [{"id": i, "data_type": label} for i, label in enumerate(labels)]
        stream = group_stream_by_modality(IterableDataset.from_generator(lambda: iter(rows)), batch_size=4)
        first, second = [r["id"] for r in stream], [r["id"] for r in stream]  # two epochs
        for ids in (first, second):
            assert all(len({labels[i] for i in ids[k : k + 4]}) == 1 for k in range(0, len(ids), 4)), ids
        # 27 image + 13 text rows: 3 image rows and 1 text row wait for the next epoch instead of being dropped
        assert len(first) == len(set(first)) == 36
        left_over = set(range(40)) - set(first)
        assert len(left_over) == 4 and left_over <= set(second)

    def test_rejects_wrong_label_count(self):
        with pytest.raises(ValueError, match="modalities has 2 labels but the data set has 3 rows"):
            ModalityGroupedRepeatSampler([0, 1, 2], 2, modalities=["image", "text"])

    def test_modality_labels(self):
        from datasets import Dataset

        assert modality_labels(Dataset.from_dict({"data_type": ["text", None, "image"]})) == ["text", "image", "image"]
        assert modality_labels(Dataset.from_dict({"prompt": ["x"]})) is None
        assert modality_labels([{"data_type": "text"}]) is None


# ---------------------------------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------------------------------


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _components(image: Image.Image) -> list[tuple[tuple[int, int, int], tuple[int, int, int, int]]]:
    """4-connected components of non-background pixels: (colour, bbox), found by flood fill."""
    width, height = image.size
    pixels = image.load()
    seen = [[False] * width for _ in range(height)]
    found = []
    for y0 in range(height):
        for x0 in range(width):
            if seen[y0][x0] or pixels[x0, y0] == (255, 255, 255):
                continue
            color = pixels[x0, y0]
            stack, box = [(x0, y0)], [x0, y0, x0, y0]
            seen[y0][x0] = True
            while stack:
                x, y = stack.pop()
                box = [min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y)]
                for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                    if 0 <= nx < width and 0 <= ny < height and not seen[ny][nx] and pixels[nx, ny] == color:
                        seen[ny][nx] = True
                        stack.append((nx, ny))
            found.append((color, tuple(box)))
    return found


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(out, num_samples=40, seed=0)
    return out


class TestSynthetic:
    def test_same_seed_same_bytes_other_seed_differs(self, synthetic_dir, tmp_path):
        write_synthetic_dataset(tmp_path / "again", num_samples=40, seed=0)
        write_synthetic_dataset(tmp_path / "other", num_samples=40, seed=1)
        reference = _digest(synthetic_dir)
        assert _digest(tmp_path / "again") == reference
        other = _digest(tmp_path / "other")
        assert other.keys() == reference.keys()
        assert other["synthetic_image.json"] != reference["synthetic_image.json"]
        assert other["synthetic_text.parquet"] != reference["synthetic_text.parquet"]
        assert sum(other[key] != reference[key] for key in reference if key.startswith("images")) >= 25

    def test_registry_loads_cleanly_with_every_problem_type(self, synthetic_dir):
        dataset = load_sophiavl_dataset(
            "synthetic_image,synthetic_text",
            synthetic_dir / "dataset_info.json",
            min_pixels=MIN_PIXELS,
            max_pixels=MAX_PIXELS,
        )
        assert len(dataset) == 40
        assert Counter(dataset["data_type"]) == {"image": 30, "text": 10}
        image_types = {t for t, d in zip(dataset["problem_type"], dataset["data_type"]) if d == "image"}
        text_types = {t for t, d in zip(dataset["problem_type"], dataset["data_type"]) if d == "text"}
        assert image_types == {"numerical", "multiple choice", "OCR", "free-form"}
        assert text_types == {"numerical", "multiple choice", "text"}
        sizes = {dataset[i]["images"][0].size for i in range(5)}
        assert all(56 <= w <= 112 and 56 <= h <= 112 and w % 28 == 0 and h % 28 == 0 for w, h in sizes)

    def test_image_answers_match_the_pixels(self, synthetic_dir):
        rows = json.loads((synthetic_dir / "synthetic_image.json").read_text())
        kinds = Counter()
        for row in rows:
            meta = json.loads(row["meta"])
            kinds[meta["kind"]] += 1
            image = Image.open(synthetic_dir / "images" / row["path"]).convert("RGB")
            assert list(image.size) == meta["size"]
            answer = re.fullmatch(r"<answer>(.*)</answer>", row["solution"]).group(1)
            if meta["kind"] == "read":
                assert answer == meta["word"] and row["problem_type"] == "OCR"
                assert image.convert("L").getextrema()[0] < 128  # dark text was drawn
                continue
            shapes = meta["shapes"]
            # The pixels hold exactly the recorded shapes: one component per shape, inside its box, of its colour.
            components = _components(image)
            assert len(components) == len(shapes)
            matched = set()
            for color, box in components:
                owners = [
                    i
                    for i, s in enumerate(shapes)
                    if s["bbox"][0] <= box[0]
                    and s["bbox"][1] <= box[1]
                    and box[2] <= s["bbox"][2]
                    and box[3] <= s["bbox"][3]
                ]
                assert len(owners) == 1 and color == COLORS[shapes[owners[0]]["color"]]
                matched.add(owners[0])
            assert len(matched) == len(shapes)
            pixel_colors = Counter(color for color, _ in components)
            question = row["problem"]
            if m := re.fullmatch(r"How many (\w+) shapes are there in the image\?", question):
                assert int(answer) == pixel_colors[COLORS[m.group(1)]]
            elif m := re.fullmatch(r"How many (\w+)s are there in the image\?", question):
                assert int(answer) == sum(s["shape"] == m.group(1) for s in shapes)
            elif m := re.fullmatch(r"Subtract all (\w+) shapes\. How many shapes are left\?", question):
                assert int(answer) == len(components) - pixel_colors[COLORS[m.group(1)]]
            elif m := re.fullmatch(r"How many (\w+)s and (\w+)s are there in total\?", question):
                assert int(answer) == sum(s["shape"] in m.groups() for s in shapes)
            elif question == "Describe the shapes in the image.":
                for s in shapes:
                    assert f"a {s['color']} {s['shape']}" in answer
            else:
                assert row["problem_type"] == "multiple choice" and len(shapes) == 1
                chosen = dict(option.split(". ", 1) for option in row["options"])[answer]
                assert chosen in (shapes[0]["shape"], shapes[0]["color"])
                assert chosen == (shapes[0]["shape"] if question.startswith("Which shape") else shapes[0]["color"])
        assert set(kinds) == {"count", "arithmetic", "choice", "read", "describe"}

    def test_text_answers_are_correct(self, synthetic_dir):
        rows = pq.read_table(synthetic_dir / "synthetic_text.parquet").to_pylist()
        for row in rows:
            answer = re.fullmatch(r"<answer>(.*)</answer>", row["answer"]).group(1)
            numbers = [int(n) for n in re.findall(r"\d+", row["question"])]
            question = row["question"]
            if "gets" in question:
                assert int(answer) == numbers[0] + numbers[1]
            elif "gives away" in question:
                assert int(answer) == numbers[0] - numbers[1]
            elif "in each box" in question:
                assert int(answer) == numbers[0] * numbers[1]
            elif question.startswith("What is the opposite"):
                assert answer == OPPOSITES[re.search(r"'(\w+)'", question).group(1)]
            else:
                values = {option.split(". ")[0]: int(option.split(". ")[1]) for option in row["options"]}
                assert values[answer] == max(values.values())

    def test_cli(self, tmp_path):
        result = subprocess.run(
            [sys.executable, str(Path(__file__).parents[1] / "examples/quickstart/synthetic.py"), str(tmp_path / "cli"), "--num-samples", "6", "--seed", "3"],
            capture_output=True,
            text=True,
            check=True,
        )  # fmt: skip
        registry = Path(result.stdout.strip())
        assert registry == tmp_path / "cli" / "dataset_info.json"
        assert sorted(load_registry(registry)) == ["synthetic_image", "synthetic_text"]
        assert len(list((tmp_path / "cli" / "images").glob("*.png"))) == 6 - round(6 * 0.25)


def test_package_import_is_light():
    code = "import sys, sophiavl_trl.data; print(sorted(m for m in ('torch', 'datasets', 'trl') if m in sys.modules))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )


def test_image_transform_rejects_bad_bounds():
    with pytest.raises(ValueError, match="min_pixels <= max_pixels"):
        ImageTransform(min_pixels=100, max_pixels=10)
    assert registry_module.DEFAULT_MIN_PIXELS == 262144 and registry_module.DEFAULT_MAX_PIXELS == 4194304
