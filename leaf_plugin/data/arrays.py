"""semilearn datasets over in-memory image arrays."""
from __future__ import annotations

import numpy as np
from semilearn.datasets.cv_datasets.datasetbase import BasicDataset


def to_rgb(img: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, 1] grey, or [H, W, 3] colour -> [H, W, 3] uint8."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img, dtype=np.uint8)


class ArrayDataset(BasicDataset):
    """``BasicDataset`` over a uint8 array of grey or colour images; grey becomes 3-channel."""

    def __sample__(self, idx):
        img, target = super().__sample__(idx)
        return to_rgb(img), target
