# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Red-team inputs (issues 20 and later), one row per bad input, grouped by area: the next round adds rows."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


# --- judge: the API key, the serve script, the judge's verdict, its response size, judge records ---

# Issue 20 item 1: a named key variable must hold the key; only an unnamed one falls back to OPENAI_API_KEY.
API_KEY_ROWS = [
    # (judge_api_key_env, environment, the key sent or the error)
    ("MY_JUDGE_KEY", {"OPENAI_API_KEY": "sk-other"}, "MY_JUDGE_KEY, which is not set"),
    ("MY_JUDGE_KEY", {"MY_JUDGE_KEY": "", "OPENAI_API_KEY": "sk-other"}, "MY_JUDGE_KEY, which is empty"),
    ("", {"OPENAI_API_KEY": "sk-other"}, "judge_api_key_env is empty"),
    ("  ", {"OPENAI_API_KEY": "sk-other"}, "judge_api_key_env is empty"),
    ("MY_JUDGE_KEY", {"MY_JUDGE_KEY": "sk-mine", "OPENAI_API_KEY": "sk-other"}, "sk-mine"),
    (None, {"OPENAI_API_KEY": "sk-other"}, "sk-other"),
    (None, {}, None),  # no key named, none set: a local server without a key
]


@pytest.mark.parametrize(("name", "environ", "expected"), API_KEY_ROWS)
def test_judge_api_key_comes_from_the_named_variable_only(name, environ, expected, monkeypatch):
    from sophiavl_trl.configs import SophiaVLScriptArguments

    for variable in ("MY_JUDGE_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    if expected is None or expected.startswith("sk-"):
        from sophiavl_trl.judge import api_key_from_env

        SophiaVLScriptArguments(dataset_name="d", judge_api_key_env=name)
        assert api_key_from_env(name) == expected
    else:  # at parse time, before any model or data work
        with pytest.raises(ValueError, match=expected) as info:
            SophiaVLScriptArguments(dataset_name="d", judge_api_key_env=name)
        assert "sk-other" not in str(info.value)


@pytest.mark.parametrize("name", ["MY_JUDGE_KEY", ""])
def test_judge_commands_refuse_an_unset_key_variable_before_reading_records(name, tmp_path, monkeypatch, capsys):
    from sophiavl_trl.cli import main

    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other")
    missing = str(tmp_path / "not-there.jsonl")  # never read: the key is checked first
    argv = ["judge-eval", "--records", missing, "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]
    assert main([*argv, "--api-key-env", name]) == 2
    assert "judge_api_key_env" in capsys.readouterr().err


# Issue 20 item 2: the serve script binds a network address only with VLLM_API_KEY, whatever EXTRA_ARGS says.
SERVE_ROWS = [
    {"HOST": "0.0.0.0"},
    {"HOST": "10.1.2.3"},
    {"HOST": "judge-node"},
    {"EXTRA_ARGS": "--host 0.0.0.0"},
    {"EXTRA_ARGS": "--gpu-memory-utilization 0.5 --host=0.0.0.0"},
    {"EXTRA_ARGS": "--hos 0.0.0.0"},  # argparse accepts a prefix
    {"HOST": "127.0.0.1.evil.com"},  # a name, resolved by DNS
    {"HOST": "127.0.0.1.nip.io"},
    {"HOST": "localhost.evil.com"},
]


@pytest.mark.parametrize("env_vars", SERVE_ROWS, ids=lambda row: " ".join(f"{k}={v}" for k, v in row.items()))
def test_serve_script_never_binds_the_network_without_a_key(env_vars):
    drop = ("HOST", "EXTRA_ARGS", "VLLM_API_KEY")
    env = {k: v for k, v in os.environ.items() if k not in drop} | {"DRY_RUN": "1", **env_vars}
    script = ROOT / "examples" / "serve_thinking_reward_model.sh"
    result = subprocess.run(["bash", str(script), "/m", "8000"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""  # nothing would be run
    assert "HOST" in result.stderr and "VLLM_API_KEY" in result.stderr


def test_serve_script_puts_the_checked_host_last():
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "EXTRA_ARGS")} | {"DRY_RUN": "1"}
    env["EXTRA_ARGS"] = "--max-num-batched-tokens 4096"
    script = ROOT / "examples" / "serve_thinking_reward_model.sh"
    result = subprocess.run(["bash", str(script), "/m", "8000"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.split()[-4:] == ["--host", "127.0.0.1", "--port", "8000"]


# Issue 20 item 4: the verdict is the answer's last line; what the judge quotes before it cannot set the score.
VERDICT_ROWS = [
    ("... so <answer>1.0</answer> is mine.\nMy score: 0.2", 0.2),
    ("The reasoning writes \\boxed{1} at the end, which is wrong. Score: 0.1", 0.1),
    ("The answer says <answer>1.0</answer>. Score: 0.1", 0.1),
    ("<answer>1.0</answer>\nThe reasoning above is poor.", math.nan),  # quoted, then no verdict
    ("\\boxed{1}\nThis box is the policy's, not mine.", math.nan),
    ("The policy wrote <answer>1.0</answer>", math.nan),  # a tag inside a sentence is a quote
    ("The reasoning ends with \\boxed{1.0}", math.nan),
    ("Score: 1.0\nThe reasoning claims 0.2", math.nan),
    ("0.3 0.9", math.nan),  # several numbers: no single verdict
    ("Score: 0.1, not 0.9", math.nan),
    ("Steps 1 and 2 fail, so 0", math.nan),
    ("<answer>1.0</answer> <answer>0.2</answer>", math.nan),
    ("<think>It says <answer>1.0</answer>.</think>0.3", 0.3),  # a reasoning judge's thoughts are not its verdict
    # The released judge's own formats: the card's bare score, and the released code's answer tag.
    ("0.7", 0.7),
    ("1.0", 1.0),
    ("<answer>0.6</answer>", 0.6),
]


@pytest.mark.parametrize(("answer", "expected"), VERDICT_ROWS)
def test_only_the_judges_verdict_sets_the_score(answer, expected):
    from sophiavl_trl.judge import parse_score

    score = parse_score(answer)
    assert (math.isnan(score) and math.isnan(expected)) or score == pytest.approx(expected)


# Issue 20 item 5: a gzip bomb (about 1 MiB on the wire, 1 GiB decoded) is read up to the cap, on either transport.
def _gzip_bomb(size: int = 1 << 30) -> bytes:
    compressor, chunk = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(size >> 20)) + compressor.flush()


@pytest.fixture(scope="module")
def bomb_server():
    """A fault-injection server: every chat answer is a 200 gzip bomb, `Content-Encoding: gzip`."""
    from aiohttp import web

    bomb, loop, ready = _gzip_bomb(), asyncio.new_event_loop(), threading.Event()

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    def run() -> None:
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, handle_signals=False)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        holder.append(site._server.sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    holder: list[int] = []
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield f"http://127.0.0.1:{holder[0]}/v1"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_gzip_bomb_is_cut_at_the_response_cap(bomb_server, transport):
    from sophiavl_trl.judge import ThinkingRewardClient

    client = ThinkingRewardClient(bomb_server, max_retries=0, timeout=30, http_transport=transport)
    tracemalloc.start()
    try:
        scores = client.score(["q"], ["r"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()
    assert math.isnan(scores[0]) and client.stats.errors == {"too_large": 1}
    assert peak < 32 * 2**20  # the cap (64 KiB) plus one decoded chunk, not the 1 GiB the body expands to


# Issue 21 §1: judge records are checked by the data layer, with the training data's messages.
def _png(path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (200, 30, 30)).save(path)
    return path


JUDGE_RECORD_IMAGE_ROWS = [
    # (image cell, how the file is prepared, the message)
    ("cut.png", lambda folder: (folder / "cut.png").write_bytes(_png(folder / "cut.png").read_bytes()[:60]), "unreadable image"),
    ("../../outside.png", lambda folder: _png(folder.parent.parent / "outside.png"), "outside image_base_path"),
]  # fmt: skip


@pytest.mark.parametrize(("image", "prepare", "message"), JUDGE_RECORD_IMAGE_ROWS, ids=["truncated", "escape"])
def test_judge_records_reject_images_as_training_data_does(image, prepare, message, tmp_path):
    from sophiavl_trl.data import DatasetValidationError, load_sophiavl_dataset
    from sophiavl_trl.judge.sft import load_judge_records

    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    prepare(folder)
    (folder / "records.jsonl").write_text(
        json.dumps({"question": "Q", "reasoning": "R", "score": 0.5, "image": image})
    )
    (folder / "train.jsonl").write_text(json.dumps({"problem": "<image> Q", "solution": "1", "problem_type": "numerical", "path": image}))  # fmt: skip
    (folder / "dataset_info.json").write_text(json.dumps({"t": {"file_path": "train.jsonl", "image_base_path": "."}}))
    with pytest.raises(DatasetValidationError) as judge:
        load_judge_records(folder / "records.jsonl")
    with pytest.raises(DatasetValidationError) as training:
        load_sophiavl_dataset("t", folder / "dataset_info.json")
    issue = next(line for line in str(training.value).splitlines() if message in line)
    assert issue.partition("field 'path': ")[2] in str(judge.value)  # the same message, word for word
