"""Model cards: which weights, at what size, and what their classes mean for streetwatch.

A card keeps what a model *is* (weights, image size, class map, thresholds) apart from where a camera
looks (camera files), so swapping in a better model is one file.
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detector.config import read_mapping, validate_file
from detector.errors import ConfigError, WeightsNotFound
from detector.types import CATEGORIES, DEFAULT_CATEGORY, Kind

WEIGHTS_ENV = "STREETWATCH_WEIGHTS_DIR"
DOWNLOAD_ENV = "STREETWATCH_ALLOW_DOWNLOAD"
REPO_ROOT = Path(__file__).resolve().parent.parent


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassSpec(Strict):
    """What one model class means."""

    kind: Kind | None = Field(
        None, description="Violation kind this class reports; omitted: only an input to a composite rule."
    )
    confidence: float = Field(0.35, gt=0, le=1, description="Minimum confidence to keep a box of this class.")
    category: str | None = Field(
        None, description="GB/T 30428 category code overriding the kind's default (e.g. 01-02 for litter)."
    )

    @model_validator(mode="after")
    def _check_category(self) -> ClassSpec:
        if self.category is not None and self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}, expected one of {sorted(CATEGORIES)}")
        return self


class VendingRule(Strict):
    """Street vending from COCO classes: a person staying beside a stall-like object.

    COCO has no 'stall' class. A vendor shows as a stall object (umbrella, table, chair, bench) or a
    pile of produce, with a person close by. The composite box is the stall object's box, which does
    not move, so the dwell rule (min_dwell_s for vending) supplies the "lingering" part.
    """

    stall_classes: list[str] = Field(description="Classes that can stand for a stall or cart.")
    produce_classes: list[str] = Field(
        default_factory=list, description="Goods on display; min_produce of them close together form a stall."
    )
    min_produce: int = Field(3, ge=2, description="How many produce boxes close together make a stall.")
    person_class: str = Field("person", description="The class that stands for the vendor.")
    max_gap: float = Field(
        0.5,
        ge=0,
        description="Largest gap between the person box and the stall box, in person heights (0: touching).",
    )


class ModelCard(Strict):
    """A model and the meaning of its classes."""

    name: str = Field(description="Card name, recorded in every event.")
    description: str = Field("", description="What the model was trained on and how well it does.")
    weights: str = Field(
        description="A weights file or export folder: a path (relative to this card) or a bare file name "
        "looked up in STREETWATCH_WEIGHTS_DIR, models/ and ../shared/models/."
    )
    head: str | None = Field(
        None,
        description="A detection head trained on top of the frozen `weights` (a file beside this card, found "
        "like weights): the model is `weights` with its last layer replaced, so a fine-tune of a large base "
        "ships as a few MB and the base weights are never copied.",
    )
    head_classes: list[str] = Field(
        default_factory=list,
        description="With `head`: the classes taken from the trained head; every other class comes from the "
        "base weights' own head, run on the same features (empty: the trained head replaces the base's).",
    )
    imgsz: int | tuple[int, int] = Field(640, description="Inference size, a side or (height, width).")
    classes: dict[str, ClassSpec] = Field(description="Model class name -> meaning; other classes are dropped.")
    vending: VendingRule | None = Field(None, description="Composite vending rule for models without a stall class.")
    metrics: dict[str, object] = Field(default_factory=dict, description="Validation metrics, for the record.")

    @model_validator(mode="after")
    def _check(self) -> ModelCard:
        if self.vending:
            needed = [*self.vending.stall_classes, *self.vending.produce_classes, self.vending.person_class]
            missing = [c for c in needed if c not in self.classes]
            if missing:
                raise ValueError(f"vending rule uses classes not listed under classes: {missing}")
            if any(self.classes[c].kind == Kind.VENDING for c in self.classes):
                raise ValueError("a class already reports vending; drop the composite vending rule")
        if self.head_classes and not self.head:
            raise ValueError("head_classes needs a head")
        if not self.kinds():
            raise ValueError("no class reports a kind; give at least one class a kind")
        return self

    def kinds(self) -> set[Kind]:
        kinds = {spec.kind for spec in self.classes.values() if spec.kind is not None}
        return kinds | ({Kind.VENDING} if self.vending else set())

    def category(self, class_name: str, kind: Kind) -> dict[str, str]:
        spec = self.classes.get(class_name)
        code = spec.category if spec and spec.category else DEFAULT_CATEGORY[kind]
        return {"code": code, "name": CATEGORIES[code].name}


class LoadedCard(BaseModel):
    """A card together with the file it came from and the weights it resolves to."""

    model_config = ConfigDict(frozen=True)

    card: ModelCard
    path: Path
    weights_override: Path | None = None

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
    def model_sha256(self) -> str:
        """What identifies the model an event came from: the weights, or the weights and the head."""
        if self.head_path is None:
            return self.weights_sha256
        return hashlib.sha256(f"{self.weights_sha256}+{sha256_of(self.head_path)}".encode()).hexdigest()


def weights_search_dirs(card_dir: Path) -> list[Path]:
    dirs = []
    if os.environ.get(WEIGHTS_ENV):
        dirs.append(Path(os.environ[WEIGHTS_ENV]))
    dirs += [card_dir, REPO_ROOT / "models", REPO_ROOT.parent / "shared" / "models",
             Path.cwd() / "models", Path.cwd().parent / "shared" / "models"]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


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


def _card_data(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, object]:
    """The card's YAML, on top of the card it `extends` (an export of the same model keeps its class map)."""
    data = read_mapping(path, "model card", fix="see models/coco.yaml")
    base = data.pop("extends", None)
    if base is None:
        return data
    base_path = path.parent / str(base)
    if base_path.resolve() in seen:
        raise ConfigError(f"'extends: {base}' loops back to itself", path=path, fix="remove the cycle")
    return {**_card_data(base_path, (*seen, path.resolve())), **data}


def load_card(path: str | Path, *, weights: str | Path | None = None) -> LoadedCard:
    path = Path(path)
    if not path.exists() and not path.suffix and (REPO_ROOT / "models" / f"{path}.yaml").exists():
        path = REPO_ROOT / "models" / f"{path}.yaml"  # `--model coco` names a bundled card
    card = validate_file(ModelCard, _card_data(path), path, fix="see models/coco.yaml")
    return LoadedCard(card=card, path=path, weights_override=Path(weights) if weights else None)
