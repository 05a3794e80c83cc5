# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""
SophiaVL-R1's comparison in miniature, on the chain task (`chain_task.py`): plain GRPO, GRPO + thinking reward (fixed
weight alpha: no annealing, no trust factor) and Trust-GRPO (`trust_mode: paper`), each from the same cold start, with
the same judge and the same seeds. What `scripts/compare.sh` runs (docs/quickstart.md has the protocol and figures).

The launch: one process per run, `TrustGRPOTrainer` with transformers generation (`use_vllm: false`), the judge a
vLLM server (`--judge_url`) or the step rule itself (`--judge rule`, the upper bound). On 2 CPU cores a 2-process
ZeRO-3 launch with colocated vLLM costs more in start-up and weight sync than the tiny model's steps, for 9 runs.

Each run's held-out figures come from 64 questions never used as GRPO prompts, 8 samples each at temperature 1:
`heldout_accuracy` (the accuracy reward), `heldout_sound` (every step chained and true), `heldout_lucky` (right answer,
unsound reasoning). With `--eval_every N` they are also measured every N steps (`heldout_curve`). Writes
`OUT/summary.json` (per arm and seed, and arm means) and `OUT/compare.png`.

```sh
python examples/quickstart/compare.py --policy COLD_START --registry DATA/dataset_info.json --judge_url URL --out OUT
```
"""

import argparse
import json
import resource
import time
from pathlib import Path

import torch
from chain_task import step_label
from transformers import AutoModelForImageTextToText, AutoTokenizer, TrainerCallback

from sophiavl_trl import TrustGRPOConfig, TrustGRPOTrainer
from sophiavl_trl.data import load_sophiavl_dataset
from sophiavl_trl.rewards import ThinkingReward, accuracy_reward
from sophiavl_trl.rewards.format_rewards import completion_to_text, extract_thinking


# Arm -> the TrustGRPOConfig settings that make it (None: no thinking reward, plain GRPO).
ARMS = {
    "grpo": None,
    # Every completion counts as correct, so no group has an incorrect side and gamma is 1; T huge: no annealing.
    "grpo+thinking": {"trust_correct_threshold": 0.0, "trust_anneal_steps": 10**9},
    "trust-grpo": {},
}
FIGURES = ("heldout_accuracy", "heldout_sound", "heldout_lucky", "last5_accuracy_reward", "frac_reward_zero_std_mean")


def rule_judge(prompts, completions, problem, **kwargs) -> list[float]:
    """The step rule as a thinking reward: the upper bound of any trained judge."""
    return [step_label(q, extract_thinking(completion_to_text(c))) for q, c in zip(problem, completions, strict=True)]


def heldout_figures(model, tokenizer, dataset, samples: int = 8, seed: int = 0, batch: int = 128) -> dict:
    """Accuracy, sound and lucky fractions of `samples` completions at temperature 1 per held-out question. The global
    RNG is restored afterwards, so evaluating does not change the training run."""
    state, was_training = torch.random.get_rng_state(), model.training
    torch.manual_seed(seed)
    model.eval()
    rows = [row for row in dataset for _ in range(samples)]
    texts = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        prompts = [
            tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True) for r in chunk
        ]
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=40)
        texts += tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    model.train(was_training)
    torch.random.set_rng_state(state)
    right = accuracy_reward(texts, [r["solution"] for r in rows], "numerical")
    sound = [step_label(r["problem"], extract_thinking(t)) == 1.0 for r, t in zip(rows, texts, strict=True)]
    n = len(rows)
    return {"heldout_accuracy": sum(right) / n, "heldout_sound": sum(sound) / n,
            "heldout_lucky": sum(r >= 0.5 and not s for r, s in zip(right, sound, strict=True)) / n,
            "examples": texts[:4]}  # fmt: skip


class HeldoutCallback(TrainerCallback):
    """Held-out figures every `every` steps (0: only at the end), into `curve`."""

    def __init__(self, tokenizer, dataset, every: int, samples: int):
        self.tokenizer, self.dataset, self.every, self.samples, self.curve = tokenizer, dataset, every, samples, []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.every:  # the cold start's figures
            self.curve.append({"step": 0, **heldout_figures(model, self.tokenizer, self.dataset, self.samples)})

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if (self.every and state.global_step % self.every == 0) or state.global_step == state.max_steps:
            figures = heldout_figures(model, self.tokenizer, self.dataset, self.samples)
            self.curve.append({"step": state.global_step, **figures})


def run(arm: str, seed: int, args: argparse.Namespace, judge, train, heldout, learning_rate: float) -> dict:
    """Train one arm for one seed; its held-out figures, metrics and times."""
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    steps = args.grpo_steps if arm == "grpo" and args.grpo_steps else args.max_steps
    config = TrustGRPOConfig(
        output_dir=str(Path(args.out) / f"{arm}-seed{seed}"), use_cpu=True, bf16=False, use_vllm=False,
        per_device_train_batch_size=args.prompts * 4, num_generations=4, max_completion_length=40, temperature=1.0,
        top_k=0, learning_rate=learning_rate, lr_scheduler_type="constant", beta=0.04, max_steps=steps, seed=seed,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, trust_mode="paper",
        trust_alpha=args.alpha, **(ARMS[arm] or {}),
    )  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(args.policy)
    model = AutoModelForImageTextToText.from_pretrained(args.policy, dtype=torch.float32)
    callback = HeldoutCallback(tokenizer, heldout, args.eval_every, args.samples)
    trainer = TrustGRPOTrainer(
        model=model, reward_funcs=[accuracy_reward], args=config, train_dataset=train, processing_class=tokenizer,
        thinking_reward=None if ARMS[arm] is None else judge, callbacks=[callback],
    )  # fmt: skip
    trainer.train()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    logs = [x for x in trainer.state.log_history if "rewards/accuracy_reward/mean" in x]
    at = {c["step"]: c for c in callback.curve}
    final = at[args.max_steps] if args.max_steps in at else callback.curve[-1]  # the comparison's step
    logs_cut = [x for x in logs if x["step"] <= args.max_steps]
    acc = [x["rewards/accuracy_reward/mean"] for x in logs_cut]
    result = {k: final[k] for k in FIGURES[:3]}
    result |= {
        "last5_accuracy_reward": sum(acc[-5:]) / len(acc[-5:]),
        "frac_reward_zero_std_mean": sum(x["frac_reward_zero_std"] for x in logs_cut) / len(logs_cut),
        "accuracy_reward_curve": [x["rewards/accuracy_reward/mean"] for x in logs],
        "heldout_curve": [{k: c[k] for k in ("step", *FIGURES[:3])} for c in callback.curve],
        "thinking_score_mean": [x.get("trust/thinking_score_mean") for x in logs_cut],
        "gamma_mean": [x.get("trust/gamma_mean") for x in logs_cut],
        "learning_rate": learning_rate, "steps": steps, "examples": final["examples"],
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
    }  # fmt: skip
    return result


def summarize(runs: dict) -> dict:
    """Per arm: the mean of each figure over seeds, and its min and max."""
    means = {}
    for arm, seeds in runs.items():
        values = {k: [r[k] for r in seeds.values()] for k in (*FIGURES, "wall_s", "cpu_s")}
        means[arm] = {k: sum(v) / len(v) for k, v in values.items()}
        means[arm] |= {f"{k}_min": min(v) for k, v in values.items() if k in FIGURES[:3]}
        means[arm] |= {f"{k}_max": max(v) for k, v in values.items() if k in FIGURES[:3]}
    return means


def plot(summary: dict, path: Path) -> None:
    """Mean accuracy-reward curves with a min-max band over seeds, beside bars of the held-out figures per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs, means = summary["runs"], summary["means"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for arm, seeds in runs.items():
        n = min(summary["max_steps"], *(len(r["accuracy_reward_curve"]) for r in seeds.values()))
        window = min(10, n)
        curves = np.array([r["accuracy_reward_curve"][:n] for r in seeds.values()])
        kernel = np.ones(window) / window
        smooth = np.array([np.convolve(c, kernel, mode="valid") for c in curves])
        x = np.arange(window, n + 1)
        left.plot(x, smooth.mean(0), label=f"{arm} ({len(seeds)} seed{'s' * (len(seeds) > 1)})")
        left.fill_between(x, smooth.min(0), smooth.max(0), alpha=0.2)
    left.set(xlabel="step", ylabel=f"accuracy reward (mean of {window} steps)",
             title="training accuracy reward: mean over seeds, min-max band")  # fmt: skip
    left.legend()
    names, keys = list(means), ("heldout_accuracy", "heldout_sound", "heldout_lucky")
    width = 0.8 / len(names)
    for i, arm in enumerate(names):
        heights = [means[arm][k] for k in keys]
        low = [means[arm][k] - means[arm][f"{k}_min"] for k in keys]
        high = [means[arm][f"{k}_max"] - means[arm][k] for k in keys]
        label = f"{arm} ({len(runs[arm])} seed{'s' * (len(runs[arm]) > 1)})"
        right.bar(np.arange(3) + i * width, heights, width, yerr=[low, high], capsize=3, label=label)
    right.set_xticks(np.arange(3) + width * (len(names) - 1) / 2, ["accuracy", "sound reasoning", "lucky answers"])
    right.set(title=f"held out (64 questions x 8 samples, T=1), step {summary['max_steps']}: mean, min-max")
    right.set_ylim(0, 0.8)  # room for the legend above the bars
    right.legend(loc="upper right")
    fig.suptitle(f"chain task, judge: {summary['judge']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    # One thread: the tiny model's ops are too small to split, and on a loaded 2-core machine two spinning OpenMP
    # threads made generation 15x slower (50 s against 3.2 s of wall time for 32 x 40 tokens).
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--policy", help="the cold-started policy")
    parser.add_argument("--registry", help="dataset_info.json of chain_task.py")
    parser.add_argument("--judge_url", help="a vLLM-served judge; without it, --judge rule")
    parser.add_argument("--judge", default="trained", choices=("trained", "rule"))
    parser.add_argument("--judge_model", default="thinking-reward-model")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--max_steps", type=int, default=120)
    parser.add_argument("--grpo_steps", type=int, default=0, help="run GRPO longer (sample efficiency); 0: max_steps")
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--lr", action="append", default=[], help="ARM=LR: this arm's learning rate")
    parser.add_argument("--alpha", type=float, default=0.3)
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step (x 4 completions)")
    parser.add_argument("--samples", type=int, default=8, help="held-out samples per question")
    parser.add_argument("--eval_every", type=int, default=0)
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--merge", nargs="+", help="only merge these runs' summary.json files into OUT")
    args = parser.parse_args()
    if args.merge:  # runs made in parallel processes, one arm or seed each
        parts = [json.loads((Path(p) / "summary.json").read_text()) for p in args.merge]
        runs: dict = {}
        for part in parts:
            for arm, seeds in part["runs"].items():
                runs.setdefault(arm, {}).update(seeds)
        runs = {arm: runs[arm] for arm in ARMS if arm in runs}
        summary = {**parts[0], "runs": runs, "means": summarize(runs), "seeds": sorted({int(s) for r in runs.values()
                   for s in r})}  # fmt: skip
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1))
        return plot(summary, Path(args.out) / "compare.png")
    arms = args.arms.split(",")
    if unknown := [a for a in arms if a not in ARMS]:
        parser.error(f"unknown arm(s) {unknown}; choose from {list(ARMS)}")
    lrs = {a: float(v) for a, v in (item.split("=") for item in args.lr)}
    if args.judge == "trained" and not args.judge_url and any(ARMS[a] is not None for a in arms):
        parser.error("--judge trained needs --judge_url (or use --judge rule)")
    judge = rule_judge if args.judge == "rule" else ThinkingReward(
        base_url=args.judge_url, model=args.judge_model, constrained_decoding=True, timeout=30, max_retries=2)  # fmt: skip
    registry = args.registry
    columns = ["prompt", "problem", "solution", "problem_type"]
    train = load_sophiavl_dataset("chain", registry).with_format(None).select_columns(columns)
    heldout = load_sophiavl_dataset("chain_heldout", registry).with_format(None).select_columns(columns)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict = {}
    for arm in arms:
        for seed in seeds:
            result = run(arm, seed, args, judge, train, heldout, lrs.get(arm, args.learning_rate))
            runs.setdefault(arm, {})[str(seed)] = result
            brief = {k: round(result[k], 3) for k in (*FIGURES, "wall_s", "cpu_s")}
            print(f"[compare] {arm} seed {seed}: {json.dumps(brief)}", flush=True)
            summary = {"judge": args.judge, "seeds": seeds, "max_steps": args.max_steps, "runs": runs,
                       "means": summarize(runs)}  # fmt: skip
            (out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(summary, out / "compare.png")
    for arm, mean in summary["means"].items():
        print(f"[compare] mean {arm}: {json.dumps({k: round(v, 3) for k, v in mean.items()})}")


if __name__ == "__main__":
    main()
