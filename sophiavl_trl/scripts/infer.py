# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""`sophiavl-trl infer`: answer one question with a trained Qwen2.5-VL policy (training prompt, greedy decoding), and
the generation it shares with `sophiavl-trl eval`: transformers (batched, left padding) or in-process vLLM."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sophiavl_trl._fields import option
from sophiavl_trl.scripts import CLIError, check_positive, parse_args


Generate = Callable[[list[list[dict]], list[list[Any]]], list[str]]


@dataclass(kw_only=True)
class GenerationArguments:
    r"""The model and how it generates (shared by `infer` and `eval`)."""

    model: str = option(help="Checkpoint folder (with config.json) or Hub id.")
    backend: Literal["transformers", "vllm"] = option("transformers", "transformers, or vllm (needs vllm installed).")
    max_new_tokens: int = option(1024, "Completion budget, in tokens.")
    system_prompt: str | None = option(None, "System prompt (default: SophiaVL-R1's training one; '' for none).")
    min_pixels: int | None = option(None, "Image pixel lower bound (default: processor's).")
    max_pixels: int | None = option(None, "Image pixel upper bound (default: processor's).")
    device: str | None = option(None, "transformers backend: cuda, cpu, ... (GPU if any).")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] | None = option(
        None, "Weights dtype (default: bfloat16 on GPU, float32 on CPU)."
    )
    max_model_len: int = option(8192, "vllm backend: context length.")
    max_image_pixels: int | None = option(None, "PIL's decompression-bomb limit (images over twice it are refused).")

    def __post_init__(self) -> None:
        from PIL import Image

        from sophiavl_trl.model_utils import check_pixel_bounds

        check_positive(self, "max_new_tokens", "max_model_len", "max_image_pixels")
        check_pixel_bounds(self.min_pixels, self.max_pixels)
        Image.MAX_IMAGE_PIXELS = self.max_image_pixels or Image.MAX_IMAGE_PIXELS
        if self.device is None:
            return
        import torch

        try:
            kind, index = torch.device(self.device).type, torch.device(self.device).index or 0
        except RuntimeError:
            raise CLIError(f"--device {self.device}: not a torch device; use cpu, cuda, cuda:N or mps") from None
        counts = {"cpu": 1, "cuda": torch.cuda.device_count(), "mps": int(torch.backends.mps.is_available())}
        if index >= (count := counts.get(kind, 0)):
            message = f"--device {self.device}: this machine has {count} {kind} device(s)"
            raise CLIError(f"{message}; use --device cpu or leave it unset")


@dataclass(kw_only=True)
class InferArguments(GenerationArguments):
    r"""Answer one question with a trained Qwen2.5-VL policy (SophiaVL-R1's training prompt, greedy decoding)."""

    question: str = option(help="The question.")
    type: str = option(help="numerical, multiple choice, OCR, free-form or text (multiple_choice, ...).")
    image: list[str] = option([], "Image file(s), none for a text question.")
    options: list[str] | None = option(None, "Multiple-choice options: 'A. 3' 'B. 5'.")
    json: bool = option(False, "Print a JSON object instead of text.")


def problem_type_key(problem_type: str) -> str:
    r"""The `TYPE_TEMPLATE` key of a loosely written problem type (`multiple_choice`, `ocr`, `Free Form`)."""
    from sophiavl_trl.data import TYPE_TEMPLATE, template_type

    try:
        return template_type(problem_type)
    except ValueError:
        raise CLIError(
            f"--type: unknown problem type {problem_type!r}; choose one of {sorted(TYPE_TEMPLATE)}"
        ) from None


def load_processor(args: GenerationArguments) -> tuple[Any, tuple[int, int]]:
    r"""The model's processor (with the pixel bounds of `args`) and its `(min_pixels, max_pixels)`, to resize images as
    in training and check data before the model loads; a `CLIError` unless `args.model` is a checkpoint or Hub id."""
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
        messages = [prepare_multimodal_messages(p, images=i) for p, i in zip(prompts, images, strict=True)]
        return [processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages]

    if args.backend == "vllm":
        # vLLM logs to stdout by default; keep stdout for the results (`infer --json`). Its engine process inherits it.
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        from vllm import LLM, SamplingParams

        engine = {"dtype": args.dtype or "auto", "limit_mm_per_prompt": {"image": max_images, "video": 0}}
        if args.min_pixels is not None or args.max_pixels is not None:  # then set_pixel_bounds wrote `size`
            engine["mm_processor_kwargs"] = {"size": processor.image_processor.size}
        llm = LLM(args.model, max_model_len=args.max_model_len, **engine)
        params = SamplingParams(temperature=0.0, max_tokens=args.max_new_tokens)

        def generate_vllm(prompts: list[list[dict]], images: list[list[Any]]) -> list[str]:
            media = [{"multi_modal_data": {"image": i}} if i else {} for i in images]
            requests = [{"prompt": text} | m for text, m in zip(chat_texts(prompts, images), media, strict=True)]
            return [output.outputs[0].text for output in llm.generate(requests, params, use_tqdm=False)]

        return generate_vllm
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    model = AutoModelForImageTextToText.from_pretrained(args.model, dtype=getattr(torch, dtype, dtype))
    model = model.to(device).eval()

    # add_special_tokens=False: the chat template has them
    encoding = {"padding": True, "padding_side": "left", "return_tensors": "pt", "add_special_tokens": False}
    sampling = {"max_new_tokens": args.max_new_tokens, "do_sample": False, "temperature": None, "top_p": None}
    sampling |= {"top_k": None, "pad_token_id": processor.tokenizer.pad_token_id}

    def generate(prompts: list[list[dict]], images: list[list[Any]]) -> list[str]:
        texts = chat_texts(prompts, images)
        inputs = processor(text=texts, images=images if any(images) else None, **encoding).to(device)
        with torch.inference_mode():
            output = model.generate(**inputs, **sampling)
        return processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    return generate


def parse_completion(text: str) -> dict[str, Any]:
    r"""A completion's `thinking` (`<think>` content), `answer` (last `<answer>` block or `None`), `well_formatted`
    (whether it passes the format reward) and `raw` text."""
    from sophiavl_trl.rewards.format_rewards import extract_answer, extract_thinking, is_well_formatted

    result = {"thinking": extract_thinking(text), "answer": extract_answer(text)}
    return result | {"well_formatted": is_well_formatted(text), "raw": text}


def main(argv: list[str]) -> int:
    r"""`sophiavl-trl infer ARGS`."""
    from PIL import Image

    from sophiavl_trl.data import SYSTEM_PROMPT, ImageTransform, build_prompt

    args = parse_args(InferArguments, argv, "infer")
    problem_type = problem_type_key(args.type)
    if args.options and problem_type != "multiple choice":
        raise CLIError(f"--options only apply to --type 'multiple choice', not {problem_type!r}")
    images = []
    for path in args.image:
        if not os.path.isfile(path):
            raise CLIError(f"image not found: {path}")
        try:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        except Image.DecompressionBombError as exc:  # the dispatcher says how to raise the limit
            raise Image.DecompressionBombError(f"image {path}: {exc}") from None
        except OSError as exc:
            raise CLIError(f"cannot read image {path}: {exc}") from None
    processor, bounds = load_processor(args)
    generate = load_generator(args, processor, max_images=max(1, len(images)))
    question = args.question
    if args.options and question and not question[-1].isspace():
        question += " "  # training questions end with "Options: " before the "; "-joined options
    system_prompt = SYSTEM_PROMPT if args.system_prompt is None else args.system_prompt
    messages = build_prompt(question, problem_type, args.options, num_images=len(images), system_prompt=system_prompt)
    result = parse_completion(generate([messages], [[ImageTransform(*bounds).resize(image) for image in images]])[0])
    if args.json:
        payload = {"model": args.model, "backend": args.backend, "question": args.question, "type": problem_type}
        payload |= {"options": args.options or [], "images": [os.path.abspath(path) for path in args.image]}
        print(json.dumps(payload | result | {"messages": messages}, indent=2, ensure_ascii=False))
    else:
        answer = result["answer"] if result["answer"] is not None else "(no <answer> block)"
        print(f"Thinking:\n{result['thinking']}\n\nAnswer:\n{answer}\n\nRaw output:\n{result['raw']}")
    return 0
