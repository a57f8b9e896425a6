"""What every streetwatch file shares: strict models, YAML read with limits, one-line errors.

Every file (camera, watch, archive, model card) is a YAML mapping validated by a pydantic model that
rejects unknown keys, so a typo (`min_dwel_s`) is an error instead of a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from detector.errors import ConfigError


class Strict(BaseModel):
    """Frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def format_validation_error(error: ValidationError) -> str:
    """All problems of a file on one line: `zones.1.polygon: ...; rules.cars: ...`."""
    parts = []
    for e in error.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "enum" and "expected" in e.get("ctx", {}):
            msg = f"unknown value {e['input']!r}, expected {e['ctx']['expected']}"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def read_yaml(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ConfigError(f"{what} not found", path=path, fix="check the path")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"not valid YAML{line}", path=path, fix="fix the YAML syntax") from None


M = TypeVar("M", bound=BaseModel)


def read_mapping(path: Path, what: str, *, fix: str) -> dict[str, Any]:
    """A YAML file whose top level must be a mapping (every streetwatch file is)."""
    data = read_yaml(path, what)
    if not isinstance(data, dict):
        raise ConfigError(f"the {what} must be a YAML mapping", path=path, fix=fix)
    return data


def validate_file(model: type[M], data: dict[str, Any], path: Path, *, fix: str) -> M:
    """Validate a file's data; every problem goes into one ConfigError naming the file."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e), path=path, fix=fix) from None
