# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""A drop-in replacement for TRL's `RepeatSampler` that never mixes image and text-only prompts in one batch.

TRL 1.16 fails when one process's batch holds both image and text-only samples (its image preprocessing expects
images for every sample or for none). SophiaVL-R1's data mixes both. In `GRPOTrainer`, one chunk of the sampler
(`batch_size` unique prompts, each repeated `mini_repeat_count` times) is exactly one global generation batch, split
over all processes and all `steps_per_generation` steps; a chunk of one modality therefore makes every process's
batch homogeneous.
"""

import logging
from collections import Counter
from collections.abc import Iterator, Sequence, Sized
from typing import Any

import torch
from torch.utils.data import Sampler


logger = logging.getLogger(__name__)


class ModalityGroupedRepeatSampler(Sampler[int]):
    r"""
    Sampler that repeats indices like TRL's `RepeatSampler`, with every chunk of `batch_size` unique prompts drawn
    from a single modality.

    Each epoch draws one permutation of the whole data set, exactly as `RepeatSampler` does (same generator, same
    seed, same call), then walks it and fills one buffer per modality; a buffer that reaches `batch_size` indices is
    emitted as a chunk (each index repeated `mini_repeat_count` times consecutively, the chunk repeated
    `repeat_count` times) and emptied. Chunks thus come out in the order in which they fill, which interleaves the
    modalities in proportion to their sizes. With a single modality the output is identical to `RepeatSampler`'s.

    What is left in each buffer at the end of an epoch (fewer than `batch_size` rows of that modality) is dropped
    for that epoch, as `RepeatSampler` drops its incomplete last chunk; other rows are left over in the next epoch
    (the permutation changes). A modality with fewer than `batch_size` rows is never sampled: a warning says so.
    The order depends only on `seed` and `modalities`, so it is the same on every process.

    Args:
        data_source (`Sized`):
            Data set to sample from.
        mini_repeat_count (`int`):
            Number of times to repeat each index per chunk (GRPO's `num_generations`).
        batch_size (`int`, *optional*, defaults to `1`):
            Number of unique indices per chunk.
        repeat_count (`int`, *optional*, defaults to `1`):
            Number of times to repeat each chunk.
        shuffle (`bool`, *optional*, defaults to `True`):
            Whether to shuffle the data set.
        seed (`int`, *optional*):
            Random seed for reproducibility (only affects this sampler).
        modalities (`Sequence[str]`):
            One label per row of `data_source` (e.g. its `data_type` column, see `modality_labels`).

    Example:
    ```python
    >>> from sophiavl_trl.data import ModalityGroupedRepeatSampler
    >>> modalities = ["image", "text", "image", "text", "image", "text", "image"]
    >>> sampler = ModalityGroupedRepeatSampler(
    ...     modalities, mini_repeat_count=2, batch_size=2, shuffle=False, modalities=modalities
    ... )
    >>> list(sampler)
    [0, 0, 2, 2, 1, 1, 3, 3, 4, 4, 6, 6]
    ```
    """

    def __init__(
        self,
        data_source: Sized,
        mini_repeat_count: int,
        batch_size: int = 1,
        repeat_count: int = 1,
        shuffle: bool = True,
        seed: int | None = None,
        *,
        modalities: Sequence[Any],
    ):
        if len(modalities) != len(data_source):
            raise ValueError(
                f"modalities has {len(modalities)} labels but the data set has {len(data_source)} rows: give one "
                "label per row."
            )
        if mini_repeat_count < 1 or batch_size < 1 or repeat_count < 1:
            raise ValueError(
                f"mini_repeat_count, batch_size and repeat_count must be >= 1, got {mini_repeat_count}, {batch_size}, "
                f"{repeat_count}."
            )
        self.data_source = data_source
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.num_samples = len(data_source)
        self.shuffle = shuffle
        self.seed = seed
        self.modalities = list(modalities)
        self.modality_counts = Counter(self.modalities)

        if shuffle:
            self.generator = torch.Generator()  # a local generator, as in RepeatSampler
            if seed is not None:
                self.generator.manual_seed(seed)

        too_small = {label: count for label, count in self.modality_counts.items() if count < batch_size}
        if too_small:
            logger.warning(
                "ModalityGroupedRepeatSampler: modalities with fewer rows than one chunk (batch_size=%d unique "
                "prompts) are never sampled: %s. Add rows or lower the generation batch size.",
                batch_size,
                ", ".join(f"{label!r} ({count} rows)" for label, count in sorted(too_small.items(), key=str)),
            )
        dropped = sum(count % batch_size for count in self.modality_counts.values())
        if dropped and len(self.modality_counts) > 1:
            logger.info(
                "ModalityGroupedRepeatSampler: %d of %d rows fall outside complete single-modality chunks each epoch.",
                dropped,
                self.num_samples,
            )

    def chunks(self) -> list[list[int]]:
        r"""
        Draw one epoch's chunks (advances the generator, like `__iter__`).

        Returns:
            `list[list[int]]`: the chunks of unique indices, in order, each of one modality.
        """
        if self.shuffle:
            indexes = torch.randperm(self.num_samples, generator=self.generator).tolist()
        else:
            indexes = list(range(self.num_samples))

        buffers: dict[Any, list[int]] = {}
        chunks = []
        for index in indexes:
            buffer = buffers.setdefault(self.modalities[index], [])
            buffer.append(index)
            if len(buffer) == self.batch_size:
                chunks.append(buffer)
                buffers[self.modalities[index]] = []
        return chunks

    def __iter__(self) -> Iterator[int]:
        for chunk in self.chunks():
            for _ in range(self.repeat_count):
                for index in chunk:
                    for _ in range(self.mini_repeat_count):
                        yield index

    def __len__(self) -> int:
        complete = sum((count // self.batch_size) * self.batch_size for count in self.modality_counts.values())
        return complete * self.mini_repeat_count * self.repeat_count


def modality_labels(dataset: Any, column: str = "data_type") -> list[str] | None:
    r"""
    The per-row modality labels of a data set, for `ModalityGroupedRepeatSampler`.

    Reads the column without decoding any image (the data set's transform is bypassed).

    Args:
        dataset (`Any`):
            Usually a `datasets.Dataset`.
        column (`str`, *optional*, defaults to `"data_type"`):
            The column holding the labels.

    Returns:
        `list[str]` or `None`: the labels (missing values become `"image"`, the original's default), or `None`
        when `dataset` is not a `datasets.Dataset` with that column.

    Example:
    ```python
    >>> from datasets import Dataset
    >>> from sophiavl_trl.data import modality_labels
    >>> modality_labels(Dataset.from_dict({"data_type": ["image", "text"]}))
    ['image', 'text']
    ```
    """
    try:
        from datasets import Dataset
    except ImportError:
        return None
    if not isinstance(dataset, Dataset) or column not in dataset.column_names:
        return None
    values = dataset.with_format(None).select_columns([column]).to_dict()[column]
    return [value if value else "image" for value in values]
