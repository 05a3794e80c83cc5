# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The learning quickstart's pieces, fast (scripts/quickstart.sh checks the learning itself): the synthetic task and
its soundness rule, the cold start (the policy writes the format), and the judge recipe on rule-labelled records
(the trained judge ranks sound reasoning above unsound)."""

import json
import sys
from pathlib import Path

import pytest


QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart"
sys.path.insert(0, str(QUICKSTART))

import cold_start  # noqa: E402
import make_task  # noqa: E402


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart")
    make_task.write_task(out / "data", num_grpo=64, num_sft=2400, num_judge=3000)  # 600 held-out judge records
    return out / "data", make_task.build_model(out / "model")


def test_task_has_wrong_thinking_with_correct_answers(task):
    data, model = task
    rows = json.loads((data / "quickstart_sft.json").read_text())
    kinds = {"text": 0, "image": 0}
    wrong_thinking_right_answer = 0
    for row in rows:
        value = int(row["solution"][8:-9])
        think, answer = row["completion"][7:].split("</think><answer>")
        kinds[row["data_type"]] += 1
        sound = make_task.soundness(row["problem"], think, value)
        wrong_thinking_right_answer += not sound and answer == f"{value}</answer>"
    # From Python's RNG alone (the same on any CPU); seeds 0-2: images 0.20-0.21, wrong thinking with the right answer
    # 0.062-0.069 of the rows, sound judge records 0.51-0.53 (benchmarks/quickstart_spread.py).
    assert min(kinds.values()) > 0.1 * len(rows)
    assert 0.03 < wrong_thinking_right_answer / len(rows) < 0.12
    assert make_task.soundness("What is 2+3?", "2+3=5", 5) == 1.0
    assert make_task.soundness("What is 2+3?", "2+4=6", 5) == 0.0  # true equation, wrong operands
    records = [json.loads(line) for line in (data / "judge_train.jsonl").read_text().splitlines()]
    assert 0.3 < sum(r["score"] for r in records) / len(records) < 0.7


def test_prompts_are_short_with_the_taught_tokenizer(task):
    from transformers import AutoTokenizer

    from sophiavl_trl.data import load_sophiavl_dataset
    from sophiavl_trl.judge import build_judge_messages

    data, model = task
    tokenizer = AutoTokenizer.from_pretrained(model)
    prompt = load_sophiavl_dataset("quickstart", data / "dataset_info.json").filter(
        lambda t: t == "text", input_columns="data_type"
    )[0]["prompt"]
    for messages in (prompt, build_judge_messages("What is 2+3?", "2+3=5")):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text).input_ids
        assert len(ids) < 50 and tokenizer.decode(ids) == text


@pytest.fixture(scope="module")
def policy(task, tmp_path_factory):
    """A short cold start (SFTTrainer), shared by the tests below: ~25 s on an idle 2-core CPU (over 10 min on a
    machine loaded 8 times over)."""
    from trl import ModelConfig, SFTConfig

    data, model = task
    out = tmp_path_factory.mktemp("policy")
    args = SFTConfig(output_dir=str(out), max_steps=200, per_device_train_batch_size=16, learning_rate=2e-3,
                     use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True)  # fmt: skip
    cold_start.main(cold_start.ColdStartArguments(str(data / "dataset_info.json")), args,
                    ModelConfig(model_name_or_path=str(model)))  # fmt: skip
    return out


def test_cold_start_writes_the_format(task, policy):
    stats = cold_start.evaluate(str(policy), str(task[0] / "dataset_info.json"), n=64)
    print("cold start", {k: stats[k] for k in ("format", "accuracy", "sound")})
    # Seeds 0-2 x ATen paths avx2/avx512 (benchmarks/quickstart_spread.py, n=64): format 0.88-0.95 (binomial SE
    # <= 0.04), accuracy 0.11-0.23; the bounds sit 3+ SE outside that range.
    assert stats["format"] >= 0.75, stats
    assert stats["accuracy"] < 0.9, stats  # right some of the time, not always


def test_trained_judge_ranks_sound_reasoning_above_unsound(task, policy, tmp_path):
    """The project's judge recipe (examples/train_thinking_reward_model.py) on the rule-labelled records, from the
    cold-started policy: on the 600 held-out records (text and image), P("1") over P("0") as the judge's first answer
    token is higher for sound reasoning (rank AUC)."""
    from trl import ModelConfig, SFTConfig

    from sophiavl_trl.judge.sft import JudgeSFTScriptArguments

    sys.path.insert(0, str(QUICKSTART.parent))
    from train_thinking_reward_model import main as train_judge

    data = task[0]
    # 600 steps (~65 s on an idle 2-core CPU, 3x the 200 steps of before): with 200 steps and 120 text records the AUC
    # was 0.615 on an AMD EPYC with AVX-512 (issue 23) and 0.80-0.89 here, so the judge had barely learned.
    args = SFTConfig(output_dir=str(tmp_path / "judge"), max_steps=600, per_device_train_batch_size=16,
                     learning_rate=1e-3, lr_scheduler_type="cosine", use_cpu=True, report_to="none",
                     save_strategy="no", disable_tqdm=True)  # fmt: skip
    train_judge(JudgeSFTScriptArguments(judge_records=str(data / "judge_train.jsonl")), args,
                ModelConfig(model_name_or_path=str(policy)))  # fmt: skip
    records = [json.loads(line) for line in (data / "judge_heldout.jsonl").read_text().splitlines()]
    scores = {0.0: [], 1.0: []}
    for record, margin in zip(records, make_task.judge_margins(tmp_path / "judge", data, records), strict=True):
        scores[record["score"]].append(margin)
    pairs = [(s, u) for s in scores[1.0] for u in scores[0.0]]
    auc = sum((s > u) + 0.5 * (s == u) for s, u in pairs) / len(pairs)
    print(f"judge AUC {auc:.3f} on {len(records)} held-out records")
    # Seeds 0-2 x ATEN_CPU_CAPABILITY avx2/avx512, 600 records (benchmarks/quickstart_spread.py): AUC 0.942-0.989,
    # Hanley-McNeil SE <= 0.010 (text records 0.97-1.00, image records 0.68-0.80). 0.85 is 9 SE below the lowest,
    # and far above chance (0.5).
    assert auc > 0.85, auc
