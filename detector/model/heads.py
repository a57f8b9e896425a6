"""Trained detection heads on frozen base weights: attach one, alone or beside the base's own head.

A head trained with `scripts/train.py --head-only` sits on features that are exactly the base's, so it
ships as a few MB next to its card. When the card lists `head_classes`, only those classes come from
the trained head and every other class from the base's own head (both run on the one backbone pass):
the base keeps the accuracy it had on what it already knew (COCO bikes, people, stall objects), and the
trained head adds what it lacked (garbage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from detector.errors import ConfigError, WeightsError, cause
from detector.model.safeload import load_checkpoint

if TYPE_CHECKING:
    from ultralytics import YOLO

    from detector.model.weights import LoadedCard


class MergedHeads(nn.Module):
    """Two detection heads on one set of features; their boxes are pooled for one NMS.

    Each anchor is reported twice, once with the base head's box and the base's scores for its classes,
    once with the trained head's box and scores for `from_head` classes; a class is zero in the other copy.
    `names` is the merged class list: a head that learnt only new classes adds the base classes the card uses.
    """

    def __init__(self, base: nn.Module, head: nn.Module, base_names: dict[int, str], head_names: dict[int, str],
                 names: dict[int, str], from_head: list[str]) -> None:
        super().__init__()
        self.base, self.head = base, head
        for attr in ("f", "i", "type", "np", "stride"):  # what ultralytics' model graph reads off its last layer
            if hasattr(base, attr):
                setattr(self, attr, getattr(base, attr))
        self.nc = len(names)
        self.end2end = False
        in_base = {name: i for i, name in base_names.items()}
        in_head = {name: i for i, name in head_names.items()}
        ordered = [names[i] for i in sorted(names)]
        self.register_buffer("base_rows", torch.tensor([in_base.get(n, 0) for n in ordered]))
        self.register_buffer("head_rows", torch.tensor([in_head.get(n, 0) for n in ordered]))
        self.register_buffer("base_mask", torch.tensor([float(n not in from_head) for n in ordered]).view(1, -1, 1))
        self.register_buffer("head_mask", torch.tensor([float(n in from_head) for n in ordered]).view(1, -1, 1))

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor, dict]:
        if self.training:
            raise RuntimeError("merged heads are for inference; train the head with scripts/train.py --head-only")
        a, b = self.base(list(x)), self.head(list(x))
        ya, yb = (a[0], b[0]) if isinstance(a, tuple) else (a, b)  # export mode returns predictions alone
        from_base = torch.cat([ya[:, :4], ya[:, 4:][:, self.base_rows] * self.base_mask], 1)
        from_head = torch.cat([yb[:, :4], yb[:, 4:][:, self.head_rows] * self.head_mask], 1)
        y = torch.cat([from_base, from_head], 2)
        return (y, {}) if isinstance(a, tuple) else y


def attach_head(model: YOLO, loaded: LoadedCard) -> None:
    """Put the card's trained head on a PyTorch model made from exactly the weights it was trained on.

    The head only means something on top of the features it was trained on, so the base weights' hash
    must be the one the head recorded; anything else is refused rather than run with meaningless outputs.
    """
    path = loaded.head_path
    fix = "restore it from the repository, or re-train it with scripts/train.py --head-only"
    try:
        saved = load_checkpoint(path)
        head, names, base_sha = saved["head"], saved["names"], saved["base_sha256"]
    except WeightsError:
        raise
    except Exception as e:  # a truncated file, a pickle of something else
        raise WeightsError(f"cannot load head: {cause(e)}", path=path, fix=fix) from e
    if base_sha != loaded.weights_sha256:
        raise WeightsError(
            f"head {path.name} was trained on base weights with sha256 {base_sha[:12]}…, "  # type: ignore[union-attr]
            f"these are {loaded.weights_sha256[:12]}…",
            path=loaded.weights_path,
            fix=f"give the base weights the head was trained on ({saved.get('base', 'see the card')})",
        )
    net = model.model
    layers = getattr(net, "model", None)
    if not isinstance(layers, nn.Sequential) or type(layers[-1]) is not type(head):
        raise WeightsError("a head fits PyTorch .pt weights of the same architecture only", path=loaded.weights_path,
                              fix="point the card's weights at the .pt the head was trained on (not an export)")
    names = {int(k): str(v) for k, v in names.items()}
    head = head.float().eval()
    from_head = loaded.card.head_classes
    if from_head:
        base_names = {int(k): str(v) for k, v in net.names.items()}
        head_names = names
        unknown = [n for n in from_head if n not in head_names.values()]
        # the head's classes first (its dataset's indices stay valid), then base classes only the card names
        ordered = [*head_names.values(), *(c for c in loaded.card.classes if c not in head_names.values())]
        lacking = [n for n in ordered if n not in from_head and n not in base_names.values()]
        if unknown or lacking:
            raise ConfigError(
                f"head_classes {unknown} are not in the head; {lacking} are in neither head",
                path=loaded.path,
                fix=f"list head_classes among {sorted(head_names.values())}; the base must know every other class",
            )
        names = dict(enumerate(ordered))
        layers[-1] = MergedHeads(layers[-1], head, base_names, head_names, names, from_head).eval()
    else:
        layers[-1] = head
    net.names = names
    net.nc = len(names)
    if isinstance(getattr(net, "yaml", None), dict):
        net.yaml["nc"] = len(names)


def grown_head(head: nn.Module, names: dict[int, str], classes: list[str]) -> nn.Module:
    """A copy of a trained head for a longer class list: classes it knew keep their learnt score rows,
    new ones start from the bias ultralytics gives a fresh head (about 5 objects of the class per 640 px image).

    Why: a new class (vending) can be learnt from a few hundred photos starting from a head that already
    knows garbage, instead of re-learning garbage from scratch with it.
    """
    import copy
    import math

    grown = copy.deepcopy(head).float()
    known = {name: i for i, name in names.items()}
    strides = [s if s > 0 else 8 * 2**i for i, s in enumerate(grown.stride.tolist() or [0.0] * len(grown.cv3))]
    for branch, stride in zip(grown.cv3, strides, strict=True):
        old = branch[-1]
        new = nn.Conv2d(old.in_channels, len(classes), 1)
        with torch.no_grad():
            new.weight.normal_(0, 0.01)
            new.bias.fill_(math.log(5 / len(classes) / (640 / stride) ** 2))
            for row, name in enumerate(classes):
                if name in known:
                    new.weight[row] = old.weight[known[name]]
                    new.bias[row] = old.bias[known[name]]
        branch[-1] = new
    grown.nc = len(classes)
    grown.no = len(classes) + grown.reg_max * 4
    return grown
