# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Judge throughput per serving layout: one step's 128 requests (a 224 x 224 image each, constrained decoding) scored by
`ThinkingRewardClient` against each given endpoint (e.g. one vLLM server, one with `--data-parallel-size 2`, or a
comma-separated list of replicas the client balances itself). Prints the median time and requests per second.

    python benchmarks/bench_judge_replicas.py http://127.0.0.1:8000/v1 http://127.0.0.1:8001/v1,http://127.0.0.1:8002/v1
"""

import argparse
import statistics
import time

from PIL import Image

from sophiavl_trl.judge import ThinkingRewardClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoints", nargs="+", help="base URL(s) per layout; comma-separated = replicas")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="thinking-reward-model")
    args = parser.parse_args()
    n = args.n
    questions = [f"Question {i}: how many red shapes are in the picture? Explain your answer." for i in range(n)]
    reasonings = [
        f"I see {i % 5} red circles and {i % 3} red squares, so {i % 5 + i % 3} in all. " * 4 for i in range(n)
    ]
    images = [Image.new("RGB", (224, 224), ((37 * (i // 8)) % 256, 80, 160)) for i in range(n)]  # 8 per prompt
    for endpoint in args.endpoints:
        client = ThinkingRewardClient(base_url=endpoint.split(","), model=args.model, constrained_decoding=True,
                                      max_concurrency=64, timeout=120)  # fmt: skip
        client.score(questions[:8], reasonings[:8], images[:8])  # warm up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            scores = client.score(questions, reasonings, images)
            times.append(time.perf_counter() - start)
            if any(s != s for s in scores):
                print(f"  {endpoint}: {sum(s != s for s in scores)} of {n} requests failed")
        median = statistics.median(times)
        print(f"{endpoint}: {n} requests, median {median:.2f} s ({n / median:.0f} requests/s) over {args.repeats}")


if __name__ == "__main__":
    main()
