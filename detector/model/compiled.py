"""The card's network compiled for the CPU: exported once to OpenVINO, cached, then used by default.

PyTorch on a 2-core CPU is the slow half of a scan. The card's weights (with its trained head merged in:
one network) are exported to OpenVINO FP32 on first use into a cache keyed by the model's hashes and
the OpenVINO version, so a second run, and every process after it, starts from the export. FP32 keeps
the detections PyTorch gives (INT8 exports are cards of their own: `scripts/export.py`). When OpenVINO
is missing or the export fails, the caller runs PyTorch and says why in one line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from detector.errors import cause
from detector.model.weights import LoadedCard

log = logging.getLogger(__name__)

CACHE_ENV = "STREETWATCH_CACHE"
RUNTIME_ENV = "STREETWATCH_RUNTIME"
RUNTIMES = ("auto", "openvino", "pytorch")
READY = "streetwatch-export.json"


class NotCompiled(Exception):
    """Why the card runs on PyTorch instead."""


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "streetwatch"


def export_folder(loaded: LoadedCard) -> Path:
    """Where the card's export lives in the cache: named after the card, keyed by what the export depends on."""
    import openvino

    key = json.dumps({"model": loaded.model_sha256, "imgsz": loaded.card.imgsz, "from_head": loaded.card.head_classes,
                      **({"more": [h.classes for h in loaded.card.more_heads]} if loaded.card.more_heads else {}),
                      "openvino": openvino.__version__, "precision": "fp32"}, sort_keys=True)
    return cache_dir() / f"{loaded.card.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}_openvino_model"


def compiled_card(loaded: LoadedCard, *, announce: bool = True) -> LoadedCard:
    """The card running its OpenVINO export (made now if the cache lacks it); `NotCompiled` says why not.
    A card whose weights are an export already is returned as it is."""
    if loaded.is_export:
        return loaded
    try:
        import openvino  # noqa: F401
    except ImportError:
        raise NotCompiled("OpenVINO is not installed (pip install openvino)") from None
    folder = export_folder(loaded)
    if not (folder / READY).exists():
        if not _has_torch():
            raise NotCompiled("not compiled yet, and compiling needs torch")
        if announce:
            log.warning("compiling model %s for OpenVINO (first use, a few seconds; cached in %s)",
                        loaded.card.name, folder.parent)
        try:
            _export(loaded, folder)
        except Exception as e:  # an export the exporter cannot do: run the PyTorch model instead
            raise NotCompiled(f"the OpenVINO export failed ({cause(e)})") from e
    card = loaded.card.model_copy(update={"name": f"{loaded.card.name}-openvino", "weights": str(folder),
                                          "head": None, "head_classes": [], "more_heads": []})
    return LoadedCard(card=card, path=loaded.path, weights_override=folder, look_base=loaded.weights_path)


def _export(loaded: LoadedCard, folder: Path) -> None:
    """Export into a temporary folder beside the cache entry, then move it in place whole."""
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    from detector.model.detector import load_yolo

    folder.parent.mkdir(parents=True, exist_ok=True)
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)  # the exporter's own chatter is not the user's business
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory(dir=folder.parent, prefix=".export-") as tmp:
            warnings.simplefilter("ignore")  # torch's deprecation notes about the tracer it uses
            source = Path(tmp) / f"{loaded.card.name}.pt"
            load_yolo(loaded).save(source)  # the base with the trained head merged in: one network
            produced = Path(YOLO(str(source)).export(format="openvino", imgsz=loaded.card.imgsz, dynamic=True,
                                                     half=False, verbose=False))
            (produced / READY).write_text(json.dumps({"from": loaded.model_sha256, "card": loaded.card.name}))
            try:
                os.replace(produced, folder)
            except OSError:  # another process finished the same export first: use theirs
                if not (folder / READY).exists():
                    shutil.rmtree(folder, ignore_errors=True)
                    os.replace(produced, folder)
    finally:
        LOGGER.setLevel(level)


def _has_torch() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("torch", "ultralytics"))


def runtime_identity(runtime: str) -> str:
    """What detections depend on besides the model: the runtime and, for OpenVINO, its version."""
    if runtime == "pytorch":
        return "pytorch"
    try:
        import openvino
    except ImportError:
        return "pytorch"  # auto falls back to it
    return f"openvino {openvino.__version__} fp32"


def resolve_runtime(runtime: str | None) -> str:
    """`runtime`, else $STREETWATCH_RUNTIME, else auto; an unknown name is an error."""
    from detector.errors import ConfigError

    runtime = runtime or os.environ.get(RUNTIME_ENV) or "auto"
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}", fix=f"use one of {', '.join(RUNTIMES)}")
    return runtime


def for_runtime(loaded: LoadedCard, runtime: str | None = None) -> LoadedCard:
    """The card to run under `runtime` (default: $STREETWATCH_RUNTIME, else auto).

    auto: the OpenVINO export where it can be had, else PyTorch with one line saying why; openvino: the
    export or an error; pytorch: the card as it is.
    """
    from detector.errors import WeightsError

    runtime = resolve_runtime(runtime)
    if runtime == "pytorch":
        return loaded
    try:
        return compiled_card(loaded)
    except NotCompiled as e:
        if not _has_torch():  # an install of the compiled runtime only: nothing to fall back to
            raise WeightsError(f"cannot run {loaded.card.name}: it is not compiled in {cache_dir()} and this "
                               "install has no torch to compile it", path=loaded.weights_path,
                               fix="run `streetwatch models export` where torch is installed and point "
                               f"${CACHE_ENV} at that cache, or pip install torch ultralytics") from None
        if runtime == "openvino":
            raise WeightsError(f"cannot run {loaded.card.name} on OpenVINO: {e}", path=loaded.weights_path,
                               fix="pip install openvino, or pass --runtime pytorch") from None
        log.warning("%s runs on PyTorch: %s", loaded.card.name, e)
        return loaded
