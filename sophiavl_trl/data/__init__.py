# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""Training data: prompts, the registry and row validation giving TRL-ready `datasets.Dataset`s, the prompt-length
check, images and a modality-grouped sampler. Imports are lazy: torch and datasets load when a name is used."""

from sophiavl_trl._lazy import lazy_exports


__getattr__, __all__ = lazy_exports(
    globals(),
    {
        "sophiavl_trl.data.prompts": "SYSTEM_PROMPT QUESTION_TEMPLATE TYPE_TEMPLATE build_question build_prompt "
        "normalize_problem_type template_type",
        "sophiavl_trl.data.registry": "DatasetSpec DatasetValidationError ValidationReport load_registry "
        "load_sophiavl_dataset prepare_dataset read_table",
        "sophiavl_trl.data.lengths": "check_prompt_lengths",
        "sophiavl_trl.data.images": "ImageTransform resolve_image",
        "sophiavl_trl.data.sampler": "ModalityGroupedRepeatSampler modality_labels",
    },
)
