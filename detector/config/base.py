"""What every streetwatch file shares: strict models, YAML read with limits, one-line errors.

Every file (camera, watch, archive, model card) is a YAML mapping validated by a pydantic model that
rejects unknown keys, so a typo (`min_dwel_s`) is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from detector.errors import ConfigError


class Strict(BaseModel):
    """Frozen, unknown keys are errors, and so is a number that is not finite (`.nan`, `.inf` in YAML): every
    number of every file is checked where it is read, not where it would first break a computation."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


MAX_FILE_BYTES = 1 << 20  # a camera file with hundreds of zones is a few tens of KB
MAX_NODES = 50_000  # values after aliases are expanded: a YAML "billion laughs" stops here
MAX_DEPTH = 64


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file read with limits on size, alias expansion and nesting, before anything else sees it."""
    if not path.is_file():
        raise ConfigError(f"{what} not found", path=path, fix="check the path")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{what} is {size} bytes, more than the {MAX_FILE_BYTES} a {what} may have", path=path,
                          fix="check that this is the right file")
    try:
        loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_size(node, path, what)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError:  # brackets nested thousands deep overflow the parser before the depth check
        raise ConfigError(f"{what} nests deeper than {MAX_DEPTH} levels", path=path, fix="flatten the file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"not valid YAML{line}", path=path, fix="fix the YAML syntax") from None


def _check_size(root: yaml.Node, path: Path, what: str) -> None:
    """Count the values the document expands to (an alias counts as often as it is used), memoised per
    node, so a file of nested aliases is refused in microseconds instead of expanded to gigabytes."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > MAX_DEPTH:
            raise ConfigError(f"{what} nests deeper than {MAX_DEPTH} levels", path=path, fix="flatten the file")
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        if total > MAX_NODES:
            raise ConfigError(f"{what} expands to more than {MAX_NODES} values (YAML aliases?)", path=path,
                              fix="write the values out instead of nesting aliases")
        sizes[id(node)] = total
        return total

    size(root, 0)


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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of it (a crash mid-write leaves no stray file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
