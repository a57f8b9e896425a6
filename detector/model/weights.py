"""Weights: where a card's weights and head are found, what identifies them, and loading a card.

Weights are never fetched at run time unless allowed ($STREETWATCH_ALLOW_DOWNLOAD=1): an explicit path
(--weights), then $STREETWATCH_WEIGHTS_DIR, the card's folder, the bundled cards, `./models/` and
`../shared/models/` (of the working folder, then of the checkout).
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from detector.config.card import ModelCard, read_card
from detector.errors import WeightsError, WeightsNotFound

WEIGHTS_ENV = "STREETWATCH_WEIGHTS_DIR"
DOWNLOAD_ENV = "STREETWATCH_ALLOW_DOWNLOAD"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent  # a checkout's root (meaningless when installed)
CARDS_DIR = Path(__file__).resolve().parent.parent / "cards"  # the bundled cards: package data
DEFAULT_CARD = CARDS_DIR / "streetwatch-v4.yaml"


class LoadedCard(BaseModel):
    """A card together with the file it came from and the weights it resolves to."""

    model_config = ConfigDict(frozen=True)

    card: ModelCard
    path: Path
    weights_override: Path | None = None
    look_base: Path | None = None  # the .pt the second look's crops run through (default: the weights)

    @cached_property
    def weights_path(self) -> Path:
        return resolve_weights(self.card.weights, card_dir=self.path.parent, explicit=self.weights_override)

    @cached_property
    def weights_sha256(self) -> str:
        return sha256_of(self.weights_path)

    @cached_property
    def head_path(self) -> Path | None:
        return resolve_weights(self.card.head, card_dir=self.path.parent, head=True) if self.card.head else None

    @cached_property
    def more_head_paths(self) -> list[Path]:
        return [resolve_weights(h.head, card_dir=self.path.parent, head=True) for h in self.card.more_heads]

    @cached_property
    def look_path(self) -> Path | None:
        """The second look's classifier file, when the card has one."""
        look = self.card.second_look
        return resolve_weights(look.head, card_dir=self.path.parent, head=True) if look else None

    @property
    def is_export(self) -> bool:
        """Weights exported for a runtime (an OpenVINO folder, ONNX), not a PyTorch checkpoint."""
        weights = self.weights_path
        return weights.is_dir() or weights.suffix not in (".pt", ".pth")

    def lowered(self, floor: float) -> LoadedCard:
        """The card with every kind-reporting class lowered to `floor` (inputs of composites stay as they are):
        what it nearly raised, for sweeps and for mining candidates."""
        classes = {name: spec.model_copy(update={"confidence": min(spec.confidence, floor)}) if spec.kind else spec
                   for name, spec in self.card.classes.items()}
        return self.model_copy(update={"card": self.card.model_copy(update={"classes": classes})})

    @cached_property
    def model_sha256(self) -> str:
        """What identifies the model an event came from: the weights, or the weights and the head."""
        if self.head_path is None and self.look_path is None:
            return self.weights_sha256
        heads = [p for p in [self.head_path, *self.more_head_paths, self.look_path] if p is not None]
        parts = [self.weights_sha256, *(sha256_of(p) for p in heads)]
        return hashlib.sha256("+".join(parts).encode()).hexdigest()


def weights_search_dirs(card_dir: Path) -> list[Path]:
    dirs = []
    if os.environ.get(WEIGHTS_ENV):
        dirs.append(Path(os.environ[WEIGHTS_ENV]))
    dirs += [card_dir, CARDS_DIR, Path.cwd() / "models", Path.cwd().parent / "shared" / "models",
             REPO_ROOT.parent / "shared" / "models"]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def _check_inside_trusted(candidate: Path, card_dir: Path, named: str) -> None:
    """A card may name a path only inside its own folder, the bundled cards or STREETWATCH_WEIGHTS_DIR:
    a card from elsewhere must not point the loader at any file on the machine (--weights may)."""
    roots = [card_dir, CARDS_DIR] + ([Path(os.environ[WEIGHTS_ENV])] if os.environ.get(WEIGHTS_ENV) else [])
    where = candidate.resolve()
    if not any(where.is_relative_to(root.resolve()) for root in roots):
        raise WeightsError(f"the card names {named!r}, outside its folder", path=card_dir,
                           fix=f"put the file beside the card or in {WEIGHTS_ENV}, or pass it with --weights")


def resolve_weights(weights: str, *, card_dir: Path, explicit: Path | None = None, head: bool = False) -> Path:
    """Explicit path, then the card's own path, then the search dirs; a download only when allowed.

    A trained `head` is looked for in the same places, but no one publishes it: it is never downloaded.
    """
    if explicit is not None:
        if explicit.exists():
            return explicit
        raise WeightsNotFound("weights not found", path=explicit, fix="pass an existing file to --weights")
    given = Path(weights).expanduser()
    if given.is_absolute() or len(given.parts) > 1:
        candidate = given if given.is_absolute() else card_dir / given
        _check_inside_trusted(candidate, card_dir, weights)
        if candidate.exists():
            return candidate
    looked = []
    for directory in weights_search_dirs(card_dir):
        candidate = directory / given.name
        looked.append(str(directory))
        if candidate.exists():
            return candidate
    if head:
        raise WeightsNotFound(f"head {weights!r} not found; looked in {', '.join(looked)}",
                              fix=f"put the file beside the card or in {WEIGHTS_ENV} (scripts/train.py makes heads)")
    if os.environ.get(DOWNLOAD_ENV) == "1":
        return Path(weights)  # a bare name: ultralytics fetches official weights on a connected machine
    raise WeightsNotFound(
        f"weights {weights!r} not found; looked in {', '.join(looked)}",
        fix=f"put the file in one of them, set {WEIGHTS_ENV}, pass --weights, "
        f"or set {DOWNLOAD_ENV}=1 on a machine with internet",
    )


def sha256_of(path: Path) -> str:
    """Hash of a weights file, or of every file of an export folder in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not path.exists():
        return ""
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_card(path: str | Path, *, weights: str | Path | None = None) -> LoadedCard:
    path = Path(path)
    if not path.exists() and not path.suffix and (CARDS_DIR / f"{path}.yaml").exists():
        path = CARDS_DIR / f"{path}.yaml"  # `--model coco` names a bundled card, wherever the package is
    card = read_card(path)
    return LoadedCard(card=card, path=path, weights_override=Path(weights) if weights else None)
