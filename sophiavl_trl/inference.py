# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
r"""
Generation with a trained policy (a Qwen2.5-VL checkpoint), shared by `sophiavl-trl infer` and `sophiavl-trl eval`.

Prompts are the training ones ([`~sophiavl_trl.data.build_prompt`]: SophiaVL-R1's system prompt, question template and
per-type instruction). Two backends produce the same kind of output from the same messages:

- `"transformers"` (default): `AutoModelForImageTextToText.generate`, batched with left padding, on a GPU when there is
  one;
- `"vllm"`: an in-process `vllm.LLM` (`LLM.chat`), faster for large evaluations; needs `vllm` installed.

Decoding is greedy (temperature 0) unless a temperature is given. [`parse_completion`] cuts a completion into its
`<think>` reasoning and its `<answer>`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal


if TYPE_CHECKING:
    from PIL import Image


__all__ = [
    "BACKENDS",
    "GenerationRequest",
    "Generator",
    "TransformersGenerator",
    "VLLMGenerator",
    "build_request",
    "check_model_path",
    "load_generator",
    "load_image",
    "normalize_problem_type",
    "parse_completion",
    "resize_image",
    "set_pixel_bounds",
]

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("transformers", "vllm")
Backend = Literal["transformers", "vllm"]

DEFAULT_MAX_NEW_TOKENS = 1024


@dataclass
class GenerationRequest:
    r"""
    One prompt to complete: TRL conversational messages (image parts are `{"type": "image"}` placeholders) and the
    images that fill the placeholders, in order.

    Args:
        messages (`list[dict]`):
            The conversation, e.g. from [`~sophiavl_trl.data.build_prompt`].
        images (`list[PIL.Image.Image]`, *optional*):
            The images, as many as there are placeholders.
    """

    messages: list[dict[str, Any]]
    images: list[Any] = field(default_factory=list)


def normalize_problem_type(problem_type: str) -> str:
    r"""
    The `TYPE_TEMPLATE` key for a problem type given loosely (`multiple_choice`, `ocr`, `Free Form`).

    Args:
        problem_type (`str`):
            The type as written by a user.

    Returns:
        `str`: a key of [`~sophiavl_trl.data.prompts.TYPE_TEMPLATE`].

    Raises:
        `ValueError`: for an unknown type (the message lists the known ones).

    Example:
    ```python
    >>> from sophiavl_trl.inference import normalize_problem_type

    >>> normalize_problem_type("multiple_choice"), normalize_problem_type("ocr")
    ('multiple choice', 'OCR')

    ```
    """
    from sophiavl_trl.data.prompts import TYPE_TEMPLATE

    def key(text: str) -> str:
        return " ".join(text.replace("_", " ").replace("-", " ").split()).casefold()

    if problem_type in TYPE_TEMPLATE:
        return problem_type
    matches = [name for name in TYPE_TEMPLATE if key(name) == key(problem_type)]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"unknown problem type {problem_type!r}; choose one of {sorted(TYPE_TEMPLATE)}")


def build_request(
    question: str,
    problem_type: str,
    options: Sequence[str] | None = None,
    images: Sequence[Any] = (),
    *,
    system_prompt: str | None = None,
) -> GenerationRequest:
    r"""
    The generation request for one question, with the training prompt.

    For a multiple-choice question, the options are joined with `"; "` after the question as in training; a space is
    inserted first when the question does not end with whitespace (training questions end with `"Options: "`).

    Args:
        question (`str`):
            The question.
        problem_type (`str`):
            `numerical`, `multiple choice`, `OCR`, `free-form` or `text` (loose spellings accepted, see
            [`normalize_problem_type`]).
        options (`Sequence[str]`, *optional*):
            The options of a multiple-choice question, such as `["A. 3", "B. 5"]`.
        images (`Sequence`, *optional*):
            The images (PIL images).
        system_prompt (`str`, *optional*):
            The system prompt; SophiaVL-R1's training system prompt when `None`, none when `""`.

    Returns:
        [`GenerationRequest`]: the messages and images.

    Example:
    ```python
    >>> from sophiavl_trl.inference import build_request

    >>> request = build_request("What is 2+2?", "numerical")
    >>> [message["role"] for message in request.messages], request.images
    (['system', 'user'], [])

    ```
    """
    from sophiavl_trl.data.prompts import SYSTEM_PROMPT, build_prompt

    problem_type = normalize_problem_type(problem_type)
    if options and problem_type == "multiple choice" and question and not question[-1].isspace():
        question = question + " "
    messages = build_prompt(
        question,
        problem_type,
        list(options) if options else None,
        num_images=len(images),
        system_prompt=SYSTEM_PROMPT if system_prompt is None else system_prompt,
    )
    return GenerationRequest(messages=messages, images=list(images))


def parse_completion(text: str) -> dict[str, Any]:
    r"""
    Cut a completion into its reasoning and its answer.

    Args:
        text (`str`):
            The generated text.

    Returns:
        `dict`: `thinking` (the `<think>` content, see
        [`~sophiavl_trl.rewards.format_rewards.extract_thinking`]), `answer` (the last `<answer>` block, or `None`),
        `well_formatted` (whether the text passes the format reward) and `raw` (the text).

    Example:
    ```python
    >>> from sophiavl_trl.inference import parse_completion

    >>> parse_completion("<think>2+2 is 4.</think><answer>4</answer>")
    {'thinking': '2+2 is 4.', 'answer': '4', 'well_formatted': True, 'raw': '<think>2+2 is 4.</think><answer>4</answer>'}

    ```
    """
    from sophiavl_trl.rewards.format_rewards import extract_answer, extract_thinking, is_well_formatted

    return {
        "thinking": extract_thinking(text),
        "answer": extract_answer(text),
        "well_formatted": is_well_formatted(text),
        "raw": text,
    }


def check_model_path(model: str | os.PathLike) -> str:
    r"""
    Check that `model` names a loadable model: a local folder with a `config.json`, or a Hub id (`org/name`) when no
    such local path exists.

    Args:
        model (`str` or `os.PathLike`):
            The model folder or Hub id.

    Returns:
        `str`: the model as given.

    Raises:
        `FileNotFoundError`: when `model` is a path that does not exist or has no `config.json`.
    """
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model folder {text} has no config.json (is it a saved checkpoint?)")
        return str(path)
    if path.exists():
        raise FileNotFoundError(f"model path {text} is a file; pass the checkpoint folder")
    parts = text.split("/")
    looks_like_hub_id = len(parts) == 2 and all(parts) and not text.startswith((".", "~"))
    if not looks_like_hub_id:
        raise FileNotFoundError(f"model path not found: {text}")
    return text


def _pixel_bounds(processor: Any) -> tuple[int | None, int | None]:
    size = getattr(processor.image_processor, "size", None)
    get = size.get if isinstance(size, dict) else lambda name, default=None: getattr(size, name, default)
    return get("shortest_edge", None), get("longest_edge", None)


class Generator:
    r"""
    Base class of the generation backends: `generate(requests)` returns one completion text per request.

    Attributes:
        model (`str`): the model path or id.
        backend (`str`): `"transformers"` or `"vllm"`.
        min_pixels (`int` or `None`), max_pixels (`int` or `None`): the image pixel bounds the model's processor
            applies (Qwen2.5-VL's smart resize).
    """

    backend: str = ""

    def __init__(self, model: str, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, temperature: float = 0.0) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}.")
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.min_pixels: int | None = None
        self.max_pixels: int | None = None

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        r"""Complete every request; one text per request, in order."""
        raise NotImplementedError

    def close(self) -> None:
        r"""Free the model (a no-op unless the backend holds external resources)."""

    def config(self) -> dict[str, Any]:
        r"""The settings that decide the outputs, for reports."""
        return {
            "model": self.model,
            "backend": self.backend,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "decoding": "greedy" if self.temperature == 0 else "sampling",
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
        }

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class TransformersGenerator(Generator):
    r"""
    Generation with transformers: `AutoModelForImageTextToText` and `AutoProcessor`, batched with left padding.

    Args:
        model (`str`):
            Checkpoint folder or Hub id.
        max_new_tokens (`int`, *optional*, defaults to `1024`):
            Largest completion, in tokens.
        temperature (`float`, *optional*, defaults to `0.0`):
            0 for greedy decoding, else sampling at this temperature.
        device (`str`, *optional*):
            `"cuda"`, `"cpu"`, ...; the first GPU when there is one, else the CPU.
        dtype (`str`, *optional*):
            `"bfloat16"`, `"float16"`, `"float32"` or `"auto"`; bfloat16 on a GPU and float32 on a CPU by default.
        min_pixels (`int`, *optional*):
            Lower bound of the image pixel count (overrides the processor's).
        max_pixels (`int`, *optional*):
            Upper bound of the image pixel count (overrides the processor's).
    """

    backend = "transformers"

    def __init__(
        self,
        model: str,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        *,
        device: str | None = None,
        dtype: str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
    ) -> None:
        super().__init__(model, max_new_tokens, temperature)
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.dtype = dtype
        self.processor = AutoProcessor.from_pretrained(model)
        set_pixel_bounds(self.processor, min_pixels, max_pixels)
        self.min_pixels, self.max_pixels = _pixel_bounds(self.processor)
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.hf_model = AutoModelForImageTextToText.from_pretrained(model, dtype=torch_dtype).to(self.device).eval()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        import torch
        from trl.data_utils import prepare_multimodal_messages

        if not requests:
            return []
        texts = []
        for request in requests:
            messages = prepare_multimodal_messages(request.messages, images=request.images)
            texts.append(self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        images = [list(request.images) for request in requests]
        inputs = self.processor(
            text=texts,
            images=images if any(images) else None,
            padding=True,
            padding_side="left",
            return_tensors="pt",
            add_special_tokens=False,  # the chat template already has them
        ).to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens}
        if self.temperature == 0:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=self.temperature)
        tokenizer = self.processor.tokenizer
        with torch.inference_mode():
            output = self.hf_model.generate(**inputs, pad_token_id=tokenizer.pad_token_id, **kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "device": self.device, "dtype": self.dtype}


class VLLMGenerator(Generator):
    r"""
    Generation with an in-process vLLM engine (`vllm.LLM.chat`).

    Args:
        model (`str`):
            Checkpoint folder or Hub id.
        max_new_tokens (`int`, *optional*, defaults to `1024`):
            Largest completion, in tokens.
        temperature (`float`, *optional*, defaults to `0.0`):
            0 for greedy decoding, else sampling at this temperature.
        min_pixels (`int`, *optional*):
            Lower bound of the image pixel count (overrides the processor's).
        max_pixels (`int`, *optional*):
            Upper bound of the image pixel count (overrides the processor's).
        max_model_len (`int`, *optional*, defaults to `8192`):
            Context length of the engine (prompt + completion).
        max_images (`int`, *optional*, defaults to `4`):
            Most images per prompt.
        **llm_kwargs:
            More `vllm.LLM` arguments (`tensor_parallel_size`, `gpu_memory_utilization`, `dtype`, ...).
    """

    backend = "vllm"

    def __init__(
        self,
        model: str,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        *,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        max_model_len: int = 8192,
        max_images: int = 4,
        **llm_kwargs: Any,
    ) -> None:
        super().__init__(model, max_new_tokens, temperature)
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise ImportError(
                "The vllm backend needs vLLM: `pip install 'sophiavl-trl[vllm]'` (or use the transformers backend)."
            )
        # vLLM logs to stdout by default; keep stdout for the results (e.g. `infer --json`). The engine process
        # inherits the setting.
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        from transformers import AutoProcessor
        from vllm import LLM

        processor = AutoProcessor.from_pretrained(model)
        set_pixel_bounds(processor, min_pixels, max_pixels)
        self.min_pixels, self.max_pixels = _pixel_bounds(processor)
        mm_kwargs = {}
        if min_pixels is not None or max_pixels is not None:
            mm_kwargs = {"size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}}
        self.llm_kwargs = {"max_model_len": max_model_len, **llm_kwargs}
        self.llm = LLM(
            model=model,
            limit_mm_per_prompt={"image": max_images, "video": 0},
            mm_processor_kwargs=mm_kwargs or None,
            **self.llm_kwargs,
        )

    @staticmethod
    def _to_vllm(request: GenerationRequest) -> list[dict[str, Any]]:
        """TRL placeholders -> vLLM's `image_pil` parts, filled in order."""
        images = iter(request.images)
        messages = []
        for message in request.messages:
            content = message["content"]
            if isinstance(content, str):
                messages.append({"role": message["role"], "content": content})
                continue
            parts = []
            for part in content:
                if part.get("type") == "image":
                    parts.append({"type": "image_pil", "image_pil": next(images)})
                else:
                    parts.append({"type": "text", "text": part["text"]})
            messages.append({"role": message["role"], "content": parts})
        return messages

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        from vllm import SamplingParams

        if not requests:
            return []
        params = SamplingParams(temperature=self.temperature, max_tokens=self.max_new_tokens)
        outputs = self.llm.chat([self._to_vllm(r) for r in requests], params, use_tqdm=False)
        return [output.outputs[0].text for output in outputs]

    def config(self) -> dict[str, Any]:
        return {**super().config(), **{k: v for k, v in self.llm_kwargs.items() if isinstance(v, int | float | str)}}

    def close(self) -> None:
        engine = getattr(self, "llm", None)
        if engine is None:
            return
        core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            try:
                core.shutdown()  # stops the engine process now rather than at interpreter exit
            except Exception as exc:  # best effort: the process is reaped at exit anyway
                logger.debug("vLLM engine shutdown failed: %r", exc)
        del self.llm
        import gc

        gc.collect()


def set_pixel_bounds(processor: Any, min_pixels: int | None, max_pixels: int | None) -> None:
    r"""
    Override the pixel bounds of a Qwen2.5-VL processor's image processor.

    In transformers 5 the bounds live in `image_processor.size` (`shortest_edge`, `longest_edge`, in pixels); the
    `min_pixels` / `max_pixels` attributes of older versions are not read any more. `None` keeps a bound as it is.

    Args:
        processor (`ProcessorMixin`):
            The processor (changed in place).
        min_pixels (`int`, *optional*):
            Lower bound of an image's pixel count.
        max_pixels (`int`, *optional*):
            Upper bound of an image's pixel count.
    """
    if min_pixels is None and max_pixels is None:
        return
    current_min, current_max = _pixel_bounds(processor)
    low = min_pixels if min_pixels is not None else current_min
    high = max_pixels if max_pixels is not None else current_max
    if low is not None and high is not None and not 0 < low <= high:
        raise ValueError(f"Need 0 < min_pixels <= max_pixels, got {low} and {high}.")
    processor.image_processor.size = {"shortest_edge": low, "longest_edge": high}


def load_generator(
    model: str,
    backend: Backend = "transformers",
    *,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    temperature: float = 0.0,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    **kwargs: Any,
) -> Generator:
    r"""
    Load a model for generation with the chosen backend.

    Args:
        model (`str`):
            Checkpoint folder or Hub id (checked with `check_model_path`).
        backend (`str`, *optional*, defaults to `"transformers"`):
            `"transformers"` or `"vllm"`.
        max_new_tokens (`int`, *optional*, defaults to `1024`):
            Largest completion, in tokens.
        temperature (`float`, *optional*, defaults to `0.0`):
            0 for greedy decoding.
        min_pixels (`int`, *optional*):
            Lower bound of the image pixel count (default: the model processor's).
        max_pixels (`int`, *optional*):
            Upper bound of the image pixel count (default: the model processor's).
        **kwargs:
            Backend arguments ([`TransformersGenerator`]: `device`, `dtype`; [`VLLMGenerator`]: `max_model_len`,
            `max_images` and `vllm.LLM` arguments).

    Returns:
        [`Generator`]: the backend.

    Example:
    ```python
    from PIL import Image

    from sophiavl_trl.inference import build_request, load_generator, parse_completion

    generator = load_generator("bunny127/SophiaVL-R1-7B")  # or a checkpoint folder; backend="vllm" for speed
    request = build_request("How many objects are left?", "numerical", images=[Image.open("clevr.png")])
    print(parse_completion(generator.generate([request])[0])["answer"])
    ```
    """
    model = check_model_path(model)
    if backend == "transformers":
        return TransformersGenerator(
            model, max_new_tokens, temperature, min_pixels=min_pixels, max_pixels=max_pixels, **kwargs
        )
    if backend == "vllm":
        return VLLMGenerator(
            model, max_new_tokens, temperature, min_pixels=min_pixels, max_pixels=max_pixels, **kwargs
        )
    raise ValueError(f"Unknown backend {backend!r}; choose one of {list(BACKENDS)}.")


def load_image(path: str | os.PathLike) -> Image.Image:
    r"""
    Open an image file as RGB.

    Args:
        path (`str` or `os.PathLike`):
            The image file.

    Returns:
        `PIL.Image.Image`: the image.

    Raises:
        `FileNotFoundError`: if the file does not exist; `ValueError` if it is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def resize_image(image: Image.Image, min_pixels: int | None, max_pixels: int | None) -> Image.Image:
    r"""
    Resize an image as the training data pipeline does (qwen-vl-utils' `fetch_image`: both sides multiples of 28, the
    pixel count within `[min_pixels, max_pixels]`, the aspect ratio kept).

    Args:
        image (`PIL.Image.Image`):
            The image.
        min_pixels (`int` or `None`):
            Lower bound of the pixel count (`None`: Qwen's default, 3136).
        max_pixels (`int` or `None`):
            Upper bound of the pixel count (`None`: Qwen's default, 12845056).

    Returns:
        `PIL.Image.Image`: the resized RGB image.
    """
    from qwen_vl_utils import fetch_image

    spec: dict[str, Any] = {"image": image}
    if min_pixels is not None:
        spec["min_pixels"] = min_pixels
    if max_pixels is not None:
        spec["max_pixels"] = max_pixels
    # image_patch_size 14 -> factor 28 (patch 14 x spatial merge 2), as Qwen2.5-VL's processor expects.
    return fetch_image(spec, image_patch_size=14)
