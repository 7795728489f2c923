"""Datasets: the plug-in's registry and the datasets it registers."""
from .registry import DATASETS, DatasetSpec, get_dataset_spec, register_dataset, all_dataset_names
from . import digits  # noqa: F401  (registers 'digits')

__all__ = ["DATASETS", "DatasetSpec", "get_dataset_spec", "register_dataset", "all_dataset_names"]
