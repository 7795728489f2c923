"""Augmentation recipes: the released LEAF recipe and a small-image CPU variant."""
from __future__ import annotations

from torchvision import transforms as T
from semilearn.datasets.augmentation import RandAugment

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def released_recipe(img_size: int = 224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """LEAF's released recipe: weak = random crop (pad 8, p=.5) + flip,
    strong = weak + RandAugment(3 ops) + Cutout, ImageNet normalisation."""
    norm = [T.ToTensor(), T.Normalize(mean, std)]
    weak_ops = [T.Resize((img_size, img_size)),
                T.RandomApply([T.RandomCrop(img_size, padding=8)], p=0.5),
                T.RandomHorizontalFlip()]
    weak = T.Compose(weak_ops + norm)
    strong = T.Compose(weak_ops + [RandAugment(3, 5)] + norm)  # semilearn's RandAugment ends with Cutout
    evaluation = T.Compose([T.Resize((img_size, img_size))] + norm)
    return weak, strong, evaluation


def small_image_recipe(img_size: int = 48, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
    """CPU-scale recipe for small images: weak = reflect-padded random crop
    (pad img_size/12) + flip, strong = weak + RandAugment(2 ops) + Cutout."""
    pad = max(2, img_size // 12)
    norm = [T.ToTensor(), T.Normalize(mean, std)]
    weak_ops = [T.Resize((img_size, img_size)),
                T.RandomCrop(img_size, padding=pad, padding_mode="reflect"),
                T.RandomHorizontalFlip()]
    weak = T.Compose(weak_ops + norm)
    strong = T.Compose(weak_ops + [RandAugment(2, 10)] + norm)
    evaluation = T.Compose([T.Resize((img_size, img_size))] + norm)
    return weak, strong, evaluation


RECIPES = {"released": released_recipe, "small": small_image_recipe}


def recipe_transforms(args, default_recipe: str, default_size: int):
    """(weak, strong, eval) for ``args.aug_recipe`` (or the dataset's default) at ``args.img_size``."""
    name = args.aug_recipe or default_recipe
    size = args.img_size or default_size
    return RECIPES[name](size)
