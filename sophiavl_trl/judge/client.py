# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""A concurrent, bounded-time client for the thinking reward model served behind an OpenAI-compatible API (vLLM).

The reference implementation scores completions one HTTP request at a time, retries some failures forever and turns
every failure into a silent 0. [`ThinkingRewardClient`] sends the requests concurrently (up to `max_concurrency` in
flight, spread over one or more server replicas), retries only what is worth retrying a bounded number of times, and
reports a failure as NaN (counted in [`JudgeStats`]), never as a score. Every call returns within
[`ThinkingRewardClient.worst_case_seconds`].
"""

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Hashable, Sequence
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


__all__ = ["JudgeStats", "JudgeUnavailableError", "ThinkingRewardClient", "normalize_base_url"]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
DEFAULT_MODEL = "thinking-reward-model"
SERVE_SCRIPT = "examples/serve_thinking_reward_model.sh"

# Seconds added to the worst case for what is not network time: scheduling, the hop to the client's event loop
# thread, and cancelling the requests still in flight at the deadline.
_SCHEDULING_SLACK = 2.0

# asyncio's (and aiohttp's) timeout errors are builtin `TimeoutError`s from Python 3.11 on, distinct before.
_TIMEOUT_ERRORS = (TimeoutError, asyncio.TimeoutError)


class JudgeUnavailableError(RuntimeError):
    """The thinking reward model cannot be reached, or the server does not serve it."""


def normalize_base_url(url: str) -> str:
    r"""
    Normalise a judge URL to the OpenAI API base (`.../v1`).

    The reference code's `OPENAI_API_URL` holds the full `.../v1/chat/completions` endpoint; the OpenAI client wants
    the base. A trailing `/chat/completions`, `/completions` or `/models` is dropped, `http://` is added when there is
    no scheme, and `/v1` is appended when the URL has no path.

    Args:
        url (`str`):
            A server URL such as `"http://host:8000/v1/chat/completions"`, `"host:8000"` or `"http://host:8000/v1"`.

    Returns:
        `str`: the API base, e.g. `"http://host:8000/v1"`.

    Example:
    ```python
    >>> from sophiavl_trl.judge.client import normalize_base_url

    >>> normalize_base_url("http://10.0.0.5:80/v1/chat/completions"), normalize_base_url("localhost:8000")
    ('http://10.0.0.5:80/v1', 'http://localhost:8000/v1')

    ```
    """
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if path.endswith(suffix):
            path = path[: -len(suffix)].rstrip("/")
            break
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass
class JudgeStats:
    r"""
    Counters of a [`ThinkingRewardClient`] since its creation (or its last `reset_stats()`).

    Args:
        items (`int`): items passed to `score`/`ascore`.
        scored (`int`): items that got a score.
        failures (`int`): items that got NaN (`request_failures + parse_failures`).
        request_failures (`int`): items whose requests all failed (or were cut at the call's deadline).
        parse_failures (`int`): items whose answer held no score.
        deduplicated (`int`): items that reused the answer of an identical item of the same call.
        requests (`int`): HTTP requests sent (attempts, retries included).
        answered (`int`): requests answered with a chat completion (whether or not it held a score).
        retries (`int`): attempts after the first, over all items.
        timeouts (`int`): attempts that ran past `timeout`.
        connection_errors (`int`): attempts that could not connect or lost the connection.
        http_errors (`dict[int, int]`): attempts answered with an HTTP error, by status code.
        circuit_open_skips (`int`): attempts not sent because every replica's circuit breaker was open.
        breaker_trips (`int`): times a replica was taken out of rotation.
        latency_sum (`float`): seconds spent in answered requests, summed.
        latency_max (`float`): longest answered request, in seconds.
        calls (`int`): `score`/`ascore` calls.
        call_seconds (`float`): wall time of those calls, summed.
    """

    items: int = 0
    scored: int = 0
    failures: int = 0
    request_failures: int = 0
    parse_failures: int = 0
    deduplicated: int = 0
    requests: int = 0
    answered: int = 0
    retries: int = 0
    timeouts: int = 0
    connection_errors: int = 0
    http_errors: dict[int, int] = field(default_factory=dict)
    circuit_open_skips: int = 0
    breaker_trips: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0
    calls: int = 0
    call_seconds: float = 0.0

    @property
    def latency_mean(self) -> float:
        """Mean seconds of an answered request (NaN before the first)."""
        return self.latency_sum / self.answered if self.answered > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict, `latency_mean` included."""
        out = asdict(self)
        out["latency_mean"] = self.latency_mean
        return out


@dataclass
class _Replica:
    base_url: str
    outstanding: int = 0
    consecutive_failures: int = 0
    open_until: float = 0.0
    open_reason: str = ""
    probing: bool = False


class _Secret:
    """Holds the API key so that it never shows in a `repr`, a log line or a pickle."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def get(self) -> str | None:
        return self._value

    def redact(self, text: str) -> str:
        """`text` with the key masked (a server may echo request headers in its error messages)."""
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "<hidden>" if self._value else "None"

    def __reduce__(self) -> tuple:
        return (_Secret, (None,))


class _AttemptError(Exception):
    """One failed attempt: `kind` names the failure, `retry` whether another attempt may succeed."""

    def __init__(self, kind: str, retry: bool, detail: str, status: int | None = None, trip: bool = False) -> None:
        super().__init__(detail)
        self.kind, self.retry, self.detail, self.status, self.trip = kind, retry, detail, status, trip


class _TransportFailure(Exception):
    """No HTTP answer: the connection was refused, reset or dropped, or the transport timed out."""

    def __init__(self, detail: str, timeout: bool) -> None:
        super().__init__(detail)
        self.timeout = timeout


class _StatusError(Exception):
    """An HTTP error answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


class _BadResponse(Exception):
    """An answer that is not the expected chat-completion JSON."""


def _error_message(raw: bytes) -> str:
    """The message of an OpenAI-style error body (`{"message"}` or `{"error": {"message"}}`), else the raw text."""
    try:
        data = json.loads(raw)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else None
        return str(message if message is not None else data)
    except ValueError:
        return raw[:300].decode("utf-8", "replace")


async def _within(awaitable: Any, seconds: float) -> Any:
    """`await awaitable`, raising `asyncio.TimeoutError` after `seconds` (without an extra task on Python 3.11+)."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout=seconds)


def _image_key(image: Any) -> Hashable:
    """A key equal for equal images: content hashes for PIL images and bytes, the path for paths and URLs."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return ("bytes", hashlib.sha1(image).digest())
    if isinstance(image, (str, os.PathLike)):
        return ("path", os.fspath(image))
    if isinstance(image, dict):
        if image.get("bytes") is not None:
            return _image_key(image["bytes"])
        return _image_key(image.get("path"))
    if hasattr(image, "tobytes") and hasattr(image, "size") and hasattr(image, "mode"):  # a PIL image
        return ("pil", image.size, image.mode, hashlib.sha1(image.tobytes()).digest())
    return ("object", id(image))


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _root_cause(exc: BaseException) -> BaseException:
    return _causes(exc)[-1]


def _is_timeout(exc: BaseException) -> bool:
    """Whether a transport error is a timeout rather than a refused or dropped connection.

    The exception classes cannot be trusted alone: openai's aiohttp transport maps every aiohttp connection error,
    a refused connection included, to `httpx.ConnectTimeout` (hence `openai.APITimeoutError`); the chain of causes
    tells what happened.
    """
    for cause in _causes(exc):
        if isinstance(cause, _TIMEOUT_ERRORS):  # asyncio's and aiohttp's timeouts are TimeoutError subclasses
            return True
        if isinstance(cause, OSError) or type(cause).__module__.startswith("aiohttp"):
            return False
    return type(exc).__name__ == "APITimeoutError"


@dataclass
class _Item:
    messages: list[dict[str, Any]]
    indices: list[int]


class _LoopHandle:
    """The client's private event loop, its daemon thread, and what is bound to that loop (the per-replica OpenAI
    clients or aiohttp sessions, the concurrency semaphore). Kept apart from the client so that a finalizer can stop
    it without referencing the client.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        self.clients: dict[int, Any] = {}
        self.semaphore: asyncio.Semaphore | None = None
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            try:
                self.loop.run_forever()
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=run, name="thinking-judge-loop", daemon=True)
        self.thread.start()
        ready.wait()

    def shutdown(self, wait: bool) -> None:
        """Close the HTTP clients and stop the loop; with `wait`, block (at most ~10 s) until the thread ended."""
        if self.pid != os.getpid() or self.loop.is_closed():
            return
        clients = list(self.clients.values())

        async def stop() -> None:
            await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
            # Scheduled, not called: this task's completion must still reach `future` before the loop stops.
            asyncio.get_running_loop().call_soon(asyncio.get_running_loop().stop)

        try:
            future = asyncio.run_coroutine_threadsafe(stop(), self.loop)
        except RuntimeError:  # the loop closed meanwhile
            return
        if wait and threading.current_thread() is not self.thread:
            try:
                future.result(timeout=5.0)
            except Exception as exc:  # closing is best effort
                logger.debug("Closing the judge connections failed: %r", exc)
            self.thread.join(timeout=5.0)


class ThinkingRewardClient:
    r"""
    Client for the thinking reward model (SophiaVL-R1's judge) behind an OpenAI-compatible server such as vLLM.

    It sends one chat request per item (the model card's evaluator prompt, see
    [`~sophiavl_trl.judge.prompt.build_judge_messages`]), concurrently, at temperature 0, and parses the answer with
    [`~sophiavl_trl.judge.prompt.parse_score`]. Failures never become scores: an item whose requests all fail, or
    whose answer holds no score, gets NaN, and is counted in [`JudgeStats`] (`client.stats`).

    Failure handling:

    - Connection errors, timeouts, HTTP 429 and 5xx are retried, at most `max_retries` times per item, after an
      exponential backoff with jitter (`min(backoff_max, backoff_base * 2**k)` times a random factor in [0.5, 1] before
      retry `k + 1`). Other 4xx answers (a bad request, a wrong model name, a wrong key) are not retried.
    - Each attempt is cut after `timeout` seconds of wall time, also when a server accepts the connection and never
      answers, or trickles its answer.
    - With several replicas, requests go to the replica with the fewest requests in flight (round robin among ties),
      and a retry prefers another replica, at once when the failure was a connection error or a timeout. A replica that
      fails `breaker_threshold` consecutive attempts at connection level (refused, dropped, timed out) is left out for
      `breaker_cooldown` seconds, then probed by one request; `check_server()` also takes out the replicas it finds
      unhealthy. When every replica is out, those taken out for timeouts are not tried (attempts fail at once and are
      retried after the backoff: a silent server costs about one `timeout`, not one per request), while those taken
      out for refused or dropped connections still are (such attempts fail in milliseconds, and a restarting server
      is back at once). An HTTP error answer (429, 5xx) never takes a replica out: the server is alive.

    Time bound: a call with `n` items returns within `worst_case_seconds(n)` (see there), whatever the servers do:
    requests still pending at that deadline are cancelled and their items get NaN.

    Thread and event-loop safety: the HTTP work runs on a private event loop in a daemon thread, so `score()` works
    from plain synchronous code and from any thread, including one whose caller runs an event loop elsewhere (TRL runs
    async reward functions on a daemon-thread loop), and `await ascore()` works from any event loop. The HTTP clients
    (one per replica) are created once, on the private loop, and reused; the loop stops when the client is closed or
    garbage collected.

    The API key is never logged, shown in `repr()` or pickled; an unpickled client reads `OPENAI_API_KEY` again.

    Args:
        base_url (`str`, `list[str]` or `None`, *optional*):
            Judge server URL(s), e.g. `"http://127.0.0.1:8000/v1"`; a list (or a comma-separated string) for replicas.
            Full endpoints such as `.../v1/chat/completions` are accepted. Defaults to `OPENAI_API_URL` (the reference
            code's variable), else `"http://127.0.0.1:8000/v1"`.
        model (`str` or `None`, *optional*):
            Served model name. Defaults to `REWARD_MODEL`, else `"thinking-reward-model"`.
        max_concurrency (`int`, *optional*, defaults to `64`):
            Requests in flight at once, over all replicas (the published server runs `--max-num-seqs 64`; use 64 per
            replica).
        timeout (`float`, *optional*, defaults to `60.0`):
            Wall-clock limit of one attempt, in seconds.
        max_retries (`int`, *optional*, defaults to `3`):
            Attempts after the first, per item.
        api_key (`str` or `None`, *optional*):
            API key (vLLM's `--api-key`). Defaults to `OPENAI_API_KEY`, else a placeholder (vLLM without `--api-key`
            accepts any key).
        constrained_decoding (`bool`, *optional*, defaults to `False`):
            Constrain the answer to `SCORE_CHOICES` with vLLM's structured outputs (`extra_body={"structured_outputs":
            {"choice": SCORE_CHOICES}}`). Off by default because other servers reject or ignore the field (and older
            vLLM spell it `guided_choice`, which this vLLM silently ignores).
        template (`str` or `None`, *optional*):
            Evaluator prompt template with `{question}` and `{reasoning}` fields. Defaults to the model card's prompt,
            `DEFAULT_JUDGE_TEMPLATE`.
        max_image_pixels (`int` or `None`, *optional*, defaults to `4194304`):
            Images with more pixels are downscaled before they are sent; `None` sends them as they are.
        image_format (`str`, *optional*, defaults to `"PNG"`):
            Encoding of images that have to be encoded (PIL images, resized images): `"PNG"` or `"JPEG"`.
        max_tokens (`int`, *optional*, defaults to `16`):
            Largest answer, in tokens (a score is 1 to 3 tokens; a small cap bounds the cost of a rambling answer).
        backoff_base (`float`, *optional*, defaults to `0.5`):
            Backoff before the first retry, in seconds; doubled at each further retry.
        backoff_max (`float`, *optional*, defaults to `8.0`):
            Largest backoff, in seconds.
        connect_timeout (`float` or `None`, *optional*, defaults to `10.0`):
            Limit for opening a connection (capped by `timeout`).
        breaker_threshold (`int`, *optional*, defaults to `3`):
            Consecutive connection-level failures that take a replica out of rotation.
        breaker_cooldown (`float`, *optional*, defaults to `10.0`):
            Seconds a replica stays out of rotation before it is probed again.
        deduplicate (`bool`, *optional*, defaults to `True`):
            Send identical items of one call (same question, reasoning and image) once: at temperature 0 their answers
            are the same.
        extra_body (`dict` or `None`, *optional*):
            Extra fields for every request body (merged with the structured-outputs field).
        http_backend (`str`, *optional*, defaults to `"openai"`):
            How requests are sent. `"openai"`: `openai.AsyncOpenAI` (with its aiohttp transport when available, else
            httpx). `"aiohttp"`: plain `aiohttp` requests with the same bodies, retries and error handling, without
            the OpenAI client's per-request overhead (about 1 ms of CPU per request; it matters only when the judge
            answers in tens of milliseconds, see `benchmarks/bench_judge.py`).

    Example:
        Start the judge (GPU; see `examples/serve_thinking_reward_model.sh`):

        ```
        $ python -m vllm.entrypoints.openai.api_server --model bunny127/SophiaVL-R1-Thinking-Reward-Model-3B \
              --served-model-name thinking-reward-model --tensor-parallel-size 2 --max-num-seqs 64 \
              --max-model-len 32768 --port 8000
        ```

        Then score reasonings:

        ```python
        >>> from sophiavl_trl.judge import ThinkingRewardClient

        >>> client = ThinkingRewardClient(base_url="http://127.0.0.1:8000/v1")
        >>> client.check_server()
        ['http://127.0.0.1:8000/v1']
        >>> client.score(["What is 2+2?", "What is 2+2?"], ["2+2=4.", "2+2=5 because 5 is prime."])
        [1.0, 0.1]
        >>> client.worst_case_seconds(128)  # 2 waves of 64 x (4 attempts x 60 s + 3.5 s of backoff) + 2 s
        489.0

        ```
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
        image_format: str = "PNG",
        max_tokens: int = 16,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        connect_timeout: float | None = 10.0,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 10.0,
        deduplicate: bool = True,
        extra_body: dict[str, Any] | None = None,
        http_backend: str = "openai",
    ) -> None:
        if base_url is None:
            base_url = os.environ.get("OPENAI_API_URL") or DEFAULT_BASE_URL
        urls = base_url.split(",") if isinstance(base_url, str) else list(base_url)
        urls = [normalize_base_url(url) for url in urls if url.strip()]
        if not urls:
            raise ValueError(f"No judge server URL in base_url={base_url!r}.")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}.")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}.")
        if backoff_base < 0 or backoff_max < 0:
            raise ValueError(f"backoff_base and backoff_max must be 0 or more, got {backoff_base} and {backoff_max}.")
        if breaker_threshold < 1:
            raise ValueError(f"breaker_threshold must be at least 1, got {breaker_threshold}.")
        if image_format.upper() not in ("PNG", "JPEG", "JPG"):
            raise ValueError(f"image_format must be 'PNG' or 'JPEG', got {image_format!r}.")
        if http_backend not in ("openai", "aiohttp"):
            raise ValueError(f"http_backend must be 'openai' or 'aiohttp', got {http_backend!r}.")
        if template is not None:
            validate_template(template)

        self.base_urls: list[str] = urls
        self.model: str = model or os.environ.get("REWARD_MODEL") or DEFAULT_MODEL
        self.max_concurrency = max_concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.constrained_decoding = constrained_decoding
        self.template = template
        self.max_image_pixels = max_image_pixels
        self.image_format = image_format
        self.max_tokens = max_tokens
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.connect_timeout = connect_timeout
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown = float(breaker_cooldown)
        self.deduplicate = deduplicate
        self.extra_body = dict(extra_body) if extra_body else None
        self.http_backend = http_backend
        self._api_key = _Secret(api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"))

        self._replicas = [_Replica(url) for url in urls]
        self._rr = 0
        self._warned_statuses: set[int] = set()
        self._stats = JudgeStats()
        self._stats_lock = threading.Lock()
        self._loop_lock = threading.Lock()
        self._handle: _LoopHandle | None = None
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ configuration, repr, pickling

    @property
    def base_url(self) -> str:
        """The first (or only) server's API base."""
        return self.base_urls[0]

    def to_dict(self) -> dict[str, Any]:
        """The client's configuration, without the API key (which is re-read from `OPENAI_API_KEY` when rebuilt)."""
        return {
            "base_url": list(self.base_urls),
            "model": self.model,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "constrained_decoding": self.constrained_decoding,
            "template": self.template,
            "max_image_pixels": self.max_image_pixels,
            "image_format": self.image_format,
            "max_tokens": self.max_tokens,
            "backoff_base": self.backoff_base,
            "backoff_max": self.backoff_max,
            "connect_timeout": self.connect_timeout,
            "breaker_threshold": self.breaker_threshold,
            "breaker_cooldown": self.breaker_cooldown,
            "deduplicate": self.deduplicate,
            "extra_body": self.extra_body,
            "http_backend": self.http_backend,
        }

    def __repr__(self) -> str:
        urls = self.base_urls[0] if len(self.base_urls) == 1 else self.base_urls
        return (
            f"{type(self).__name__}(base_url={urls!r}, model={self.model!r}, max_concurrency={self.max_concurrency}, "
            f"timeout={self.timeout}, max_retries={self.max_retries}, "
            f"constrained_decoding={self.constrained_decoding})"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Only the configuration travels: no key, no event loop, no connections.
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def __deepcopy__(self, memo: dict) -> "ThinkingRewardClient":
        # A copy within the process keeps the key (pickling does not); it gets its own loop and connections.
        return type(self)(**self.to_dict(), api_key=self._api_key.get())

    # ------------------------------------------------------------------ time bound

    def backoff_bound(self, retry: int) -> float:
        r"""
        Longest backoff before retry number `retry` (1-based): `min(backoff_max, backoff_base * 2**(retry - 1))`.

        Args:
            retry (`int`): the retry number, from 1.

        Returns:
            `float`: seconds.
        """
        return min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))

    def worst_case_item_seconds(self) -> float:
        r"""
        Longest time one item can take once it holds a concurrency slot: `(max_retries + 1) * timeout +
        sum(backoff_bound(k) for k in 1..max_retries)`.
        """
        return (self.max_retries + 1) * self.timeout + sum(
            self.backoff_bound(k) for k in range(1, self.max_retries + 1)
        )

    def worst_case_seconds(self, n: int) -> float:
        r"""
        Upper bound, in seconds, on the duration of a `score`/`ascore` call with `n` items.

        ```
        worst_case_seconds(n) = ceil(n / max_concurrency) * worst_case_item_seconds() + 2
        worst_case_item_seconds() = (max_retries + 1) * timeout + sum_{k=1..max_retries} min(backoff_max,
                                                                                             backoff_base * 2**(k-1))
        ```

        The items wait for one of `max_concurrency` slots and hold it until they are done, so they run in at most
        `ceil(n / max_concurrency)` waves. The call also enforces this bound as a deadline: whatever the servers do,
        requests still pending then are cancelled and their items get NaN. The 2 s cover scheduling. Not included:
        encoding the images, done before the requests start (local CPU work: each distinct image once, in threads;
        tens of milliseconds for a one-megapixel PNG). Calls made at the same time share the client's slots: each
        still returns within its bound, but its items still waiting for a slot at the deadline get NaN.

        Args:
            n (`int`): number of items.

        Returns:
            `float`: seconds.
        """
        if n <= 0:
            return _SCHEDULING_SLACK
        waves = math.ceil(n / self.max_concurrency)
        return waves * self.worst_case_item_seconds() + _SCHEDULING_SLACK

    # ------------------------------------------------------------------ stats

    @property
    def stats(self) -> JudgeStats:
        """A snapshot of the counters (see [`JudgeStats`])."""
        with self._stats_lock:
            snapshot = JudgeStats(**{**asdict(self._stats), "http_errors": dict(self._stats.http_errors)})
        return snapshot

    @property
    def counters(self) -> dict[str, Any]:
        """The counters as a plain dict (`stats.as_dict()`)."""
        return self.stats.as_dict()

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        with self._stats_lock:
            self._stats = JudgeStats()

    def _count(self, **increments: float) -> None:
        with self._stats_lock:
            for name, value in increments.items():
                setattr(self._stats, name, getattr(self._stats, name) + value)

    # ------------------------------------------------------------------ event loop and OpenAI clients

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            handle = self._handle
            if handle is not None and (handle.pid != os.getpid() or not handle.thread.is_alive()):
                # A forked child inherits the handle but not its thread: start afresh (the parent's sockets are left
                # alone).
                self._finalizer.detach()
                handle = None
            if handle is None:
                handle = _LoopHandle()
                self._handle = handle
                # Stops the loop thread and closes the connections when the client is garbage collected (or at exit).
                self._finalizer = weakref.finalize(self, handle.shutdown, False)
            return handle.loop

    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        return self._handle.loop if self._handle is not None else None

    @property
    def _loop_thread(self) -> threading.Thread | None:
        return self._handle.thread if self._handle is not None else None

    @property
    def _clients(self) -> dict[int, Any]:
        assert self._handle is not None
        return self._handle.clients

    def _openai_client(self, index: int) -> Any:
        # Runs on the private loop only, so the clients (and their connection pools) stay bound to it.
        client = self._clients.get(index)
        if client is None:
            import openai

            timeout_cls, limits_cls = type(openai.DEFAULT_TIMEOUT), type(openai.DEFAULT_CONNECTION_LIMITS)
            connect = self.timeout if self.connect_timeout is None else min(self.timeout, self.connect_timeout)
            # The transport's own timeouts sit above the per-attempt wall-clock limit enforced with asyncio, so that
            # the limit, not a transport error, decides; they only make the transport clean up.
            timeout = timeout_cls(self.timeout + 1.0, connect=connect)
            limits = limits_cls(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
            try:
                # openai's aiohttp transport is several times cheaper per request than its default httpx one at 64+
                # concurrent requests (measured: 128 requests of 50 ms took 0.19 s against 0.53 s).
                http_client = openai.DefaultAioHttpClient(timeout=timeout, limits=limits)
            except (RuntimeError, ImportError, AttributeError):  # openai without its aiohttp extra
                http_client = openai.DefaultAsyncHttpxClient(timeout=timeout, limits=limits)
            client = openai.AsyncOpenAI(
                base_url=self._replicas[index].base_url,
                api_key=self._api_key.get() or "EMPTY",
                max_retries=0,  # retries are ours: bounded, with backoff, and failing over to other replicas
                timeout=timeout,
                http_client=http_client,
            )
            self._clients[index] = client
        return client

    def close(self) -> None:
        """Close the connections and stop the private event loop (the client can still be used: it restarts them)."""
        with self._loop_lock:
            handle, self._handle = self._handle, None
            if handle is not None:
                self._finalizer.detach()
        if handle is not None:
            handle.shutdown(wait=True)

    def __enter__(self) -> "ThinkingRewardClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _submit(self, coro: Any) -> concurrent.futures.Future:
        loop = self._ensure_loop()
        if threading.current_thread() is self._loop_thread:
            coro.close()
            raise RuntimeError("Use `await client.ascore(...)` inside the client's own event loop, not `score()`.")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    # ------------------------------------------------------------------ public scoring API

    def build_messages(self, question: str, reasoning: str, image: Any = None) -> list[dict[str, Any]]:
        r"""
        The chat messages sent for one item (see [`~sophiavl_trl.judge.prompt.build_judge_messages`]).

        Args:
            question (`str`): the question.
            reasoning (`str`): the reasoning to evaluate.
            image (*optional*): the image (PIL image, path, bytes), if any.

        Returns:
            `list[dict]`: the messages.
        """
        return build_judge_messages(
            question,
            reasoning,
            image=image,
            template=self.template,
            max_pixels=self.max_image_pixels,
            image_format=self.image_format,
        )

    def score(
        self, questions: Sequence[str], reasonings: Sequence[str], images: Sequence[Any] | None = None
    ) -> list[float]:
        r"""
        Score reasonings with the thinking reward model.

        Blocks until every item has a score or has failed, within `worst_case_seconds(len(questions))`. Per-item
        failures do not raise: they give NaN and are counted in `stats`.

        Args:
            questions (`Sequence[str]`):
                The questions, one per item.
            reasonings (`Sequence[str]`):
                The reasonings to evaluate, one per item.
            images (`Sequence` or `None`, *optional*):
                One image (PIL image, path, bytes) or `None` per item.

        Returns:
            `list[float]`: one score in [0, 1] per item, NaN where no score was obtained.

        Raises:
            `ValueError`: if the lists have different lengths, or an item is not a string.
            `OSError`, `TypeError`: if an image cannot be read (a data problem, not a judge failure).
        """
        items, n = self._prepare(questions, reasonings, images)
        if n == 0:
            return []
        future = self._submit(self._run(items, n))
        try:
            return future.result(timeout=self.worst_case_seconds(n) + _SCHEDULING_SLACK)
        except concurrent.futures.TimeoutError:
            # Unreachable unless the loop thread is starved: `_run` enforces the same deadline itself.
            future.cancel()
            logger.warning("Thinking judge call overran its deadline; returning NaN for %d items.", n)
            return [math.nan] * n
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt: do not leave requests running
            raise

    async def ascore(
        self, questions: Sequence[str], reasonings: Sequence[str], images: Sequence[Any] | None = None
    ) -> list[float]:
        r"""
        Async variant of [`~ThinkingRewardClient.score`], usable from any event loop (same arguments and result).
        """
        items, n = self._prepare(questions, reasonings, images)
        if n == 0:
            return []
        if asyncio.get_running_loop() is self._loop:
            return await self._run(items, n)
        return await asyncio.wrap_future(self._submit(self._run(items, n)))

    def check_server(self, wait_seconds: float = 0.0, require_all: bool = False) -> list[str]:
        r"""
        Check that the judge server(s) answer and list the model (`GET /v1/models`).

        Args:
            wait_seconds (`float`, *optional*, defaults to `0.0`):
                Keep polling (every second) until the check passes or this many seconds have passed, e.g. while the
                server is starting.
            require_all (`bool`, *optional*, defaults to `False`):
                Fail unless every replica is healthy. By default one healthy replica is enough (the others are logged
                and left out of rotation for `breaker_cooldown` seconds).

        Returns:
            `list[str]`: the API bases of the healthy replicas.

        Raises:
            `JudgeUnavailableError`: naming each URL, the model, what was wrong (unreachable, HTTP error, or model not
                listed, with the models that are), and how to start the server.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            per_call = min(self.timeout, 10.0)
            future = self._submit(self._check_all(per_call))
            results: list[tuple[str, str | None]] = future.result(timeout=per_call + _SCHEDULING_SLACK + 5.0)
            healthy = [url for url, problem in results if problem is None]
            problems = [(url, problem) for url, problem in results if problem is not None]
            if healthy and (not problems or not require_all):
                for url, problem in problems:
                    logger.warning("Judge replica %s left out of rotation: %s", url, self._api_key.redact(problem))
                return healthy
            if time.monotonic() + 1.0 > deadline:
                break
            time.sleep(1.0)
        lines = self._api_key.redact("\n".join(f"  - {url}: {problem}" for url, problem in problems))
        which = "all of the judge servers" if require_all and healthy else "any judge server"
        raise JudgeUnavailableError(
            f"The thinking reward model {self.model!r} is not available from {which}:\n{lines}\n"
            "Start the judge with vLLM, e.g.\n"
            f"  python -m vllm.entrypoints.openai.api_server --model /path/to/SophiaVL-R1-Thinking-Reward-Model-3B "
            f"--served-model-name {self.model} --port 8000\n"
            f"or `bash {SERVE_SCRIPT} /path/to/model 8000`, then pass base_url='http://HOST:8000/v1' (or set "
            "OPENAI_API_URL) and model= (or REWARD_MODEL) to match."
        )

    # ------------------------------------------------------------------ internals

    def _prepare(
        self, questions: Sequence[str], reasonings: Sequence[str], images: Sequence[Any] | None
    ) -> tuple[list[_Item], int]:
        if isinstance(questions, str) or isinstance(reasonings, str):
            raise ValueError("questions and reasonings must be sequences of strings, not a single string.")
        n = len(questions)
        if len(reasonings) != n:
            raise ValueError(f"Got {n} questions but {len(reasonings)} reasonings: pass one of each per item.")
        if images is not None and len(images) != n:
            raise ValueError(f"Got {n} questions but {len(images)} images: pass one image (or None) per item.")
        for i in range(n):
            if not isinstance(questions[i], str) or not isinstance(reasonings[i], str):
                raise ValueError(
                    f"Item {i}: question and reasoning must be strings, got {type(questions[i]).__name__} and "
                    f"{type(reasonings[i]).__name__}."
                )
        image_keys, urls = self._encode_images(images) if images is not None else ([None] * n, {})
        items: list[_Item] = []
        by_key: dict[tuple, _Item] = {}
        for i in range(n):
            question, reasoning, image_key = questions[i], reasonings[i], image_keys[i]
            key = (question, reasoning, image_key)
            if self.deduplicate and key in by_key:
                by_key[key].indices.append(i)
                continue
            # The image is already a data URL, which `build_messages` passes through as it is.
            url = urls[image_key] if image_key is not None else None
            item = _Item(messages=self.build_messages(question, reasoning, image=url), indices=[i])
            by_key[key] = item
            items.append(item)
        return items, n

    def _encode_images(self, images: Sequence[Any]) -> tuple[list[Hashable | None], dict[Hashable, str]]:
        """Each item's image key (`None` without image) and the data URL of each distinct image.

        GRPO sends every prompt's image with each of its G completions, usually as G distinct but equal objects (the
        data set decodes it anew for each), so images are keyed by content (hashing is 10 to 50 times cheaper than PNG
        encoding) and each distinct one is encoded once, in threads (PIL releases the GIL while encoding).
        """
        keys: list[Hashable | None] = []
        todo: dict[Hashable, Any] = {}
        by_id: dict[int, Hashable] = {}
        for image in images:
            if image is None:
                keys.append(None)
                continue
            key = by_id.get(id(image))
            if key is None:
                key = by_id[id(image)] = _image_key(image)
            keys.append(key)
            todo.setdefault(key, image)

        def encode(image: Any) -> str:
            return encode_image_data_url(image, max_pixels=self.max_image_pixels, image_format=self.image_format)

        if len(todo) > 1 and (os.cpu_count() or 1) > 1:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1, 8)) as pool:
                urls = dict(zip(todo, pool.map(encode, todo.values())))
        else:
            urls = {key: encode(image) for key, image in todo.items()}
        return keys, urls

    async def _run(self, items: list[_Item], n: int) -> list[float]:
        start = time.monotonic()
        handle = self._handle
        assert handle is not None
        if handle.semaphore is None:
            handle.semaphore = asyncio.Semaphore(self.max_concurrency)
        tasks = [asyncio.ensure_future(self._score_item(item, handle.semaphore)) for item in items]
        _, pending = await asyncio.wait(tasks, timeout=self.worst_case_seconds(n) - _SCHEDULING_SLACK / 2)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=_SCHEDULING_SLACK / 4)
        scores = [math.nan] * n
        failed = parse_failed = 0
        kinds: dict[str, int] = {}
        for item, task in zip(items, tasks):
            if task.cancelled() or not task.done():
                value, kind = math.nan, "deadline"
            elif task.exception() is not None:
                exc = task.exception()
                logger.error("Unexpected error while scoring an item: %r", exc, exc_info=exc)
                value, kind = math.nan, "error"
            else:
                value, kind = task.result()
            for index in item.indices:
                scores[index] = value
            if math.isnan(value):
                kinds[kind] = kinds.get(kind, 0) + len(item.indices)
                if kind == "parse":
                    parse_failed += len(item.indices)
                else:
                    failed += len(item.indices)
        self._count(
            items=n,
            calls=1,
            call_seconds=time.monotonic() - start,
            scored=n - failed - parse_failed,
            failures=failed + parse_failed,
            request_failures=failed,
            parse_failures=parse_failed,
            deduplicated=n - len(items),
        )
        if kinds:
            logger.warning(
                "Thinking judge: %d of %d items got no score (NaN): %s.",
                failed + parse_failed,
                n,
                ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())),
            )
        return scores

    def _is_open(self, replica: _Replica, now: float) -> bool:
        """Out of rotation: open, or half-open (cool-down over) with its one probe request in flight."""
        return replica.consecutive_failures >= self.breaker_threshold and (now < replica.open_until or replica.probing)

    def _pick_replica(self, avoid: int | None) -> int | None:
        now = time.monotonic()
        candidates = [index for index, replica in enumerate(self._replicas) if not self._is_open(replica, now)]
        if not candidates:
            # Every replica is out. Those taken out for refused or dropped connections are still tried: such
            # attempts fail in milliseconds, and a server that restarts or dropped a burst of connections recovers
            # at once. Only replicas that time out (which costs `timeout` per attempt) make attempts fail fast.
            candidates = [index for index, replica in enumerate(self._replicas) if replica.open_reason == "connection"]
        if not candidates:
            return None
        preferred = [index for index in candidates if index != avoid] or candidates
        start, count = self._rr, len(self._replicas)
        self._rr += 1
        chosen = min(preferred, key=lambda i: (self._replicas[i].outstanding, (i - start) % count))
        if self._replicas[chosen].consecutive_failures >= self.breaker_threshold:
            self._replicas[chosen].probing = True
        return chosen

    def _record_outcome(self, index: int, error: _AttemptError | None) -> None:
        replica = self._replicas[index]
        replica.probing = False
        if error is None or not error.trip:
            replica.consecutive_failures = 0  # it answered: alive
            return
        replica.consecutive_failures += 1
        if replica.consecutive_failures >= self.breaker_threshold:
            was_open = replica.open_until > time.monotonic()
            replica.open_until = time.monotonic() + self.breaker_cooldown
            replica.open_reason = error.kind
            if not was_open:
                self._count(breaker_trips=1)
                logger.warning(
                    "Judge replica %s failed %d times in a row (%s); leaving it out for %.0f s.",
                    replica.base_url,
                    replica.consecutive_failures,
                    error.detail,
                    self.breaker_cooldown,
                )

    async def _score_item(self, item: _Item, semaphore: asyncio.Semaphore) -> tuple[float, str]:
        async with semaphore:
            last: _AttemptError | None = None
            avoid: int | None = None
            for attempt in range(self.max_retries + 1):
                if attempt:
                    self._count(retries=1)
                index = self._pick_replica(avoid)
                if index is None:
                    self._count(circuit_open_skips=1)
                    last = _AttemptError("circuit_open", True, "every judge replica is out of rotation")
                else:
                    try:
                        text = await self._attempt(index, item.messages)
                    except _AttemptError as error:
                        last, avoid = error, index
                    else:
                        score = parse_score(text)
                        if math.isnan(score):
                            logger.debug("Judge answer holds no score: %r", self._api_key.redact(text[:200]))
                            return math.nan, "parse"
                        return score, "ok"
                if not last.retry:
                    break
                if attempt < self.max_retries:
                    fail_over = last.trip and self._pick_replica_available(avoid)
                    if not fail_over:
                        await asyncio.sleep(self.backoff_bound(attempt + 1) * random.uniform(0.5, 1.0))
            assert last is not None
            logger.debug("Judge item failed after %d attempts: %s", attempt + 1, last.detail)
            return math.nan, last.kind

    def _pick_replica_available(self, avoid: int | None) -> bool:
        """Whether a replica other than `avoid` is in rotation (then a retry goes there at once)."""
        now = time.monotonic()
        return any(index != avoid and not self._is_open(replica, now) for index, replica in enumerate(self._replicas))

    def _body(self) -> dict[str, Any]:
        """Request fields beyond model, messages, temperature and max_tokens."""
        body = dict(self.extra_body) if self.extra_body else {}
        if self.constrained_decoding:
            body["structured_outputs"] = {"choice": SCORE_CHOICES}
        return body

    async def _attempt(self, index: int, messages: list[dict[str, Any]]) -> str:
        """One request to replica `index`: the answer's text, or an `_AttemptError` saying whether to retry."""
        replica = self._replicas[index]
        replica.outstanding += 1
        self._count(requests=1)
        start = time.monotonic()
        error: _AttemptError | None = None
        answered = False
        body = {"model": self.model, "messages": messages, "temperature": 0.0, "max_tokens": self.max_tokens}
        body.update(self._body())
        try:
            # The client objects are made (and `openai` imported, ~1 s cold) before the clock of the attempt starts.
            if self.http_backend == "openai":
                sent = self._send_openai(self._openai_client(index), body)
            else:
                sent = self._send_aiohttp(self._aiohttp_session(index), f"{replica.base_url}/chat/completions", body)
            response = await _within(sent, self.timeout)
            try:
                text = response["choices"][0]["message"]["content"]
                if text is not None and not isinstance(text, str):
                    raise TypeError(f"content is a {type(text).__name__}")
            except (KeyError, IndexError, TypeError) as exc:
                raise _BadResponse(f"malformed response from {replica.base_url}: {exc!r}") from exc
            elapsed = time.monotonic() - start
            with self._stats_lock:
                self._stats.answered += 1
                self._stats.latency_sum += elapsed
                self._stats.latency_max = max(self._stats.latency_max, elapsed)
            answered = True
            return text or ""
        except asyncio.TimeoutError:
            self._count(timeouts=1)
            detail = f"no answer from {replica.base_url} in {self.timeout:g} s"
            error = _AttemptError("timeout", True, detail, trip=True)
        except _TransportFailure as exc:
            if exc.timeout:
                self._count(timeouts=1)
                error = _AttemptError("timeout", True, f"{replica.base_url}: transport timeout ({exc})", trip=True)
            else:
                self._count(connection_errors=1)
                error = _AttemptError("connection", True, f"{replica.base_url}: {exc}", trip=True)
        except _StatusError as exc:
            with self._stats_lock:
                self._stats.http_errors[exc.status] = self._stats.http_errors.get(exc.status, 0) + 1
            retry = exc.status in (408, 429) or exc.status >= 500
            detail = self._api_key.redact(f"HTTP {exc.status} from {replica.base_url}: {exc.message[:300]}")
            if not retry:
                # Once per status code at WARNING (a misconfiguration fails every request the same way), then DEBUG.
                level = logging.DEBUG if exc.status in self._warned_statuses else logging.WARNING
                self._warned_statuses.add(exc.status)
                logger.log(level, "Judge request rejected (not retried): %s", detail)
            error = _AttemptError(f"http_{exc.status}", retry, detail, status=exc.status)
        except _BadResponse as exc:  # a 200 whose body is not the expected JSON: a broken server, not a transient
            error = _AttemptError("bad_response", False, f"bad response from {replica.base_url}: {exc}")
        finally:
            replica.outstanding -= 1
            if error is not None:
                error.detail = self._api_key.redact(error.detail)
            if answered or error is not None:
                self._record_outcome(index, error)
            else:  # cancelled (the call's deadline) or an unexpected error: no verdict on the replica
                replica.probing = False
        raise error

    async def _send_openai(self, client: Any, body: dict[str, Any]) -> Any:
        import openai

        try:
            # `post` is the OpenAI client's generic request method: the same base URL, auth, transport and error
            # classes as `chat.completions.create`, without its per-request parameter transformation and response
            # model construction (~2 ms of CPU per request, measured, which would dominate a 128-request step).
            return await client.post("/chat/completions", body=body, cast_to=object)
        except openai.APIConnectionError as exc:  # includes openai.APITimeoutError (raised by the transport)
            raise _TransportFailure(repr(_root_cause(exc)), timeout=_is_timeout(exc)) from None
        except openai.APIStatusError as exc:
            raise _StatusError(exc.status_code, str(exc.message)) from None
        except openai.APIError as exc:
            raise _BadResponse(repr(exc)) from None

    async def _send_aiohttp(self, session: Any, url: str, body: dict[str, Any]) -> Any:
        import aiohttp

        try:
            async with session.post(url, data=json.dumps(body).encode()) as response:
                raw = await response.read()
                status = response.status
        except aiohttp.ClientResponseError as exc:  # e.g. a malformed status line or headers
            raise _BadResponse(repr(exc)) from None
        except (aiohttp.ClientError, OSError) as exc:  # refused, reset, dropped mid-answer; aiohttp's timeouts
            raise _TransportFailure(repr(exc), timeout=isinstance(exc, _TIMEOUT_ERRORS)) from None
        if status >= 400:
            raise _StatusError(status, _error_message(raw))
        try:
            return json.loads(raw)
        except ValueError:
            raise _BadResponse(f"HTTP {status} body is not JSON: {raw[:100]!r}") from None

    def _aiohttp_session(self, index: int) -> Any:
        # Runs on the private loop only, so the session (and its connection pool) stays bound to it.
        session = self._clients.get(index)
        if session is None:
            import aiohttp

            connect = self.timeout if self.connect_timeout is None else min(self.timeout, self.connect_timeout)
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_concurrency),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=self.timeout + 1.0),
                headers={
                    "Authorization": f"Bearer {self._api_key.get() or 'EMPTY'}",
                    "Content-Type": "application/json",
                },
            )
            self._clients[index] = session
        return session

    async def _list_models(self, index: int) -> list[str]:
        """`GET /models` on replica `index`: the served model names (transport errors normalised as in `_send_*`)."""
        if self.http_backend == "openai":
            import openai

            try:
                page = await self._openai_client(index).models.list()
            except openai.APIConnectionError as exc:
                raise _TransportFailure(repr(_root_cause(exc)), timeout=_is_timeout(exc)) from None
            except openai.APIStatusError as exc:
                raise _StatusError(exc.status_code, str(exc.message)) from None
            return [entry.id for entry in page.data]
        import aiohttp

        try:
            async with self._aiohttp_session(index).get(f"{self._replicas[index].base_url}/models") as response:
                raw, status = await response.read(), response.status
        except (aiohttp.ClientError, OSError) as exc:
            raise _TransportFailure(repr(exc), timeout=isinstance(exc, _TIMEOUT_ERRORS)) from None
        if status >= 400:
            raise _StatusError(status, _error_message(raw))
        return [entry["id"] for entry in json.loads(raw)["data"]]

    async def _check_one(self, index: int, per_call: float) -> str | None:
        """`None` when the replica lists the model, else what is wrong (the replica is then taken out of rotation)."""
        replica = self._replicas[index]
        url = replica.base_url
        reason = "unhealthy"
        try:
            if self.http_backend == "openai":
                self._openai_client(index)  # made (and `openai` imported) before the clock starts
            else:
                self._aiohttp_session(index)
            models = await asyncio.wait_for(self._list_models(index), timeout=per_call)
        except asyncio.TimeoutError:
            problem = f"unreachable (no answer to GET {url}/models within {per_call:g} s)"
            reason = "timeout"
        except _TransportFailure as exc:
            problem = f"unreachable ({exc})"
            reason = "timeout" if exc.timeout else "connection"
        except _StatusError as exc:
            hint = " (check OPENAI_API_KEY / api_key)" if exc.status in (401, 403) else ""
            problem = f"GET {url}/models answered HTTP {exc.status}{hint}"
        except Exception as exc:  # a server that is not OpenAI-compatible
            problem = f"GET {url}/models failed: {exc!r}"
        else:
            if self.model in models:
                replica.consecutive_failures, replica.open_until, replica.open_reason = 0, 0.0, ""
                return None
            problem = f"model {self.model!r} not listed; available models: {models}"
        replica.consecutive_failures = max(replica.consecutive_failures, self.breaker_threshold)
        replica.open_until = time.monotonic() + self.breaker_cooldown
        replica.open_reason = reason
        return problem

    async def _check_all(self, per_call: float) -> list[tuple[str, str | None]]:
        problems = await asyncio.gather(*(self._check_one(i, per_call) for i in range(len(self._replicas))))
        return [(replica.base_url, problem) for replica, problem in zip(self._replicas, problems)]
