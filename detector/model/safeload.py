"""Loading checkpoints without running what is in them.

A `.pt` file is a pickle, and unpickling can call any function it names (`os.system`, `exec`): a
crafted weights or head file would run code the moment a card names it. Before any checkpoint is
loaded, the globals its pickle names are listed without executing it (torch reads the opcodes) and
each must be a network layer class (`torch.nn` or `ultralytics.nn`, a subclass of `nn.Module`) or one
of a few plain containers; heads are then loaded with `weights_only=True` and those classes allowed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from torch import nn

from detector.errors import WeightsError, cause

LAYER_MODULES = ("torch.nn.modules.", "ultralytics.nn.")
PLAIN = {"collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.slice",
         "ultralytics.utils.IterableSimpleNamespace", "types.SimpleNamespace"}
FIX = "use weights from a source you trust (official ultralytics weights, or made by scripts/train.py)"


def _resolve(name: str) -> object | None:
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def allowed_globals(path: Path) -> list[Any]:
    """The classes the checkpoint's pickle names, all of them safe to build; else a `WeightsError`."""
    import torch

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as e:  # not a (complete) torch checkpoint: never handed to a loader that would unpickle it
        raise WeightsError(f"cannot load weights: {cause(e)}", path=path,
                           fix="replace the file with a valid ultralytics .pt (a download may have been cut short)"
                           ) from e
    found, refused = [], []
    for name in names:
        # Only names of the allowed kinds are imported at all: importing is already running code.
        obj = _resolve(name) if name.startswith(LAYER_MODULES) or name in PLAIN else None
        layer = name.startswith(LAYER_MODULES) and isinstance(obj, type) and issubclass(obj, nn.Module)
        if obj is not None and (layer or name in PLAIN):
            found.append(obj)
        else:
            refused.append(name)
    if refused:
        raise WeightsError(f"refused: the file would call {', '.join(sorted(refused)[:5])} when loaded, "
                           "which no weights file needs", path=path, fix=FIX)
    return found


def check_checkpoint(path: Path) -> None:
    """Refuse a `.pt` whose pickle names anything but layers and plain containers (export folders pass)."""
    if path.is_file() and path.suffix == ".pt":
        allowed_globals(path)


def load_checkpoint(path: Path) -> object:
    """`torch.load` with `weights_only=True`, the checkpoint's (checked) layer classes allowed."""
    import torch

    safe = allowed_globals(path)
    with torch.serialization.safe_globals(safe):
        return torch.load(path, map_location="cpu", weights_only=True)
