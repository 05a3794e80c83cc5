# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
# ruff: noqa: F401 - the TYPE_CHECKING imports re-export the lazy names
"""Training data: SophiaVL-R1's prompts (`prompts.py`), its dataset registry format and validation, giving TRL-ready
`datasets.Dataset`s (`registry.py`) whose images are checked first and loaded lazily (`images.py`), a modality-grouped
sampler (`sampler.py`) and a synthetic data set (`synthetic.py`, also `python -m sophiavl_trl.data.synthetic`).

Imports are lazy: `import sophiavl_trl.data` loads nothing heavy (torch, datasets) until a name is used.
"""

from typing import TYPE_CHECKING

from sophiavl_trl._lazy import lazy_exports


__getattr__, __all__ = lazy_exports(
    globals(),
    {
        "sophiavl_trl.data.prompts": "SYSTEM_PROMPT QUESTION_TEMPLATE TYPE_TEMPLATE build_question build_prompt "
        "normalize_problem_type template_type",
        "sophiavl_trl.data.registry": "DatasetSpec DatasetValidationError ValidationReport check_prompt_lengths "
        "load_registry load_sophiavl_dataset prepare_dataset read_table",
        "sophiavl_trl.data.images": "ImageTransform",
        "sophiavl_trl.data.sampler": "ModalityGroupedRepeatSampler modality_labels",
        "sophiavl_trl.data.synthetic": "write_synthetic_dataset",
    },
)

if TYPE_CHECKING:  # the names, for type checkers and IDEs
    from sophiavl_trl.data.images import ImageTransform
    from sophiavl_trl.data.prompts import QUESTION_TEMPLATE, SYSTEM_PROMPT, TYPE_TEMPLATE, build_prompt, build_question
    from sophiavl_trl.data.registry import (
        DatasetSpec,
        DatasetValidationError,
        ValidationReport,
        load_registry,
        load_sophiavl_dataset,
        prepare_dataset,
        read_table,
    )
    from sophiavl_trl.data.sampler import ModalityGroupedRepeatSampler, modality_labels
    from sophiavl_trl.data.synthetic import write_synthetic_dataset
