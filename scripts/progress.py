"""Read a TRL training log on stdin and print one compact line per logged step (used by quickstart.sh).
Usage: ... | python scripts/progress.py [LOGGING_STEPS]   (the recipe's logging_steps: the printed step numbers)"""

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
    ("timing/judge_wait", "judge_wait"),
]
every = int(sys.argv[1]) if len(sys.argv) > 1 else 1
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
    step += every
    fields = "  ".join(f"{short}={logs[key]}" for key, short in KEYS if key in logs)
    print(f"  step {step:3d}  {fields}", flush=True)
