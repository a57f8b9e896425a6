"""Model card files (the schema): which weights, at what size, and what their classes mean for streetwatch.

A card keeps what a model *is* (weights, image size, class map, thresholds) apart from where a camera
looks (camera files), so swapping in a better model is one file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from detector.config.base import Strict, read_mapping, validate_file
from detector.errors import ConfigError
from detector.kinds import CATEGORIES, Kind, default_category


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


class MoreHead(Strict):
    """A further trained head on the same frozen base, for classes of its own (e.g. `vending`, learnt after
    `garbage`): a new class is added without retraining, or disturbing, the head the card already trusts."""

    head: str = Field(description="The head file (from scripts/train.py --head-only on the same base weights).")
    classes: list[str] = Field(min_length=1, description="The classes taken from this head.")


class SecondLook(Strict):
    """A second look at each box of some classes: a small classifier on the box's crop (with some context)
    says whether it is a violation at all, so a plain bin that the detector took for dumping under one
    camera is not reported every day. Trained by scripts/train_second_look.py on the card's own candidates."""

    head: str = Field(description="The classifier file (beside the card, found like a head).")
    classes: list[str] = Field(min_length=1, description="The card classes whose boxes are looked at again.")
    threshold: float = Field(0.5, gt=0, lt=1, description="Keep a box when the classifier gives it at least this "
                             "probability of being a violation.")


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
    more_heads: list[MoreHead] = Field(
        default_factory=list, description="Further trained heads on the same base, each giving its own classes "
        "(all heads and the base's own run on one backbone pass).")
    imgsz: int | tuple[int, int] = Field(640, description="Inference size, a side or (height, width).")
    classes: dict[str, ClassSpec] = Field(description="Model class name -> meaning; other classes are dropped.")
    vending: VendingRule | None = Field(
        None, description="Composite vending rule: for models without a stall class, or beside one (the union of "
        "both; a composite stall that a learnt box covers is dropped) where that measured better.")
    second_look: SecondLook | None = Field(
        None, description="A crop classifier that checks the boxes of some classes once more (see SecondLook).")
    metrics: dict[str, object] = Field(default_factory=dict, description="Validation metrics, for the record.")

    @model_validator(mode="after")
    def _check(self) -> ModelCard:
        if self.vending:
            needed = [*self.vending.stall_classes, *self.vending.produce_classes, self.vending.person_class]
            missing = [c for c in needed if c not in self.classes]
            if missing:
                raise ValueError(f"vending rule uses classes not listed under classes: {missing}")
        if self.head_classes and not self.head:
            raise ValueError("head_classes needs a head")
        if self.more_heads:
            if not self.head_classes:
                raise ValueError("more_heads needs a head with head_classes (the base gives the other classes)")
            taken = [c for h in self.more_heads for c in h.classes] + self.head_classes
            twice = sorted({c for c in taken if taken.count(c) > 1})
            if twice:
                raise ValueError(f"classes {twice} are taken from two heads; give each class one head")
        if not self.kinds():
            raise ValueError("no class reports a kind; give at least one class a kind")
        if self.second_look and (missing := [c for c in self.second_look.classes if c not in self.classes]):
            raise ValueError(f"second_look looks at classes not listed under classes: {missing}")
        return self

    def kinds(self) -> set[Kind]:
        kinds = {spec.kind for spec in self.classes.values() if spec.kind is not None}
        return kinds | ({Kind.VENDING} if self.vending else set())

    def category(self, class_name: str, kind: Kind) -> dict[str, str]:
        spec = self.classes.get(class_name)
        code = spec.category if spec and spec.category else default_category(kind)
        return {"code": code, "name": CATEGORIES[code].name}


def _card_data(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, object]:
    """The card's YAML, on top of the card it `extends` (an export of the same model keeps its class map)."""
    data = read_mapping(path, "model card", fix="see detector/cards/coco.yaml")
    base = data.pop("extends", None)
    if base is None:
        return data
    base_path = path.parent / str(base)
    if base_path.resolve() in seen:
        raise ConfigError(f"'extends: {base}' loops back to itself", path=path, fix="remove the cycle")
    return {**_card_data(base_path, (*seen, path.resolve())), **data}


def read_card(path: Path) -> ModelCard:
    """A card file, validated, after merging the card it extends."""
    return validate_file(ModelCard, _card_data(path), path, fix="see detector/cards/coco.yaml")
