# Copyright 2026 The sophiavl-trl authors. Licensed under the Apache License, Version 2.0.
"""A drop-in replacement for TRL's `RepeatSampler` that never mixes image and text-only prompts in one batch: TRL 1.16
fails on a process batch holding both, and SophiaVL-R1's data mixes them. One sampler chunk is one global generation
batch in `GRPOTrainer`, so a chunk of one modality makes every process's batch homogeneous."""

import logging
from collections import Counter
from collections.abc import Iterator, Sequence, Sized
from typing import Any

import torch
from trl.trainer.utils import RepeatSampler


logger = logging.getLogger(__name__)


class ModalityGroupedRepeatSampler(RepeatSampler):
    r"""
    TRL's `RepeatSampler` with every chunk of `batch_size` unique prompts drawn from a single modality.

    Each epoch draws `RepeatSampler`'s permutation (same generator, seed and call) and walks it, filling one buffer per
    modality; a full buffer is emitted as a chunk (each index repeated `mini_repeat_count` times, the chunk
    `repeat_count` times), so modalities interleave in proportion to their sizes. A buffer left incomplete at the end of
    an epoch is completed with rows of its modality from the start of the epoch's order and emitted last (nothing is
    dropped; those rows are seen twice, and the count is logged). With one modality the output is `RepeatSampler`'s.

    The arguments are `RepeatSampler`'s (`mini_repeat_count`: GRPO's `num_generations`; `batch_size`: unique indices
    per chunk; `seed` only affects this sampler), and `modalities`: one label per row of `data_source` (e.g. its
    `data_type` column, see `modality_labels`).

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
        super().__init__(data_source, mini_repeat_count, batch_size, repeat_count, shuffle, seed)
        self.modalities = list(modalities)
        self.modality_counts = Counter(self.modalities)
        if padded := sum(-count % batch_size for count in self.modality_counts.values()):
            counts = ", ".join(f"{k!r}: {v} rows" for k, v in sorted(self.modality_counts.items(), key=str))
            logger.warning(
                "ModalityGroupedRepeatSampler: %d of %d rows are drawn twice each epoch to complete the last chunk of "
                "each modality (%s; %d unique prompts a chunk); no row is dropped.",
                padded, self.num_samples, counts, batch_size,
            )  # fmt: skip

    def chunks(self) -> list[list[int]]:
        r"""One epoch's chunks of unique indices, each of one modality (advances the generator, as `__iter__` does)."""
        if self.shuffle:
            indexes = torch.randperm(self.num_samples, generator=self.generator).tolist()
        else:
            indexes = list(range(self.num_samples))
        orders: dict[Any, list[int]] = {}  # this epoch's rows of each modality, in order
        chunks = []
        for index in indexes:
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
    r"""
    The streaming counterpart of [`ModalityGroupedRepeatSampler`] for a `datasets.IterableDataset`: reorders the
    stream so that every run of `batch_size` consecutive rows has one modality (the `column` value, missing =
    `"image"`). Rows wait in a buffer per modality until it holds `batch_size` of them; what is left at the end of an
    epoch is carried into the next one, so nothing is dropped while the stream cycles. Apply it after any shuffle and
    before TRL's `repeat_iterable_dataset` (`TrustGRPOTrainer` does).
    """
    buffers: dict[str, list[dict]] = {}

    def regroup(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {key: [] for key in batch}
        for row in (dict(zip(batch, values)) for values in zip(*batch.values())):
            buffer = buffers.setdefault(row.get(column) or "image", [])
            buffer.append(row)
            if len(buffer) == batch_size:
                for key in out:
                    out[key] += [full[key] for full in buffer]
                buffer.clear()
        return out

    return dataset.map(regroup, batched=True, batch_size=1)


def modality_labels(dataset: Any, column: str = "data_type") -> list[str] | None:
    r"""
    The per-row modality labels of a data set, for `ModalityGroupedRepeatSampler`.
    Reads the `column` without decoding any image (the data set's transform is bypassed). Missing values become
    `"image"` (the original's default); `None` when `dataset` is not a `datasets.Dataset` with that column.

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
    values = dataset.with_format(None).select_columns([column]).to_dict()[column]
    return [value if value else "image" for value in values]
