"""The violation kinds: one registry entry per kind holds every fact the package needs about it.

Why one registry: a kind's facts (what a work order calls it, its colour on snapshots, its GB/T 30428
category, how long it must stay, which dataset classes mean it, where it goes in an exported dataset, and
any per-box data of its own) were spread over six modules. A new kind is one `register()` call plus the
card classes that feed it; everything else reads the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema


@dataclass(frozen=True)
class Category:
    """A category of the GB/T 30428 city-management code list, as the city platform expects it."""

    code: str
    name: str


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category("05-01", "无照经营游商"),  # street vending
        Category("01-02", "暴露垃圾"),  # exposed garbage
        Category("01-03", "积存垃圾渣土"),  # piled garbage
        Category("05-06", "非机动车乱停放"),  # misparked non-motor vehicle
    )
}


@dataclass(frozen=True)
class KindSpec:
    """Everything about one violation kind."""

    name: str
    label_zh: str  # as a work order names the violation
    label_en: str
    category: str  # its default GB/T 30428 code (a card may map a class to another)
    colour: tuple[int, int, int]  # BGR, of its boxes on snapshots
    dwell_s: float  # seconds it must stay to be a violation, unless a camera file says otherwise
    aliases: tuple[str, ...] = ()  # dataset class names that mean this kind (evaluation, review export)
    export_index: int | None = None  # its class id in `review export` datasets (None: after the others)
    extras: dict[str, int] = field(default_factory=dict)  # per-box `Detections.data` columns: name -> width


_REGISTRY: dict[str, KindSpec] = {}
_CATEGORY_OF: dict[str, str] = {}  # kind -> the category code its registration added (removed with it)


class Kind(str):
    """A registered violation kind's name; `Kind("cars")` is an error naming the kinds there are."""

    VENDING: ClassVar[Kind]
    GARBAGE: ClassVar[Kind]
    BIKE: ClassVar[Kind]

    def __new__(cls, value: object) -> Kind:
        if isinstance(value, Kind):
            return value
        name = str(value)
        if name not in _REGISTRY:
            names = [repr(k) for k in _REGISTRY]
            expected = " or ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
            raise ValueError(f"unknown value {name!r}, expected {expected}")
        return super().__new__(cls, name)

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def spec(self) -> KindSpec:
        return _REGISTRY[self.value]

    def __repr__(self) -> str:
        return f"Kind({self.value!r})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(), serialization=core_schema.plain_serializer_function_ser_schema(str))

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": "string", "enum": [k.value for k in kinds()]}


def register(spec: KindSpec, *, category: Category | None = None) -> Kind:
    """Add a kind (and the category it files under, when the list lacks it); the same spec again is a no-op."""
    known = _REGISTRY.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"kind {spec.name!r} is registered already, with other facts")
    if category is not None and category.code not in CATEGORIES:
        CATEGORIES[category.code] = category
        _CATEGORY_OF[spec.name] = category.code
    if spec.category not in CATEGORIES:
        raise ValueError(f"kind {spec.name!r}: unknown category {spec.category!r}; register it with the kind")
    _REGISTRY[spec.name] = spec
    return Kind(spec.name)


def unregister(name: str) -> None:
    """Remove a kind added at run time (tests); the built-in kinds stay."""
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in kind")
    _REGISTRY.pop(name, None)
    if name in _CATEGORY_OF:
        CATEGORIES.pop(_CATEGORY_OF.pop(name), None)


def kinds() -> list[Kind]:
    """Every kind, in the order they were registered."""
    return [Kind(name) for name in _REGISTRY]


def is_kind(value: object) -> bool:
    return isinstance(value, str) and value in _REGISTRY


def spec_of(kind: str) -> KindSpec:
    return Kind(kind).spec


def export_classes() -> list[Kind]:
    """The class list of an exported dataset: kinds with an `export_index` in its order, then the others."""
    return sorted(kinds(), key=lambda k: (k.spec.export_index is None, k.spec.export_index or 0))


def dataset_kinds() -> dict[str, Kind]:
    """Dataset class name -> the kind an image with such a box is "yes" for (classes not here: "no")."""
    return {alias: kind for kind in kinds() for alias in (kind.value, *kind.spec.aliases)}


def extra_width(name: str) -> int:
    """The width of a per-box column some kind declares (e.g. 4 for a box)."""
    for spec in _REGISTRY.values():
        if name in spec.extras:
            return spec.extras[name]
    raise KeyError(f"no kind declares the per-box column {name!r}")


def default_category(kind: str) -> str:
    return spec_of(kind).category


def default_dwell_s() -> dict[Kind, float]:
    """Each kind's default dwell, shortest first (a camera file without `rules:` lists them in this order)."""
    return {kind: kind.spec.dwell_s for kind in sorted(kinds(), key=lambda k: k.spec.dwell_s)}


Kind.VENDING = register(KindSpec(
    "vending", "占道经营", "street vending", "05-01", (200, 0, 200), 180.0, aliases=("stall",), export_index=2,
    extras={"vendor_xyxy": 4}))  # the person beside each vending box (NaN: nobody), for rules.vending.vendor_stays
Kind.GARBAGE = register(KindSpec(
    "garbage", "垃圾堆放", "piled garbage", "01-03", (0, 140, 255), 120.0,
    aliases=("overflow", "general_trashbag", "other_trashbag", "trashbag"), export_index=0))
Kind.BIKE = register(KindSpec(
    "bike", "非机动车乱停放", "misparked bike", "05-06", (255, 160, 0), 60.0, aliases=("bicycle", "motorcycle"),
    export_index=1))
BUILT_IN = frozenset(_REGISTRY)
VENDOR = "vendor_xyxy"  # the vending kind's extra: (n, 4) boxes of the person beside each box
