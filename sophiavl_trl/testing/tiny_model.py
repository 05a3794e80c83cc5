# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""A tiny, random-weight Qwen2.5-VL built entirely offline.

The folder it writes loads with the stock `from_pretrained` classes and is servable by vLLM, so smoke tests, the
quickstart and the test suite exercise the same code paths as a real Qwen2.5-VL checkpoint, without any download.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sophiavl_trl.model_utils import VISION_SPECIAL_TOKENS


logger = logging.getLogger(__name__)

# Qwen's special tokens, in Qwen's order. The multimodal ones must match the ids in the model config.
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *VISION_SPECIAL_TOKENS]

# Text the tokenizer is trained on: enough for the prompts, tags and answers of the synthetic data to tokenize into
# a few hundred merges (short sequences keep CPU training fast).
_CORPUS = """
You FIRST think about the reasoning process as an internal monologue and then provide the final answer.
<think> Let me think. Hmm, wait, oh, I see. let's break it down. </think> <answer> 42 </answer>
<think>reasoning</think><answer>answer</answer>
Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.
Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags.
Please transcribe text from the image clearly and provide your text answer within the <answer> </answer> tags.
Please provide your text answer within the <answer> </answer> tags.
How many red circles are there? How many blue squares are in the image? Which shape is shown? What does the text say?
Describe the image. A B C D E. circle square triangle star red green blue yellow purple orange black white.
The answer is 0 1 2 3 4 5 6 7 8 9 10 11 12 plus minus times equals the total number of objects.
You are an expert reasoning evaluator. Score: 0.5 \\boxed{1} \\frac{1}{2} $x^2$ question reasoning process.
You are a helpful assistant. system user assistant
"""


def _tokenizer_and_processor(vocab_size: int, max_pixels: int, added_tokens: Sequence[str]) -> tuple[Any, Any]:
    """A byte-level BPE trained on the embedded corpus, as a `Qwen2Tokenizer`, and the `Qwen2_5_VLProcessor` on it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2_5_VLProcessor, Qwen2Tokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet, special = pre_tokenizers.ByteLevel.alphabet(), ["<|endoftext|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=alphabet, special_tokens=special, show_progress=False
    )
    bpe.train_from_iterator(_CORPUS.split("\n") * 4, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    special_tokens = {"unk_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    tokenizer = Qwen2Tokenizer(
        vocab=model["vocab"], merges=merges, errors="replace", model_max_length=32768, **special_tokens
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.chat_template = qwen2_5_vl_chat_template
    tokenizer.add_tokens(sorted({text for text in added_tokens if text.strip()}, key=len, reverse=True))
    bounds = {"min_pixels": 28 * 28, "max_pixels": max_pixels}
    image_processor = Qwen2VLImageProcessorPil(**bounds, patch_size=14, merge_size=2, temporal_patch_size=2)
    try:  # the video processor needs torchvision; the stock AutoProcessor wants it in the folder
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        video_processor = Qwen2VLVideoProcessor(**bounds)
    except (ImportError, RuntimeError) as exc:
        logger.info("No video processor (torchvision unavailable: %s): AutoProcessor will not load it.", exc)
        video_processor = None
    processor = Qwen2_5_VLProcessor(image_processor, tokenizer, video_processor, chat_template=tokenizer.chat_template)
    return tokenizer, processor


def tiny_qwen2_5_vl_config(tokenizer: Any, *, hidden_size: int = 128, num_layers: int = 2) -> Any:
    """The config of the tiny model, consistent with `tokenizer`'s special-token ids.

    Constraints (all from Qwen2.5-VL and vLLM): mrope sections sum to head_dim / 2; the vision tower's output size
    equals the text hidden size; vLLM's CPU attention needs head_dim >= 32.
    """
    from transformers import Qwen2_5_VLConfig

    heads = hidden_size // 32  # head_dim 32: vLLM's CPU attention needs >= 32
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    # vocab_size: no unused embedding rows, a random policy could sample ids that decode to nothing
    text = {"vocab_size": len(tokenizer), "hidden_size": hidden_size, "intermediate_size": hidden_size * 2}
    text |= {"num_hidden_layers": num_layers, "num_attention_heads": heads, "num_key_value_heads": max(1, heads // 2)}
    # mrope sections: Qwen's 1 : 1.5 : 1.5 split of head_dim / 2 = 16 into temporal, height and width
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}
    pad = ids["<|endoftext|>"]
    text |= {
        "bos_token_id": pad,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": pad,
        "max_position_embeddings": 4096,
    }
    text["tie_word_embeddings"] = True
    vision = {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2, "out_hidden_size": hidden_size}
    vision |= {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112}
    vision["fullatt_block_indexes"] = [1]
    tokens = {f"{name}_token_id": ids[f"<|{name}|>"] for name in ("vision_start", "vision_end")}
    tokens |= {"image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"]}
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **tokens)


def build_tiny_qwen2_5_vl(
    path: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 512,
    hidden_size: int = 128,
    num_layers: int = 2,
    max_pixels: int = 112 * 112,
    added_tokens: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    r"""Write a random-weight `Qwen2_5_VLForConditionalGeneration` and its processor to the folder `path`, offline,
    and return it (as it is when it already holds a model, unless `overwrite`).

    The tokenizer is a byte-level BPE (`vocab_size` merges before the special tokens) trained locally with `tokenizers`
    and wrapped as `Qwen2Tokenizer`, with Qwen's special tokens and the Qwen2.5-VL chat template. `seed` seeds the
    weights; `hidden_size` (a multiple of 32) and `num_layers` size the text decoder; `max_pixels` caps images (112 x
    112: at most 16 image tokens each). `added_tokens` are texts the tokenizer keeps whole (e.g. fixed prompt texts, so
    that a prompt costs a few tokens). The folder loads with `AutoModelForImageTextToText`, `AutoTokenizer` and
    `AutoProcessor` (which, for any Qwen2.5-VL, needs torchvision); vLLM serves it (head_dim 32). Builds in a few
    seconds on a CPU.

    Example:

    >>> from sophiavl_trl.testing import build_tiny_qwen2_5_vl
    >>> path = build_tiny_qwen2_5_vl("/tmp/tiny-qwen2.5-vl")
    >>> from transformers import AutoModelForImageTextToText
    >>> model = AutoModelForImageTextToText.from_pretrained(path)
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    path = Path(path)
    if (path / "config.json").exists() and (path / "model.safetensors").exists() and not overwrite:
        return path
    if hidden_size % 32:
        raise ValueError(
            f"hidden_size must be a multiple of 32 (head_dim 32 for vLLM's CPU attention), got {hidden_size}"
        )
    path.mkdir(parents=True, exist_ok=True)
    tokenizer, processor = _tokenizer_and_processor(vocab_size, max_pixels, added_tokens)
    config = tiny_qwen2_5_vl_config(tokenizer, hidden_size=hidden_size, num_layers=num_layers)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    ids = {name: getattr(config.text_config, name) for name in ("bos_token_id", "eos_token_id", "pad_token_id")}
    ids["eos_token_id"] = [ids["eos_token_id"], ids["bos_token_id"]]
    model.generation_config = GenerationConfig(**ids, do_sample=False)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def vision_token_ids(tokenizer: Any) -> list[int]:
    """Ids of the vision special tokens, to forbid them in generation (e.g. `logit_bias={id: -100}`)."""
    return [tokenizer.convert_tokens_to_ids(tok) for tok in VISION_SPECIAL_TOKENS]
