"""leaf-plugin: LEAF (hierarchical decoupling and fusing) for USB / semilearn.

The plug-in registers, in semilearn's own registries: the algorithms ``leaf_fixmatch``,
``leaf_flexmatch``, ``leaf_freematch`` and ``leaf``; the nets ``leaf_cnn4`` and
``resnet18``; and its datasets (``digits``, the FER datasets).  It does so when semilearn is
imported, or at once if it already is: ``import leaf_plugin`` itself stays light, so the
``semilearn`` command answers ``--help`` or serves an exported model without importing torch.
``leaf_plugin.wrap(Host)`` makes the LEAF version of any USB algorithm class.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

# public name -> the module that defines it, imported on first use
_PUBLIC = {"train": "training", "wrap": "algorithms", "LeafWrapError": "algorithms", "LEAF_ALGORITHMS": "algorithms",
           "algorithm_class": "algorithms", "ExpertGating": "layers", "LeafConfig": "layers", "LeafLoss": "layers",
           "LeafNet": "layers", "DeviceRuntime": "runtime", "with_runtime": "runtime", "UserError": "errors",
           "TrainingError": "errors"}
__all__ = [*_PUBLIC, "register", "__version__"]


def register() -> None:
    """Put the plug-in's algorithms, nets and datasets into semilearn's registries (idempotent:
    each module registers what it defines when it is first imported)."""
    from . import algorithms, data, nets  # noqa: F401


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'leaf_plugin' has no attribute '{name}'")
    register()
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)


class _RegisterAfterSemilearn(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``semilearn`` is first imported, it lets the real loader run,
    then calls :func:`register`, so that semilearn's registries hold the plug-in's names as
    soon as semilearn exists."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "semilearn":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            with warnings.catch_warnings():  # semilearn imports timm.models.layers, deprecated in timm 1.x
                warnings.simplefilter("ignore", FutureWarning)
                exec_module(module)
            register()

        spec.loader.exec_module = exec_then_register
        return spec


if "semilearn" in sys.modules:
    register()
elif not any(isinstance(finder, _RegisterAfterSemilearn) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterSemilearn())
