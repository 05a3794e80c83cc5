# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""
A small synthetic data set in SophiaVL-R1's registry format, with known answers, for tests, examples and CPU smoke runs.

Image rows are small PNGs of coloured shapes on a 3x3 grid (count and arithmetic: numerical; shape or colour: multiple
choice; describe: free-form) or of a rendered word (OCR). Text-only rows: arithmetic word problems (numerical),
opposites (`text`) and "which number is the largest" (multiple choice).

`out_dir` holds `dataset_info.json` (the registry), `synthetic_image.json` (a JSON array with the original's column
names), `synthetic_text.parquet` (its own column names, mapped the other way) and `images/`. Each row's `meta` column
(JSON text: the shapes with colour, grid cell and bounding box, or the word) lets tests check answers against the
pixels. Everything is a function of `seed`.

Not library code: data for the tests, CI and the quickstart (`render_shapes` and `scene` draw its images).
Command line: `python examples/quickstart/synthetic.py OUT_DIR --num-samples 64 --seed 0`.
"""

import argparse
import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any


SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
# Saturated colours, far from the white background and from each other, drawn without anti-aliasing: every pixel of
# a shape has exactly its colour, so shapes can be counted from the pixels.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 38, 38),
    "green": (22, 163, 74),
    "blue": (37, 99, 235),
    "yellow": (234, 179, 8),
    "purple": (147, 51, 234),
    "orange": (234, 88, 12),
}
BACKGROUND = (255, 255, 255)
GRID = 3  # shapes sit in distinct cells of a GRID x GRID grid, so they never touch
WORDS: tuple[str, ...] = (
    "CAT", "DOG", "SUN", "TREE", "BOOK", "FISH", "BIRD", "MOON",
    "STAR", "RAIN", "LAMP", "SHIP", "ROSE", "KITE", "BELL", "DRUM",
)  # fmt: skip
OPPOSITES: dict[str, str] = {
    "hot": "cold", "up": "down", "big": "small", "day": "night",
    "open": "closed", "fast": "slow", "light": "dark", "early": "late",
}  # fmt: skip
NAMES: tuple[str, ...] = ("Tom", "Ana", "Li", "Sara", "Omar", "Mia")
ITEMS: tuple[str, ...] = ("apple", "pencil", "marble", "sticker", "coin", "book")
IMAGE_KINDS: tuple[str, ...] = ("count", "arithmetic", "choice", "read", "describe")
TEXT_KINDS: tuple[str, ...] = ("word_problem", "opposite", "largest")
LETTERS = "ABCDEFGH"
REGISTRY_FILENAME = "dataset_info.json"
# The files' columns, in order (the image rows keep the original's names; the text rows are mapped by the registry).
_IMAGE_COLUMNS = ("problem_id", "problem", "data_type", "problem_type", "options", "solution", "path", "data_source")
_TEXT_COLUMNS = ("problem_id", "question", "answer", "problem_type", "data_type", "options", "meta")


def _draw_shape(draw: Any, shape: str, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box  # inclusive corners
    xm, ym = (x0 + x1) // 2, (y0 + y1) // 2
    if shape == "circle":
        draw.ellipse(box, fill=color)
    elif shape == "square":
        draw.rectangle(box, fill=color)
    elif shape == "triangle":
        draw.polygon([(xm, y0), (x1, y1), (x0, y1)], fill=color)
    elif shape == "diamond":
        draw.polygon([(xm, y0), (x1, ym), (xm, y1), (x0, ym)], fill=color)
    else:
        raise ValueError(f"Unknown shape {shape!r}")


def scene(rng: random.Random, width: int, height: int, num_shapes: int) -> list[dict[str, Any]]:
    """Shapes in distinct grid cells, each inside its cell with a margin (so no two shapes touch)."""
    cell_w, cell_h = width // GRID, height // GRID
    size = max(4, int(0.7 * min(cell_w, cell_h)))
    shapes = []
    for cell in sorted(rng.sample(range(GRID * GRID), num_shapes)):
        row, col = divmod(cell, GRID)
        x = col * cell_w + 1 + rng.randint(0, max(0, cell_w - size - 2))
        y = row * cell_h + 1 + rng.randint(0, max(0, cell_h - size - 2))
        shape, color = rng.choice(SHAPES), rng.choice(sorted(COLORS))
        shapes.append({"shape": shape, "color": color, "cell": cell, "bbox": [x, y, x + size - 1, y + size - 1]})
    return shapes


def render_shapes(width: int, height: int, shapes: Sequence[dict[str, Any]]) -> Any:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for item in shapes:
        _draw_shape(draw, item["shape"], tuple(item["bbox"]), COLORS[item["color"]])
    return image


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font only
        return ImageFont.load_default()


def _render_word(rng: random.Random, width: int, height: int, word: str) -> Any:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    size = max(10, min(32, height // 3))
    left, top, right, bottom = draw.textbbox((0, 0), word, font=(font := _font(size)))
    while size > 8 and right - left > width - 4:
        size -= 2
        left, top, right, bottom = draw.textbbox((0, 0), word, font=(font := _font(size)))
    x = rng.randint(2, max(2, width - (right - left) - 2)) - left
    y = rng.randint(2, max(2, height - (bottom - top) - 2)) - top
    draw.text((x, y), word, fill=(0, 0, 0), font=font)
    return image


def _answer(value: Any) -> str:
    return f"<answer>{value}</answer>"


def _choice(rng: random.Random, correct: str, candidates: Sequence[str]) -> tuple[list[str], str]:
    """Four shuffled options `"A. x"` holding `correct`, and the correct letter."""
    others = [c for c in candidates if c != correct]
    picked = [correct, *rng.sample(others, min(3, len(others)))]
    rng.shuffle(picked)
    return [f"{LETTERS[i]}. {text}" for i, text in enumerate(picked)], LETTERS[picked.index(correct)]


def _image_row(rng: random.Random, kind: str, width: int, height: int) -> tuple[dict[str, Any], Any]:
    """One image row's `problem`, `problem_type`, `options`, `solution` and `meta`, and its PIL image."""
    options: list[str] = []
    meta: dict[str, Any] = {"kind": kind, "size": [width, height]}
    if kind == "read":
        meta["word"] = word = rng.choice(WORDS)
        image = _render_word(rng, width, height, word)
        problem, problem_type, solution = "What text is written in the image?", "OCR", _answer(word)
    elif kind == "choice":  # one large shape in the middle; ask for its shape or its colour
        shape, color = rng.choice(SHAPES), rng.choice(sorted(COLORS))
        size = int(0.6 * min(width, height))
        x, y = (width - size) // 2, (height - size) // 2
        shapes = [
            {"shape": shape, "color": color, "cell": GRID * GRID // 2, "bbox": [x, y, x + size - 1, y + size - 1]}
        ]
        if rng.random() < 0.5:
            problem = "Which shape is shown in the image? Options: "
            options, letter = _choice(rng, shape, SHAPES)
        else:
            problem = f"What color is the {shape} in the image? Options: "
            options, letter = _choice(rng, color, sorted(COLORS))
        problem_type, solution = "multiple choice", _answer(letter)
    else:
        num_shapes = {"count": (1, 6), "arithmetic": (2, 7), "describe": (1, 3)}[kind]
        shapes = scene(rng, width, height, rng.randint(*num_shapes))
        problem_type = "numerical"
        if kind == "count" and rng.random() < 0.5:
            color = rng.choice([s["color"] for s in shapes] if rng.random() < 0.8 else sorted(COLORS))
            problem = f"How many {color} shapes are there in the image?"
            value = sum(s["color"] == color for s in shapes)
        elif kind == "count":
            shape = rng.choice([s["shape"] for s in shapes] if rng.random() < 0.8 else SHAPES)
            problem, value = f"How many {shape}s are there in the image?", sum(s["shape"] == shape for s in shapes)
        elif kind == "arithmetic" and rng.random() < 0.5:
            color = rng.choice([s["color"] for s in shapes])
            problem = f"Subtract all {color} shapes. How many shapes are left?"
            value = sum(s["color"] != color for s in shapes)
        elif kind == "arithmetic":
            first, second = rng.sample(SHAPES, 2)
            problem = f"How many {first}s and {second}s are there in total?"
            value = sum(s["shape"] in (first, second) for s in shapes)
        else:
            parts = [f"a {item['color']} {item['shape']}" for item in shapes]
            problem, problem_type = "Describe the shapes in the image.", "free-form"
            value = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        solution = _answer(value)
    if kind != "read":
        meta["shapes"] = shapes
        image = render_shapes(width, height, shapes)
    row = {"problem": problem, "problem_type": problem_type, "options": options, "solution": solution, "meta": meta}
    return row, image


def _text_row(rng: random.Random, kind: str) -> dict[str, Any]:
    """One text-only row's `question`, `problem_type`, `options`, `answer` and `meta`."""
    options: list[str] = []
    if kind == "word_problem":
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, b = rng.randint(2, 12), rng.randint(1, 9)
        form = rng.randrange(3)
        if form == 0:
            question = f"{name} has {a} {item}s and gets {b} more. How many {item}s does {name} have now?"
            value = a + b
        elif form == 1:
            a = max(a, b)
            question = f"{name} has {a} {item}s and gives away {b}. How many {item}s are left?"
            value = a - b
        else:
            question = f"There are {a} boxes with {b} {item}s in each box. How many {item}s are there in all?"
            value = a * b
        problem_type, answer, meta = "numerical", value, {"kind": kind, "value": value}
    elif kind == "opposite":
        word = rng.choice(sorted(OPPOSITES))
        question, problem_type, answer = f"What is the opposite of the word '{word}'?", "text", OPPOSITES[word]
        meta = {"kind": kind, "word": word}
    else:
        numbers = rng.sample(range(1, 100), 4)
        options, answer = _choice(rng, str(max(numbers)), [str(n) for n in numbers])
        question, problem_type = "Which number is the largest? Options: ", "multiple choice"
        meta = {"kind": kind, "numbers": numbers}
    return {
        "question": question,
        "problem_type": problem_type,
        "options": options,
        "answer": _answer(answer),
        "meta": meta,
    }


def write_synthetic_dataset(
    out_dir: str | os.PathLike,
    num_samples: int = 64,
    seed: int = 0,
    image_size: int | tuple[int, int] = (56, 112),
    text_fraction: float = 0.25,
) -> Path:
    r"""
    Write `num_samples` rows (a `text_fraction` of them, rounded, text-only) and their registry to `out_dir` (created
    if needed; a previous call's files are overwritten), and return the registry file, `out_dir/dataset_info.json`,
    with entries `synthetic_image` and `synthetic_text`. Image sides are drawn from the `(min, max)` range
    `image_size` (or are `image_size`); the same `seed` gives byte-identical files.

    Example:
    ```python
    >>> from synthetic import write_synthetic_dataset
    >>> write_synthetic_dataset("/tmp/synthetic_doc", num_samples=8).name
    'dataset_info.json'
    ```
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
    if not 0.0 <= text_fraction <= 1.0:
        raise ValueError(f"text_fraction must be in [0, 1], got {text_fraction}.")
    low, high = (image_size, image_size) if isinstance(image_size, int) else image_size
    if not 8 <= low <= high:
        raise ValueError(
            f"image_size must be a side >= 8 or a (min, max) range with 8 <= min <= max, got {image_size}."
        )
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    num_text = round(num_samples * text_fraction)
    num_image = num_samples - num_text

    image_rows = []
    for index in range(num_image):
        width, height = rng.randint(low, high), rng.randint(low, high)
        row, image = _image_row(rng, IMAGE_KINDS[index % len(IMAGE_KINDS)], width, height)
        image.save(out_dir / "images" / f"{index:05d}.png", format="PNG")
        row |= {"problem_id": index, "data_type": "image", "path": f"./{index:05d}.png", "data_source": "synthetic"}
        image_rows.append(
            {key: row[key] for key in _IMAGE_COLUMNS} | {"meta": json.dumps(row["meta"], sort_keys=True)}
        )
    text_rows = []
    for index in range(num_text):
        row = _text_row(rng, TEXT_KINDS[index % len(TEXT_KINDS)])
        row |= {"problem_id": num_image + index, "data_type": "text", "meta": json.dumps(row["meta"], sort_keys=True)}
        text_rows.append(row)

    (out_dir / "synthetic_image.json").write_text(json.dumps(image_rows, indent=1) + "\n", encoding="utf-8")
    types = {"problem_id": pa.int64(), "options": pa.list_(pa.string())}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in _TEXT_COLUMNS])
    pq.write_table(pa.Table.from_pylist(text_rows, schema=schema), out_dir / "synthetic_text.parquet")
    registry = {
        # The original's mapping direction: file column -> role (prompt / answer / images).
        "synthetic_image": {
            "file_path": "synthetic_image.json",
            "image_base_path": "images",
            "columns": {"problem": "prompt", "solution": "answer", "path": "images"},
        },
        # Canonical name -> file column.
        "synthetic_text": {
            "file_path": "synthetic_text.parquet",
            "image_base_path": "",
            "columns": {"problem": "question", "solution": "answer"},
        },
    }
    registry_path = out_dir / REGISTRY_FILENAME
    registry_path.write_text(json.dumps(registry, indent=4) + "\n", encoding="utf-8")
    return registry_path


def main(argv: Sequence[str] | None = None) -> Path:
    r"""Command-line entry point: `python examples/quickstart/synthetic.py OUT_DIR --num-samples N --seed S`."""
    parser = argparse.ArgumentParser(description="Write the synthetic SophiaVL-format data set and its registry.")
    parser.add_argument("out_dir", help="output directory")
    parser.add_argument("--num-samples", type=int, default=64, help="total rows (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--image-size", type=int, nargs=2, default=(56, 112), metavar=("MIN", "MAX"))
    parser.add_argument("--text-fraction", type=float, default=0.25, help="fraction of text-only rows (default: 0.25)")
    args = parser.parse_args(argv)
    path = write_synthetic_dataset(
        args.out_dir, args.num_samples, args.seed, tuple(args.image_size), args.text_fraction
    )
    print(path)  # the registry path is the command's output
    return path


if __name__ == "__main__":
    main()
