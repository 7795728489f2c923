"""One runtime for every algorithm the command runs: CPU or CUDA, exact resume.

semilearn 0.3.2 assumes CUDA (``.cuda()`` in ``process_batch``/``evaluate`` and
some ``load_model``; ``torch.cuda.Event`` in ``TimerHook``;
``torch.cuda.synchronize`` in ``ParamUpdateHook``).  :func:`with_runtime` puts
:class:`DeviceRuntime` in front of any ``AlgorithmBase`` subclass; it replaces
those pieces through semilearn's own extension points (methods and named
hooks) and adds what long runs need: atomic checkpoints holding the RNG states
and the data-loader position, a resumable training loop, a non-finite-loss
guard, a progress bar and the plug-in's datasets.

Modules: ``device`` (placement), ``hooks`` (CUDA-free hooks, the debiased EMA),
``loaders`` (resumable samplers), ``evaluation`` (predictions and metrics),
``checkpointing`` (save / load / compatibility), ``core`` (the mixin).
"""
from .core import DeviceRuntime, with_runtime
from .device import resolve_device, to_device, unwrap
from .evaluation import classification_metrics, evaluate_algorithm, predict_loader
from .hooks import DebiasedEMAHook, debiased_decay, ema_start_warning, replace_hook

__all__ = ["DeviceRuntime", "with_runtime", "resolve_device", "to_device", "unwrap", "classification_metrics",
           "evaluate_algorithm", "predict_loader", "DebiasedEMAHook", "debiased_decay", "ema_start_warning",
           "replace_hook"]
