# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""
The `sophiavl-trl` command.

```
sophiavl-trl infer        --model PATH --image IMG --question Q --type numerical [--options A B ...] [--json]
sophiavl-trl eval         --model PATH --data FILE_OR_NAMES [--registry dataset_info.json] --output DIR
sophiavl-trl plot         RUN_DIR [RUN_DIR ...] [-o reward_curves.png]
sophiavl-trl judge-records --completions RUN_DIR_OR_FILE ... --base-url URL --model NAME --out records.jsonl
sophiavl-trl judge-eval   --records FILE --base-url URL --model NAME
```

Heavy modules (torch, transformers, vllm, matplotlib) are imported inside the subcommands, so `--help` is fast. Errors
that come from the input (a missing file, an unknown type, invalid data) print one `sophiavl-trl <command>: error: ...`
message and exit with status 2; an unreachable judge exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn


PROG = "sophiavl-trl"
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 1


class CLIError(Exception):
    r"""An error in the command's input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line (with a pointer to `--help`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _fail(command: str, message: str, status: int = EXIT_USAGE) -> int:
    first, *rest = str(message).strip().splitlines() or [""]
    sys.stderr.write(f"{PROG} {command}: error: {first}\n")
    for line in rest:  # data validation errors list the offending rows on the following lines
        sys.stderr.write(f"  {line}\n")
    return status


def _problem_type(value: str) -> str:
    from sophiavl_trl.inference import normalize_problem_type

    try:
        return normalize_problem_type(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default)


# ---------------------------------------------------------------------------------------------------------------------
# infer
# ---------------------------------------------------------------------------------------------------------------------


def _infer(args: argparse.Namespace) -> int:
    from sophiavl_trl.inference import build_request, check_model_path, load_image, parse_completion, resize_image

    try:
        check_model_path(args.model)
        images = [load_image(path) for path in args.image]
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if args.options and args.type != "multiple choice":
        raise CLIError(f"--options only apply to --type 'multiple choice', not {args.type!r}")
    generator = _load_generator(args, max_images=max(1, len(images)))
    with generator:
        # Resized as the training data pipeline (and `eval`) does, within the model's pixel bounds.
        images = [resize_image(image, generator.min_pixels, generator.max_pixels) for image in images]
        request = build_request(args.question, args.type, args.options, images, system_prompt=args.system_prompt)
        text = generator.generate([request])[0]
    result = parse_completion(text)
    if args.json:
        payload = {
            "model": args.model,
            "backend": args.backend,
            "question": args.question,
            "type": args.type,
            "options": args.options or [],
            "images": [os.path.abspath(path) for path in args.image],
            "thinking": result["thinking"],
            "answer": result["answer"],
            "well_formatted": result["well_formatted"],
            "raw": result["raw"],
            "messages": request.messages,
        }
        print(_dump(payload))
    else:
        answer = result["answer"] if result["answer"] is not None else "(no <answer> block)"
        print(f"Thinking:\n{result['thinking']}\n\nAnswer:\n{answer}\n\nRaw output:\n{result['raw']}")
    return 0


def _load_generator(args: argparse.Namespace, max_images: int = 4) -> Any:
    from sophiavl_trl.inference import load_generator

    kwargs: dict[str, Any] = {}
    if args.backend == "transformers":
        kwargs.update(device=args.device, dtype=args.dtype)
    else:
        kwargs.update(max_model_len=args.max_model_len, max_images=max_images)
        if args.dtype:
            kwargs["dtype"] = args.dtype
    try:
        return load_generator(
            args.model,
            args.backend,
            max_new_tokens=args.max_new_tokens,
            min_pixels=args.min_pixels,
            max_pixels=args.max_pixels,
            **kwargs,
        )
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:  # transformers' "not a local folder and not on the Hub"
        raise CLIError(f"cannot load model {args.model!r}: {str(exc).splitlines()[0]}") from None


def _add_generation_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generation")
    group.add_argument(
        "--backend",
        choices=["transformers", "vllm"],
        default="transformers",
        help="transformers (default) or vllm (needs vllm installed)",
    )
    group.add_argument("--max-new-tokens", type=_positive_int, default=1024, help="completion budget (default: 1024)")
    group.add_argument(
        "--system-prompt",
        default=None,
        help="system prompt (default: SophiaVL-R1's training system prompt; '' for none)",
    )
    group.add_argument("--min-pixels", type=_positive_int, default=None, help="image pixel lower bound (processor's)")
    group.add_argument("--max-pixels", type=_positive_int, default=None, help="image pixel upper bound (processor's)")
    group.add_argument("--device", default=None, help="transformers backend: cuda, cpu, ... (default: GPU if any)")
    group.add_argument(
        "--dtype",
        default=None,
        choices=["auto", "bfloat16", "float16", "float32"],
        help="weights dtype (default: bfloat16 on GPU, float32 on CPU)",
    )
    group.add_argument("--max-model-len", type=_positive_int, default=8192, help="vllm backend: context length")


# ---------------------------------------------------------------------------------------------------------------------
# eval
# ---------------------------------------------------------------------------------------------------------------------


def _eval(args: argparse.Namespace) -> int:
    from sophiavl_trl.data.validation import DatasetValidationError
    from sophiavl_trl.evaluation import RESULTS_FILE, evaluate, load_eval_dataset
    from sophiavl_trl.inference import check_model_path

    try:
        check_model_path(args.model)
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from None
    if args.registry is not None and not os.path.isfile(args.registry):
        raise CLIError(f"registry not found: {args.registry}")
    if args.registry is None and not os.path.exists(args.data):
        raise CLIError(
            f"evaluation data not found: {args.data} (pass a .json/.jsonl/.parquet file, or registry names with "
            "--registry dataset_info.json)"
        )
    generator = _load_generator(args)
    with generator:
        try:
            dataset = load_eval_dataset(
                args.data,
                args.registry,
                image_dir=args.image_dir,
                min_pixels=generator.min_pixels or 3136,
                max_pixels=generator.max_pixels or 12845056,
                system_prompt=args.system_prompt,
                default_problem_type=args.default_type,
                on_invalid=args.on_invalid,
            )
        except (DatasetValidationError, FileNotFoundError, ValueError) as exc:
            raise CLIError(str(exc)) from None
        config = {"data": args.data, "registry": args.registry, "system_prompt": args.system_prompt}
        results = evaluate(
            generator, dataset, args.output, batch_size=args.batch_size, limit=args.limit, config=config
        )
    lines = ["  type               count  accuracy"]
    for name, entry in results["per_type"].items():
        lines.append(f"  {name:<16} {entry['count']:>6}  {100 * entry['accuracy']:6.2f}%")
    print("\n".join(lines))
    print(f"  {'all':<16} {results['num_samples']:>6}  {100 * results['accuracy']:6.2f}%")
    print(f"wrote {os.path.join(args.output, RESULTS_FILE)}, report.md, predictions.jsonl")
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# plot
# ---------------------------------------------------------------------------------------------------------------------


def _plot(args: argparse.Namespace) -> int:
    from sophiavl_trl.plotting import plot_runs

    if args.labels is not None and len(args.labels) != len(args.run_dirs):
        raise CLIError(f"got {len(args.labels)} --labels for {len(args.run_dirs)} runs")
    try:
        path = plot_runs(args.run_dirs, args.output, smoothing=args.smoothing, labels=args.labels)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# judge-records / judge-eval
# ---------------------------------------------------------------------------------------------------------------------


def _judge_client(args: argparse.Namespace) -> Any:
    from sophiavl_trl.judge import ThinkingRewardClient

    template = None
    if args.template_file:
        try:
            with open(args.template_file, encoding="utf-8") as f:
                template = f.read()
        except OSError as exc:
            raise CLIError(f"cannot read --template-file: {exc}") from None
    try:
        return ThinkingRewardClient(
            base_url=args.base_url,
            model=args.model,
            api_key=os.environ.get(args.api_key_env),
            max_concurrency=args.max_concurrency,
            timeout=args.timeout,
            max_retries=args.max_retries,
            constrained_decoding=args.constrained_decoding,
            template=template,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _check_judge(client: Any, command: str) -> int | None:
    from sophiavl_trl.judge import JudgeUnavailableError

    try:
        client.check_server(wait_seconds=0)
    except JudgeUnavailableError as exc:
        return _fail(command, str(exc), EXIT_UNAVAILABLE)
    return None


def _judge_records(args: argparse.Namespace) -> int:
    from sophiavl_trl.judge.records import (
        RecordStats,
        attach_training_images,
        deduplicate,
        read_completions,
        score_completions,
        write_judge_records,
    )

    if (args.registry is None) != (args.datasets is None):
        raise CLIError("--registry and --datasets go together (the training data, to recover images)")
    try:
        items, rows_read = read_completions(
            args.completions, reasoning_source=args.reasoning_source, image_dir=args.image_dir
        )
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    stats = RecordStats(rows_read=rows_read)
    stats.unusable = rows_read - len(items)
    if args.registry is not None:
        try:
            attach_training_images(items, args.registry, args.datasets)
        except (FileNotFoundError, ValueError) as exc:
            raise CLIError(str(exc)) from None
    items, stats.duplicates = deduplicate(items)
    usable = [item for item in items if item.image is not None or not item.has_image]
    stats.ambiguous_image = sum(item.ambiguous for item in items if item.image is None and item.has_image)
    stats.missing_image = len(items) - len(usable) - stats.ambiguous_image
    if len(usable) < len(items):
        if args.registry:
            why = (
                f"{stats.ambiguous_image} match training rows with different images, {stats.missing_image} match "
                "no training row"
            )
        else:
            why = "TRL's completions table does not store images; pass --registry and --datasets to recover them"
        sys.stderr.write(f"{PROG} judge-records: {len(items) - len(usable)} image prompt(s) left out ({why})\n")
    if args.max_records is not None:
        usable = usable[: args.max_records]
    if not usable:
        raise CLIError("no usable completions to score")
    client = _judge_client(args)
    try:
        status = _check_judge(client, "judge-records")
        if status is not None:
            return status
        scores = score_completions(usable, client, progress=not args.quiet)
    finally:
        client.close()
    write_judge_records(usable, scores, args.out, stats)
    summary = {"out": os.path.abspath(args.out), **stats.as_dict(), "judge": client.stats.as_dict()}
    print(_dump(summary))
    return 0


def _judge_eval(args: argparse.Namespace) -> int:
    from sophiavl_trl.data.validation import DatasetValidationError
    from sophiavl_trl.judge.records import evaluate_judge
    from sophiavl_trl.judge.sft import load_judge_records

    if args.registry is None and not os.path.exists(args.records):
        raise CLIError(f"records not found: {args.records}")
    try:
        records = load_judge_records(args.records, args.registry, on_invalid=args.on_invalid)
    except (DatasetValidationError, FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if args.limit is not None:
        records = records[: args.limit]
    client = _judge_client(args)
    try:
        status = _check_judge(client, "judge-eval")
        if status is not None:
            return status
        metrics, predictions = evaluate_judge(records, client, progress=not args.quiet)
    finally:
        client.close()
    metrics = {**metrics, "model": args.model, "base_url": client.base_url, "records": args.records}
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as sink:
            for record, prediction in zip(records, predictions, strict=True):
                line = {
                    "source": record.source,
                    "row_index": record.row_index,
                    "target": record.score,
                    "prediction": None if math.isnan(prediction) else prediction,
                }
                sink.write(json.dumps(line) + "\n")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as sink:
            sink.write(_dump(metrics) + "\n")
    if args.json:
        print(_dump(metrics))
    else:
        print(
            f"records {metrics['num_records']}, scored {metrics['num_scored']}, unparsed {metrics['num_unparsed']}, "
            f"failed {metrics['num_failed']}\n"
            f"MAE {metrics['mae']:.4f}, agreement within 0.1 {100 * metrics['agreement_0.1']:.2f}%, exact "
            f"{100 * metrics['exact_agreement']:.2f}%"
        )
    return 0


def _add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scorer (an OpenAI-compatible server, e.g. vLLM)")
    group.add_argument("--base-url", required=True, help="server URL, e.g. http://127.0.0.1:8000/v1")
    group.add_argument("--model", required=True, help="served model name, e.g. thinking-reward-model")
    group.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key (%(default)s)"
    )
    group.add_argument(
        "--constrained-decoding", action="store_true", help="vLLM: answers restricted to 0, 0.1, ..., 1.0"
    )
    group.add_argument("--max-concurrency", type=_positive_int, default=64, help="requests in flight (default: 64)")
    group.add_argument("--timeout", type=float, default=60.0, help="seconds per request attempt (default: 60)")
    group.add_argument("--max-retries", type=int, default=3, help="retries per item (default: 3)")
    group.add_argument("--template-file", default=None, help="evaluator prompt template ({question}, {reasoning})")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    r"""The argument parser of `sophiavl-trl` (subcommands: infer, eval, plot, judge-records, judge-eval)."""
    from sophiavl_trl.data.prompts import TYPE_TEMPLATE

    types = ", ".join(repr(name) for name in TYPE_TEMPLATE)
    parser = _Parser(
        prog=PROG,
        description="SophiaVL-R1 on TRL: inference, evaluation, reward curves, and thinking-judge data tools.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    infer = sub.add_parser(
        "infer",
        help="answer one question with a trained model (training prompt; prints thinking, answer, raw text)",
        description="Answer one question with a trained Qwen2.5-VL policy, with SophiaVL-R1's training system prompt "
        "and question template. Greedy decoding.",
    )
    infer.add_argument("--model", required=True, help="checkpoint folder (or Hub id)")
    infer.add_argument("--image", action="append", default=[], metavar="IMG", help="image file (repeat for several)")
    infer.add_argument("--question", required=True, help="the question")
    infer.add_argument("--type", required=True, type=_problem_type, help=f"problem type: {types}")
    infer.add_argument("--options", nargs="+", default=None, help="multiple-choice options, e.g. 'A. 3' 'B. 5'")
    infer.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    _add_generation_arguments(infer)
    infer.set_defaults(func=_infer)

    evaluate = sub.add_parser(
        "eval",
        help="accuracy per problem type on benchmark-style data, with the training verifiers",
        description="Evaluate a trained policy: greedy generation with the training prompt, scoring with the "
        "training verifiers (accuracy_reward), per-type accuracy. Writes results.json, report.md and "
        "predictions.jsonl to --output.",
    )
    evaluate.add_argument("--model", required=True, help="checkpoint folder (or Hub id)")
    evaluate.add_argument(
        "--data",
        required=True,
        help="a .json/.jsonl/.parquet file (or folder) of rows with image, question, options, answer, type; or "
        "comma-separated registry names with --registry",
    )
    evaluate.add_argument("--registry", default=None, help="a SophiaVL dataset_info.json registry")
    evaluate.add_argument("--output", required=True, help="output folder")
    evaluate.add_argument("--batch-size", type=_positive_int, default=8, help="prompts per batch (default: 8)")
    evaluate.add_argument("--limit", type=_positive_int, default=None, help="evaluate the first N rows only")
    evaluate.add_argument("--image-dir", default=None, help="folder of relative image paths (default: the file's)")
    evaluate.add_argument("--default-type", type=_problem_type, default=None, help="type of rows without one")
    evaluate.add_argument(
        "--on-invalid", choices=["error", "skip"], default="error", help="invalid rows: stop (default) or skip"
    )
    _add_generation_arguments(evaluate)
    evaluate.set_defaults(func=_eval)

    plot = sub.add_parser(
        "plot",
        help="draw reward curves of training runs (trainer_state.json), several runs overlaid",
        description="Reward curves (accuracy, format, thinking score, trust factor, weight, total reward) from the "
        "log history of training runs (trainer_state.json, or the newest checkpoint's), raw and EMA-smoothed.",
    )
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="training output folders")
    plot.add_argument("-o", "--output", default="reward_curves.png", help="PNG to write (default: %(default)s)")
    plot.add_argument("--smoothing", type=float, default=0.6, help="EMA smoothing in [0, 1) (default: %(default)s)")
    plot.add_argument("--labels", nargs="+", default=None, help="legend names, one per run")
    plot.set_defaults(func=_plot)

    records = sub.add_parser(
        "judge-records",
        help="build thinking-judge training records from a run's logged completions and a scorer",
        description="Read the completions a training run logged (log_completions=True: "
        "<output_dir>/completions/*.parquet) or JSON lines with question/reasoning/image, score each reasoning with "
        "a scorer behind an OpenAI-compatible URL (the judge's evaluator prompt), and write judge records "
        "(question, reasoning, image, score on the 0.1 grid).",
    )
    records.add_argument(
        "--completions", nargs="+", required=True, help="run folders, completions/ folders, .parquet/.jsonl files"
    )
    records.add_argument("--out", required=True, help="records file to write (.jsonl)")
    records.add_argument("--registry", default=None, help="training dataset_info.json (to recover images)")
    records.add_argument("--datasets", default=None, help="training data set names (train_files)")
    records.add_argument("--image-dir", default=None, help="folder of relative image paths in .jsonl inputs")
    records.add_argument(
        "--reasoning-source", choices=["think", "completion"], default="think", help="what is scored (default: think)"
    )
    records.add_argument("--max-records", type=_positive_int, default=None, help="score at most N items")
    _add_judge_arguments(records)
    records.set_defaults(func=_judge_records)

    judge_eval = sub.add_parser(
        "judge-eval",
        help="mean absolute error and agreement of a served judge on held-out records",
        description="Score held-out judge records with a served judge (through ThinkingRewardClient) and report the "
        "mean absolute error, the agreement within 0.1 and the number of unparsed answers.",
    )
    judge_eval.add_argument("--records", required=True, help="records file (or registry names with --registry)")
    judge_eval.add_argument("--registry", default=None, help="a dataset_info.json registry of judge records")
    judge_eval.add_argument("--limit", type=_positive_int, default=None, help="evaluate the first N records only")
    judge_eval.add_argument("--on-invalid", choices=["error", "skip"], default="error", help="invalid records")
    judge_eval.add_argument("--output", default=None, help="write the metrics to this JSON file")
    judge_eval.add_argument("--predictions", default=None, help="write per-record predictions (.jsonl)")
    judge_eval.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_judge_arguments(judge_eval)
    judge_eval.set_defaults(func=_judge_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    r"""
    Run `sophiavl-trl` with `argv` (default: `sys.argv[1:]`).

    Returns:
        `int`: the exit status (0 on success, 2 for an input error, 1 for an unreachable judge).
    """
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        return _fail(args.command, str(exc))


if __name__ == "__main__":
    sys.exit(main())
