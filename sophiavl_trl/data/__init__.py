# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
# ruff: noqa: F401 - the TYPE_CHECKING imports re-export the lazy names
"""Training data: SophiaVL-R1's prompts (`prompts.py`), its dataset registry format and validation, giving TRL-ready
`datasets.Dataset`s (`registry.py`) whose images are checked first and loaded lazily (`images.py`), a modality-grouped
sampler (`sampler.py`). (The synthetic data set of the tests: `examples/quickstart/synthetic.py`.)

Imports are lazy: `import sophiavl_trl.data` loads nothing heavy (torch, datasets) until a name is used.
"""

from typing import TYPE_CHECKING

from sophiavl_trl import _lazy_exports


__getattr__, __all__ = _lazy_exports(
    globals(),
    {
        "sophiavl_trl.data.prompts": "SYSTEM_PROMPT QUESTION_TEMPLATE TYPE_TEMPLATE build_question build_prompt",
        "sophiavl_trl.data.registry": "DatasetSpec DatasetValidationError ValidationReport load_registry "
        "load_sophiavl_dataset prepare_dataset read_table",
        "sophiavl_trl.data.images": "ImageTransform",
        "sophiavl_trl.data.sampler": "ModalityGroupedRepeatSampler modality_labels",
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
