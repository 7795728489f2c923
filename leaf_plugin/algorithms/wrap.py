"""``wrap(Host)``: any USB algorithm with LEAF's three levels, written once for all hosts.

The wrapped class keeps the host's ``train_step``, pseudo-labelling and masking
hooks and extra loss terms.  It builds the model through :class:`LeafNet`, adds
a second weak view to each unlabeled item, routes the views through one
batched forward (:mod:`.views`), reads the host's mask through ``call_hook``,
and adds the ambiguous pseudo-label loss (on the samples the mask rejects), the
two-view consistency and the gates' balance term to the host's loss.
"""
from __future__ import annotations

from dataclasses import asdict
from inspect import signature
from typing import Optional

import torch
import torch.nn.functional as F
from semilearn.algorithms.utils import SSL_Argument
from semilearn.core.algorithmbase import AlgorithmBase

from ..errors import UserError
from ..history import is_eval_iteration
from ..layers import LeafConfig, LeafLoss
from ..losses import ambiguous_loss, faithful_ambiguous_loss, nt_xent, positive_mask
from ..runtime import DeviceRuntime
from .leaf_args import LEAF_ARGUMENTS, LeafWrapError, complete_algorithm_args, leaf_net, leaf_options
from .views import UnlabeledViews, ViewRouter, add_second_weak_view, mean_probs


class LeafAlgorithm:
    """Mixin that turns the host after it in the MRO into its LEAF version."""

    leaf_host: type = AlgorithmBase
    leaf_defaults: dict = {}

    def __init__(self, args, net_builder, tb_log=None, logger=None, **kwargs):
        complete_algorithm_args(args, type(self).get_argument())
        self.leaf_cfg: LeafConfig = leaf_options(LeafConfig, args)  # the network hook
        self.leaf_loss: LeafLoss = leaf_options(LeafLoss, args)  # LEAF's loss terms
        self._leaf_mask = None
        super().__init__(args, net_builder, tb_log, logger, **kwargs)
        if not self.registered_hook("MaskingHook"):
            raise LeafWrapError(f"cannot wrap {self.leaf_host.__name__}: it registers no 'MaskingHook', and LEAF "
                                f"needs the host's mask to know which samples it rejects")

    @classmethod
    def get_argument(cls):
        own = {a.name for a in LEAF_ARGUMENTS}
        host = [a for a in cls.leaf_host.get_argument() if a.name not in own]
        leaf = [SSL_Argument(a.name, a.type, cls.leaf_defaults.get(a.name.lstrip("-"), a.default), a.help)
                for a in LEAF_ARGUMENTS]
        return host + leaf

    # ---- model and data -----------------------------------------------------------------
    def set_model(self):
        return leaf_net(super().set_model(), self.num_classes, self.leaf_cfg)

    def set_ema_model(self):
        ema = leaf_net(self.net_builder(num_classes=self.num_classes), self.num_classes, self.leaf_cfg)
        ema.load_state_dict(self.model.state_dict())
        return ema

    def set_dataset(self):
        dataset_dict = super().set_dataset()
        if dataset_dict is not None and dataset_dict.get("train_ulb") is not None:
            add_second_weak_view(dataset_dict["train_ulb"])
        return dataset_dict

    def host_inputs(self) -> list:
        return [n for n in signature(self.leaf_host.train_step).parameters if n != "self"]

    def train_step_inputs(self) -> list:
        """The host's inputs, plus the views LEAF needs whether or not the host uses them."""
        host = self.host_inputs()
        return host + [n for n in ("x_ulb_w", "x_ulb_s", "x_ulb_w_2") if n not in host]

    # ---- the host's mask ----------------------------------------------------------------
    def call_hook(self, fn_name, hook_name=None, *args, **kwargs):
        result = super().call_hook(fn_name, hook_name, *args, **kwargs)
        if fn_name == "masking":
            self._leaf_mask = result
        return result

    # ---- one step -----------------------------------------------------------------------
    def train_step(self, x_ulb_w_2=None, **inputs):
        if x_ulb_w_2 is None or "x_ulb_w" not in inputs:
            raise LeafWrapError(f"{self.args.algorithm}: the unlabeled batch has no weak views "
                                f"(x_ulb_w / x_ulb_w_2); expected a dataset built for this algorithm")
        host_uses_s = "x_ulb_s" in self.host_inputs()
        parts = {"lb": inputs.get("x_lb"), "w": inputs["x_ulb_w"], "s": inputs.get("x_ulb_s")}
        parts = {k: v for k, v in parts.items() if isinstance(v, torch.Tensor)}
        if "s" not in parts:
            raise LeafWrapError(f"{self.args.algorithm}: the unlabeled batch has no strong view (x_ulb_s); "
                                f"the ambiguous loss is computed on it")
        router = ViewRouter(self.model, UnlabeledViews(parts, x_ulb_w_2, not host_uses_s),
                            view2_grad=self.leaf_loss.view2_grad, host_view=self.leaf_loss.host_view)
        host_kwargs = {k: v for k, v in inputs.items() if k in self.host_inputs()}
        self._leaf_mask = None
        model, self.model = self.model, router
        try:
            out_dict, log_dict = super().train_step(**host_kwargs)
        finally:
            self.model = model
        return self.add_leaf_terms(router.record, out_dict, log_dict)

    def leaf_selection(self, mask: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """The samples the two-view term uses (bool ``[B]``): those the host's mask rejects, or
        (``--leaf_amb_on unconfident``) those whose averaged-view confidence is below
        ``--leaf_confidence``, whatever the host decided."""
        if self.leaf_loss.amb_on == "unconfident":
            return q.max(-1).values < self.leaf_loss.confidence
        return mask < 0.5

    def leaf_weights(self, mask: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
        """Per-sample weight of the ambiguous loss: ``1 - mask`` (a soft mask stays soft), 1
        everywhere (``all``), or the unconfident samples of :meth:`leaf_selection`."""
        on = self.leaf_loss.amb_on
        if on == "rejected":
            return (1.0 - mask).clamp(0, 1)
        return torch.ones_like(mask) if on == "all" else selected.float()

    def leaf_logs_now(self) -> bool:
        """Whether this step's ``log_dict`` is read: semilearn's log, eval and last iterations
        (``LoggingHook`` / the metrics history); LEAF's statistics are computed only then."""
        log_every = getattr(self, "num_log_iter", 1)
        return (log_every > 0 and (self.it + 1) % log_every == 0) or is_eval_iteration(self)

    def leaf_step_terms(self) -> dict:
        """LEAF's loss terms of the last step as floats (``train/leaf_amb_loss`` ...), also on steps
        that log nothing: for a report on a non-finite loss."""
        return {f"train/{k}": float(v) for k, v in getattr(self, "_leaf_terms", {}).items()}

    def add_leaf_terms(self, record, out_dict: dict, log_dict: dict):
        """Host loss + LEAF's terms. On log steps (:meth:`leaf_logs_now`) every term is logged (0
        when switched off), with the mask ratio, the positive-set size and the mean gate weight of
        each expert (``train/leaf_<level>_expert<k>``); other steps add nothing to ``log_dict``
        (no ``.item()``, no host-device sync) and drop the host's ``total_loss``, which lacks LEAF's terms."""
        a = self.leaf_loss
        for need in ("w1", "w2", "s"):
            if need not in record.logits:
                raise LeafWrapError(f"cannot wrap {self.leaf_host.__name__}: its train_step never passed the "
                                    f"{'weak' if need != 's' else 'strong'} view through self.model")
        if self._leaf_mask is None:
            raise LeafWrapError(f"cannot wrap {self.leaf_host.__name__}: its train_step did not call the "
                                f"'masking' hook")
        logs_now = self.leaf_logs_now()
        w1, w2, s = record.logits["w1"], record.logits["w2"], record.logits["s"]
        with torch.no_grad():
            q = mean_probs(w1, w2)
        mask = self._leaf_mask.detach().float().reshape(-1)
        rejected = self.leaf_selection(mask, q)
        zero = out_dict["loss"].new_zeros(())
        amb, n, where = zero, None, None
        if a.category:
            if self.leaf_cfg.faithful:
                ce = F.cross_entropy(s.float(), q.argmax(-1))
                amb = faithful_ambiguous_loss(s, q, mask, ce, a.tau, a.max_pos, a.weight_lambda)
            else:
                per, n, _ = ambiguous_loss(s, q, a.tau, a.max_pos, a.weight_lambda, a.min_pos)
                if isinstance(getattr(self, "step_capture", None), dict):  # for the pseudo-label diagnostics
                    self.step_capture["positive"] = positive_mask(q, n)
                where = self.leaf_weights(mask, rejected)
                amb = (per * where).mean()
        con = zero
        if a.lambda_c > 0:
            con = nt_xent(record.z["w1"], record.z["w2"], a.temperature, select=rejected)
        balance = torch.stack(record.balance).mean() if record.balance else zero
        leaf_total = a.lambda_amb * amb + a.lambda_c * con + a.lambda_b * balance
        out_dict["loss"] = out_dict["loss"] + leaf_total
        self._leaf_terms = {"leaf_amb_loss": amb.detach(), "leaf_con_loss": con.detach(),
                            "leaf_balance_loss": balance.detach()}
        if not logs_now:
            log_dict.pop("train/total_loss", None)
            return out_dict, log_dict
        self.log_leaf_terms(log_dict, out_dict["loss"], mask, q, s, n, where, record)
        return out_dict, log_dict

    @torch.no_grad()
    def log_leaf_terms(self, log_dict, loss, mask, q, s, n, where, record) -> None:
        """Fill ``log_dict`` with LEAF's statistics: one host-device transfer for all scalars."""
        a = self.leaf_loss
        nan = mask.new_full((), float("nan"))
        pos_size = nan
        if a.category:
            if self.leaf_cfg.faithful:
                _, n, _ = ambiguous_loss(s.detach(), q, a.tau, a.max_pos, a.weight_lambda)
                pos_size = n.float().mean()
            else:
                sel = (where > 0).float()
                count = sel.sum()
                pos_size = torch.where(count > 0, (n.float() * sel).sum() / count.clamp_min(1), nan)
        t = self._leaf_terms
        names = ["leaf_amb_loss", "leaf_con_loss", "leaf_balance_loss", "leaf_pos_size", "leaf_mask_ratio",
                 "total_loss"]
        scalars = [t["leaf_amb_loss"], t["leaf_con_loss"], t["leaf_balance_loss"], pos_size, mask.mean(),
                   loss.detach()]
        levels = [(level, torch.cat(gates).float().mean(0)) for level, gates in record.gates.items()]
        flat = torch.cat([torch.stack([x.float().reshape(()) for x in scalars])] + [u for _, u in levels]).tolist()
        log_dict.update(self.process_log_dict(**dict(zip(names[:-1], flat[:5]))))
        log_dict["train/total_loss"] = flat[5]
        k0 = len(names)
        for level, usage in levels:  # per-expert mean gate weight, for TensorBoard / metrics.jsonl
            log_dict.update({f"train/leaf_{level}_expert{k}": u for k, u in enumerate(flat[k0:k0 + len(usage)])})
            k0 += len(usage)

    # ---- checkpoints --------------------------------------------------------------------
    def get_save_dict(self):
        save_dict = super().get_save_dict()
        save_dict["leaf_config"] = asdict(self.leaf_cfg)
        save_dict["leaf_args"] = {k: v for k, v in vars(self.args).items() if k.startswith("leaf_")}
        return save_dict

    def check_checkpoint(self, checkpoint: dict, load_path: str) -> None:
        """A checkpoint of other LEAF levels (or another head) is refused by name, before the
        runtime's key-by-key check."""
        saved = checkpoint.get("leaf_config")
        if saved:
            saved = LeafConfig.recorded_fields(saved)
            own = asdict(self.leaf_cfg)
            saved, own = (dict(c, rezero=c.get("expert_init") == "rezero") for c in (saved, own))
            diff = [k for k in ("semantic", "instance", "instance_on", "num_experts", "faithful", "learn_scale",
                                "rezero") if k in saved and saved[k] != own.get(k)]
            if diff:
                raise UserError(f"checkpoint '{load_path}' was written with leaf {diff[0]}={saved[diff[0]]!r}, this "
                                f"run has {own.get(diff[0])!r}; expected the same LEAF levels")
        super().check_checkpoint(checkpoint, load_path)


def check_wrappable(host: type) -> None:
    """Raise LeafWrapError when ``host`` lacks what LEAF hooks into."""
    if not (isinstance(host, type) and issubclass(host, AlgorithmBase)):
        raise LeafWrapError(f"cannot wrap {host!r}: expected a subclass of semilearn's AlgorithmBase")
    if host.train_step is AlgorithmBase.train_step:
        raise LeafWrapError(f"cannot wrap {host.__name__}: it has no train_step of its own")
    params = set(signature(host.train_step).parameters)
    if "x_ulb_w" not in params:
        raise LeafWrapError(f"cannot wrap {host.__name__}: its train_step takes no weak unlabeled view "
                            f"(x_ulb_w); LEAF averages two of them")
    if host.set_hooks is AlgorithmBase.set_hooks:
        raise LeafWrapError(f"cannot wrap {host.__name__}: it registers no masking hook (set_hooks is "
                            f"AlgorithmBase's); LEAF needs the host's mask ('MaskingHook')")


def wrap(host: type, name: Optional[str] = None, **defaults) -> type:
    """Return the LEAF version of the USB algorithm class ``host``.

    ``name`` is the class name (default ``Leaf<Host>``); ``defaults`` change the
    default of any ``--leaf_*`` flag, e.g. ``wrap(FixMatch, leaf_lambda_c=0.2)``.
    The class runs on CPU or CUDA (:class:`DeviceRuntime`).
    """
    check_wrappable(host)
    known = {a.name.lstrip("-") for a in LEAF_ARGUMENTS}
    unknown = sorted(set(defaults) - known)
    if unknown:
        raise LeafWrapError(f"wrap(): unknown LEAF option '{unknown[0]}'; expected one of {sorted(known)}")
    cls_name = name or "Leaf" + host.__name__
    base = host.__bases__[-1] if issubclass(host, DeviceRuntime) else host
    attrs = {"leaf_host": base, "leaf_defaults": dict(defaults), "__module__": __name__,
             "__doc__": f"{base.__name__} with LEAF's semantic, instance and category levels."}
    # LeafAlgorithm first: its set_dataset / load_model / get_save_dict extend the runtime's
    return type(cls_name, (LeafAlgorithm, DeviceRuntime, base), attrs)
