# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""TRL's `RepeatSampler`, never mixing image and text-only prompts in a batch: TRL 1.16 fails on a process batch
holding both, and SophiaVL-R1's data mixes them. A sampler chunk is one global generation batch in `GRPOTrainer`."""

import logging
from collections import Counter
from collections.abc import Iterator, Sequence, Sized
from typing import Any

import torch
from trl.trainer.utils import RepeatSampler


logger = logging.getLogger(__name__)


class ModalityGroupedRepeatSampler(RepeatSampler):
    r"""
    TRL's `RepeatSampler` (same arguments, plus `modalities`: one label per row, see `modality_labels`) with every
    chunk of `batch_size` unique prompts drawn from a single modality.

    Each epoch walks `RepeatSampler`'s permutation, filling one buffer per modality and emitting each full buffer as a
    chunk, so modalities interleave in proportion to their sizes. A buffer left incomplete at the end of the epoch is
    completed from the start of its modality's order and emitted last: nothing is dropped (the repeats are logged).
    With one modality the output is `RepeatSampler`'s.

    Example:
    ```python
    >>> from sophiavl_trl.data import ModalityGroupedRepeatSampler
    >>> modalities = ["image", "text", "image", "text", "image", "text", "image"]
    >>> sampler = ModalityGroupedRepeatSampler(
    ...     modalities, mini_repeat_count=2, batch_size=2, shuffle=False, modalities=modalities
    ... )
    >>> list(sampler)
    [0, 0, 2, 2, 1, 1, 3, 3, 4, 4, 6, 6, 5, 5, 1, 1]

    ```
    """

    def __init__(self, data_source: Sized, *args: Any, modalities: Sequence[Any], **kwargs: Any):
        if len(modalities) != len(data_source):
            raise ValueError(f"modalities has {len(modalities)} labels but the data set has {len(data_source)} rows.")
        super().__init__(data_source, *args, **kwargs)  # RepeatSampler's arguments
        if min(sizes := (self.mini_repeat_count, self.batch_size, self.repeat_count)) < 1:
            got = ", ".join(map(str, sizes))
            raise ValueError(f"mini_repeat_count, batch_size and repeat_count must be >= 1, got {got}.")
        self.modalities = list(modalities)
        self.modality_counts = Counter(self.modalities)
        if padded := sum(-count % self.batch_size for count in self.modality_counts.values()):
            counts = ", ".join(f"{k!r}: {v} rows" for k, v in sorted(self.modality_counts.items(), key=str))
            logger.warning(
                "ModalityGroupedRepeatSampler: %d of %d rows are drawn twice each epoch to complete the last chunk of "
                "each modality (%s; %d unique prompts a chunk); no row is dropped.",
                padded, self.num_samples, counts, self.batch_size,
            )  # fmt: skip

    def chunks(self) -> list[list[int]]:
        r"""One epoch's chunks of unique indices, each of one modality (advances the generator, as `__iter__` does)."""
        n = self.num_samples
        indexes = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        orders, chunks = {}, []  # orders: this epoch's rows of each modality, in order
        for index in indexes.tolist():
            order = orders.setdefault(self.modalities[index], [])
            order.append(index)
            if len(order) % self.batch_size == 0:
                chunks.append(order[-self.batch_size :])
        for order in orders.values():  # complete the leftovers from the start of the epoch: nothing dropped
            if left := len(order) % self.batch_size:
                chunks.append(order[-left:] + [order[i % len(order)] for i in range(self.batch_size - left)])
        return chunks

    def __iter__(self) -> Iterator[int]:
        for chunk in self.chunks():
            for _ in range(self.repeat_count):
                yield from (index for index in chunk for _ in range(self.mini_repeat_count))

    def __len__(self) -> int:
        chunks = sum(-(-count // self.batch_size) for count in self.modality_counts.values())
        return chunks * self.batch_size * self.mini_repeat_count * self.repeat_count


def group_stream_by_modality(dataset: Any, batch_size: int, column: str = "data_type") -> Any:
    r"""`ModalityGroupedRepeatSampler` for a `datasets.IterableDataset`: every run of `batch_size` rows has one
    modality (buffered per modality; leftovers carry into the next epoch). Apply it after any shuffle, before TRL's
    `repeat_iterable_dataset`."""
    buffers: dict[str, list[dict]] = {}

    def regroup(batch: dict[str, list]) -> dict[str, list]:
        ready = []
        for row in (dict(zip(batch, values)) for values in zip(*batch.values())):
            buffer = buffers.setdefault(row.get(column) or "image", [])
            buffer.append(row)
            if len(buffer) == batch_size:
                ready += buffer
                buffer.clear()
        return {key: [row[key] for row in ready] for key in batch}

    return dataset.map(regroup, batched=True, batch_size=1)


def modality_labels(dataset: Any, column: str = "data_type") -> list[str] | None:
    r"""
    The per-row modality labels of a data set (missing: `"image"`, the original's default) read without decoding any
    image, for `ModalityGroupedRepeatSampler`; `None` when `dataset` is not a `datasets.Dataset` with that column.

    Example:
    ```python
    >>> from datasets import Dataset
    >>> from sophiavl_trl.data import modality_labels
    >>> modality_labels(Dataset.from_dict({"data_type": ["image", "text"]}))
    ['image', 'text']

    ```
    """
    from datasets import Dataset

    if not isinstance(dataset, Dataset) or column not in dataset.column_names:
        return None
    return [value or "image" for value in dataset.with_format(None).select_columns([column]).to_dict()[column]]
