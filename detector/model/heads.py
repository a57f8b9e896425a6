"""Trained detection heads on frozen base weights: attach one, alone or beside the base's own head.

A head trained with `scripts/train.py --head-only` sits on features that are exactly the base's, so it
ships as a few MB next to its card. When the card lists `head_classes`, only those classes come from
the trained head and every other class from the base's own head (both run on the one backbone pass):
the base keeps the accuracy it had on what it already knew (COCO bikes, people, stall objects), and the
trained head adds what it lacked (garbage). A card's `more_heads` add further trained heads the same way,
each for its own classes (vending), so a new class never disturbs the head already trusted.

A head file may instead hold a *branch* (`scripts/train.py --branch-from N`): a trained copy of the base's
layers from N on (the neck and a head), fed by the frozen layers before N. The base's own neck and head stay
as they are beside it, so its classes are exactly the base's, while the branch's classes get features of
their own; the backbone still runs once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from detector.errors import ConfigError, WeightsError, cause
from detector.model.safeload import load_checkpoint

if TYPE_CHECKING:
    from ultralytics import YOLO

    from detector.model.weights import LoadedCard


class Branch(nn.Module):
    """Trained copies of a network's layers from `start` to its last (a neck and its head), run on the frozen
    layers before `start`; each layer keeps ultralytics' `f` (where its input comes from) and `i` (its index)."""

    def __init__(self, layers: nn.ModuleList, start: int) -> None:
        super().__init__()
        self.layers, self.start = layers, start

    def _each(self) -> list[Any]:
        """The layers, as ultralytics made them (each with its `f` and `i`)."""
        return list(self.layers)

    @property
    def head(self) -> nn.Module:
        return self.layers[-1]

    def needs(self) -> list[int]:
        """Indices of the frozen layers whose outputs the branch reads."""
        wanted: list[int] = []
        for k, layer in enumerate(self._each()):
            sources = layer.f if isinstance(layer.f, list) else [layer.f]
            wanted += [self.start - 1 if (j == -1 and k == 0) else j for j in sources if j != -1 or k == 0]
        return sorted({j for j in wanted if j < self.start})

    def forward(self, features: dict[int, torch.Tensor]) -> Any:
        saved: dict[int, Any] = dict(features)
        x: Any = features[self.start - 1]
        for layer in self._each():
            if layer.f != -1:
                x = saved[layer.f] if isinstance(layer.f, int) else [x if j == -1 else saved[j] for j in layer.f]
            x = layer(x)
            saved[layer.i] = x
        return x


class MergedHeads(nn.Module):
    """Detection heads on one set of features; their boxes are pooled for one NMS.

    Each anchor is reported once per head, with that head's box and its scores for the classes it gives
    (`from_heads[k]` for trained head k; the base's own head every other class); a class is zero in the
    other copies. `names` is the merged class list: heads that learnt only new classes add the base classes
    the card uses. A `Branch` among the heads reads the frozen layers it needs, so `f` lists them after the
    base head's own inputs.
    """

    def __init__(self, base: Any, heads: list[nn.Module], base_names: dict[int, str],
                 head_names: list[dict[int, str]], names: dict[int, str], from_heads: list[list[str]]) -> None:
        super().__init__()
        self.base, self.heads = base, nn.ModuleList(heads)
        for attr in ("f", "i", "type", "np", "stride"):  # what ultralytics' model graph reads off its last layer
            if hasattr(base, attr):
                setattr(self, attr, getattr(base, attr))
        self.inputs = list(base.f)
        for head in heads:
            self.inputs += [j for j in (head.needs() if isinstance(head, Branch) else []) if j not in self.inputs]
        self.f = list(self.inputs)
        self.nc = len(names)
        self.end2end = False
        ordered = [names[i] for i in sorted(names)]
        taken = {c for classes in from_heads for c in classes}
        sources = [(base_names, [n for n in ordered if n not in taken]), *zip(head_names, from_heads, strict=True)]
        for k, (source_names, given) in enumerate(sources):
            index = {name: i for i, name in source_names.items()}
            self.register_buffer(f"rows{k}", torch.tensor([index.get(n, 0) for n in ordered]))
            self.register_buffer(f"mask{k}", torch.tensor([float(n in given) for n in ordered]).view(1, -1, 1))

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor, dict]:
        if self.training:
            raise RuntimeError("merged heads are for inference; train the head with scripts/train.py --head-only")
        given = len(self.base.f)
        features = dict(zip(self.inputs, x, strict=True))
        outs = [self.base(list(x[:given])),
                *(head(features) if isinstance(head, Branch) else head(list(x[:given])) for head in self.heads)]
        exporting = not isinstance(outs[0], tuple)  # export mode returns predictions alone
        parts = []
        for k, out in enumerate(outs):
            y = out if exporting else out[0]
            rows, mask = getattr(self, f"rows{k}"), getattr(self, f"mask{k}")
            parts.append(torch.cat([y[:, :4], y[:, 4:][:, rows] * mask], 1))
        y = torch.cat(parts, 2)
        return y if exporting else (y, {})


def _read_head(path: Path, loaded: LoadedCard) -> tuple[nn.Module, dict[int, str]]:
    """A trained head and its class names, refused unless it was trained on exactly these base weights."""
    fix = "restore it from the repository, or re-train it with scripts/train.py --head-only"
    try:
        saved: Any = load_checkpoint(path)
        head = Branch(saved["branch"], int(saved["start"])) if "branch" in saved else saved["head"]
        names, base_sha = saved["names"], saved["base_sha256"]
    except WeightsError:
        raise
    except Exception as e:  # a truncated file, a pickle of something else
        raise WeightsError(f"cannot load head: {cause(e)}", path=path, fix=fix) from e
    if base_sha != loaded.weights_sha256:
        raise WeightsError(
            f"head {path.name} was trained on base weights with sha256 {base_sha[:12]}…, "
            f"these are {loaded.weights_sha256[:12]}…",
            path=loaded.weights_path,
            fix=f"give the base weights the head was trained on ({saved.get('base', 'see the card')})",
        )
    return head.float().eval(), {int(k): str(v) for k, v in names.items()}


def attach_head(model: YOLO, loaded: LoadedCard) -> None:
    """Put the card's trained heads on a PyTorch model made from exactly the weights they were trained on.

    A head only means something on top of the features it was trained on, so the base weights' hash must
    be the one each head recorded; anything else is refused rather than run with meaningless outputs.
    """
    net: Any = model.model
    layers = getattr(net, "model", None)
    head, names = _read_head(loaded.head_path, loaded)  # type: ignore[arg-type]
    more = [_read_head(path, loaded) for path in loaded.more_head_paths]
    if not isinstance(layers, nn.Sequential) or any(type(layers[-1]) is not type(_detect_of(h))
                                                    for h, _ in [(head, 0), *more]):
        raise WeightsError("a head fits PyTorch .pt weights of the same architecture only", path=loaded.weights_path,
                           fix="point the card's weights at the .pt the head was trained on (not an export)")
    card = loaded.card
    if isinstance(head, Branch) and not card.head_classes:
        raise ConfigError("a branch runs beside the base's own head: list the classes it gives", path=loaded.path,
                          fix="add head_classes (the branch's classes) to the card")
    if not card.head_classes:
        layers[-1] = head
    else:
        base_names = {int(k): str(v) for k, v in net.names.items()}
        heads = [(card.head_classes, names), *((h.classes, n) for h, (_, n) in zip(card.more_heads, more, strict=True))]
        unknown = [c for given, head_names in heads for c in given if c not in head_names.values()]
        # each head's classes first (the first head's dataset indices stay valid), then base classes the card names
        ordered = list(dict.fromkeys([*names.values(), *(c for given, _ in heads[1:] for c in given),
                                      *card.classes]))
        ordered = [c for c in ordered if c in card.classes or c in names.values()]
        taken = {c for given, _ in heads for c in given}
        lacking = [n for n in ordered if n not in taken and n not in base_names.values()]
        if unknown or lacking:
            raise ConfigError(
                f"head classes {unknown} are not in their heads; {lacking} are in no head",
                path=loaded.path,
                fix="list each head's classes among the classes it was trained on; the base must know every other",
            )
        names = dict(enumerate(ordered))
        layers[-1] = MergedHeads(layers[-1], [head, *(h for h, _ in more)], base_names, [n for _, n in heads],
                                 names, [given for given, _ in heads]).eval()
    net.names = names
    net.nc = len(names)
    if isinstance(getattr(net, "yaml", None), dict):
        net.yaml["nc"] = len(names)


def _detect_of(head: nn.Module) -> nn.Module:
    return head.head if isinstance(head, Branch) else head


def grown_head(head: nn.Module, names: dict[int, str], classes: list[str]) -> nn.Module:
    """A copy of a trained head for a longer class list: classes it knew keep their learnt score rows,
    new ones start from the bias ultralytics gives a fresh head (about 5 objects of the class per 640 px image).

    Why: a new class (vending) can be learnt from a few hundred photos starting from a head that already
    knows garbage, instead of re-learning garbage from scratch with it.
    """
    import copy
    import math

    grown: Any = copy.deepcopy(head).float()
    known = {name: i for i, name in names.items()}
    strides = [s if s > 0 else 8 * 2**i for i, s in enumerate(grown.stride.tolist() or [0.0] * len(grown.cv3))]
    for branch, stride in zip(grown.cv3, strides, strict=True):
        old: Any = branch[-1]
        new: Any = nn.Conv2d(old.in_channels, len(classes), 1)
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
