# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""`sophiavl-trl infer`: answer one question with a trained Qwen2.5-VL policy (training prompt, greedy decoding), and
the generation it shares with `sophiavl-trl eval`: transformers (batched, left padding) or an in-process vLLM engine."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sophiavl_trl.scripts import CLIError, check_positive, parse_args


Generate = Callable[[list[list[dict]], list[list[Any]]], list[str]]


@dataclass(kw_only=True)
class GenerationArguments:
    r"""The model and how it generates (shared by `infer` and `eval`)."""

    model: str = field(metadata={"help": "Checkpoint folder (with config.json) or Hub id."})
    backend: Literal["transformers", "vllm"] = field(
        default="transformers", metadata={"help": "transformers, or vllm (needs vllm installed)."}
    )
    max_new_tokens: int = field(default=1024, metadata={"help": "Completion budget, in tokens."})
    system_prompt: str | None = field(
        default=None, metadata={"help": "System prompt (default: SophiaVL-R1's training one; '' for none)."}
    )
    min_pixels: int | None = field(default=None, metadata={"help": "Image pixel lower bound (default: processor's)."})
    max_pixels: int | None = field(default=None, metadata={"help": "Image pixel upper bound (default: processor's)."})
    device: str | None = field(default=None, metadata={"help": "transformers backend: cuda, cpu, ... (GPU if any)."})
    dtype: Literal["auto", "bfloat16", "float16", "float32"] | None = field(
        default=None, metadata={"help": "Weights dtype (default: bfloat16 on GPU, float32 on CPU)."}
    )
    max_model_len: int = field(default=8192, metadata={"help": "vllm backend: context length."})
    max_image_pixels: int | None = field(
        default=None, metadata={"help": "PIL's decompression-bomb limit (images over twice it are refused)."}
    )

    def __post_init__(self) -> None:
        from PIL import Image

        from sophiavl_trl.model_utils import check_pixel_bounds

        check_positive(self, "max_new_tokens", "max_model_len", "max_image_pixels")
        check_pixel_bounds(self.min_pixels, self.max_pixels)
        if self.device is not None:
            check_device(self.device)
        if self.max_image_pixels is not None:
            Image.MAX_IMAGE_PIXELS = self.max_image_pixels


@dataclass(kw_only=True)
class InferArguments(GenerationArguments):
    r"""Answer one question with a trained Qwen2.5-VL policy (SophiaVL-R1's training prompt, greedy decoding)."""

    question: str = field(metadata={"help": "The question."})
    type: str = field(metadata={"help": "numerical, multiple choice, OCR, free-form or text (multiple_choice, ...)."})
    image: list[str] = field(default_factory=list, metadata={"help": "Image file(s), none for a text question."})
    options: list[str] | None = field(default=None, metadata={"help": "Multiple-choice options: 'A. 3' 'B. 5'."})
    json: bool = field(default=False, metadata={"help": "Print a JSON object instead of text."})


def problem_type_key(problem_type: str) -> str:
    r"""The `TYPE_TEMPLATE` key of a loosely written problem type (`multiple_choice`, `ocr`, `Free Form`)."""
    from sophiavl_trl.data import TYPE_TEMPLATE, template_type

    try:
        return template_type(problem_type)
    except ValueError:
        known = sorted(TYPE_TEMPLATE)
        raise CLIError(f"--type: unknown problem type {problem_type!r}; choose one of {known}") from None


def check_device(device: str) -> None:
    r"""Raise a `CLIError` unless `device` is a torch device that this machine has."""
    import torch

    try:
        kind, index = torch.device(device).type, torch.device(device).index or 0
    except RuntimeError:
        raise CLIError(f"--device {device}: not a torch device; use cpu, cuda, cuda:N or mps") from None
    count = {"cpu": 1, "cuda": torch.cuda.device_count(), "mps": int(torch.backends.mps.is_available())}.get(kind, 0)
    if index >= count:
        raise CLIError(
            f"--device {device}: this machine has {count} {kind} device(s); use --device cpu or leave it unset"
        )


def load_image(path: str) -> Any:
    r"""Open an image file as RGB (`CLIError` when it is missing or unreadable)."""
    from PIL import Image

    if not os.path.isfile(path):
        raise CLIError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except Image.DecompressionBombError as exc:  # the dispatcher says how to raise the limit
        raise Image.DecompressionBombError(f"image {path}: {exc}") from None
    except OSError as exc:
        raise CLIError(f"cannot read image {path}: {exc}") from None


def load_processor(args: GenerationArguments) -> tuple[Any, tuple[int, int]]:
    r"""The model's processor (with the pixel bounds of `args`) and its `(min_pixels, max_pixels)`, what images are
    resized to as in training. Cheap: data can be checked with it before the model loads. Fails early (a `CLIError`)
    unless `args.model` is a folder with a `config.json` or looks like a Hub id."""
    import importlib.util

    from transformers import AutoProcessor

    from sophiavl_trl.model_utils import set_pixel_bounds

    path, parts = Path(args.model).expanduser(), args.model.split("/")
    if path.is_dir() and not (path / "config.json").is_file():
        raise CLIError(f"model folder {args.model} has no config.json (is it a saved checkpoint?)")
    if path.is_file():
        raise CLIError(f"model path {args.model} is a file; pass the checkpoint folder")
    if not path.exists() and (len(parts) != 2 or not all(parts) or args.model.startswith((".", "~"))):
        raise CLIError(f"model path not found: {args.model}")
    if args.backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise CLIError("the vllm backend needs vLLM: pip install 'sophiavl-trl[vllm]' (or use --backend transformers)")
    try:
        processor = AutoProcessor.from_pretrained(args.model)
    except OSError as exc:  # transformers' "not a local folder and not on the Hub"
        raise CLIError(f"cannot load model {args.model!r}: {str(exc).splitlines()[0]}") from None
    set_pixel_bounds(processor, args.min_pixels, args.max_pixels)
    size = processor.image_processor.size
    return processor, (size["shortest_edge"], size["longest_edge"])


def load_generator(args: GenerationArguments, processor: Any, max_images: int = 4) -> Generate:
    r"""Load the model of `args` for greedy generation: `generate(prompts, images) -> texts`, where a prompt is TRL
    conversational messages with `{"type": "image"}` placeholders, filled in order by its images. Both backends get
    the prompt text of the processor's chat template, as TRL's trainers do."""
    import torch
    from transformers import AutoModelForImageTextToText
    from trl.data_utils import prepare_multimodal_messages

    def chat_texts(prompts: list[list[dict]], images: list[list[Any]]) -> list[str]:
        return [
            processor.apply_chat_template(
                prepare_multimodal_messages(p, images=i), add_generation_prompt=True, tokenize=False
            )
            for p, i in zip(prompts, images, strict=True)
        ]

    if args.backend == "vllm":
        # vLLM logs to stdout by default; keep stdout for the results (`infer --json`). Its engine process inherits it.
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        from vllm import LLM, SamplingParams

        overridden = args.min_pixels is not None or args.max_pixels is not None  # then set_pixel_bounds wrote `size`
        llm = LLM(
            model=args.model, max_model_len=args.max_model_len, dtype=args.dtype or "auto",
            limit_mm_per_prompt={"image": max_images, "video": 0},
            mm_processor_kwargs={"size": processor.image_processor.size} if overridden else None,
        )  # fmt: skip
        params = SamplingParams(temperature=0.0, max_tokens=args.max_new_tokens)

        def generate_vllm(prompts: list[list[dict]], images: list[list[Any]]) -> list[str]:
            requests = [
                {"prompt": text, "multi_modal_data": {"image": i}} if i else {"prompt": text}
                for text, i in zip(chat_texts(prompts, images), images, strict=True)
            ]
            return [output.outputs[0].text for output in llm.generate(requests, params, use_tqdm=False)]

        return generate_vllm
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    model = AutoModelForImageTextToText.from_pretrained(
        args.model, dtype=dtype if dtype == "auto" else getattr(torch, dtype)
    )
    model = model.to(device).eval()

    def generate(prompts: list[list[dict]], images: list[list[Any]]) -> list[str]:
        inputs = processor(
            text=chat_texts(prompts, images), images=images if any(images) else None, padding=True,
            padding_side="left", return_tensors="pt", add_special_tokens=False,  # the chat template has them
        ).to(device)  # fmt: skip
        with torch.inference_mode():
            output = model.generate(
                **inputs, max_new_tokens=args.max_new_tokens, do_sample=False, temperature=None, top_p=None,
                top_k=None, pad_token_id=processor.tokenizer.pad_token_id,
            )  # fmt: skip
        return processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    return generate


def parse_completion(text: str) -> dict[str, Any]:
    r"""A completion's `thinking` (`<think>` content), `answer` (last `<answer>` block or `None`), `well_formatted`
    (whether it passes the format reward) and `raw` text."""
    from sophiavl_trl.rewards.format_rewards import extract_answer, extract_thinking, is_well_formatted

    return {"thinking": extract_thinking(text), "answer": extract_answer(text),
            "well_formatted": is_well_formatted(text), "raw": text}  # fmt: skip


def main(argv: list[str]) -> int:
    r"""`sophiavl-trl infer ARGS`."""
    from sophiavl_trl.data import SYSTEM_PROMPT, ImageTransform, build_prompt

    args = parse_args(InferArguments, argv, "infer")
    problem_type = problem_type_key(args.type)
    if args.options and problem_type != "multiple choice":
        raise CLIError(f"--options only apply to --type 'multiple choice', not {problem_type!r}")
    images = [load_image(path) for path in args.image]
    processor, bounds = load_processor(args)
    generate = load_generator(args, processor, max_images=max(1, len(images)))
    question = args.question
    if args.options and question and not question[-1].isspace():
        question += " "  # training questions end with "Options: " before the "; "-joined options
    system_prompt = SYSTEM_PROMPT if args.system_prompt is None else args.system_prompt
    messages = build_prompt(question, problem_type, args.options, num_images=len(images), system_prompt=system_prompt)
    result = parse_completion(generate([messages], [[ImageTransform(*bounds).resize(image) for image in images]])[0])
    if args.json:
        payload = {
            "model": args.model, "backend": args.backend, "question": args.question, "type": problem_type,
            "options": args.options or [], "images": [os.path.abspath(path) for path in args.image], **result,
            "messages": messages,
        }  # fmt: skip
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        answer = result["answer"] if result["answer"] is not None else "(no <answer> block)"
        print(f"Thinking:\n{result['thinking']}\n\nAnswer:\n{answer}\n\nRaw output:\n{result['raw']}")
    return 0
