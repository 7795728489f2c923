"""What a runtime checkpoint holds beyond semilearn's, and putting it all back."""
from __future__ import annotations

from ..checkpoint import rng_state, strip_module_prefix
from ..errors import UserError
from .device import to_device, unwrap

# keys AlgorithmBase.get_save_dict writes; anything else a host saves is host state
BASE_CHECKPOINT_KEYS = {"model", "ema_model", "optimizer", "loss_scaler", "it", "epoch", "best_it",
                        "best_eval_acc", "scheduler", "aim_run_hash"}
RUNTIME_CHECKPOINT_KEYS = {"rng_state", "loader_position", "nonfinite_skipped", "args", "runtime", "ema_buffers"}
HEAD_NAMES = ("classifier", "fc", "head")


def add_runtime_state(save_dict: dict, algorithm) -> dict:
    """semilearn's ``save_dict`` with unwrapped weights, the steps really done, the RNG
    states, the loader position and the run's flags."""
    save_dict["model"] = unwrap(algorithm.model).state_dict()
    save_dict["ema_model"] = unwrap(algorithm.ema_model).state_dict()
    # semilearn stores it + 1, right for a save inside after_train_step (before ``it += 1``)
    # but one too many for the save after the run; count the steps really done
    done = algorithm.it + 1 if algorithm._in_step else algorithm.it
    save_dict["it"] = done
    save_dict["epoch"] = min(algorithm.epoch, max(algorithm.epochs - 1, 0))  # the epoch in progress
    save_dict["rng_state"] = rng_state()
    save_dict["loader_position"] = done - algorithm.epoch * algorithm.num_iter_per_epoch
    save_dict["nonfinite_skipped"] = algorithm.nonfinite_skipped
    if getattr(algorithm, "ema_buffers", None) is not None:
        save_dict["ema_buffers"] = {k: v.detach().cpu() for k, v in algorithm.ema_buffers.shadow.items()}
    save_dict["args"] = {k: v for k, v in vars(algorithm.args).items()
                         if isinstance(v, (int, float, str, bool, type(None)))}
    return save_dict


def check_compatible(model, checkpoint: dict, path: str) -> None:
    """UserError unless the checkpoint's weights fit ``model`` key for key and shape for shape."""
    state = strip_module_prefix(checkpoint["model"])
    own = unwrap(model).state_dict()
    for key in own.keys() & state.keys():
        if own[key].shape != state[key].shape:
            if key.split(".")[-2:-1] and key.split(".")[-2] in HEAD_NAMES:
                raise UserError(f"checkpoint '{path}' was trained for {state[key].shape[0]} classes but this "
                                f"run has {own[key].shape[0]}; expected a checkpoint of the same dataset")
            raise UserError(f"checkpoint '{path}' does not fit this model ('{key}' has shape "
                            f"{tuple(state[key].shape)}, expected {tuple(own[key].shape)})")
    for keys, what in ((own.keys() - state.keys(), "missing keys"), (state.keys() - own.keys(), "keys it lacks")):
        if keys:
            raise UserError(f"checkpoint '{path}' does not fit this model ({len(keys)} {what}, first "
                            f"'{sorted(keys)[0]}'); expected one written by the same --algorithm and --net")


def restore_training_state(algorithm, checkpoint: dict) -> None:
    """What ``AlgorithmBase.load_model`` restores, without its ``.cuda()`` calls."""
    unwrap(algorithm.model).load_state_dict(strip_module_prefix(checkpoint["model"]))
    unwrap(algorithm.ema_model).load_state_dict(strip_module_prefix(checkpoint["ema_model"]))
    if "optimizer" in checkpoint:
        algorithm.optimizer.load_state_dict(checkpoint["optimizer"])
    if algorithm.scheduler is not None and "scheduler" in checkpoint:
        algorithm.scheduler.load_state_dict(checkpoint["scheduler"])
    if "loss_scaler" in checkpoint:
        algorithm.loss_scaler.load_state_dict(checkpoint["loss_scaler"])
    algorithm.it = int(checkpoint.get("it", 0))
    algorithm.start_epoch = algorithm.epoch = int(checkpoint.get("epoch", 0))
    algorithm.best_it = checkpoint.get("best_it", 0)
    algorithm.best_eval_acc = checkpoint.get("best_eval_acc", 0.0)
    if "aim_run_hash" in checkpoint:
        algorithm.aim_run_hash = checkpoint["aim_run_hash"]


def restore_host_state(algorithm, checkpoint: dict) -> None:
    """Put every extra tensor a host saved back where it lives: on a hook or on the algorithm."""
    for key, value in checkpoint.items():
        if key in BASE_CHECKPOINT_KEYS or key in RUNTIME_CHECKPOINT_KEYS or key.startswith("leaf_"):
            continue
        value = to_device(value, algorithm.device)
        owners = [h for h in algorithm.hooks_dict.values() if hasattr(h, key)] or \
            ([algorithm] if hasattr(algorithm, key) else [])
        for owner in owners:
            setattr(owner, key, value)
