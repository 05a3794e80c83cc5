# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""A concurrent, bounded-time client for the thinking reward model behind an OpenAI-compatible server such as vLLM."""

import asyncio
import concurrent.futures
import copy
import hashlib
import logging
import math
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sophiavl_trl.judge.prompt import (
    DEFAULT_MAX_IMAGE_PIXELS,
    SCORE_CHOICES,
    build_judge_messages,
    encode_image_data_url,
    parse_score,
    validate_template,
)


__all__ = ["JudgeStats", "JudgeUnavailableError", "ThinkingRewardClient", "image_key", "normalize_base_url"]

logger = logging.getLogger(__name__)


class JudgeUnavailableError(RuntimeError):
    """The thinking reward model cannot be reached, or the server does not serve it."""


def normalize_base_url(url: str) -> str:
    """The OpenAI API base of a judge URL: `"host:8000"` or `"http://host:8000/v1/chat/completions"` -> `".../v1"`."""
    parts = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}")
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        path = path[: -len(suffix)].rstrip("/") if path.endswith(suffix) else path
    return urlunsplit((parts.scheme, parts.netloc, path or "/v1", "", ""))


def image_key(image: Any) -> Any:
    """A hashable key of an image's content (PIL image, bytes, path, `{"bytes", "path"}`): GRPO passes equal images as
    distinct objects, and keyed by content each is encoded (and judged) once."""
    if isinstance(image, dict):
        image = image.get("bytes") or image.get("path")
    if hasattr(image, "tobytes"):
        return image.size, image.mode, hashlib.sha1(image.tobytes()).digest()
    if isinstance(image, (bytes, bytearray, memoryview)):
        return hashlib.sha1(image).digest()
    return image if isinstance(image, (str, os.PathLike)) else id(image)


def _failure(exc: BaseException) -> tuple[str, str]:
    """The kind of a failed request (`timeout`, `connection`, `http_503`, `bad_response`) and a description."""
    import openai

    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError)):
        kind = "timeout"
    elif isinstance(exc, openai.APIConnectionError):
        kind = "connection"
    else:
        kind = f"http_{exc.status_code}" if isinstance(exc, openai.APIStatusError) else "bad_response"
    # openai's "Connection error." says little: its cause (refused, reset, DNS...) says what happened.
    return kind, repr(exc) + (f" from {exc.__cause__!r}" if exc.__cause__ is not None else "")


@dataclass
class JudgeStats:
    """Counters of a [`ThinkingRewardClient`]: `items == scored + parse_failures + request_failures`; `errors` counts
    NaN items by cause (`"unparseable"`, `"timeout"`, `"http_503"`, `"deadline"`...)."""

    items: int = 0
    scored: int = 0
    parse_failures: int = 0
    request_failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    seconds: float = 0.0

    @property
    def failures(self) -> int:
        return self.parse_failures + self.request_failures

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failures": self.failures}


class ThinkingRewardClient:
    r"""
    Client for the thinking reward model (SophiaVL-R1's judge) behind an OpenAI-compatible server such as vLLM.

    Each item is one chat request ([`~sophiavl_trl.judge.build_judge_messages`], temperature 0), at most
    `max_concurrency` in flight, round-robin over the replicas; a failed request fails over to the other replicas.
    An item that fails everywhere, or whose answer holds no score in [0, 1], gets NaN (counted in `stats`), never 0,
    and never raises. A call returns within `worst_case_seconds(n)`. `score()` works from plain code and from a thread
    running an event loop; `await ascore()` on any loop. The API key and URL passwords never show in `repr`,
    `to_dict()`, `stats`, logs, errors or pickles.

    Args:
        base_url (`str` or `list[str]`, *optional*): server URL(s), a list or comma-separated string for replicas.
            Defaults to `OPENAI_API_URL`, else `"http://127.0.0.1:8000/v1"`.
        model (`str`, *optional*): served model name. Defaults to `REWARD_MODEL`, else `"thinking-reward-model"`.
        max_concurrency (`int`, defaults to `64`): requests in flight per event loop.
        timeout (`float`, defaults to `60.0`) and max_retries (`int`, defaults to `3`): per request and replica.
        api_key (`str`, *optional*): vLLM's `--api-key`. Defaults to `OPENAI_API_KEY`.
        constrained_decoding (`bool`, defaults to `False`): send vLLM's `structured_outputs={"choice": SCORE_CHOICES}`.
        template (`str`, *optional*): evaluator prompt with `{question}` and `{reasoning}`; defaults to the card's.
        max_image_pixels (`int` or `None`, defaults to `4194304`): larger images are downscaled before sending.
    """

    def __init__(
        self,
        base_url: str | Sequence[str] | None = None,
        model: str | None = None,
        max_concurrency: int = 64,
        timeout: float = 60.0,
        max_retries: int = 3,
        api_key: str | None = None,
        constrained_decoding: bool = False,
        template: str | None = None,
        max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
    ) -> None:
        base_url = base_url or os.environ.get("OPENAI_API_URL") or "http://127.0.0.1:8000/v1"
        urls = base_url.split(",") if isinstance(base_url, str) else base_url
        urls = [urlsplit(normalize_base_url(url)) for url in urls]
        # A URL password is kept apart, like the key: the URL is stored and shown without its user information.
        self.base_urls = [urlunsplit(u._replace(netloc=u.netloc.rpartition("@")[2])) for u in urls]
        self._auth = [(u.username or "", u.password) if u.password is not None else None for u in urls]
        if max_concurrency < 1 or not timeout > 0 or max_retries < 0:
            raise ValueError(
                f"Need max_concurrency >= 1, timeout > 0, max_retries >= 0; got {max_concurrency, timeout, max_retries}."
            )
        if template is not None:
            validate_template(template)
        self.model: str = model or os.environ.get("REWARD_MODEL") or "thinking-reward-model"
        self.max_concurrency, self.timeout, self.max_retries = max_concurrency, float(timeout), max_retries
        self.constrained_decoding, self.template = constrained_decoding, template
        self.max_image_pixels = max_image_pixels
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._stats, self._stats_lock, self._rr = JudgeStats(), threading.Lock(), 0
        self._reset()

    def _reset(self) -> None:
        # Also after a fork: a child must not drive its parent's event loop or sockets.
        self._pid, self._loop, self._sync_lock = os.getpid(), None, threading.Lock()
        self._per_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> (clients, semaphore)

    def to_dict(self) -> dict[str, Any]:
        """The configuration, without the API key or URL passwords (what pickling keeps)."""
        names = "model max_concurrency timeout max_retries constrained_decoding template max_image_pixels".split()
        return {"base_url": list(self.base_urls), **{k: getattr(self, k) for k in names}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_urls!r}, model={self.model!r}, timeout={self.timeout})"

    __getstate__ = to_dict

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # an unpickled client reads OPENAI_API_KEY again and has no URL password

    def _redact(self, text: str) -> str:
        for secret in [self._api_key, *(auth[1] for auth in self._auth if auth)]:
            text = text.replace(secret, "***") if secret else text
        return text

    @property
    def stats(self) -> JudgeStats:
        """A snapshot of the counters (see [`JudgeStats`])."""
        with self._stats_lock:
            return copy.deepcopy(self._stats)

    def worst_case_seconds(self, n: int) -> float:
        """The deadline of a call with `n` items: `ceil(n / max_concurrency)` waves of one item's worst case (every
        attempt on every replica timing out, after the OpenAI client's backoffs), plus 1 s."""
        replicas = len(self.base_urls)
        attempts = replicas * (self.max_retries + 1) + (replicas if replicas > 1 and self.max_retries else 0)
        per_item = attempts * self.timeout + replicas * sum(min(0.5 * 2**k, 8.0) for k in range(self.max_retries))
        return math.ceil(n / self.max_concurrency) * per_item + 1.0

    def _replicas(self) -> tuple[list[Any], asyncio.Semaphore]:
        """The running event loop's OpenAI clients (one per replica) and concurrency limit: both belong to one loop."""
        if self._pid != os.getpid():
            self._reset()
        loop = asyncio.get_running_loop()
        if loop not in self._per_loop:
            import openai

            common = {"api_key": self._api_key or "EMPTY", "timeout": self.timeout, "max_retries": self.max_retries}
            http = [openai.DefaultAsyncHttpxClient(auth=a, timeout=self.timeout) if a else None for a in self._auth]
            clients = [openai.AsyncOpenAI(base_url=u, http_client=h, **common) for u, h in zip(self.base_urls, http)]
            self._per_loop[loop] = clients, asyncio.Semaphore(self.max_concurrency)
        return self._per_loop[loop]

    def _sync(self, coro_fn: Any) -> Any:
        """Run `coro_fn()` on the client's own, persistent event loop; from a worker thread when this thread runs a
        loop (blocking a loop on itself would deadlock)."""

        def drive() -> Any:
            if self._pid != os.getpid():
                self._reset()
            with self._sync_lock:
                self._loop = self._loop or asyncio.new_event_loop()
                return self._loop.run_until_complete(coro_fn())

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return drive()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(drive).result()

    def close(self) -> None:
        """Close the connections of synchronous calls and their event loop (a later call makes new ones)."""

        async def close_clients() -> None:
            clients, _ = self._per_loop.pop(asyncio.get_running_loop(), ([], None))
            await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)

        if self._loop is not None and self._pid == os.getpid():
            self._sync(close_clients)
            self._loop, loop = None, self._loop
            loop.close()

    def build_messages(self, question: str, reasoning: str, image: Any = None) -> list[dict[str, Any]]:
        """The chat messages sent for one item (see [`~sophiavl_trl.judge.build_judge_messages`])."""
        return build_judge_messages(question, reasoning, image, self.template, max_pixels=self.max_image_pixels)

    def score(
        self, questions: Sequence[str], reasonings: Sequence[str], images: Sequence[Any] | None = None
    ) -> list[float]:
        """Score reasonings: one score in [0, 1] per item, NaN where none was obtained. `images` holds one image (PIL
        image, path, bytes) or `None` per item. Raises `ValueError`, `OSError` or `TypeError` on bad inputs only."""
        return self._sync(lambda: self.ascore(questions, reasonings, images))

    async def ascore(
        self, questions: Sequence[str], reasonings: Sequence[str], images: Sequence[Any] | None = None
    ) -> list[float]:
        """[`~ThinkingRewardClient.score`] on the running event loop."""
        n = len(questions)
        if isinstance(questions, str) or isinstance(reasonings, str):
            raise ValueError("questions and reasonings must be sequences of strings, not a single string.")
        if len(reasonings) != n or (images is not None and len(images) != n):
            raise ValueError(
                f"Got {n} questions, {len(reasonings)} reasonings and {'no' if images is None else len(images)} "
                "images: pass one of each per item."
            )
        keys = [None if image is None else image_key(image) for image in images or [None] * n]
        urls: dict[Any, str] = {}
        for key, image in zip(keys, images or ()):
            if key is not None and key not in urls:
                urls[key] = encode_image_data_url(image, max_pixels=self.max_image_pixels)
        common = {"model": self.model, "temperature": 0.0, "max_tokens": 16}
        common |= {"structured_outputs": {"choice": SCORE_CHOICES}} if self.constrained_decoding else {}
        messages = [self.build_messages(q, r, urls.get(key)) for q, r, key in zip(questions, reasonings, keys)]
        bodies = [{**common, "messages": message} for message in messages]
        if not bodies:
            return []
        start, first, last_error = time.monotonic(), self._rr, {}
        self._rr += n
        clients, semaphore = self._replicas()
        tasks = [
            asyncio.ensure_future(self._score_one(clients, semaphore, body, first + i, last_error))
            for i, body in enumerate(bodies)
        ]
        _, pending = await asyncio.wait(tasks, timeout=self.worst_case_seconds(n))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        results = [task.result() if task.done() and not task.cancelled() else (math.nan, "deadline") for task in tasks]
        errors = Counter(kind for _, kind in results if kind != "ok")
        with self._stats_lock:
            stats, failed = self._stats, sum(errors.values())
            stats.calls += 1
            stats.seconds += time.monotonic() - start
            stats.items += n
            stats.scored += n - failed
            stats.parse_failures += errors["unparseable"]
            stats.request_failures += failed - errors["unparseable"]
            stats.errors = dict(Counter(stats.errors) + errors)
        if errors:
            why = ", ".join(
                f"{c} {k}" + (f" (last: {last_error[k]})" if k in last_error else "") for k, c in errors.items()
            )
            logger.warning("Thinking judge: %d of %d items got no score (NaN): %s.", failed, n, why)
        return [score for score, _ in results]

    async def _score_one(
        self, clients: list[Any], semaphore: asyncio.Semaphore, body: dict, first: int, last_error: dict[str, str]
    ) -> tuple[float, str]:
        n, kind = len(clients), "bad_response"
        # With several replicas, one quick pass (a dead or failing replica hands over at once), then one with retries.
        passes = [0, self.max_retries] if n > 1 and self.max_retries else [self.max_retries]
        async with semaphore:
            for retries in passes:
                for index in [(first + k) % n for k in range(n)]:
                    try:
                        # `post` is `chat.completions.create` without building response models (~2 ms CPU less).
                        options = {"max_retries": retries}
                        response = await clients[index].post(
                            "/chat/completions", body=body, cast_to=object, options=options
                        )
                        text = response["choices"][0]["message"]["content"]
                    except Exception as exc:  # whatever the server or the network does is a failed request
                        kind, description = _failure(exc)
                        last_error[kind] = self._redact(f"{self.base_urls[index]}: {description}")[:300]
                        continue
                    score = parse_score(text if isinstance(text, str) else None)
                    return score, "unparseable" if math.isnan(score) else "ok"
        return math.nan, kind

    def check_server(self, wait_seconds: float = 0.0) -> list[str]:
        """The replicas that answer and list the model (`GET /v1/models`), polling every second for up to
        `wait_seconds` until one does; raises `JudgeUnavailableError`, saying what is wrong with each, if none does."""
        deadline = time.monotonic() + wait_seconds
        while True:
            problems = self._sync(self._check)
            healthy = [url for url, problem in zip(self.base_urls, problems) if problem is None]
            if healthy or time.monotonic() + 1.0 > deadline:
                break
            time.sleep(1.0)
        lines = "\n".join(f"  - {url}: {problem}" for url, problem in zip(self.base_urls, problems) if problem)
        if healthy:
            if lines:
                logger.warning("Judge replicas left unchecked, requests will still try them:\n%s", lines)
            return healthy
        raise JudgeUnavailableError(
            f"The thinking reward model {self.model!r} is not available from any judge server:\n{lines}\nStart it with "
            "`bash examples/serve_thinking_reward_model.sh /path/to/judge 8000` (or `python -m "
            f"vllm.entrypoints.openai.api_server --model /path/to/judge --served-model-name {self.model} --port 8000`),"
            " then pass base_url='http://HOST:8000/v1' (or set OPENAI_API_URL) and model= (or REWARD_MODEL) to match."
        )

    async def _check(self) -> list[str | None]:
        clients, _ = self._replicas()
        seconds = min(self.timeout, 10.0)

        async def one(client: Any) -> str | None:
            try:
                request = client.get("/models", cast_to=object, options={"max_retries": 0, "timeout": seconds})
                models = [entry["id"] for entry in (await asyncio.wait_for(request, seconds + 1.0))["data"]]
            except Exception as exc:
                kind, description = _failure(exc)
                hint = " (check OPENAI_API_KEY / api_key)" if kind in ("http_401", "http_403") else ""
                what = "unreachable" if kind in ("timeout", "connection") else f"GET /models failed ({kind}{hint})"
                return self._redact(f"{what}: {description}")[:500]
            return None if self.model in models else f"model {self.model!r} not listed; available models: {models}"

        return list(await asyncio.gather(*(one(client) for client in clients)))
