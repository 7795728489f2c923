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


def _plugin_module_initializing() -> bool:
    """Whether a module of the plug-in is part-way through its own import (registering now would
    import it again, half-made)."""
    return any(getattr(getattr(module, "__spec__", None), "_initializing", False)
               for name, module in list(sys.modules.items()) if name.startswith("leaf_plugin."))


class _RegisterWithSemilearn(importlib.abc.MetaPathFinder):
    """Finds nothing itself.  When ``semilearn`` is first imported it lets the real loader run,
    then calls :func:`register`, so semilearn's registries hold the plug-in's names as soon as
    semilearn exists; when a plug-in module's own import brought semilearn in, it registers at
    the next import after that module is done."""

    pending = False

    def find_spec(self, fullname, path=None, target=None):
        if self.pending:
            if not _plugin_module_initializing():
                self.register_now()
            return None
        if fullname != "semilearn":
            return None
        spec = next((s for s in (f.find_spec(fullname, path, target) for f in sys.meta_path
                                 if f is not self and hasattr(f, "find_spec")) if s is not None), None)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            with warnings.catch_warnings():  # semilearn imports timm.models.layers, deprecated in timm 1.x
                warnings.simplefilter("ignore", FutureWarning)
                exec_module(module)
            if _plugin_module_initializing():
                self.pending = True
            else:
                self.register_now()

        spec.loader.exec_module = exec_then_register
        return spec

    def register_now(self) -> None:
        sys.meta_path.remove(self)
        self.pending = False
        register()


if "semilearn" in sys.modules:
    register()
elif not any(isinstance(finder, _RegisterWithSemilearn) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithSemilearn())
