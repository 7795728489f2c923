"""Datasets: the plug-in's registry and the datasets it registers."""
from .registry import DATASETS, DatasetSpec, get_dataset_spec, register_dataset, all_dataset_names
# importing a dataset module registers its datasets
from . import digits, rafdb, ferplus, affectnet, fer2013, imagefolder  # noqa: F401

__all__ = ["DATASETS", "DatasetSpec", "get_dataset_spec", "register_dataset", "all_dataset_names"]
