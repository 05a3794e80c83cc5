# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Training data: SophiaVL-R1's prompts, its dataset registry format, validation, a modality-grouped sampler and a
synthetic data set.

- `prompts.py`: `SYSTEM_PROMPT`, `QUESTION_TEMPLATE`, `TYPE_TEMPLATE`, `build_question`, `build_prompt`.
- `registry.py`: `load_registry`, `load_sophiavl_dataset`, `prepare_dataset` (validated, TRL-ready
  `datasets.Dataset`, images loaded lazily), `read_table` (any json/jsonl/parquet file or folder), `DatasetSpec`,
  `DatasetValidationError`, `ValidationReport`, `ImageTransform`.
- `sampler.py`: `ModalityGroupedRepeatSampler`, `modality_labels`.
- `synthetic.py`: `write_synthetic_dataset` (also `python -m sophiavl_trl.data.synthetic`).

Imports are lazy: `import sophiavl_trl.data` loads nothing heavy (torch, datasets) until a name is used.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any


_EXPORTS: dict[str, str] = {
    "SYSTEM_PROMPT": "sophiavl_trl.data.prompts",
    "QUESTION_TEMPLATE": "sophiavl_trl.data.prompts",
    "TYPE_TEMPLATE": "sophiavl_trl.data.prompts",
    "build_question": "sophiavl_trl.data.prompts",
    "build_prompt": "sophiavl_trl.data.prompts",
    "DatasetSpec": "sophiavl_trl.data.registry",
    "DatasetValidationError": "sophiavl_trl.data.registry",
    "ImageTransform": "sophiavl_trl.data.registry",
    "ValidationReport": "sophiavl_trl.data.registry",
    "load_registry": "sophiavl_trl.data.registry",
    "load_sophiavl_dataset": "sophiavl_trl.data.registry",
    "prepare_dataset": "sophiavl_trl.data.registry",
    "read_table": "sophiavl_trl.data.registry",
    "ModalityGroupedRepeatSampler": "sophiavl_trl.data.sampler",
    "modality_labels": "sophiavl_trl.data.sampler",
    "write_synthetic_dataset": "sophiavl_trl.data.synthetic",
}

__all__ = [
    "DatasetSpec",
    "DatasetValidationError",
    "ImageTransform",
    "ModalityGroupedRepeatSampler",
    "QUESTION_TEMPLATE",
    "SYSTEM_PROMPT",
    "TYPE_TEMPLATE",
    "ValidationReport",
    "build_prompt",
    "build_question",
    "load_registry",
    "load_sophiavl_dataset",
    "modality_labels",
    "prepare_dataset",
    "read_table",
    "write_synthetic_dataset",
]

if TYPE_CHECKING:
    from sophiavl_trl.data.prompts import QUESTION_TEMPLATE, SYSTEM_PROMPT, TYPE_TEMPLATE, build_prompt, build_question
    from sophiavl_trl.data.registry import (
        DatasetSpec,
        DatasetValidationError,
        ImageTransform,
        ValidationReport,
        load_registry,
        load_sophiavl_dataset,
        prepare_dataset,
        read_table,
    )
    from sophiavl_trl.data.sampler import ModalityGroupedRepeatSampler, modality_labels
    from sophiavl_trl.data.synthetic import write_synthetic_dataset


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sophiavl_trl.data' has no attribute {name!r}")
