"""Dataset registry of the plug-in.

semilearn 0.3.2 has no dataset registry (``get_dataset`` is an if/else over its
own names), so the plug-in keeps one here and the runtime consults it before
falling back to semilearn's ``get_dataset``.  A builder takes the parsed
``args`` and the algorithm name (semilearn's ``BasicDataset`` picks the views it
returns from it) and returns semilearn's ``dataset_dict``:
``{'train_lb', 'train_ulb', 'eval', 'test'}``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

from ..errors import UserError

Builder = Callable[..., dict]


@dataclass(frozen=True)
class DatasetSpec:
    """What the command needs to know about a dataset before building it."""

    name: str
    class_names: Sequence[str]  # empty: the classes are found on disk (count_classes)
    build: Builder
    img_size: int = 32
    needs_data_dir: bool = True
    description: str = ""
    layouts: str = ""  # the expected on-disk layout, quoted in error messages
    default_num_labels: int = 0  # 0: the number of classes x 4
    count_classes: Optional[Callable[..., int]] = None  # for num_classes == 0: classes found on disk
    eval_transform: Optional[Callable] = None  # args -> test-time transform (PIL RGB -> tensor)

    @property
    def num_classes(self) -> int:
        """The fixed number of classes, ``len(class_names)``; 0 when they are found on disk."""
        return len(self.class_names)

    def classes_for(self, args) -> int:
        """The number of classes a run of this dataset has (before building it)."""
        return self.num_classes if self.num_classes else int(self.count_classes(args))

    def labels_for(self, args) -> int:
        """The default ``--num_labels``: the dataset's own, or 4 per class."""
        return self.default_num_labels or 4 * self.classes_for(args)


DATASETS: Dict[str, DatasetSpec] = {}


def register_dataset(name: str, class_names: Sequence[str], *,
                     img_size: int = 32, needs_data_dir: bool = True,
                     description: str = "", layouts: str = "",
                     default_num_labels: int = 0,
                     count_classes: Optional[Callable[..., int]] = None,
                     eval_transform: Optional[Callable] = None) -> Callable[[Builder], Builder]:
    """Decorator: register ``build(args, alg) -> dataset_dict`` under ``name``.

    ``class_names`` is the one statement of the classes (their number is its length);
    a dataset whose classes are found on disk passes ``()`` and ``count_classes``."""

    def add(build: Builder) -> Builder:
        DATASETS[name] = DatasetSpec(name, tuple(class_names), build, img_size,
                                     needs_data_dir, description, layouts, default_num_labels,
                                     count_classes, eval_transform)
        return build

    return add


def semilearn_dataset_names() -> list:
    """Names semilearn's own ``get_dataset`` understands (CV, NLP and audio)."""
    return ["cifar10", "cifar100", "svhn", "stl10", "eurosat", "tissuemnist", "semi_aves",
            "semi_aves_out", "imagenet", "imagenet127", "esc50", "fsdnoisy", "gtzan",
            "superbks", "superbsi", "urbansound8k", "aclImdb", "ag_news", "amazon_review",
            "dbpedia", "yahoo_answers", "yelp_review"]


def all_dataset_names() -> list:
    return sorted(DATASETS) + semilearn_dataset_names()


def get_dataset_spec(name: str) -> Optional[DatasetSpec]:
    """The plug-in's spec for ``name``; None for semilearn's own datasets; UserError otherwise."""
    if name in DATASETS:
        return DATASETS[name]
    if name in semilearn_dataset_names():
        return None
    raise UserError(f"unknown dataset '{name}'; expected one of: {', '.join(all_dataset_names())}")
