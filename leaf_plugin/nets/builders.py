"""Which semilearn net builder a run uses, and the names the command accepts."""
from __future__ import annotations

import sys
from argparse import Namespace

from ..errors import UserError
from .contract import NETS


def base_builder(args: Namespace):
    """The builder for ``args.net`` as registered: a plug-in net, ``timm/NAME``,
    semilearn's own, or a torchvision model by name (``--net_from_name``)."""
    import semilearn.nets as nets
    from semilearn.core.utils import get_net_builder

    if args.net_from_name:
        import torchvision.models as tvm
        if not callable(getattr(tvm, args.net, None)):
            raise UserError(f"unknown torchvision net '{args.net}'")
        return get_net_builder(args.net, True)
    if args.net.startswith("timm/"):
        from .timm_backbone import timm_builder
        return timm_builder(args.net[len("timm/"):], args)
    if args.net in NETS:
        return NETS[args.net]
    if not callable(getattr(nets, args.net, None)):
        raise UserError(f"unknown net '{args.net}'; expected one of: {', '.join(net_names())}")
    return get_net_builder(args.net, False)


def is_plugin_net(args: Namespace) -> bool:
    return not args.net_from_name and (args.net in NETS or args.net.startswith("timm/"))


def net_builder_for(args: Namespace):
    """semilearn's ``get_net_builder`` with a clear error for unknown names.

    For the plug-in's nets (``leaf_cnn4``, ``resnet18``, ``timm/NAME``) the
    returned builder loads ``--pretrain_path`` itself, once, when it is called with
    a ``pretrained_path`` (semilearn's ``set_model`` passes ``args.pretrain_path``;
    the EMA copy and ``semilearn predict`` pass none): the backbone's weights are
    loaded, the classifier head stays initialised for ``num_classes``, and a
    mismatch is a UserError unless ``--pretrain_strict false``.  semilearn's own
    nets keep their own loading.
    """
    builder = base_builder(args)
    if not is_plugin_net(args):
        return builder
    strict = bool(args.pretrain_strict)

    def build(num_classes, pretrained=False, pretrained_path=None, **kwargs):
        model = builder(num_classes=num_classes, **kwargs)
        if pretrained_path:
            from .pretrained import load_pretrained_backbone
            missing, unexpected = load_pretrained_backbone(model, pretrained_path, strict)
            if missing or unexpected:
                print(f"--pretrain_path '{pretrained_path}': loaded what matches net {args.net} "
                      f"({len(missing)} missing and {len(unexpected)} unexpected or mis-shaped keys left out)",
                      file=sys.stderr)
        return model

    build.__name__ = getattr(builder, "__name__", args.net)
    return build


def net_names() -> list:
    import semilearn.nets as nets

    return sorted(n for n in dir(nets) if not n.startswith("_") and n.islower() and callable(getattr(nets, n))
                  and n not in ("utils",)) + ["timm/<name>"]
