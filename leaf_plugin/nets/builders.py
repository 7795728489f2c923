"""Which semilearn net builder a run uses, and the names the command accepts."""
from __future__ import annotations

from argparse import Namespace

from ..errors import UserError


def net_builder_for(args: Namespace):
    """semilearn's ``get_net_builder`` with a clear error for unknown names."""
    import semilearn.nets as nets
    from semilearn.core.utils import get_net_builder

    if args.net_from_name:
        import torchvision.models as tvm
        if not callable(getattr(tvm, args.net, None)):
            raise UserError(f"unknown torchvision net '{args.net}'")
        return get_net_builder(args.net, True)
    if args.net.startswith("timm/"):
        from ..nets.timm_backbone import timm_builder
        return timm_builder(args.net[len("timm/"):], args)
    if not callable(getattr(nets, args.net, None)):
        raise UserError(f"unknown net '{args.net}'; expected one of: {', '.join(net_names())}")
    builder = get_net_builder(args.net, False)
    if args.pretrain_path and args.net == "leaf_cnn4":
        from ..nets.pretrained import load_pretrained_backbone
        path, strict = args.pretrain_path, args.pretrain_strict

        def build(num_classes, pretrained=False, pretrained_path=None, **kw):
            model = builder(num_classes=num_classes, **kw)
            if pretrained_path:
                load_pretrained_backbone(model, path, strict)
            return model
        return build
    return builder


def net_names() -> list:
    import semilearn.nets as nets

    return sorted(n for n in dir(nets) if not n.startswith("_") and n.islower() and callable(getattr(nets, n))
                  and n not in ("utils",)) + ["timm/<name>"]
