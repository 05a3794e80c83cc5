# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""A concurrent, bounded-time client for the thinking reward model behind an OpenAI-compatible server such as vLLM."""

import asyncio
import hashlib
import importlib.util
import logging
import math
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sophiavl_trl.judge import prompt


__all__ = [
    "MAX_RESPONSE_BYTES", "JudgeStats", "JudgeUnavailableError", "ThinkingRewardClient", "api_key_from_env",
    "image_key", "normalize_base_url",
]  # fmt: skip

logger = logging.getLogger(__name__)

# A score is a few bytes of JSON: a larger body (after gzip/brotli decoding) comes from a broken or hostile server.
MAX_RESPONSE_BYTES = 64 * 1024


class JudgeUnavailableError(RuntimeError):
    """The thinking reward model cannot be reached, or the server does not serve it."""


class ResponseTooLargeError(RuntimeError):
    """A judge response body exceeded `MAX_RESPONSE_BYTES` once decoded."""


def api_key_from_env(name: str | None = None) -> str | None:
    """The judge's API key from the environment variable `name`, or from `OPENAI_API_KEY` (if set) when `name` is
    `None`. A named variable that is unset or empty, or an empty name, raises `ValueError`: no other key is sent."""
    if name is None:
        return os.environ.get("OPENAI_API_KEY") or None
    if not name.strip():
        raise ValueError("judge_api_key_env is empty: name the environment variable holding the judge's API key, or "
                         "leave it unset to use OPENAI_API_KEY when it is set.")  # fmt: skip
    if not os.environ.get(name):
        raise ValueError(f"judge_api_key_env names {name}, which is {'empty' if name in os.environ else 'not set'}: "
                         f"export {name}=<the key the judge server requires>, or leave judge_api_key_env unset for a "
                         "server without a key.")  # fmt: skip
    return os.environ[name]


def normalize_base_url(url: str) -> str:
    """The OpenAI API base of a judge URL: `"host:8000"` or `"http://host:8000/v1/chat/completions"` -> `".../v1"`."""
    parts = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}")
    if "@" in parts.netloc:  # httpx would send it as basic auth; vLLM checks a bearer key
        shown = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        raise ValueError(f"Judge URL {shown}: credentials in the URL (user:password@) are not supported; pass the "
                         "password as the API key (api_key=, or the variable named by judge_api_key_env).")  # fmt: skip
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        path = path.removesuffix(suffix).rstrip("/")
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


async def _read_capped(response: Any) -> None:
    """httpx response hook, run before openai reads the body: reads it decoded (httpx inflates in chunks of at most
    1 MiB) and stops past `MAX_RESPONSE_BYTES`, so a gzip bomb costs about 1 MiB of memory, not its expanded size."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise ResponseTooLargeError(f"response body over {MAX_RESPONSE_BYTES} bytes once decoded")
    response._content = bytes(body)  # what httpx's `aread()` then returns to openai, without reading again


def _failure(exc: BaseException) -> tuple[str, str]:
    """The kind of a failed request and what happened (openai's "Connection error." says little, its cause more)."""
    import openai

    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 8:
        chain.append(chain[-1].__cause__)
    # aiohttp's transport reports a refused connection as a timeout: the OSError in the chain tells them apart.
    refused = any(isinstance(e, OSError) and not isinstance(e, TimeoutError) for e in chain)
    if any(isinstance(e, ResponseTooLargeError) for e in chain):
        kind = "too_large"
    elif isinstance(exc, openai.APIStatusError):
        kind = f"http_{exc.status_code}"
    elif refused or (isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError)):
        kind = "connection"
    else:
        kind = "timeout" if isinstance(exc, (openai.APITimeoutError, TimeoutError)) else "bad_response"
    return kind, repr(exc) + (f" from {exc.__cause__!r}" if exc.__cause__ is not None else "")


@dataclass
class JudgeStats:
    """Counters of a [`ThinkingRewardClient`]. `errors` counts the items that got NaN by cause (`"unparseable"`,
    `"timeout"`, `"connection"`, `"http_503"`, `"too_large"`, `"deadline"`...)."""

    items: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    seconds: float = 0.0
    failures = property(lambda self: sum(self.errors.values()))
    parse_failures = property(lambda self: self.errors.get("unparseable", 0))
    request_failures = property(lambda self: self.failures - self.parse_failures)
    scored = property(lambda self: self.items - self.failures)

    def as_dict(self) -> dict[str, Any]:
        names = ("scored", "parse_failures", "request_failures", "failures")
        return {**asdict(self), **{name: getattr(self, name) for name in names}}


def _shutdown(loop: asyncio.AbstractEventLoop, clients: dict[int, list[Any]]) -> None:
    """Close the openai clients on their loop, then stop it (without waiting: this may run in a finalizer)."""

    async def close() -> None:
        await asyncio.gather(*(c.close() for c in clients.get(0, [])), return_exceptions=True)
        loop.stop()

    if not loop.is_closed():
        asyncio.run_coroutine_threadsafe(close(), loop)


class ThinkingRewardClient:
    r"""
    Client for the thinking reward model (SophiaVL-R1's judge) behind an OpenAI-compatible server such as vLLM.

    Each item is one `chat.completions.create` request ([`~sophiavl_trl.judge.build_judge_messages`], temperature 0),
    at most `max_concurrency` in flight, round-robin over the replicas, failing over to the others. An item that fails
    everywhere, or whose answer holds no verdict in [0, 1], gets NaN (counted in `stats`), never 0. The requests run
    on the client's own event loop in a daemon thread: `score()` works from any thread, inside a running loop too, and
    `await ascore()` from any loop. The API key never shows in `repr`, `to_dict()`, `stats`, logs, errors or pickles.

    Args:
        base_url: server URL(s), a list or comma-separated string for replicas; defaults to `OPENAI_API_URL`, else
            `"http://127.0.0.1:8000/v1"`. No `user:password@`: use `api_key`.
        model: the served model name; defaults to `REWARD_MODEL`, else `"thinking-reward-model"`.
        max_concurrency, timeout, max_retries: requests in flight; openai's timeout and retries (per request and
            replica).
        api_key: vLLM's `--api-key`; defaults to `OPENAI_API_KEY` (see [`api_key_from_env`]).
        constrained_decoding: send vLLM's `structured_outputs={"choice": SCORE_CHOICES}`: the answer is then the score
            alone, so nothing the judge quotes can become the score.
        template: evaluator prompt with `{question}` and `{reasoning}`; defaults to the model card's.
        max_image_pixels: larger images are downscaled before sending.
        deadline: seconds a `score()` call may take; items still unscored get NaN (counted as `"deadline"`), also
            against a server that answers one byte at a time.
        http_transport: `"aiohttp"` (the default when openai's `aiohttp` extra is installed) or `"httpx"`. Either way,
            a response body is read up to `MAX_RESPONSE_BYTES` once decoded, no further.
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
        max_image_pixels: int | None = prompt.DEFAULT_MAX_IMAGE_PIXELS,
        deadline: float = 600.0,
        http_transport: str | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("OPENAI_API_URL") or "http://127.0.0.1:8000/v1"
        self.base_urls = [
            normalize_base_url(u) for u in (base_url.split(",") if isinstance(base_url, str) else base_url)
        ]
        if max_concurrency < 1 or not timeout > 0 or max_retries < 0 or not deadline > 0:
            raise ValueError("Need max_concurrency >= 1, timeout > 0, max_retries >= 0, deadline > 0; got "
                             f"{max_concurrency, timeout, max_retries, deadline}.")  # fmt: skip
        if template is not None:
            prompt.validate_template(template)
        self.model: str = model or os.environ.get("REWARD_MODEL") or "thinking-reward-model"
        self.max_concurrency, self.timeout, self.max_retries = max_concurrency, float(timeout), max_retries
        self.constrained_decoding, self.template = constrained_decoding, template
        self.max_image_pixels, self.deadline, self.http_transport = max_image_pixels, float(deadline), http_transport
        self._api_key = api_key if api_key is not None else api_key_from_env()
        self._stats, self._lock, self._rr, self._thread = JudgeStats(), threading.Lock(), 0, None

    def to_dict(self) -> dict[str, Any]:
        """The configuration, without the API key (what pickling keeps)."""
        names = "model max_concurrency timeout max_retries constrained_decoding template max_image_pixels deadline"
        return {"base_url": list(self.base_urls), **{k: getattr(self, k) for k in names.split() + ["http_transport"]}}

    __getstate__ = to_dict

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # an unpickled client reads OPENAI_API_KEY again

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_urls!r}, model={self.model!r}, timeout={self.timeout})"

    def _redact(self, text: str, limit: int) -> str:
        return (text.replace(self._api_key, "***") if self._api_key else text)[:limit]

    @property
    def stats(self) -> JudgeStats:
        """A snapshot of the counters (see [`JudgeStats`])."""
        with self._lock:
            return replace(self._stats, errors=dict(self._stats.errors))

    def _run(self, coro: Any) -> Any:
        """Run `coro` on the client's event loop; a `concurrent.futures.Future` of its result."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # first use, or a forked child (no thread)
                self._loop, self._clients = asyncio.new_event_loop(), {}  # max_retries -> openai client per replica
                self._semaphore = asyncio.Semaphore(self.max_concurrency)  # shared by concurrent calls
                self._thread = threading.Thread(target=self._loop.run_forever, name="judge-client", daemon=True)
                self._thread.start()
                # A client dropped without close() still closes its connections and ends its thread.
                self._finalizer = weakref.finalize(self, _shutdown, self._loop, self._clients)
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _replicas(self, retries: int) -> list[Any]:
        """The openai clients, one per replica, with `retries` (0 or `max_retries`); built on the client's loop."""
        if not self._clients:
            import openai

            # openai's aiohttp transport is the faster (benchmarks/bench_judge.py); without the extra, it says so.
            transport = self.http_transport or ("aiohttp" if importlib.util.find_spec("aiohttp") else "httpx")
            http = openai.DefaultAsyncHttpxClient if transport == "httpx" else openai.DefaultAioHttpClient
            options = {"api_key": self._api_key or "EMPTY", "timeout": self.timeout, "max_retries": self.max_retries}
            hooks = {"response": [_read_capped]}
            clients = [
                openai.AsyncOpenAI(base_url=url, http_client=http(timeout=self.timeout, event_hooks=hooks), **options)
                for url in self.base_urls
            ]
            self._clients.update({self.max_retries: clients, 0: [c.with_options(max_retries=0) for c in clients]})
        return self._clients[retries]

    def close(self) -> None:
        """Close the connections and stop the client's event loop (a later call starts new ones)."""
        if self._thread is not None and self._thread.is_alive():
            self._finalizer()
            self._thread.join()
            self._loop.close()

    def build_messages(self, question: str, reasoning: str, image: Any = None) -> list[dict[str, Any]]:
        """The chat messages sent for one item (see [`~sophiavl_trl.judge.build_judge_messages`])."""
        return prompt.build_judge_messages(question, reasoning, image, self.template, max_pixels=self.max_image_pixels)

    def score(
        self, questions: Sequence[str], reasonings: Sequence[str], images: Sequence | None = None
    ) -> list[float]:
        """Score reasonings: one score in [0, 1] per item, NaN where none was obtained, within `deadline` seconds.
        `images` holds one image (PIL image, path, bytes) or `None` per item. Raises `ValueError`, `OSError` or
        `TypeError` on bad inputs only."""
        return self._run(self._ascore(questions, reasonings, images)).result()

    async def ascore(
        self, questions: Sequence[str], reasonings: Sequence[str], images: Sequence | None = None
    ) -> list[float]:
        """[`~ThinkingRewardClient.score`], awaitable from any event loop."""
        return await asyncio.wrap_future(self._run(self._ascore(questions, reasonings, images)))

    async def _ascore(self, questions: Sequence[str], reasonings: Sequence[str], images: Any) -> list[float]:
        n = len(questions)
        if isinstance(questions, str) or isinstance(reasonings, str):
            raise ValueError("questions and reasonings must be sequences of strings, not a single string.")
        if len(reasonings) != n or (images is not None and len(images) != n):
            got = f"{n} questions, {len(reasonings)} reasonings and {'no' if images is None else len(images)} images"
            raise ValueError(f"Got {got}: pass one of each per item.")
        keys = [None if image is None else image_key(image) for image in images or [None] * n]
        unique = {key: image for key, image in zip(keys, images or ()) if key is not None}  # each encoded once
        urls = {
            key: prompt.encode_image_data_url(img, max_pixels=self.max_image_pixels) for key, img in unique.items()
        }
        messages = [self.build_messages(q, r, urls.get(key)) for q, r, key in zip(questions, reasonings, keys)]
        if not messages:
            return []
        start, first, last_error = time.monotonic(), self._rr, {}
        self._rr += n
        tasks = [asyncio.ensure_future(self._score_one(m, first + i, last_error)) for i, m in enumerate(messages)]
        _, pending = await asyncio.wait(tasks, timeout=self.deadline)
        for task in pending:
            task.cancel()
        results = [task.result() if task.done() and not task.cancelled() else (math.nan, "deadline") for task in tasks]
        errors = Counter(kind for _, kind in results if kind != "ok")
        with self._lock:
            self._stats.calls, self._stats.items = self._stats.calls + 1, self._stats.items + n
            self._stats.seconds += time.monotonic() - start
            self._stats.errors = dict(Counter(self._stats.errors) + errors)
        if errors:
            why = ", ".join(
                f"{c} {k}" + (f" (last: {last_error[k]})" if k in last_error else "") for k, c in errors.items()
            )
            logger.warning("Thinking judge: %d of %d items got no score (NaN): %s.", errors.total(), n, why)
        return [score for score, _ in results]

    async def _score_one(self, messages: list, first: int, last_error: dict[str, str]) -> tuple[float, str]:
        n, kind = len(self.base_urls), "bad_response"
        extra = {"structured_outputs": {"choice": prompt.SCORE_CHOICES}} if self.constrained_decoding else None
        # With several replicas, one quick pass (a dead or failing replica hands over at once), then one with retries.
        async with self._semaphore:
            for retries in [0, self.max_retries] if n > 1 and self.max_retries else [self.max_retries]:
                for index in [(first + k) % n for k in range(n)]:
                    try:
                        response = await self._replicas(retries)[index].chat.completions.create(
                            model=self.model, messages=messages, temperature=0.0, max_tokens=16, extra_body=extra
                        )
                        text = response.choices[0].message.content
                    except Exception as exc:  # whatever the server or the network does is a failed request
                        kind, description = _failure(exc)
                        last_error[kind] = self._redact(f"{self.base_urls[index]}: {description}", 300)
                        continue
                    score = prompt.parse_score(text if isinstance(text, str) else None)
                    return score, "unparseable" if math.isnan(score) else "ok"
        return math.nan, kind

    def check_server(self, wait_seconds: float = 0.0) -> list[str]:
        """The replicas that answer and list the model (`GET /v1/models`), polling every second for up to
        `wait_seconds` until one does; raises `JudgeUnavailableError`, saying what is wrong with each, if none does."""
        end = time.monotonic() + wait_seconds
        while all(problems := self._run(self._check()).result()) and time.monotonic() + 1.0 < end:
            time.sleep(1.0)
        healthy = [url for url, problem in zip(self.base_urls, problems) if problem is None]
        lines = "\n".join(f"  - {url}: {problem}" for url, problem in zip(self.base_urls, problems) if problem)
        if healthy and lines:
            logger.warning("Judge replicas left unchecked, requests will still try them:\n%s", lines)
        if healthy:
            return healthy
        raise JudgeUnavailableError(
            f"The thinking reward model {self.model!r} is not available from any judge server:\n{lines}\nStart it with "
            f"`bash examples/serve_thinking_reward_model.sh /path/to/judge 8000` (it serves --served-model-name "
            f"{self.model}), then pass base_url='http://HOST:8000/v1' (or OPENAI_API_URL) and model= (or REWARD_MODEL)."
        )

    async def _check(self) -> list[str | None]:
        async def problem(client: Any, seconds: float = min(self.timeout, 10.0)) -> str | None:
            try:
                page = await asyncio.wait_for(client.models.list(timeout=seconds), seconds + 1)
            except Exception as exc:
                kind, description = _failure(exc)
                hint = " (check OPENAI_API_KEY / api_key)" if kind in ("http_401", "http_403") else ""
                what = "unreachable" if kind in ("timeout", "connection") else f"GET /models failed ({kind}{hint})"
                return self._redact(f"{what}: {description}", 500)
            models = [m.id for m in page.data]
            return None if self.model in models else f"model {self.model!r} not listed; available models: {models}"

        return list(await asyncio.gather(*(problem(client) for client in self._replicas(0))))
