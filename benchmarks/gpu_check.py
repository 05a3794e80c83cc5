# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""GPU check kit: proves the bf16 GPU path and measures Trust-GRPO's step time against GRPOTrainer, in one command.

Stages (each one's failure is recorded and the next ones still run; the JSON is rewritten after every stage):

1. `env`: versions, device, CUDA.
2. `recipes`: `check_attn_implementation` on every GPU recipe (flash-attn missing: the error a launch stops with).
3. `pytest_gpu`: `pytest -m gpu tests/test_gpu.py` (passed / failed / skipped counted apart: a skip is not a pass). It
   runs before the benchmark, so that its verdict is kept even if the benchmark runs out of time.
4. `models`: a tiny Qwen2.5-VL (`build_tiny_qwen2_5_vl`) and, on CUDA, one of Qwen2.5-VL-3B's size (36 layers,
   hidden 2048, vocabulary 151,936, 32-block vision tower; about 3.75 B parameters), random weights, nothing downloaded.
   On the CPU the second model is the tiny one with its vocabulary padded (so both take the same code path).
5. `sync_audit`: the host-device synchronisations of a Trust-GRPO step (tiny model), counted per source line with
   torch's sync debug mode: ours (`sophiavl_trl/`), TRL's, all.
6. `grpo`, `trust_grpo`: N steps each of `trl.GRPOTrainer` and `TrustGRPOTrainer` (paper mode) on the same image
   prompts, seed and outcome reward; bf16 (CUDA), sdpa, gradient checkpointing, G = 8, completions forced to
   `--completion-length` tokens (EOS and the vision tokens forbidden), `beta` 0.04 (a reference log-prob pass). The judge
   is the project's `ThinkingReward` client against a local fake OpenAI server (stdlib, in a subprocess) whose latency is
   set, after each Trust-GRPO step from the second on, to `--latency-fraction` x the shortest log-prob pass so far
   (`timing/logprobs`).
   Per trainer: median step time (the 2 warm-up steps left out), every `timing/*` phase, peak GPU memory, generated
   tokens/s.
7. `overhead`: Trust-GRPO's median step time / GRPOTrainer's (target on the GPU: <= 1.03).

Writes `gpu_check.json` (every figure) and `gpu_check.log` (the progress lines) to OUT.

    python benchmarks/gpu_check.py OUT [--device cuda|cpu] [--steps 6] [--completion-length 256]

On the CPU (`--device cpu`, what CI runs through `tests/test_gpu.py::test_kit_cpu_mode`) the same stages run with the
tiny model, G = 4 and 8-token completions; docs/gpu.md says how to run it on a GPU machine.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[1]

# Qwen2.5-VL-3B-Instruct's architecture (its config.json), and the tiny stand-in the CPU mode trains instead.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "3b": {
        "text": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
                 "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 128000,
                 "rope_theta": 1000000.0, "mrope_section": [16, 24, 24], "rms_norm_eps": 1e-6},
        "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                   "fullatt_block_indexes": [7, 15, 23, 31]},
    },
    "tiny": {
        "text": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "vocab_size": 1024, "max_position_embeddings": 4096,
                 "rope_theta": 10000.0, "mrope_section": [4, 6, 6], "rms_norm_eps": 1e-6},
        "vision": {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2, "fullatt_block_indexes": [1]},
    },
}  # fmt: skip
WARMUP = 2  # steps left out of every median (the first warms up; the judge answers at once in both)
PHASES = ("generation", "weight_sync", "logprobs", "outcome_rewards", "judge", "judge_wait", "optimizer")


# ------------------------------------------------------------------------------------------------------ the report
class Report:
    """Progress lines to stdout and the log; figures to one JSON file, rewritten after every change."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.json_path, self.log = out / "gpu_check.json", open(out / "gpu_check.log", "a", buffering=1)
        self.start = time.perf_counter()
        self.data: dict[str, Any] = {"stages": {}}

    def say(self, message: str) -> None:
        line = f"[gpu_check {time.perf_counter() - self.start:7.1f}s] {message}"
        print(line, flush=True)
        self.log.write(line + "\n")

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        tmp = self.json_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str, allow_nan=True))
        os.replace(tmp, self.json_path)

    @contextlib.contextmanager
    def stage(self, name: str):
        """Run a stage: its status, seconds and (on failure) error and traceback go into `stages`."""
        self.say(f"--- {name}")
        start, record = time.perf_counter(), {"status": "running"}
        self.data["stages"][name] = record
        self.put("stages", self.data["stages"])
        try:
            yield
            record["status"] = "ok"
        except Exception as exc:  # one stage failing must not lose the others' figures
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            self.say(f"{name} FAILED: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        finally:
            record["seconds"] = round(time.perf_counter() - start, 2)
            self.say(f"{name}: {record['status']} in {record['seconds']} s")
            self.put("stages", self.data["stages"])


# ------------------------------------------------------------------------------------------- the fake judge server
class _FakeJudge(BaseHTTPRequestHandler):
    """OpenAI-compatible chat server answering "0.7" after the latency written in `server.latency_file`."""

    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections, as with vLLM

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "thinking-reward-model", "object": "model"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(float(Path(self.server.latency_file).read_text() or 0))
        choice = {"index": 0, "message": {"role": "assistant", "content": "0.7"}, "finish_reason": "stop"}
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        self._send({"id": "chatcmpl-kit", "object": "chat.completion", "created": 0, "model": "thinking-reward-model",
                    "choices": [choice], "usage": usage})  # fmt: skip

    def log_message(self, *args: Any) -> None:
        pass


def serve_fake(port: int, latency_file: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _FakeJudge)
    server.daemon_threads, server.latency_file = True, latency_file
    parent = os.getppid()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while os.getppid() == parent:  # the kit died without stopping us: stop too
        time.sleep(1.0)


class FakeJudgeServer:
    """`serve_fake` in a subprocess (its CPU time is not the trainer's); `latency` can change while it runs."""

    def __init__(self, latency: float = 0.0) -> None:
        import socket
        import urllib.request

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.latency_file = Path(tempfile.mkdtemp()) / "latency"
        self.latency = latency
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-fake", str(port), str(self.latency_file)], start_new_session=True
        )
        self.base_url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("the fake judge server did not start within 30 s") from None
                time.sleep(0.1)

    @property
    def latency(self) -> float:
        return float(self.latency_file.read_text())

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.latency_file.write_text(f"{seconds:.6f}")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


# --------------------------------------------------------------------------------------------- the recipes' attention
def check_recipes() -> dict[str, str]:
    """`check_attn_implementation` on every GPU recipe: "ok", or the error a launch would stop with."""
    import yaml

    from sophiavl_trl.model_utils import check_attn_implementation

    verdicts = {}
    for recipe in sorted((ROOT / "examples" / "recipes" / "Qwen2.5-VL-7B-Instruct").rglob("*.yaml")):
        name = str(recipe.relative_to(ROOT))
        try:
            check_attn_implementation(yaml.safe_load(recipe.read_text()).get("attn_implementation"), where=name)
            verdicts[name] = "ok"
        except RuntimeError as exc:
            verdicts[name] = str(exc)
    return verdicts


# ------------------------------------------------------------------------------------------------------- the models
def build_sized_model(processor_dir: Path, size: str, path: Path, device: str) -> dict[str, Any]:
    """Write a random-weight Qwen2.5-VL of `SIZES[size]` with the processor of `processor_dir` (bf16 on CUDA)."""
    import torch
    from transformers import AutoProcessor, GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from sophiavl_trl.testing.tiny_model import SPECIAL_TOKENS

    processor = AutoProcessor.from_pretrained(processor_dir)
    tokenizer = processor.tokenizer
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    text, vision = dict(SIZES[size]["text"]), dict(SIZES[size]["vision"])
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": text.pop("rope_theta"),
                               "mrope_section": text.pop("mrope_section")}  # fmt: skip
    text.update(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                tie_word_embeddings=True)  # fmt: skip
    vision.update(out_hidden_size=text["hidden_size"], patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                  window_size=112, hidden_act="silu")  # fmt: skip
    config = Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=True,
    )  # fmt: skip
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=text["bos_token_id"], eos_token_id=[text["eos_token_id"], text["bos_token_id"]],
        pad_token_id=text["pad_token_id"], do_sample=False,
    )  # fmt: skip
    model.save_pretrained(path)
    processor.save_pretrained(path)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return {
        "path": str(path),
        "parameters": n_params,
        "vocab_size": text["vocab_size"],
        "tokenizer_size": len(tokenizer),
    }


def image_prompts(n: int, side: int) -> Any:
    """`n` one-image prompts (TRL's conversational format with an `images` column): the vision tower runs too."""
    from datasets import Dataset
    from PIL import Image

    colors = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    rows: dict[str, list] = {"prompt": [], "images": []}
    for i in range(n):
        text = f"How many red circles are there? What is {i} plus {i}? Think first."
        rows["prompt"].append([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}])
        rows["images"].append([Image.new("RGB", (side, side), colors[i % len(colors)])])
    return Dataset.from_dict(rows)


# ---------------------------------------------------------------------------------------------------- the training
def train(kind: str, model: dict[str, Any], args: argparse.Namespace, judge: FakeJudgeServer | None) -> dict:
    """Train `args.steps` steps of `kind` ("grpo" or "trust_grpo"); return its figures."""
    import torch
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs, set_pixel_bounds
    from sophiavl_trl.rewards import ThinkingReward

    cuda = args.device == "cuda"
    processor = AutoProcessor.from_pretrained(model["path"])  # needs torchvision (the GPU machine has it)
    set_pixel_bounds(processor, 28 * 28, args.image_side**2)
    tokenizer = processor.tokenizer
    suppress = forbidden_token_generation_kwargs(tokenizer, use_vllm=False).get("suppress_tokens", [])
    # Ids past the tokenizer (the 3B vocabulary is larger than the tiny tokenizer) decode to nothing: never sample them.
    suppress = sorted(set(suppress) | set(range(len(tokenizer), model["vocab_size"])))
    batch = args.generations * args.prompts_per_step

    def accuracy_reward(completion_ids, **kwargs):
        return [float(sum(c) % 2) for c in completion_ids]  # mixed groups: both sides of the trust split exist

    common = {
        "output_dir": tempfile.mkdtemp(), "max_steps": args.steps, "per_device_train_batch_size": batch,
        "num_generations": args.generations, "max_completion_length": args.completion_length, "beta": 0.04,
        "loss_type": "dapo", "learning_rate": 1e-6, "report_to": "none", "use_cpu": not cuda, "bf16": cuda,
        "gradient_checkpointing": True, "seed": 0, "shuffle_dataset": False, "logging_steps": 1, "save_strategy": "no",
        "disable_tqdm": True, "temperature": 1.0, "top_p": 0.9,
        "model_init_kwargs": {"dtype": "bfloat16" if cuda else "float32", "attn_implementation": "sdpa"},
        # every completion runs to the full length, so that tokens/s and the step time are the same work every step
        "generation_kwargs": {"suppress_tokens": suppress, "min_new_tokens": args.completion_length},
    }  # fmt: skip
    dataset = image_prompts(args.prompts_per_step * args.steps, args.image_side)
    timer = StepTimer(judge, args.latency_fraction if kind == "trust_grpo" else None)
    if kind == "trust_grpo":
        config = TrustGRPOConfig(**common, trust_mode="paper")
        thinking = ThinkingReward(
            base_url=judge.base_url, model="thinking-reward-model", max_concurrency=256, timeout=60
        )
        trainer = TrustGRPOTrainer(model=model["path"], reward_funcs=[accuracy_reward], args=config,
                                   train_dataset=dataset, processing_class=processor, callbacks=[_as_callback(timer)],
                                   thinking_reward=thinking)  # fmt: skip
    else:
        config = GRPOConfig(**common)
        trainer = GRPOTrainer(model=model["path"], reward_funcs=[accuracy_reward], args=config,
                              train_dataset=dataset, processing_class=processor, callbacks=[_as_callback(timer)])  # fmt: skip
    timer.watch_generation(trainer)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    if cuda:
        torch.cuda.synchronize()

    logs = [h for h in trainer.state.log_history if "loss" in h or "reward" in h]
    timed = logs[WARMUP:] or logs  # warm-up steps: kernels, allocator, judge connections, and L = 0
    timing = {}
    for key in sorted({k for h in logs for k in h if k.startswith("timing/")}):
        timing[key] = statistics.median(h[key] for h in timed if key in h)
    steps = timer.step_times[WARMUP:] or timer.step_times
    gen_times = timer.gen_times[WARMUP:] or timer.gen_times
    gen_tokens = timer.gen_tokens[WARMUP:] or timer.gen_tokens
    result = {
        "steps": len(timer.step_times),
        "step_times_s": [round(t, 4) for t in timer.step_times],
        "median_step_s": statistics.median(steps),
        "timing": timing,
        "generation_s_per_step": [round(t, 4) for t in timer.gen_times],  # outliers, not only the median
        "generation_s_median": statistics.median(gen_times),
        "generated_tokens_per_step": statistics.median(gen_tokens),
        "generated_tokens_per_s": sum(gen_tokens) / sum(gen_times),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "judge_latency_s": statistics.median(timer.latencies[WARMUP : len(timer.step_times)] or [0.0])
        if kind == "trust_grpo"
        else None,
        "judge_latency_per_step_s": [round(x, 4) for x in timer.latencies[: len(timer.step_times)]]
        if kind == "trust_grpo"
        else None,
        "last_log": logs[-1] if logs else None,
    }
    trainer.accelerator.free_memory()  # the next trainer's peak memory must not include this one's
    del trainer
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


class StepTimer:
    """Step times, generation time and generated tokens per step; sets the judge's latency after the first step."""

    def __init__(self, judge: FakeJudgeServer | None, latency_fraction: float | None) -> None:
        self.step_times: list[float] = []
        self.gen_times: list[float] = []
        self.gen_tokens: list[int] = []
        self.judge, self.latency_fraction = judge, latency_fraction
        self.latencies: list[float] = [0.0] * WARMUP  # the warm-up steps' judge answers at once
        self.passes: list[float] = []

    def watch_generation(self, trainer: Any) -> None:
        import torch

        generate = trainer._generate  # both trainers' generation, timed the same way (TRL's own timing/* has none)

        def timed(prompts):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            output = generate(prompts)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.gen_times.append(time.perf_counter() - start)
            self.gen_tokens.append(sum(len(ids) for ids in output[1]))  # (prompt_ids, completion_ids, ...)
            return output

        trainer._generate = timed

    # TrainerCallback's hooks, called through `_as_callback`
    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_times.append(time.perf_counter() - self._start)

    def on_log(self, args, state, control, logs=None, **kwargs):
        # After the warm-up steps, L = fraction x the shortest log-prob pass so far (the first is slowed by warm-up):
        # the judge fits behind the pass it overlaps, L <= P
        if self.latency_fraction is not None and self.judge is not None and logs and "timing/logprobs" in logs:
            self.passes.append(logs["timing/logprobs"])
            if len(self.passes) >= WARMUP:
                self.judge.latency = self.latency_fraction * min(self.passes)
                self.latencies.append(self.judge.latency)


def _as_callback(timer: StepTimer) -> Any:
    from transformers import TrainerCallback

    class _Callback(TrainerCallback):
        def on_step_begin(self, *a, **k):
            return timer.on_step_begin(*a, **k)

        def on_step_end(self, *a, **k):
            return timer.on_step_end(*a, **k)

        def on_log(self, *a, **k):
            return timer.on_log(*a, **k)

    return _Callback()


# ------------------------------------------------------------------------------------------ host-device synchronisations
def sync_audit(tiny_dir: Path, device: str, steps: int = 3) -> dict[str, Any]:
    """Count the host-device synchronisations of `TrustGRPOTrainer` steps on the tiny model, per source line.

    torch's sync debug mode warns at every synchronising CUDA call (`.item()`, `.tolist()`, `.cpu()`, `nonzero`, a
    tensor in an `if`); each warning carries the Python line that made the call. Lines in `sophiavl_trl/` are ours,
    lines in `trl/` are TRL's own. On the CPU there is nothing to synchronise with, and the counts are 0.
    """
    import warnings

    import torch
    from datasets import Dataset
    from transformers import AutoProcessor

    from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
    from sophiavl_trl.model_utils import forbidden_token_generation_kwargs

    cuda = device == "cuda"
    processor = AutoProcessor.from_pretrained(tiny_dir)
    G = 4
    dataset = Dataset.from_dict(
        {"prompt": [[{"role": "user", "content": f"What is {i} plus {i}?"}] for i in range(8)]}
    )

    def accuracy_reward(completion_ids, **kwargs):
        return [float(sum(c) % 2) for c in completion_ids]

    def thinking(completion_ids, **kwargs):
        return [(sum(c) % 11) / 10 for c in completion_ids]

    config = TrustGRPOConfig(
        output_dir=tempfile.mkdtemp(), max_steps=steps, per_device_train_batch_size=G, num_generations=G,
        max_completion_length=8, beta=0.04, use_cpu=not cuda, bf16=cuda, report_to="none", logging_steps=1,
        save_strategy="no", seed=0, disable_tqdm=True,
        generation_kwargs=forbidden_token_generation_kwargs(processor.tokenizer, use_vllm=False),
    )  # fmt: skip
    trainer = TrustGRPOTrainer(model=str(tiny_dir), reward_funcs=[accuracy_reward], args=config,
                               train_dataset=dataset, processing_class=processor, thinking_reward=thinking)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if cuda:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.train()
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode("default")
    sites: dict[str, int] = {}
    for w in caught:
        if "synchroniz" in str(w.message):
            where = Path(w.filename)
            parts = where.parts
            for package in ("sophiavl_trl", "trl", "transformers", "accelerate", "torch"):
                if package in parts:
                    where = Path(*parts[parts.index(package) :])
                    break
            key = f"{where}:{w.lineno}"
            sites[key] = sites.get(key, 0) + 1
    ours = {k: v for k, v in sites.items() if k.startswith("sophiavl_trl")}
    return {
        "steps": trainer.state.global_step,
        "ours_per_step": sum(ours.values()) / steps,
        "all_per_step": sum(sites.values()) / steps,
        "ours": dict(sorted(ours.items())),
        "trl_per_step": sum(v for k, v in sites.items() if k.startswith("trl")) / steps,
        "trust_math_syncs": sum(v for k, v in ours.items() if k.startswith("sophiavl_trl/trust.py")),
    }


# -------------------------------------------------------------------------------------------------------- pytest gpu
def run_pytest_gpu(out: Path, report: Report) -> dict[str, Any]:
    xml = out / "pytest_gpu.xml"
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # The machine's own pytest plugins stay out: only the carried pytest runs (the `timeout` ini key then only warns).
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/test_gpu.py", "-p", "no:cacheprovider", "-rA",
           f"--junitxml={xml}", "-o", "addopts="]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    report.log.write(proc.stdout + proc.stderr)
    print(proc.stdout[-4000:] + proc.stderr[-2000:], flush=True)
    counts = {"returncode": proc.returncode, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "tests": []}
    if xml.exists():
        for case in ET.parse(xml).getroot().iter("testcase"):
            outcome = "passed"
            for child, name in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
                if case.find(child) is not None:
                    outcome = name
            counts[outcome] += 1
            counts["tests"].append({"name": case.get("name"), "outcome": outcome})
    counts["all_passed"] = counts["passed"] > 0 and counts["failed"] + counts["errors"] + counts["skipped"] == 0
    return counts


# ------------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for gpu_check.json and gpu_check.log ($OUT on the device)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--size", choices=tuple(SIZES), default=None, help="default: 3b on cuda, tiny on cpu")
    parser.add_argument("--steps", type=int, default=None, help="steps per trainer (default: 6 cuda, 3 cpu)")
    parser.add_argument("--generations", type=int, default=None, help="G (default: 8 cuda, 4 cpu)")
    parser.add_argument("--prompts-per-step", type=int, default=None, help="default: 2 cuda, 1 cpu")
    parser.add_argument("--completion-length", type=int, default=None, help="default: 256 cuda, 8 cpu")
    parser.add_argument(
        "--image-side", type=int, default=None, help="image side in pixels (default: 448 cuda, 56 cpu)"
    )
    parser.add_argument("--latency-fraction", type=float, default=0.8, help="judge latency L / log-prob pass")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-pytest", action="store_true")
    parser.add_argument("--budget-s", type=float, default=420, help="start no trainer after this many seconds")
    parser.add_argument("--order", default="grpo,trust_grpo",
                        help="trainers in run order; a repeat (grpo,trust_grpo,grpo) brackets drift over time")  # fmt: skip
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    for name, on_cuda, on_cpu in (("size", "3b", "tiny"), ("steps", 6, 3), ("generations", 8, 4), ("prompts_per_step", 2, 1),
                                  ("completion_length", 256, 8), ("image_side", 448, 56)):  # fmt: skip
        if getattr(args, name) is None:
            setattr(args, name, on_cuda if cuda else on_cpu)

    report = Report(args.out)
    report.put("args", {k: str(v) for k, v in vars(args).items()})
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    models: dict[str, dict] = {}
    results: dict[str, dict] = {}

    with report.stage("env"):
        import importlib.metadata as md

        import torch

        env = {"python": platform.python_version(), "torch_cuda": torch.version.cuda,
               "cuda_available": torch.cuda.is_available()}  # fmt: skip
        for package in ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "openai", "pyarrow"):
            with contextlib.suppress(md.PackageNotFoundError):
                env[package] = md.version(package)
        if cuda:
            if not torch.cuda.is_available():
                raise RuntimeError("--device cuda, but torch sees no CUDA device")
            env["gpu"] = torch.cuda.get_device_name(0)
            env["gpu_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
            env["bf16_supported"] = torch.cuda.is_bf16_supported()
        report.put("env", env)
        report.say(json.dumps(env))

    with report.stage("recipes"):
        report.put("recipes", check_recipes())
        report.say(f"recipes: {json.dumps(report.data['recipes'])}")

    if not args.skip_pytest:  # first: the correctness verdict is kept even if the benchmark runs out of time
        with report.stage("pytest_gpu"):
            counts = run_pytest_gpu(args.out, report)
            report.put("pytest_gpu", counts)
            report.say(f"pytest -m gpu: {counts['passed']} passed, {counts['failed']} failed, {counts['errors']} "
                       f"errors, {counts['skipped']} skipped (rc {counts['returncode']})")  # fmt: skip
            if counts["returncode"] not in (0, 5) and not counts["tests"]:
                raise RuntimeError(f"pytest exited {counts['returncode']} without a report")

    if not args.skip_train:
        with report.stage("models"):
            from sophiavl_trl.testing import build_tiny_qwen2_5_vl

            tiny = build_tiny_qwen2_5_vl(work / "tiny")
            models["tiny"] = {"path": str(tiny)}
            start = time.perf_counter()
            models["policy"] = build_sized_model(tiny, args.size, work / f"policy-{args.size}", args.device)
            models["policy"].update(size=args.size, build_s=round(time.perf_counter() - start, 2))
            report.put("models", models)
            report.say(f"models: {json.dumps(models)}")

    if "tiny" in models:
        with report.stage("sync_audit"):
            audit = sync_audit(Path(models["tiny"]["path"]), args.device, steps=3 if cuda else 1)
            report.put("sync_audit", audit)
            report.say(f"host-device syncs per Trust-GRPO step: {audit['ours_per_step']:.1f} in sophiavl_trl "
                       f"(trust math: {audit['trust_math_syncs']}), {audit['trl_per_step']:.1f} in trl, "
                       f"{audit['all_per_step']:.1f} in all; ours: {json.dumps(audit['ours'])}")  # fmt: skip

    if "policy" in models:
        judge = None
        with report.stage("judge_server"):
            judge = FakeJudgeServer(0.0)
        try:
            for run in args.order.split(","):
                kind = run if run not in results else f"{run}_2"
                if judge is None:
                    break
                elapsed = time.perf_counter() - report.start
                if elapsed > args.budget_s:
                    report.data["stages"][kind] = {"status": "skipped", "error": f"{elapsed:.0f} s > --budget-s"}
                    report.say(f"{kind}: skipped, {elapsed:.0f} s elapsed > --budget-s {args.budget_s}")
                    continue
                with report.stage(kind):
                    results[kind] = train(run, models["policy"], args, judge)
                    report.put("results", results)
                    r = results[kind]
                    report.say(f"{kind}: median step {r['median_step_s']:.3f} s, generated "
                               f"{r['generated_tokens_per_s']:.0f} tokens/s, peak GPU memory "
                               f"{r['peak_gpu_memory_gib']} GiB, judge L {r['judge_latency_s']}, timing "
                               f"{json.dumps({k: round(v, 4) for k, v in r['timing'].items()})}")  # fmt: skip
        finally:
            if judge is not None:
                judge.stop()
        if "grpo" in results and "trust_grpo" in results:
            with report.stage("overhead"):
                trust = results["trust_grpo"]
                runs = [results[k] for k in ("grpo", "grpo_2") if k in results]  # before and after: the mean
                grpo = {key: statistics.mean(r[key] for r in runs) for key in ("median_step_s", "generation_s_median")}
                overhead = {
                    "ratio": trust["median_step_s"] / grpo["median_step_s"],
                    "ratio_without_generation": (trust["median_step_s"] - trust["generation_s_median"])
                    / (grpo["median_step_s"] - grpo["generation_s_median"]),
                    "target": 1.03,
                    # the judge on the critical path: what the overlap did not hide, as a share of the step
                    "judge_wait_share": trust["timing"].get("timing/judge_wait", 0.0) / trust["median_step_s"],
                }
                overhead["within_target"] = overhead["ratio"] <= overhead["target"]
                report.put("overhead", overhead)
                report.say(f"Trust-GRPO / GRPO median step time: {overhead['ratio']:.4f} (target <= 1.03); without "
                           f"generation {overhead['ratio_without_generation']:.4f}")  # fmt: skip

    failed = [name for name, s in report.data["stages"].items() if s["status"] != "ok"]
    report.put("failed_stages", failed)
    report.say(f"done: {len(report.data['stages']) - len(failed)} stages ok, failed: {failed or 'none'}; "
               f"figures in {report.json_path}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-fake":
        serve_fake(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(main())
