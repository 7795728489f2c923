"""leaf-plugin: LEAF (hierarchical decoupling and fusing) for USB / semilearn.

``import leaf_plugin`` registers, in semilearn's own registries:
the algorithms ``leaf_fixmatch``, ``leaf_flexmatch``, ``leaf_freematch`` and
``leaf``; the net ``leaf_cnn4``; and the plug-in's datasets (``digits``, the
FER datasets).  ``leaf_plugin.wrap(Host)`` makes the LEAF version of any USB
algorithm class.
"""
import warnings as _warnings

with _warnings.catch_warnings():  # semilearn imports timm.models.layers, deprecated in timm 1.x
    _warnings.simplefilter("ignore", FutureWarning)
    import semilearn  # noqa: F401

from . import nets  # noqa: F401  (registers the plug-in's nets)
from . import data  # noqa: F401  (registers the plug-in's datasets)
from .algorithms import LEAF_ALGORITHMS, LeafWrapError, algorithm_class, wrap
from .errors import TrainingError, UserError
from .layers import ExpertGating, LeafConfig, LeafNet
from .runtime import DeviceRuntime, with_runtime

__version__ = "0.1.0"


def train(argv=()) -> dict:
    """Run ``semilearn train ARGV`` in this process; returns the run's results
    (final EMA top-1, balanced accuracy, wall time, paths).  Raises UserError on bad input."""
    from .arguments import parse_train_args
    from .cli.train import run_train

    return run_train(parse_train_args(list(map(str, argv))))

__all__ = ["train", "wrap", "LeafWrapError", "LEAF_ALGORITHMS", "algorithm_class", "ExpertGating", "LeafConfig",
           "LeafNet", "DeviceRuntime", "with_runtime", "UserError", "TrainingError", "__version__"]
