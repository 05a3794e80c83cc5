# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The red team's bad inputs (issue 20 and later rounds): one table row per input, by area, each failing without its
fix. The next round adds rows."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image


# --- data and rewards (issue 20 items 3, 6, 7, 9, 10) ---


def _image(path: Path, size: tuple[int, int] = (64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path)


def _registry(tmp_path: Path, row: dict) -> Path:
    row = {"problem": "How many cubes?", "problem_type": "numerical", "solution": "<answer>3</answer>"} | row
    (tmp_path / "data.json").write_text(json.dumps([row]))
    registry = {"D": {"file_path": "data.json", "image_base_path": "images"}}
    (tmp_path / "dataset_info.json").write_text(json.dumps(registry))
    return tmp_path / "dataset_info.json"


def _symlinked_file(tmp_path: Path) -> dict:
    _image(tmp_path / "secret.png")  # outside the base
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "cat.png").symlink_to(tmp_path / "secret.png")
    return {"path": "cat.png"}


def _symlinked_folder(tmp_path: Path) -> dict:
    _image(tmp_path / "elsewhere" / "cat.png")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "photos").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    return {"path": "photos/cat.png"}


def _image_in_base(tmp_path: Path, size: tuple[int, int] = (64, 48)) -> dict:
    _image(tmp_path / "images" / "a.png", size)
    return {"path": "a.png"}


# (id, the row (made in tmp_path), the field named, what the message says)
BAD_DATA_ROWS = [
    ("20.3 symlinked file leading outside image_base_path", _symlinked_file, "path", "leads through a symbolic link"),
    ("20.3 path through a symlinked folder outside the base", _symlinked_folder, "path", "leads through a symbolic link"),
    ("20.6 a 2 MB question", lambda tmp: _image_in_base(tmp) | {"problem": "How many? " * 200_000}, "problem",
     "the question is 2,000,000 characters, over the cap of 50,000"),
    ("20.8 (class) an image too thin for max_pixels", lambda tmp: _image_in_base(tmp, (1000, 50)), "path",
     "is 1000x50: too thin for max_pixels 12544"),
    ("20.10 a text row with an image path", lambda tmp: _image_in_base(tmp) | {"data_type": "text"}, "path",
     "a text row (data_type 'text') with image path(s)"),
]  # fmt: skip


@pytest.mark.parametrize(("make_row", "field", "message"), [row[1:] for row in BAD_DATA_ROWS], ids=[row[0] for row in BAD_DATA_ROWS])  # fmt: skip
def test_bad_data_rows_are_refused_naming_file_row_and_field(tmp_path, make_row, field, message):
    from sophiavl_trl.data import DatasetValidationError, load_sophiavl_dataset

    registry = _registry(tmp_path, make_row(tmp_path))
    with pytest.raises(DatasetValidationError) as info:
        load_sophiavl_dataset("D", registry, min_pixels=3136, max_pixels=12544)  # the quickstart's bounds
    [issue] = info.value.report.issues
    assert issue.startswith(f"{tmp_path / 'data.json'}, row 0, field '{field}': ") and message in issue


# (id, the row, the training settings, the limit's name in the message)
LONG_PROMPT_ROWS = [
    ("20.6 question over vllm_max_model_length - max_completion_length", {"problem": "How many cubes? " * 40},
     {"use_vllm": True, "vllm_max_model_length": 400, "max_completion_length": 64},
     "vllm_max_model_length - max_completion_length = 336"),
    ("20.6 question over max_prompt_length", {"problem": "How many cubes? " * 40}, {"max_prompt_length": 300},
     "max_prompt_length = 300"),
    ("20.6 image tokens over the limit", {"size": (2000, 2000)},
     {"use_vllm": True, "vllm_max_model_length": 700, "max_completion_length": 64}, "or lower max_pixels"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "settings", "message"), [row[1:] for row in LONG_PROMPT_ROWS], ids=[row[0] for row in LONG_PROMPT_ROWS])  # fmt: skip
def test_prompts_that_cannot_fit_are_refused_before_training(tmp_path, tiny_model_dir, row, settings, message):
    from transformers import AutoProcessor
    from trl.data_utils import prepare_multimodal_messages

    from sophiavl_trl.data import DatasetValidationError, check_prompt_lengths, load_sophiavl_dataset
    from sophiavl_trl.model_utils import set_pixel_bounds

    bounds = (3136, 200_704)  # up to 256 image tokens
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    set_pixel_bounds(processor, *bounds)
    row = _image_in_base(tmp_path, row.pop("size", (64, 48))) | row
    dataset = load_sophiavl_dataset("D", _registry(tmp_path, row), min_pixels=bounds[0], max_pixels=bounds[1])
    # The length as the processor counts it when TRL tokenizes the prompt with its (resized) image.
    messages = prepare_multimodal_messages(dataset[0]["prompt"], images=dataset[0]["images"])
    tokens = processor.apply_chat_template([messages], add_generation_prompt=True, tokenize=True, return_dict=True)
    length = len(tokens["input_ids"][0])
    with pytest.raises(DatasetValidationError) as info:
        check_prompt_lengths(dataset, processor, SimpleNamespace(**settings))
    [issue] = info.value.report.issues
    assert issue.startswith(f"{tmp_path / 'data.json'}, row 0, field 'problem': the prompt is {length:,} tokens, over")
    assert message in issue
    fits = {"max_prompt_length": length} if "max_prompt_length" in settings else {"vllm_max_model_length": length + 64}
    assert len(check_prompt_lengths(dataset, processor, SimpleNamespace(**(settings | fits)))) == 1  # exactly fits


def _cjk(n: int, offset: int = 0) -> str:
    # Characters of period 2000 (7 is prime to 2000): offset 7 makes truth[i] == answer[i + 1].
    return "".join(chr(0x4E00 + (7 * i + offset) % 2000) for i in range(n))


def _letters(n: int, offset: int = 0) -> str:
    return " ".join("abcdefghijklmnopqrstuvwxyz0123456789"[(7 * i + offset) % 36] for i in range(n))


# (id, answer, ground truth, problem type, expected score). ROUGE here = mean of the ROUGE-1, -2 and -L F-measures,
# F = 2 * overlap / (answer count + truth count). In the three worst cases of item 7 the truth is the answer's
# characters 1..n (so every truth token, bigram and the whole truth as a subsequence are in the answer).
BAD_REWARD_ROWS = [
    ("20.9 0.0000001 against 0", "0.0000001", "0", "numerical", 0.0),
    ("20.9 1e-401 against 0", "1e-401", "0", "numerical", 0.0),
    ("20.9 a written-out 1e-401 against 0", "0." + "0" * 400 + "1", "0", "numerical", 0.0),
    # 9,990 vs 2,000 tokens: unigrams and LCS 2000, bigrams 1999 of 9989 and 1999.
    ("20.7 free-form, 9,990 CJK characters vs 2,000", _cjk(9990), _cjk(2000, 7), "free-form",
     (2 * 4000 / 11990 + 3998 / 11988) / 3),
    ("20.7 text, 9,990 CJK characters vs 300", _cjk(9990), _cjk(300, 7), "text", (2 * 600 / 10290 + 598 / 10288) / 3),
    ("20.7 free-form, 5,000 ASCII tokens vs 1,500", _letters(4995), _letters(1500, 7), "free-form",
     (2 * 3000 / 6495 + 2998 / 6493) / 3),
    # The cap: a truth is read up to its 10,000th token (word for OCR); answers (10,000 characters) never reach it.
    ("20.7 free-form truth beyond the token cap", _cjk(10_000), _cjk(10_000) + _cjk(5000, 3), "free-form", 1.0),
    ("20.7 OCR truth beyond the word cap", "a " * 5000, "a " * 5000 + "b " * 10_000, "OCR", math.exp(-0.5)),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "truth", "problem_type", "expected"), [row[1:] for row in BAD_REWARD_ROWS], ids=[row[0] for row in BAD_REWARD_ROWS])  # fmt: skip
def test_bad_reward_inputs_score_as_specified(monkeypatch, answer, truth, problem_type, expected):
    from rouge_score import rouge_scorer

    from sophiavl_trl.rewards import accuracy_reward

    def quadratic_table(*args):  # answer x truth cells of pure Python: 17 s a call at 9,990 x 2,000
        raise AssertionError("rouge-score's LCS table was built")

    monkeypatch.setattr(rouge_scorer, "_lcs_table", quadratic_table)
    completion = f"<think>Let me think.</think><answer>{answer}</answer>"
    assert accuracy_reward([completion], [truth], problem_type) == [pytest.approx(expected, abs=1e-12)]
