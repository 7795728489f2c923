"""Datasets: the plug-in's registry and the datasets it registers."""
from .registry import DATASETS, DatasetSpec, get_dataset_spec, register_dataset, all_dataset_names
from . import digits  # noqa: F401  (registers 'digits')
from . import fer  # noqa: F401  (registers rafdb, ferplus, affectnet7, affectnet8, fer2013, imagefolder)

__all__ = ["DATASETS", "DatasetSpec", "get_dataset_spec", "register_dataset", "all_dataset_names"]
