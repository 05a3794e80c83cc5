# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Fault injection for the thinking-judge client, against small local servers on 127.0.0.1.

A fake server is used here only to inject faults (slow answers, 5xx, 4xx, garbage, refused connections, a never-ending
answer) and to capture the exact requests; `test_judge_vllm.py` proves the integration against the real vLLM judge,
and `test_red_team.py` the response-size cap on both transports. Time checks are bounds only: a call must return
within the client's `deadline` (plus a margin for a loaded CI machine), never a speed figure. Each guarantee of the
client is tested once.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import json
import logging
import math
import os
import pickle
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from sophiavl_trl.judge import (
    DEFAULT_JUDGE_TEMPLATE,
    SCORE_CHOICES,
    JudgeUnavailableError,
    ThinkingRewardClient,
    build_judge_messages,
    encode_image_data_url,
    normalize_base_url,
    parse_score,
)
from sophiavl_trl.judge.prompt import RELEASED_CODE_JUDGE_TEMPLATE
from sophiavl_trl.rewards.judge_rewards import ThinkingReward


pytestmark = pytest.mark.timeout(60)

MODEL = "thinking-reward-model"
# Elapsed-time checks allow this much on top of the documented bound (thread start, a loaded 2-core CI machine).
TOLERANCE = 1.5


# ------------------------------------------------------------------------------------------------ fake judge server


def _completion(content: str) -> dict:
    message = {"role": "assistant", "content": content}
    return {"id": "c", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip


class FakeJudge:
    """An OpenAI-compatible chat server on 127.0.0.1 in a background thread, driven by `behaviour`.

    `behaviour(body, attempt)` gets the request JSON and how many times this exact body was seen before (0 for the
    first attempt) and returns an action: `("ok", text)`, `("status", code[, message])`, `("sleep", seconds, text)`,
    `("raw", status, bytes)` or `("trickle",)` (a 200 whose body never ends: a byte every 0.1 s). `models_status`
    makes `GET /models` fail with that status.
    """

    def __init__(self, behaviour: Callable[[dict, int], tuple] | None = None, models: list[str] | None = None):
        self.behaviour = behaviour or (lambda body, attempt: ("ok", "0.7"))
        self.models = [MODEL] if models is None else models
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.seen: Counter = Counter()
        self.in_flight = self.max_in_flight = 0
        self.models_status: int | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "fake judge did not start"
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _models(self, request: web.Request) -> web.Response:
        if self.models_status:
            return web.json_response({"object": "error", "message": "injected"}, status=self.models_status)
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            key = json.dumps(body["messages"], sort_keys=True)
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            action = self.behaviour(body, self.seen[key])
            self.seen[key] += 1
            if action[0] == "sleep":
                await asyncio.sleep(action[1])
            if action[0] == "status":
                message = action[2] if len(action) > 2 else f"injected {action[1]}"
                return web.json_response({"object": "error", "message": message}, status=action[1])
            if action[0] == "raw":
                return web.Response(status=action[1], body=action[2], content_type="text/plain")
            if action[0] == "trickle":
                response = web.StreamResponse(headers={"Content-Type": "application/json"})
                await response.prepare(request)
                while True:
                    await response.write(b" ")
                    await asyncio.sleep(0.1)
            return web.json_response(_completion(action[-1]))
        finally:
            self.in_flight -= 1

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def fake_judge():
    servers: list[FakeJudge] = []

    def make(behaviour: Callable[[dict, int], tuple] | None = None, models: list[str] | None = None) -> FakeJudge:
        servers.append(FakeJudge(behaviour, models))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def refused_url() -> str:
    """A URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{_free_port()}/v1"


def fast_client(base_url: Any, **kwargs: Any) -> ThinkingRewardClient:
    """A client with test-sized limits: 0.5 s per attempt, 2 retries (after the OpenAI client's ~0.5 and ~1 s), a call
    deadline of 6 s (every fault below but the endless answer ends well before it)."""
    options = {"timeout": 0.5, "max_retries": 2, "deadline": 6.0, **kwargs}
    return ThinkingRewardClient(base_url=base_url, model=MODEL, **options)


def items(n: int, tag: str = "") -> tuple[list[str], list[str]]:
    return [f"Question {i}{tag}: what is {i} + 1?" for i in range(n)], [f"{i} + 1 = {i + 1}{tag}." for i in range(n)]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def all_nan(scores: list[float]) -> bool:
    return bool(scores) and all(math.isnan(s) for s in scores)


# ------------------------------------------------------------------------------------------------ the request


def _card_prompt(prompt_str: str, reasoning_str: str, image_path: str | None = None) -> list[dict]:
    """The model card's request construction, copied verbatim (minus the HTTP call) from its `get_process_reward`."""

    def encode_image_base64(image_path):
        with open(image_path, "rb") as image_file:
            return base64.b64encode(image_file.read()).decode("utf-8")

    image_base64 = None
    if image_path is not None:
        image_base64 = encode_image_base64(image_path)
        if "<image>" not in prompt_str:
            prompt_str = f"<image> {prompt_str}"

    prompt = f"""You are an expert reasoning evaluator. I will give you a multimodal question and an answer. Your goal is to judge a reward process and give a score between 0 and 1. You should focus on whether the reasoning process is good rather than whether the final answer is correct.### Evaluation Criteria:\n- **Logical Soundness**: Does each step follow logically from the previous one?\n- **Correct Reasoning**: Are the methods and steps used appropriate and valid? Are the facts and lemmas correctly stated and applied?\n- **Error Identification**: Are there any logical fallacies, unsupported assumptions, or incorrect steps?\n- **Language Consistency**: Is the reasoning process conducted in a single, consistent language without mixing different languages?\n- **Redundancy**: Is the reasoning concise, without unnecessary repetition or extraneous steps?\nProvide a single score from **{{0, 0.1, 0.2, ..., 1.0}}** based on the reasoning quality, where:\n - **0**: Completely flawed reasoning\n- **1**: Perfectly sound reasoning\n- Intermediate values (e.g., 0.3, 0.7) should reflect partial correctness or minor errors.\nBe strict, reward the good process and punish the bad one. You should only output the score without any explanation.
    Question: {prompt_str}
    Reasoning process: {reasoning_str}
    """  # noqa: E501

    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "text", "text": prompt}]},
    ]

    if image_base64 is not None:
        messages[1]["content"].append(
            {
                "type": "image_url",
                "image_url": {"url": f"data:image/png;base64,{image_base64}"},
            }
        )
    return messages


@pytest.fixture
def png_path(tmp_path) -> str:
    path = tmp_path / "figure.png"
    Image.new("RGB", (32, 24), (250, 120, 0)).save(path)
    return str(path)


class TestRequestShape:
    def test_default_template_renders_the_card_prompt(self):
        # The template is the card's f-string: rendering it gives the card's text for any question and reasoning.
        question, reasoning = "What is {x}? 50% of {{y}}", "Reasoning with braces {a} and a newline\nhere."
        assert build_judge_messages(question, reasoning) == _card_prompt(question, reasoning)
        assert "**{0, 0.1, 0.2, ..., 1.0}**" in DEFAULT_JUDGE_TEMPLATE.format(question="", reasoning="")

    def test_released_code_template_adds_only_the_answer_format_line(self):
        # The released training code's prompt: the card's, plus one line before the final indentation.
        card = DEFAULT_JUDGE_TEMPLATE.format(question="Q", reasoning="R")
        released = RELEASED_CODE_JUDGE_TEMPLATE.format(question="Q", reasoning="R")
        assert released == card[: -len("    ")] + "    Your response format: <answer>your_score</answer>\n    "

    def test_messages_with_image_match_the_card(self, png_path):
        # A PNG file under the pixel limit is sent byte for byte as the card does, with the "<image> " prefix.
        assert build_judge_messages("How many apples?", "I count 3.", image=png_path) == _card_prompt(
            "How many apples?", "I count 3.", png_path
        )
        # No second prefix when the question already has an <image> tag.
        messages = build_judge_messages("<image> How many?", "3.", image=png_path)
        assert messages == _card_prompt("<image> How many?", "3.", png_path)

    def test_sent_request_is_a_chat_completion_matching_the_card(self, fake_judge, png_path):
        server = fake_judge()
        client = fast_client(server.base_url)
        scores = client.score(["How many apples?", "What is 2+2?"], ["I count 3.", "2+2=4"], [png_path, None])
        assert scores == [0.7, 0.7]
        by_question = {body["messages"][1]["content"][0]["text"]: body for body in server.requests}
        expected = [_card_prompt("How many apples?", "I count 3.", png_path), _card_prompt("What is 2+2?", "2+2=4")]
        for messages in expected:
            body = by_question[messages[1]["content"][0]["text"]]
            assert body["messages"] == messages
            assert (body["model"], body["temperature"], body["max_tokens"]) == (MODEL, 0.0, 16)
            # Off by default (not every server supports it); the old field must never be sent.
            assert "structured_outputs" not in body and "guided_choice" not in body
        assert fast_client(server.base_url, constrained_decoding=True).score(*items(1)) == [0.7]
        assert server.requests[-1]["structured_outputs"] == {"choice": SCORE_CHOICES}
        assert SCORE_CHOICES == ["0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"]

    def test_large_image_is_downscaled_below_the_pixel_limit(self, tmp_path):
        path = tmp_path / "big.jpg"
        Image.new("RGB", (400, 300), (9, 9, 9)).save(path, format="JPEG")
        raw = path.read_bytes()
        # Under the limit: sent as is, with its real type.
        assert encode_image_data_url(raw, max_pixels=400 * 300) == (
            f"data:image/jpeg;base64,{base64.b64encode(raw).decode()}"
        )
        # Over the limit: downscaled, aspect ratio kept.
        for image, fmt in ((str(path), "PNG"), (Image.open(path), "JPEG")):
            url = encode_image_data_url(image, max_pixels=10_000, image_format=fmt)
            assert url.startswith(f"data:image/{fmt.lower()};base64,")
            small = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
            assert small.width * small.height <= 10_000
            assert abs(small.width / small.height - 4 / 3) < 0.02

    def test_equal_images_are_encoded_once(self, fake_judge, monkeypatch):
        # GRPO passes each prompt's image with every completion, as distinct but equal objects.
        from sophiavl_trl.judge import prompt

        calls, original = [], prompt.encode_image_data_url

        def counting(image: Any, *args: Any, **kwargs: Any) -> str:
            calls.append(image)
            return original(image, *args, **kwargs)

        monkeypatch.setattr(prompt, "encode_image_data_url", counting)
        server = fake_judge()
        base = [Image.new("RGB", (16, 16), color) for color in ("red", "blue")]
        assert fast_client(server.base_url).score(*items(8), [base[i % 2].copy() for i in range(8)]) == [0.7] * 8
        assert sum(isinstance(image, Image.Image) for image in calls) == 2  # then sent as data URLs
        urls = [body["messages"][1]["content"][1]["image_url"]["url"] for body in server.requests]
        assert len(urls) == 8 and len(set(urls)) == 2

    def test_custom_template_and_invalid_template(self, fake_judge):
        server = fake_judge()
        client = fast_client(server.base_url, template="Q={question} R={reasoning} {{literal}}")
        client.score(["q"], ["r"])
        assert server.requests[0]["messages"][1]["content"][0]["text"] == "Q=q R=r {literal}"
        with pytest.raises(ValueError, match="question"):
            ThinkingRewardClient(template="only {reasoning}")
        with pytest.raises(ValueError, match="braces"):
            ThinkingRewardClient(template="{question} {reasoning} {oops}")

    def test_bad_inputs_raise(self, fake_judge, tmp_path):
        client = fast_client(fake_judge().base_url)
        with pytest.raises(ValueError, match="reasonings"):
            client.score(["a", "b"], ["r"])
        with pytest.raises(ValueError, match="images"):
            client.score(["a"], ["r"], [None, None])
        with pytest.raises(ValueError, match="single string"):
            client.score("abc", "def")
        with pytest.raises(OSError):
            client.score(["q"], ["r"], [str(tmp_path / "missing.png")])
        assert client.score([], []) == []


# ------------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.7", 0.7),
        ("1", 1.0),
        ("0", 0.0),
        (" 0.3\n", 0.3),
        ("**0.6**", 0.6),
        ("0.5.", 0.5),
        (".7", 0.7),
        ("<answer>0.4</answer>", 0.4),
        ("<think>the steps look right</think><answer> 0.9 </answer>", 0.9),
        ("\\boxed{0.8}", 0.8),
        ("The final score is \\boxed{1.0}.", 1.0),
        ("Score: 0.2", 0.2),
        ("Score: **0.8**", 0.8),
        ("score = 0.6", 0.6),
        ("The score is 0.4", 0.4),
        ("Reasoning is mostly fine.\n0.7", 0.7),
        ("0.7/1", 0.7),
        ("7/10", 0.7),
        ("Score: 7 out of 10", 0.7),
        ("70%", 0.7),
        ("I cannot judge this.", math.nan),
        ("Step 1 is wrong and step 2 too.", math.nan),  # numbers, but no score
        ("", math.nan),
        (None, math.nan),
        ("1/0", math.nan),
        ("<answer>good</answer>", math.nan),
        # Outside [0, 1]: a broken answer, not a confident one. NaN, never clamped to 0 or 1.
        ("7", math.nan),
        ("-1", math.nan),
        ("1.5", math.nan),
        ("Score: 8", math.nan),
        ("<answer>-0.2</answer>", math.nan),
    ],
)
def test_parse_score(text, expected):
    result = parse_score(text)
    if math.isnan(expected):
        assert math.isnan(result)
    else:
        assert result == pytest.approx(expected)


def test_out_of_range_score_is_nan_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="sophiavl_trl"):
        assert math.isnan(parse_score("7")) and math.isnan(parse_score("-1"))
    assert "'7'" in caplog.text and "'-1'" in caplog.text and "outside [0, 1]" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sophiavl_trl"):
        assert parse_score("1") == 1.0 and math.isnan(parse_score("no score here"))
    assert caplog.text == ""  # in-range scores and plain garbage are not warned about here


@pytest.mark.parametrize(
    "text",
    [
        "score" + " " * 2000,  # took 78 s with the old regex (cubic backtracking)
        "score" + " " * 200_000 + "x",
        "score" * 50_000,
        "Score: " * 30_000,
        "1" + " " * 200_000 + "x",
        "1" * 200_000 + " x",
        "7 out of" + " " * 200_000,
        "1 /" + " " * 200_000 + "x",
        "<answer>" * 30_000,
        "\\boxed{" * 30_000,
        "0.5 " * 50_000 + "x",
        "score\n" * 30_000,
    ],
)
def test_parse_score_is_fast_on_adversarial_answers(text):
    # Not a speed target but a guard against super-linear regexes: linear parsing takes milliseconds even on a loaded
    # 2-core machine; the backtracking it replaces took 78 s on 2,000 characters and would not end on 200,000.
    start = time.perf_counter()
    result = parse_score(text)
    assert time.perf_counter() - start < 5.0
    assert math.isnan(result) or 0.0 <= result <= 1.0


def test_normalize_base_url_and_credentials_in_the_url():
    assert normalize_base_url("http://h:80/v1/chat/completions/") == "http://h:80/v1"
    assert normalize_base_url("h:8000") == "http://h:8000/v1"
    assert normalize_base_url("https://h/openai/v1") == "https://h/openai/v1"
    assert normalize_base_url("http://h:8000/v1/models") == "http://h:8000/v1"
    with pytest.raises(ValueError, match="API key") as excinfo:
        ThinkingRewardClient(base_url=f"http://judge:{PASSWORD}@127.0.0.1:8000/v1")
    assert PASSWORD not in str(excinfo.value) and "http://127.0.0.1:8000/v1" in str(excinfo.value)


# ------------------------------------------------------------------------------------------------ faults

# (fault, the server's behaviour (None: nothing listens), client options, the error kind, requests per item)
FAULT_ROWS = [
    ("timeout", lambda body, attempt: ("sleep", 10.0, "0.5"), {"timeout": 0.3, "max_retries": 1}, "timeout", 2),
    ("refused", None, {}, "connection", 0),
    ("503", lambda body, attempt: ("status", 503), {}, "http_503", 3),  # openai's retries: max_retries + 1 attempts
    ("404", lambda body, attempt: ("status", 404), {}, "http_404", 1),  # a client error is not retried
    ("no verdict", lambda body, attempt: ("ok", "the the cat 3 of"), {}, "unparseable", 1),  # nor a deterministic one
    ("not json", lambda body, attempt: ("raw", 200, b"<html>not json</html>"), {}, "bad_response", 1),
]


@pytest.mark.parametrize(
    ("fault", "behaviour", "options", "kind", "attempts"), FAULT_ROWS, ids=[r[0] for r in FAULT_ROWS]
)
def test_a_failed_item_is_nan_counted_by_kind_within_the_bound(fake_judge, refused_url, fault, behaviour, options, kind, attempts):  # fmt: skip
    server = fake_judge(behaviour) if behaviour else None
    client = fast_client(server.base_url if server else refused_url, **options)
    scores, elapsed = timed(lambda: client.score(*items(3)))
    assert all_nan(scores)  # NaN, never 0, and no exception
    assert elapsed <= client.deadline + TOLERANCE and client.stats.errors == {kind: 3}  # ended before the deadline
    assert client.stats.failures == 3 and client.stats.scored == 0
    assert (client.stats.parse_failures, client.stats.request_failures) == (
        (3, 0) if kind == "unparseable" else (0, 3)
    )
    assert server is None or len(server.requests) == 3 * attempts


def test_never_ending_answer_is_cut_at_the_call_deadline(fake_judge):
    # A byte every 0.1 s: no read ever times out, so only the whole-call deadline can end the call.
    server = fake_judge(lambda body, attempt: ("trickle",))
    client = fast_client(server.base_url, timeout=0.5, max_retries=0, deadline=2.0)
    scores, elapsed = timed(lambda: client.score(*items(3)))
    assert all_nan(scores)
    assert 2.0 - 0.1 <= elapsed <= 2.0 + TOLERANCE
    assert client.stats.errors == {"deadline": 3} and client.stats.request_failures == 3


def test_replicas_fail_over_before_retrying(fake_judge, refused_url):
    broken = fake_judge(lambda body, attempt: ("status", 503))
    live = fake_judge()
    client = fast_client([refused_url, broken.base_url, live.base_url])
    scores, elapsed = timed(lambda: client.score(*items(30)))
    assert scores == [0.7] * 30 and client.stats.errors == {}
    assert elapsed < 2.0  # the first pass fails over at once: no retry backoff on the dead or failing replica
    # Two thirds of the items started on the refused or the broken replica: one attempt each on the broken one.
    assert len(broken.requests) == 20 and len(live.requests) == 30


def test_load_is_spread_round_robin_over_replicas(fake_judge):
    servers = [fake_judge(lambda body, attempt: ("sleep", 0.05, "0.2")) for _ in range(2)]
    client = fast_client([s.base_url for s in servers])
    assert client.score(*items(40)) == [0.2] * 40
    assert client.score(*items(5, tag="b")) == [0.2] * 5  # round robin continues across calls
    assert sorted(len(s.requests) for s in servers) == [22, 23]


def test_concurrency_is_bounded_across_calls(fake_judge):
    server = fake_judge(lambda body, attempt: ("sleep", 0.1, "0.5"))
    client = fast_client(server.base_url, max_concurrency=3)
    threads = [threading.Thread(target=client.score, args=items(6, tag=f"-{k}")) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert client.stats.scored == 12 and server.max_in_flight == 3  # one semaphore for the client, used in full


# ------------------------------------------------------------------------------------------------ threads and loops


def test_score_inside_a_running_event_loop_and_after_close(fake_judge):
    client = fast_client(fake_judge().base_url)

    async def main() -> list[float]:
        return client.score(*items(3))  # a blocking call from a coroutine: the client's loop runs it

    assert asyncio.run(main()) == [0.7] * 3
    assert client._thread.daemon
    client.close()
    assert client.score(*items(2)) == [0.7] * 2  # a closed client starts a new loop
    client.close()


def test_ascore_from_a_daemon_loop_like_trl(fake_judge):
    # TRL runs async reward functions on an event loop in a daemon thread and waits from the main thread.
    client = fast_client(fake_judge().base_url)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        for _ in range(2):  # reused across steps
            assert asyncio.run_coroutine_threadsafe(client.ascore(*items(4)), loop).result(10) == [0.7] * 4
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


# ------------------------------------------------------------------------------------------------ env, secrets, health


SECRET = "sk-test-very-secret-4242"
PASSWORD = "pw-very-secret-4343"


def test_env_var_compatibility(fake_judge, monkeypatch):
    server = fake_judge(models=["my-judge"])
    monkeypatch.setenv("OPENAI_API_URL", f"{server.base_url}/chat/completions")  # the reference code's form
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("REWARD_MODEL", "my-judge")
    client = ThinkingRewardClient(timeout=2.0)
    assert (client.base_urls, client.model) == ([server.base_url], "my-judge")
    assert client.score(["q"], ["r"]) == [0.7]
    assert server.headers[0]["Authorization"] == f"Bearer {SECRET}" and server.requests[0]["model"] == "my-judge"
    # Arguments win over the environment; a comma-separated URL lists replicas.
    explicit = ThinkingRewardClient(base_url="http://127.0.0.1:9/v1", model="other")
    assert explicit.base_urls == ["http://127.0.0.1:9/v1"] and explicit.model == "other"
    monkeypatch.setenv("OPENAI_API_URL", "http://a:1/v1/chat/completions,http://b:2/v1")
    assert ThinkingRewardClient().base_urls == ["http://a:1/v1", "http://b:2/v1"]


def test_api_key_never_in_repr_logs_errors_or_pickle(fake_judge, monkeypatch, caplog):
    # A misbehaving server that echoes the Authorization header in its error messages.
    def behaviour(body: dict, attempt: int) -> tuple:
        return ("status", 401, f"bad key {SECRET}") if attempt == 0 else ("ok", "0.5")

    server = fake_judge(behaviour)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = fast_client(server.base_url, api_key=SECRET)
    with caplog.at_level(logging.DEBUG):
        scores = client.score(*items(2))
        with pytest.raises(JudgeUnavailableError) as excinfo:
            fast_client(f"http://127.0.0.1:{_free_port()}/v1", api_key=SECRET).check_server()
    assert all_nan(scores)  # 401 is not retried
    assert server.headers[0]["Authorization"] == f"Bearer {SECRET}"  # ... but the key was used
    # The NaNs are logged with their kind and the server's last message, redacted.
    assert "2 of 2 items got no score (NaN): 2 http_401" in caplog.text and "bad key ***" in caplog.text
    assert SECRET not in caplog.text and SECRET not in str(excinfo.value)
    assert SECRET not in repr(client) and SECRET not in str(client)
    assert SECRET not in json.dumps(client.to_dict()) and SECRET not in repr(client.stats)
    payload = pickle.dumps(client)
    assert SECRET.encode() not in payload
    # Unpickled (or deep-copied: the same path), the key comes from the environment again.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    for restored in (pickle.loads(payload), copy.deepcopy(client)):
        assert restored.to_dict() == client.to_dict()
        restored.score(["fresh q"], ["fresh r"])
        assert server.headers[-1]["Authorization"] == "Bearer sk-from-env"


def test_check_server_error_names_urls_model_and_command(fake_judge, refused_url):
    wrong_model, wrong_key = fake_judge(models=["some-other-model"]), fake_judge()
    wrong_key.models_status = 401
    with pytest.raises(JudgeUnavailableError) as excinfo:
        fast_client([refused_url, wrong_model.base_url, wrong_key.base_url]).check_server()
    message = str(excinfo.value)
    assert f"{refused_url}: unreachable" in message and "examples/serve_thinking_reward_model.sh" in message
    assert "--served-model-name thinking-reward-model" in message
    assert f"{wrong_model.base_url}: model {MODEL!r} not listed" in message and "some-other-model" in message
    assert f"{wrong_key.base_url}: GET /models failed (http_401 (check OPENAI_API_KEY / api_key))" in message


def test_check_server_keeps_live_replicas_and_waits_for_a_starting_server(fake_judge, refused_url, caplog):
    server = fake_judge()
    server.models_status = 503  # starting: vLLM answers before the model is loaded
    threading.Timer(1.5, setattr, (server, "models_status", None)).start()
    client = fast_client([refused_url, server.base_url])
    with caplog.at_level(logging.WARNING, logger="sophiavl_trl"):
        healthy, elapsed = timed(lambda: client.check_server(wait_seconds=10))
    assert healthy == [server.base_url] and 1.0 < elapsed < 8.0
    assert refused_url in caplog.text and "unreachable" in caplog.text  # the dead replica is named, not dropped


# ------------------------------------------------------------------------------------------------ the reward function


class TestThinkingReward:
    def test_trl_signature_question_reasoning_image(self, fake_judge):
        server = fake_judge(lambda body, attempt: ("ok", "0.8"))
        reward = ThinkingReward(client=fast_client(server.base_url))
        image = Image.new("RGB", (8, 8), (0, 0, 0))
        prompts = [
            [
                {"role": "system", "content": "Think first."},
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many dots?"}]},
            ],
            [{"role": "user", "content": "What is 1+1?"}],
        ]
        completions = [
            [{"role": "assistant", "content": "<think>I see two dots.</think><answer>2</answer>"}],
            [{"role": "assistant", "content": "No tags, just 2."}],
        ]
        metrics: dict[str, float] = {}
        rewards = reward(
            prompts=prompts,
            completions=completions,
            completion_ids=[[1], [2]],
            images=[[image], None],
            trainer_state=None,
            log_extra=lambda column, values: None,
            log_metric=metrics.__setitem__,
            solution=["2", "2"],  # other dataset columns are ignored
        )
        assert rewards == [0.8, 0.8]
        texts = {body["messages"][1]["content"][0]["text"]: body for body in server.requests}
        with_image = _card_prompt("How many dots?", "I see two dots.")[1]["content"][0]["text"].replace(
            "Question: How", "Question: <image> How"
        )
        assert with_image in texts and len(texts[with_image]["messages"][1]["content"]) == 2
        # Without <think>, the whole completion is the reasoning; without image, no image part.
        plain = _card_prompt("What is 1+1?", "No tags, just 2.")[1]["content"][0]["text"]
        assert plain in texts and len(texts[plain]["messages"][1]["content"]) == 1
        assert metrics == {"thinking_reward/nan_fraction": 0.0, "thinking_reward/seconds": pytest.approx(0, abs=5)}

    def test_problem_column_and_nan_for_no_score(self, fake_judge):
        server = fake_judge(lambda body, attempt: ("ok", "0.4" if "SOUND" in json.dumps(body) else "no idea"))
        reward = ThinkingReward(client=fast_client(server.base_url))
        rewards = reward(
            prompts=["raw prompt text 1", "raw prompt text 2"],
            completions=["<think>SOUND</think><answer>1</answer>", "<think>bad</think><answer>1</answer>"],
            problem=["The problem.", "The problem."],
            image=[None, None],
        )
        assert rewards[0] == 0.4 and math.isnan(rewards[1])  # NaN, never 0
        assert all("Question: The problem." in b["messages"][1]["content"][0]["text"] for b in server.requests)

    def test_reasoning_source_completion(self, fake_judge):
        server = fake_judge()
        reward = ThinkingReward(client=fast_client(server.base_url), reasoning_source="completion")
        reward(prompts=["p"], completions=["<think>t</think><answer>a</answer>"])
        assert "Reasoning process: <think>t</think><answer>a</answer>" in json.dumps(server.requests[0])

    def test_name_pickle_and_check_server(self, fake_judge):
        from trl.trainer.utils import get_callable_name, is_async_callable

        server = fake_judge()
        reward = ThinkingReward(client=fast_client(server.base_url))
        assert reward.__name__ == "thinking_reward" and get_callable_name(reward) == "thinking_reward"
        assert not is_async_callable(reward)
        assert reward.check_server() == [server.base_url]  # what the Trust-GRPO trainer calls at start
        restored = pickle.loads(pickle.dumps(reward))
        assert restored(prompts=["p2"], completions=["<think>t2</think>"]) == [0.7]

    def test_client_built_from_kwargs(self, fake_judge):
        server = fake_judge()
        reward = ThinkingReward(
            base_url=server.base_url,
            model=MODEL,
            timeout=2.0,
            max_retries=1,
            max_concurrency=4,
            constrained_decoding=True,
            api_key="k",
        )
        assert reward.client.base_urls == [server.base_url] and reward.client.max_concurrency == 4
        assert reward(prompts=["p"], completions=["<think>t</think>"]) == [0.7]
        assert server.requests[0]["structured_outputs"] == {"choice": SCORE_CHOICES}
        with pytest.raises(ValueError, match="either"):
            ThinkingReward(client=reward.client, timeout=1.0)


# ------------------------------------------------------------------------------------------------ the serve script


def _serve_script_dry_run(*args, **env_vars) -> subprocess.CompletedProcess:
    script = Path(__file__).resolve().parents[1] / "examples" / "serve_thinking_reward_model.sh"
    drop = ("MODEL_PATH", "PORT", "TP", "DP", "EXTRA_ARGS", "HOST", "VLLM_API_KEY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        ["bash", str(script), *args],
        env={**env, "DRY_RUN": "1", **env_vars},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serve_script_uses_the_model_card_options():
    result = _serve_script_dry_run("/models/judge", "9000")
    assert result.returncode == 0, result.stderr
    command = result.stdout.split()
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    options = dict(zip(command[3::2], command[4::2]))
    assert options == {
        "--model": "/models/judge",
        "--served-model-name": "thinking-reward-model",
        "--host": "127.0.0.1",  # this machine only, unless a host is given
        "--port": "9000",
        "--tensor-parallel-size": "2",
        "--max-num-seqs": "64",
        "--max-model-len": "32768",
    }
    command = _serve_script_dry_run("/models/judge", TP="1", DP="4").stdout.split()  # data-parallel replicas
    options = dict(zip(command[3::2], command[4::2]))
    assert options["--tensor-parallel-size"] == "1" and options["--data-parallel-size"] == "4"


def test_serve_script_binds_a_network_address_with_a_key_kept_off_the_command_line():
    result = _serve_script_dry_run("/models/judge", "9000", HOST="0.0.0.0", VLLM_API_KEY="sk-secret-123")
    assert result.returncode == 0, result.stderr
    assert "--host 0.0.0.0" in result.stdout
    assert "sk-secret-123" not in result.stdout + result.stderr  # vLLM reads it from the environment
