"""The violation kinds, the city platform's category codes for them, and each kind's default dwell."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The violation kinds streetwatch reports."""

    VENDING = "vending"
    GARBAGE = "garbage"
    BIKE = "bike"


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

DEFAULT_CATEGORY: dict[Kind, str] = {Kind.VENDING: "05-01", Kind.GARBAGE: "01-03", Kind.BIKE: "05-06"}
"""Bags, boxes and bulky waste are piled garbage; a model card may map a class to `01-02` instead."""

DEFAULT_DWELL_S: dict[Kind, float] = {Kind.BIKE: 60.0, Kind.GARBAGE: 120.0, Kind.VENDING: 180.0}
"""Seconds an object of each kind must stay before it is a violation, unless a camera file says otherwise."""
