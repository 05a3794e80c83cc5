"""Run a training script with one compact progress line per logged step (used by quickstart.sh).

Usage: python scripts/progress.py SCRIPT [SCRIPT ARGS...]   (also under `accelerate launch`)

A `TrainerCallback` reads the metrics that the trainer logs (`on_log`) and prints `[progress] step N  acc=...` on the
main process; it is added to every trainer the script builds (transformers' `DEFAULT_CALLBACKS`), so the script itself
is unchanged. The full log still goes to stdout/stderr as usual.
"""

import os
import runpy
import sys

import transformers.trainer
from transformers import TrainerCallback


KEYS = [
    ("reward", "reward"),
    ("rewards/accuracy_reward/mean", "acc"),
    ("rewards/format_reward/mean", "fmt"),
    ("trust/thinking_score_mean", "think"),
    ("trust/gamma_mean", "gamma"),
    ("trust/weight_mean", "w"),
    ("step_time", "s/step"),
    ("timing/judge_wait", "judge_wait"),
]


class CompactProgress(TrainerCallback):
    """Prints the KEYS of each training log as one line, on the main process."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            fields = "  ".join(f"{short}={logs[key]:.4g}" for key, short in KEYS if logs.get(key) is not None)
            print(f"[progress] step {state.global_step:3d}  {fields}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    transformers.trainer.DEFAULT_CALLBACKS.append(CompactProgress)
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as if SCRIPT were run directly
    runpy.run_path(sys.argv[0], run_name="__main__")
