"""The embedded default: scikit-learn's handwritten digits, upscaled to 32x32.

1,797 real 8x8 grey images in 10 classes that install with scikit-learn (a
semilearn dependency), so ``semilearn train`` runs with no download and no
``--data_dir``.  The train/test split is fixed (stratified, 25 % test,
``random_state=0``); the labeled subset is chosen by ``--seed``.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .images import ArrayDataset
from .registry import register_dataset
from .splits import ssl_dataset_dict
from .transforms import small_image_recipe

DIGIT_NAMES = tuple(str(d) for d in range(10))


def load_digits_32(size: int = 32):
    """(train_x, train_y, test_x, test_y) as uint8 [N, size, size] arrays."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    small = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR))
                    for im in small])
    tr_x, te_x, tr_y, te_y = train_test_split(big, digits.target.astype(np.int64), test_size=0.25,
                                              stratify=digits.target, random_state=0)
    return tr_x, tr_y, te_x, te_y


def digits_recipe(args):
    """(weak, strong, eval) transforms of the digits at ``--img_size`` (32 by default)."""
    return small_image_recipe(int(args.img_size or 32), mean=(0.5,) * 3, std=(0.5,) * 3)


@register_dataset("digits", DIGIT_NAMES, img_size=32, needs_data_dir=False,
                  description="scikit-learn handwritten digits (embedded default, no download)",
                  eval_transform=lambda args: digits_recipe(args)[2])
def build_digits(args, alg):
    size = int(args.img_size or 32)
    tr_x, tr_y, te_x, te_y = load_digits_32(size)
    # no horizontal flip for digits would be kinder, but one recipe keeps the
    # default representative of the FER runs it stands in for
    transforms = digits_recipe(args)
    return ssl_dataset_dict(args, alg, tr_x, tr_y, te_x, te_y, len(DIGIT_NAMES), transforms, ArrayDataset,
                            DIGIT_NAMES)
