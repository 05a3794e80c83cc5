# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Training a thinking reward model: judge records (format, validation), their SFT rendering (exactly the client's
request), SFT on the tiny model, and the trained judge served by a real vLLM server, scored and evaluated through
`ThinkingRewardClient`; judge records built from a real Trust-GRPO run's completions."""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import io
import json
import math
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml


ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_thinking_reward_model.py"
RECIPES = sorted((ROOT / "examples" / "recipes" / "thinking_reward_model").glob("*.yaml"))
sys.path.insert(0, str(ROOT / "tests" / "scripts"))
from tiny_runs import run_trust_grpo  # noqa: E402


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    from synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), num_samples=16, seed=5)


def make_records(registry: Path, out: Path, *, offset: int = 0) -> list[dict]:
    """Judge records from the synthetic data: image rows (absolute paths: relative ones must stay inside the records'
    folder) and text-only rows, with a reasoning and a score that vary by row."""
    import pyarrow.parquet as pq

    folder = registry.parent
    image_rows = json.loads((folder / "synthetic_image.json").read_text())
    text_rows = pq.read_table(folder / "synthetic_text.parquet").to_pylist()
    records = []
    for row in image_rows:
        image = folder / "images" / row["path"]
        records.append({"question": row["problem"], "image": str(image), "problem_type": row["problem_type"]})
    records += [{"question": row["question"], "image": None} for row in text_rows]
    for i, record in enumerate(records):
        k = i + offset
        record["reasoning"] = f"Let me think. Step {k}: I look at the question, then check the answer {k % 7}."
        record["score"] = (k * 3 % 11) / 10
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


# --------------------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------------------


def test_score_labels():
    from sophiavl_trl.judge import SCORE_CHOICES
    from sophiavl_trl.judge.sft import parse_score_label

    # Every choice the judge may answer is a label, from a number or from its own text.
    for k, text in enumerate(SCORE_CHOICES):
        assert parse_score_label(text) == parse_score_label(float(text)) == (k / 10, None)
    assert parse_score_label(0.30000000000000004) == (0.3, None)  # float noise is not an error
    for bad in (0.75, 1.1, -0.1, "high", None, True, float("nan")):
        value, why = parse_score_label(bad)
        assert value is None and why


def test_records_from_a_file_and_from_a_registry(synthetic, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sophiavl_trl.judge.sft import load_judge_records

    expected = make_records(synthetic, tmp_path / "judge" / "records.jsonl")
    records = load_judge_records(tmp_path / "judge" / "records.jsonl")
    assert [(r.question, r.reasoning, r.score) for r in records] == [
        (e["question"], e["reasoning"], e["score"]) for e in expected
    ]
    for record, source in zip(records, expected):
        if source["image"] is None:
            assert record.image is None
        else:
            assert record.image["path"] == os.path.normpath(source["image"])

    # A registry entry over a parquet file with other column names (mapped both ways) and embedded images.
    image_bytes = (synthetic.parent / "images" / "00000.png").read_bytes()
    table = pa.table(
        {
            "prompt": ["How many shapes?", "What is 3+4?"],
            "thinking": ["I count three shapes.", "3+4=7."],
            "label": ["0.9", "1.0"],
            "picture": [{"bytes": image_bytes, "path": None}, None],
        }
    )
    pq.write_table(table, tmp_path / "judge.parquet")
    (tmp_path / "dataset_info.json").write_text(
        json.dumps(
            {
                "judge_set": {
                    "file_path": "judge.parquet",
                    "columns": {
                        "question": "prompt",
                        "thinking": "reasoning",
                        "column_reponses_to_score": "label",
                        "picture": "image",
                    },
                }
            }
        )
    )
    records = load_judge_records("judge_set", tmp_path / "dataset_info.json")
    assert [(r.question, r.reasoning, r.score) for r in records] == [
        ("How many shapes?", "I count three shapes.", 0.9),
        ("What is 3+4?", "3+4=7.", 1.0),
    ]
    # Registry names are looked up as training data's are, with the same message.
    with pytest.raises(
        ValueError, match=r"Dataset 'judge_sets' is not in the registry. Registered names: \['judge_set'\]"
    ):
        load_judge_records("judge_set,judge_sets", tmp_path / "dataset_info.json")
    assert records[0].image == {"bytes": image_bytes, "path": None} and records[1].image is None


def test_invalid_records_name_the_file_row_and_field(synthetic, tmp_path, caplog):
    from sophiavl_trl.data import DatasetValidationError
    from sophiavl_trl.judge.sft import load_judge_records

    path = tmp_path / "records.jsonl"
    rows = [
        {"question": "Q0", "reasoning": "R0", "score": 0.5},
        {"question": "Q1", "reasoning": "", "score": 0.5},  # empty reasoning
        {"question": "Q2", "reasoning": "R2", "score": 0.75},  # off the 0.1 grid
        {"question": "Q3", "reasoning": "R3", "score": 0.2, "image": "missing.png"},
        {"question": "  ", "reasoning": "R4", "score": 0.1},  # blank (a number would be read as its text)
        {"question": "Q5", "reasoning": "R5"},  # no score
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetValidationError) as info:
        load_judge_records(path)
    message = str(info.value)
    for row, field in ((1, "reasoning"), (2, "score"), (3, "path"), (4, "question"), (5, "score")):
        assert f"{path}, row {row}, field {field!r}" in message  # the image column is `path`, as in training data
    assert "0.75" in message and "missing.png" in message and "on_invalid='skip'" in message
    assert "5 invalid row(s) out of 6" in message

    with caplog.at_level("WARNING"):
        records = load_judge_records(path, on_invalid="skip")
    assert [r.question for r in records] == ["Q0"] and "5 invalid row(s) out of 6" in caplog.text

    # A file without a score column is a file-level problem, whatever on_invalid says.
    (tmp_path / "no_score.jsonl").write_text(json.dumps({"question": "Q", "reasoning": "R"}) + "\n")
    with pytest.raises(DatasetValidationError, match="no column for 'score'"):
        load_judge_records(tmp_path / "no_score.jsonl", on_invalid="skip")


# --------------------------------------------------------------------------------------------------------------------
# Rendering: the SFT data is the client's request
# --------------------------------------------------------------------------------------------------------------------


class StubScorer:
    """A local OpenAI-compatible server: lists the model `stub`, records every chat request body, and answers
    `answer`, or the HTTP error `status` (a rejected request)."""

    def __init__(self, answer: str = "0.5", status: int = 200):
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.reply(
                    200, {"object": "list", "data": [{"id": "stub", "object": "model", "created": 0, "owned_by": "t"}]}
                )

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                if status != 200:
                    return self.reply(status, {"error": {"message": "Incorrect API key provided", "code": status}})
                choice = {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                self.reply(
                    200, {"id": "c", "object": "chat.completion", "created": 0, "model": "stub", "choices": [choice]}
                )

            def reply(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def sent_request(stub: StubScorer, question: str, reasoning: str, image_path: str | None) -> tuple[list[dict], list]:
    """What the client really sends for one item (captured by the stub), turned into TRL's form by hand: `image_url`
    parts become `{"type": "image"}`, their data URLs are decoded."""
    from PIL import Image

    from sophiavl_trl.judge import ThinkingRewardClient

    client = ThinkingRewardClient(stub.base_url, model="stub", max_retries=0)
    try:
        assert client.score([question], [reasoning], [image_path]) == [0.5]
    finally:
        client.close()
    messages, images = [], []
    for message in stub.requests.pop()["messages"]:
        if isinstance(message["content"], str):
            messages.append(message)
            continue
        parts = []
        for part in message["content"]:
            if part["type"] == "image_url":
                parts.append({"type": "image"})
                payload = part["image_url"]["url"].split(",", 1)[1]
                images.append(Image.open(io.BytesIO(base64.b64decode(payload))))
            else:
                parts.append(part)
        messages.append({"role": message["role"], "content": parts})
    return messages, images


def test_sft_rows_are_the_client_request(synthetic, tmp_path):
    from PIL import Image

    from sophiavl_trl.judge import DEFAULT_JUDGE_TEMPLATE, SCORE_CHOICES
    from sophiavl_trl.judge.sft import build_judge_sft_dataset, load_judge_records

    make_records(synthetic, tmp_path / "judge" / "records.jsonl")
    # One more image: large (downscaled by the client below 2048 x 2048 pixels) and transparent (the server pastes it
    # on white).
    big = Image.new("RGBA", (2400, 1800), (0, 0, 0, 0))
    big.paste((200, 30, 30, 255), (300, 300, 2100, 1500))
    big.save(tmp_path / "judge" / "big.png")
    with (tmp_path / "judge" / "records.jsonl").open("a") as f:
        f.write(
            json.dumps({"question": "What is drawn?", "reasoning": "A red box.", "score": 0.8, "image": "big.png"})
        )
    records = load_judge_records(tmp_path / "judge" / "records.jsonl")
    assert any(r.image is None for r in records) and any(r.image is not None for r in records)

    stub = StubScorer()
    try:
        dataset = build_judge_sft_dataset(records)
        for index, record in enumerate(records):
            row = dataset[index]
            path = record.image["path"] if record.image else None
            messages, images = sent_request(stub, record.question, record.reasoning, path)
            assert row["prompt"] == messages
            assert row["completion"] == [{"role": "assistant", "content": SCORE_CHOICES[round(record.score * 10)]}]
            assert len(row["images"]) == len(images) == (path is not None)
            for ours, sent in zip(row["images"], images):
                assert ours.size == sent.size and ours.mode == "RGB"
                if sent.mode != "RGB":  # vLLM pastes an image with transparency on white through its alpha channel
                    rgba = sent.convert("RGBA")
                    white = Image.new("RGB", rgba.size, (255, 255, 255))
                    white.paste(rgba, mask=rgba.split()[3])
                    sent = white
                assert ours.tobytes() == sent.tobytes()
    finally:
        stub.close()
    # The text is the published judge's evaluator prompt.
    last = dataset[len(records) - 1]
    assert last["prompt"][1]["content"][0]["text"] == DEFAULT_JUDGE_TEMPLATE.format(
        question="<image> What is drawn?", reasoning="A red box."
    )
    # The large image is downscaled as the client does (to at most 2048 x 2048 pixels), keeping its aspect ratio.
    width, height = last["images"][0].size
    assert width * height <= 4_194_304 < 2400 * 1800 and abs(width / height - 4 / 3) < 0.02
    assert last["images"][0].getpixel((0, 0)) == (255, 255, 255)

    # The `messages` form: the same conversation with the answer appended.
    messages = build_judge_sft_dataset(records[:2], sft_format="messages")
    assert messages[0]["messages"] == dataset[0]["prompt"] + dataset[0]["completion"]


# --------------------------------------------------------------------------------------------------------------------
# judge-records and judge-eval against servers
# --------------------------------------------------------------------------------------------------------------------


def write_completions(path: Path, n: int = 3) -> Path:
    rows = [{"question": f"What is {k}+{k}?", "completion": f"<think>{k}+{k}={2 * k}</think><answer>{2 * k}</answer>"}
            for k in range(n)]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows + rows[:1]))  # the first one twice
    return path


def test_judge_records_fails_when_every_request_is_rejected(tmp_path, capsys):
    """Bad input 12: a scorer that rejects every request (HTTP 401) must not give an empty records file and success."""
    from sophiavl_trl.cli import main

    completions = write_completions(tmp_path / "completions.jsonl")
    stub = StubScorer(status=401)
    out = tmp_path / "records.jsonl"
    try:
        args = ["judge-records", "--completions", str(completions), "--base-url", stub.base_url, "--model", "stub"]
        status = main([*args, "--out", str(out), "--quiet", "--max-retries", "0"])
    finally:
        stub.close()
    err = capsys.readouterr().err
    assert status == 1
    assert len(stub.requests) == 3  # each distinct item was tried (the duplicate once)
    assert "sophiavl-trl judge-records: error: the scorer at " in err
    assert "no score for any of the 3 items (HTTP 401 x3)" in err and "API key" in err
    assert not out.exists() and not list(tmp_path.glob("records.jsonl*"))


def test_judge_url_with_a_password_is_refused_without_showing_it(tmp_path, capsys):
    from sophiavl_trl.cli import main

    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"question": "What is 2+2?", "reasoning": "2+2=4.", "score": 1.0}) + "\n")
    url = "http://bob:hunter2@127.0.0.1:9/v1"
    assert main(["judge-eval", "--records", str(records), "--base-url", url, "--model", "m", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "sophiavl-trl judge-eval: error: " in captured.err and "API key" in captured.err
    assert "hunter2" not in captured.err + captured.out


@pytest.mark.vllm
def test_judge_commands_with_a_real_vllm_judge(vllm_judge, tmp_path, capsys):
    """judge-records then judge-eval against the real vLLM server (the tiny model, constrained to valid scores)."""
    from sophiavl_trl.cli import main
    from sophiavl_trl.judge import SCORE_CHOICES
    from sophiavl_trl.judge.sft import load_judge_records

    completions = write_completions(tmp_path / "completions.jsonl", n=4)
    out = tmp_path / "records" / "teacher.jsonl"
    server = ["--base-url", vllm_judge.base_url, "--model", vllm_judge.model, "--constrained-decoding", "--quiet"]
    assert main(["judge-records", "--completions", str(completions), *server, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_read"] == 5 and summary["duplicates"] == 1 and summary["written"] == 4
    assert sum(summary["score_histogram"].values()) == 4 and set(summary["score_histogram"]) <= {"0.0", *SCORE_CHOICES}
    records = load_judge_records(out)
    assert [r.reasoning for r in records] == [f"{k}+{k}={2 * k}" for k in range(4)]

    predictions = tmp_path / "predictions.jsonl"
    assert main(["judge-eval", "--records", str(out), *server, "--json", "--predictions", str(predictions)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["num_records"] == metrics["num_scored"] == 4 and metrics["num_failed"] == 0
    lines = [json.loads(line) for line in predictions.open()]
    errors = [abs(line["prediction"] - line["target"]) for line in lines]
    assert metrics["mae"] == pytest.approx(sum(errors) / 4)
    assert metrics["agreement_0.1"] == pytest.approx(sum(e <= 0.1 + 1e-9 for e in errors) / 4)


# --------------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------------


def load_script():
    spec = importlib.util.spec_from_file_location("train_thinking_reward_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_recipe(recipe: Path, *extra: str):
    from trl import ModelConfig, SFTConfig, TrlParser

    from sophiavl_trl.judge.sft import JudgeSFTScriptArguments

    parser = TrlParser((JudgeSFTScriptArguments, SFTConfig, ModelConfig))
    args = ["--config", str(recipe), *extra]
    if yaml.safe_load(recipe.read_text()).get("bf16"):
        args += ["--bf16", "false"]  # no GPU here: TrainingArguments refuses bf16
    return parser.parse_args_and_config(args)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipes_parse(recipe, tmp_path):
    from trl import ModelConfig, SFTConfig

    from sophiavl_trl.judge.sft import JudgeSFTScriptArguments

    values = yaml.safe_load(recipe.read_text())
    known = {f.name for cls in (JudgeSFTScriptArguments, SFTConfig, ModelConfig) for f in dataclasses.fields(cls)}
    assert set(values) <= known, sorted(set(values) - known)
    script_args, training_args, model_args = parse_recipe(
        recipe, "--judge_records", "r.jsonl", "--model_name_or_path", "m", "--output_dir", str(tmp_path)
    )
    assert training_args.max_length is None  # a truncated example loses its only target, the score
    assert script_args.sft_format == "prompt_completion"
    assert training_args.completion_only_loss in (None, True)
    for key, value in values.items():
        if key in ("model_name_or_path", "output_dir", "bf16", "report_to"):
            continue
        actual = next(getattr(a, key) for a in (script_args, training_args, model_args) if hasattr(a, key))
        assert actual == value or str(actual) == str(value), key
    assert RECIPES and {p.name for p in RECIPES} == {"config_sft.yaml", "config_cpu.yaml"}
    if recipe.name == "config_sft.yaml":
        assert values["model_name_or_path"] == "Qwen/Qwen2.5-VL-3B-Instruct"
        assert "accelerate_configs/zero2.yaml" in recipe.read_text()


@pytest.fixture(scope="module")
def trained_judge(tiny_model_dir, synthetic, tmp_path_factory):
    """The example script, with the CPU recipe, on generated records (image and text-only)."""
    folder = tmp_path_factory.mktemp("judge")
    make_records(synthetic, folder / "data" / "train.jsonl")
    make_records(synthetic, folder / "data" / "heldout.jsonl", offset=5)
    output = folder / "out"
    script_args, training_args, model_args = parse_recipe(
        ROOT / "examples" / "recipes" / "thinking_reward_model" / "config_cpu.yaml",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--judge_records",
        str(folder / "data" / "train.jsonl"),
        "--output_dir",
        str(output),
        "--max_steps",
        "6",
    )
    trainer = load_script().main(script_args, training_args, model_args)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"dir": output, "data": folder / "data", "losses": losses}


def test_judge_sft_trains_and_changes_the_weights(trained_judge, tiny_model_dir):
    from safetensors.torch import load_file

    assert len(trained_judge["losses"]) == 6 and all(math.isfinite(loss) for loss in trained_judge["losses"])
    before = load_file(Path(tiny_model_dir) / "model.safetensors")
    after = load_file(trained_judge["dir"] / "model.safetensors")
    assert before.keys() == after.keys()
    unchanged = [name for name in before if before[name].equal(after[name])]
    # Every parameter moves: the loss is on the score tokens, which depend on the text and (for image records) the
    # vision tower.
    assert not unchanged, unchanged
    # The saved folder is a complete judge: processor and chat template included.
    assert (trained_judge["dir"] / "chat_template.jinja").exists() or (
        trained_judge["dir"] / "tokenizer_config.json"
    ).exists()


# --------------------------------------------------------------------------------------------------------------------
# The trained judge, served by a real vLLM server
# --------------------------------------------------------------------------------------------------------------------


def vllm_tokens(base_url: str, model: str, messages: list[dict]) -> list[int]:
    import urllib.request

    server = base_url.rsplit("/v1", 1)[0]
    body = {"model": model, "messages": messages, "add_generation_prompt": True}
    request = urllib.request.Request(
        f"{server}/tokenize", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["tokens"]


@pytest.mark.slow
@pytest.mark.vllm
def test_trained_judge_served_by_vllm(trained_judge, tiny_model_dir, synthetic, tmp_path, capsys):
    from transformers import AutoProcessor
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from sophiavl_trl.cli import main
    from sophiavl_trl.judge import ThinkingRewardClient, build_judge_messages
    from sophiavl_trl.judge.sft import build_judge_sft_dataset, load_judge_records
    from sophiavl_trl.testing import start_judge_server

    heldout = load_judge_records(trained_judge["data"] / "heldout.jsonl")
    grpo_run = run_trust_grpo(tiny_model_dir, synthetic, tmp_path / "grpo", max_steps=2)  # before the server starts
    server = start_judge_server(trained_judge["dir"])
    try:
        client = ThinkingRewardClient(base_url=server.base_url, model=server.model, constrained_decoding=True)
        assert client.check_server() == [server.base_url]

        # 1. The server tokenizes the client's request exactly as SFT did: same ids, image tokens included.
        processor = AutoProcessor.from_pretrained(trained_judge["dir"])
        collator = DataCollatorForVisionLanguageModeling(processor, completion_only_loss=True)
        dataset = build_judge_sft_dataset(heldout)
        for index in (0, len(heldout) - 1):  # an image record and a text-only one
            record = heldout[index]
            batch = collator([dataset[index]])
            prompt_ids = batch["input_ids"][0][batch["labels"][0] == -100].tolist()
            sent = build_judge_messages(record.question, record.reasoning, image=record.image and record.image["path"])
            assert vllm_tokens(server.base_url, server.model, sent) == prompt_ids
        assert heldout[0].image is not None and heldout[-1].image is None

        # 2. Scored through the client with constrained decoding: every answer parses.
        scores = client.score(
            [r.question for r in heldout],
            [r.reasoning for r in heldout],
            [r.image["path"] if r.image else None for r in heldout],
        )
        assert all(not math.isnan(s) for s in scores)
        assert all(round(s * 10) / 10 == pytest.approx(s) for s in scores)
        client.close()

        # 3. judge-eval: its metrics agree with those scores (temperature 0).
        errors = [abs(s - r.score) for s, r in zip(scores, heldout)]
        output = tmp_path / "metrics.json"
        predictions = tmp_path / "predictions.jsonl"
        capsys.readouterr()  # drop what the training run printed
        status = main(
            [
                "judge-eval",
                "--records",
                str(trained_judge["data"] / "heldout.jsonl"),
                "--base-url",
                server.base_url,
                "--model",
                server.model,
                "--constrained-decoding",
                "--json",
                "--quiet",
                "--output",
                str(output),
                "--predictions",
                str(predictions),
            ]
        )
        assert status == 0
        metrics = json.loads(capsys.readouterr().out)
        assert metrics == json.loads(output.read_text())
        assert metrics["num_records"] == metrics["num_scored"] == len(heldout)
        assert metrics["num_unparsed"] == metrics["num_failed"] == 0
        assert metrics["mae"] == pytest.approx(sum(errors) / len(errors))
        assert metrics["agreement_0.1"] == pytest.approx(sum(e <= 0.1 + 1e-9 for e in errors) / len(errors))
        assert [json.loads(line)["prediction"] for line in predictions.open()] == pytest.approx(scores)

        # 4. judge-records: records from the Trust-GRPO run's logged completions, scored by this server.
        import pyarrow.parquet as pq

        tables = sorted((grpo_run / "completions").glob("completions_*.parquet"))
        assert len(tables) == 2
        rows = sum(pq.read_table(t).num_rows for t in tables)
        out = tmp_path / "records" / "from_run.jsonl"
        status = main(
            [
                "judge-records",
                "--completions",
                str(grpo_run),
                "--registry",
                str(synthetic),
                "--datasets",
                "synthetic_image,synthetic_text",
                "--base-url",
                server.base_url,
                "--model",
                server.model,
                "--constrained-decoding",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        assert status == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["rows_read"] == rows
        accounted = summary["written"] + summary["unscored"] + summary["missing_image"]
        assert accounted + summary["duplicates"] + summary["unusable"] == rows and summary["missing_image"] == 0
        assert summary["unscored"] == 0 and summary["written"] > 0
        records = load_judge_records(out)
        assert len(records) == summary["written"] == sum(summary["score_histogram"].values())
        problems = {row["problem"] for row in json.loads((synthetic.parent / "synthetic_image.json").read_text())}
        assert any(record.image is not None for record in records)  # images recovered from the training data
        for record in records:
            if record.image is not None:  # an image prompt: its question is the training row's problem
                assert record.question in problems and Path(record.image["path"]).is_file()
    finally:
        server.stop()


def test_judge_records_join_the_rows_a_real_run_logged(tiny_model_dir, synthetic, tmp_path, capsys):
    """The trainer logs each completion's question, source and row_index; judge-records joins the image on them."""
    import pyarrow.parquet as pq

    from sophiavl_trl.cli import main
    from sophiavl_trl.data import load_sophiavl_dataset
    from sophiavl_trl.judge.sft import load_judge_records

    run = run_trust_grpo(tiny_model_dir, synthetic, tmp_path / "grpo", max_steps=2)
    logged = [row for table in sorted((run / "completions").glob("*.parquet")) for row in pq.read_table(table).to_pylist()]  # fmt: skip
    names = "synthetic_image,synthetic_text"
    training = load_sophiavl_dataset(names, synthetic, min_pixels=3136, max_pixels=12544).with_format(None)
    rows = {(row["source"], row["row_index"]): row for row in training}
    assert logged and all(row["question"] == rows[row["source"], row["row_index"]]["problem"] for row in logged)
    expected: dict[str, set] = {}  # question -> the images of the rows it was logged with
    for row in logged:
        images = rows[row["source"], row["row_index"]]["images"]
        expected.setdefault(row["question"], set()).add(os.path.normpath(images[0]["path"]) if images else None)

    capsys.readouterr()  # drop what the training run printed
    stub = StubScorer(answer="0.4")
    out = tmp_path / "records.jsonl"
    try:
        server = ["--base-url", stub.base_url, "--model", "stub", "--quiet", "--out", str(out)]
        assert main(["judge-records", "--completions", str(run), "--registry", str(synthetic), "--datasets", names, *server]) == 0  # fmt: skip
    finally:
        stub.close()
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_read"] == len(logged) and summary["missing_image"] == 0 and summary["written"] > 0
    records = load_judge_records(out)
    assert any(record.image is not None for record in records)
    for record in records:
        assert (os.path.normpath(record.image["path"]) if record.image else None) in expected[record.question]
