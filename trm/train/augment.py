"""Augmentation of training batches as they are drawn (on top of any stored variants)."""

from __future__ import annotations

import numpy as np
import torch

from trm.data.sampler import IGNORE_LABEL_ID
from trm.tasks.sudoku import random_transforms


def augment_sudoku(
    batch: dict[str, torch.Tensor], rng: np.random.Generator, start: int = 0, global_size: int | None = None
) -> dict[str, torch.Tensor]:
    """A random Sudoku symmetry per example (digit relabelling, band/row/stack/column
    permutations, transpose), applied to its input and label alike. Tokens are digit + 1.

    The transforms are drawn for the whole global batch and this process takes rows
    start.. of them, so the augmentation does not depend on the number of processes."""
    inputs = batch["inputs"].numpy() - 1
    labels = batch["labels"].numpy()
    ignored = labels == IGNORE_LABEL_ID
    digits = np.where(ignored, 0, labels - 1)
    new_inputs, new_labels, new_ignored = inputs.copy(), digits.copy(), ignored.copy()
    transforms = random_transforms(rng, global_size or len(inputs))[start : start + len(inputs)]
    for i, transform in enumerate(transforms):
        if (inputs[i] >= 0).all():  # padded rows (all PAD) stay as they are
            new_inputs[i] = transform.apply(inputs[i])
            new_labels[i] = transform.apply(digits[i])
            new_ignored[i] = transform.apply(ignored[i].astype(np.int64)) != 0  # digit 1 maps to non-zero
    return {
        **batch,
        "inputs": torch.from_numpy(new_inputs + 1).to(batch["inputs"].dtype),
        "labels": torch.from_numpy(np.where(new_ignored, IGNORE_LABEL_ID, new_labels + 1)).to(batch["labels"].dtype),
    }


AUGMENTATIONS = {"sudoku": augment_sudoku}
