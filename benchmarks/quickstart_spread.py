# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""
The spread of tests/test_quickstart.py's learning-dependent numbers: runs the test fixtures' recipe (task, tiny model,
cold start, judge) with one seed for every random source and prints one JSON line of the measured values. Seed 0 is the
test's recipe exactly (task and model seed 0, trainer seed 42). Compare kernel paths with `ATEN_CPU_CAPABILITY`:

```sh
for isa in avx2 avx512; do
  ATEN_CPU_CAPABILITY=$isa python benchmarks/quickstart_spread.py --seeds 0 1 2 >> spread.jsonl; done
```
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "examples" / "quickstart"), str(ROOT / "examples")]


def auc_and_se(sound: list[float], unsound: list[float]) -> tuple[float, float]:
    """Rank AUC (ties count half) and its Hanley-McNeil standard error."""
    pairs = [(s > u) + 0.5 * (s == u) for s in sound for u in unsound]
    auc, m, n = sum(pairs) / len(pairs), len(sound), len(unsound)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (m - 1) * (q1 - auc**2) + (n - 1) * (q2 - auc**2)) / (m * n)
    return auc, math.sqrt(max(var, 0.0))


def main(seed: int, out: Path, cold_steps: int, judge_steps: int, num_judge: int, eval_n: int) -> dict:
    import cold_start
    import make_task
    import torch
    from train_thinking_reward_model import main as train_judge
    from trl import ModelConfig, SFTConfig

    from sophiavl_trl.judge.sft import JudgeSFTScriptArguments

    result = {"seed": seed, "isa": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
              "cold_steps": cold_steps, "judge_steps": judge_steps, "num_judge": num_judge}  # fmt: skip
    start = time.time()
    data = out / "data"
    make_task.write_task(data, num_grpo=64, num_sft=2400, num_judge=num_judge, seed=seed)
    model = make_task.build_model(out / "model", seed=seed)
    rows = json.loads((data / "quickstart_sft.json").read_text())
    wtra = 0
    for row in rows:
        value = int(row["solution"][8:-9])
        think, answer = row["completion"][7:].split("</think><answer>")
        wtra += not make_task.soundness(row["problem"], think, value) and answer == f"{value}</answer>"
    records = [json.loads(line) for line in (data / "judge_train.jsonl").read_text().splitlines()]
    result.update(image_fraction=sum(r["data_type"] == "image" for r in rows) / len(rows),
                  wrong_thinking_right_answer=wtra / len(rows),
                  judge_sound_fraction=sum(r["score"] for r in records) / len(records))  # fmt: skip

    t = time.time()
    policy = out / "policy"
    args = SFTConfig(output_dir=str(policy), max_steps=cold_steps, per_device_train_batch_size=16,
                     learning_rate=2e-3, seed=42 + seed, use_cpu=True, report_to="none", save_strategy="no",
                     disable_tqdm=True)  # fmt: skip
    cold_start.main(cold_start.ColdStartArguments(str(data / "dataset_info.json")), args,
                    ModelConfig(model_name_or_path=str(model)))  # fmt: skip
    result["cold_start_s"] = time.time() - t
    t = time.time()
    for n in sorted({32, eval_n}):  # 32: the test's sample
        stats = cold_start.evaluate(str(policy), str(data / "dataset_info.json"), n=n)
        result.update({f"{k}@{n}": stats[k] for k in ("format", "accuracy", "sound")})
    result["evaluate_s"] = time.time() - t

    t = time.time()
    judge = out / "judge"
    args = SFTConfig(output_dir=str(judge), max_steps=judge_steps, per_device_train_batch_size=16,
                     learning_rate=1e-3, lr_scheduler_type="cosine", seed=42 + seed, use_cpu=True, report_to="none",
                     save_strategy="no", disable_tqdm=True)  # fmt: skip
    train_judge(JudgeSFTScriptArguments(judge_records=str(data / "judge_train.jsonl")), args,
                ModelConfig(model_name_or_path=str(policy)))  # fmt: skip
    result["judge_train_s"] = time.time() - t
    t = time.time()
    held = [json.loads(line) for line in (data / "judge_heldout.jsonl").read_text().splitlines()]
    margins = make_task.judge_margins(judge, data, held)
    scored = [(r["image"] is not None, r["score"], m) for r, m in zip(held, margins, strict=True)]
    result["score_s"] = time.time() - t

    def auc(subset: list) -> dict:
        sound = [s for _, y, s in subset if y == 1.0]
        unsound = [s for _, y, s in subset if y == 0.0]
        value, se = auc_and_se(sound, unsound)
        return {"auc": round(value, 4), "se": round(se, 4), "n": len(subset), "n_sound": len(sound)}

    text = [x for x in scored if not x[0]]
    result["auc_text120"] = auc(text[:120])  # the test's measurement
    result["auc_text"] = auc(text)
    result["auc_image"] = auc([x for x in scored if x[0]])
    result["auc_all"] = auc(scored)
    result["total_s"] = time.time() - start
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--cold_steps", type=int, default=200)
    parser.add_argument("--judge_steps", type=int, default=200)
    parser.add_argument("--num_judge", type=int, default=1200, help="judge records; the last 20%% are held out")
    parser.add_argument("--eval_n", type=int, default=32, help="cold-start samples (<= 64; also scores the first 32)")
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    cli = parser.parse_args()
    for seed in cli.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(cli.out or tmp) / f"seed{seed}"
            print(json.dumps(main(seed, out, cli.cold_steps, cli.judge_steps, cli.num_judge, cli.eval_n)), flush=True)
