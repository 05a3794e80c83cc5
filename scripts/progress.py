"""Read a TRL training log on stdin and print one compact line per logged step (used by quickstart.sh)."""

import ast
import re
import sys


KEYS = [
    ("reward", "reward"),
    ("rewards/accuracy_reward/mean", "acc"),
    ("rewards/format_reward/mean", "fmt"),
    ("trust/thinking_score_mean", "think"),
    ("trust/gamma_mean", "gamma"),
    ("trust/weight_mean", "w"),
    ("step_time", "s/step"),
]
step = 0
buffer = ""
for chunk in iter(lambda: sys.stdin.read(1), ""):
    if chunk not in "\r\n":
        buffer += chunk
        continue
    match = re.search(r"\{'loss'.*\}", buffer)
    buffer = ""
    if not match:
        continue
    try:
        logs = ast.literal_eval(match.group(0))
    except (ValueError, SyntaxError):
        continue
    step += 1
    fields = "  ".join(f"{short}={logs[key]}" for key, short in KEYS if key in logs)
    print(f"  step {step:3d}  {fields}", flush=True)
