# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""The prompt-length check: prompts that cannot fit the generation context are refused before training."""

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from sophiavl_trl.data.images import image_tokens
from sophiavl_trl.data.registry import DatasetValidationError, OnInvalid, ValidationReport


if TYPE_CHECKING:
    from datasets import Dataset


logger = logging.getLogger(__name__)


def check_prompt_lengths(
    dataset: "Dataset", processing_class: Any, args: Any, on_invalid: OnInvalid = "error"
) -> "Dataset":
    r"""
    Refuse, before training, the prompts of a `load_sophiavl_dataset` / `prepare_dataset` result whose tokens (text and
    images) exceed `args.max_prompt_length` or, with vLLM, `args.vllm_max_model_length - args.max_completion_length`
    (docs/dataset.md): `on_invalid="error"` raises a `DatasetValidationError`, `"skip"` drops them.
    """
    vllm = getattr(args, "vllm_max_model_length", None) if getattr(args, "use_vllm", False) else None
    limits = {"max_prompt_length": getattr(args, "max_prompt_length", None)}
    limits["vllm_max_model_length - max_completion_length"] = vllm - args.max_completion_length if vllm else None
    if not (limits := sorted((value, name) for name, value in limits.items() if value is not None)):
        return dataset
    (limit, name), rows = limits[0], dataset.with_format(None)[:]  # no transform: images are not decoded
    size = processing_class.image_processor.size  # the bounds examples/train_sophiavl.py gave the data too
    count = partial(image_tokens, min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
    with ThreadPoolExecutor(min(16, 2 * (os.cpu_count() or 1))) as pool:
        vision = list(pool.map(count, rows["images"]))
    texts = processing_class.apply_chat_template(rows["prompt"], tokenize=False, add_generation_prompt=True)
    # The template holds one placeholder token per image. A byte-level BPE token (Qwen's) holds at least one byte, so
    # only the prompts that might not fit are tokenized.
    extra = [tokens - len(refs) for tokens, refs in zip(vision, rows["images"], strict=True)]
    suspects = [i for i, text in enumerate(texts) if len(text.encode()) + extra[i] > limit]
    tokenize = partial(processing_class.tokenizer, add_special_tokens=False)
    ids = tokenize([texts[i] for i in suspects])["input_ids"] if suspects else []
    over = {i: total for i, tokens in zip(suspects, ids, strict=True) if (total := len(tokens) + extra[i]) > limit}
    report = ValidationReport(len(dataset), invalid_rows=[(rows["source"][i], rows["row_index"][i]) for i in over])
    for (source, row), (i, total) in zip(report.invalid_rows, over.items(), strict=True):
        images = f", or lower max_pixels (its images take {vision[i]:,})" if vision[i] >= total - limit else ""
        report.issues.append(f"{source}, row {row}, field 'problem': the prompt is {total:,} tokens, over {name} = "
                             f"{limit:,}; shorten the question{images}")  # fmt: skip
    if not report.issues:
        return dataset
    keep = [i for i in range(len(dataset)) if i not in over]
    if on_invalid == "error" or not keep:
        raise DatasetValidationError("Prompt length check failed.\n" + report.format(), report)
    logger.warning("Skipped prompts that are too long (on_invalid='skip'); %d kept.\n%s", len(keep), report.format())
    return dataset.select(keep)
