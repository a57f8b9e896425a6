"""Errors a user can act on.

Every error that reaches the command line is one line: what is wrong, in which file, and the fix.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


class StreetwatchError(Exception):
    """An error with a one-line message meant for the operator, not a traceback."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.message, self.fix = message, fix
        parts = [f"{self.path}: {message}" if self.path else message]
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__(" — ".join(parts))


class ConfigError(StreetwatchError):
    """A camera file or model card that cannot be used."""


class WeightsNotFound(StreetwatchError):
    """No weights file where the model card says, nor in any of the fallback places."""


class WeightsError(StreetwatchError):
    """A weights or head file that exists but cannot be used: damaged, not a model, or made for another model."""


class StoreError(StreetwatchError):
    """The events database cannot be written: the run stops, with what was committed intact."""


class SourceError(StreetwatchError):
    """A video that cannot be opened or decoded at all."""

    exit_code = 1


def cause(error: BaseException) -> str:
    """The root of an exception chain as one line: `UnpicklingError: invalid load key, '\\x00'.`."""
    while error.__cause__ is not None or (error.__context__ is not None and not error.__suppress_context__):
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def exit_code_of(work: Callable[[], object]) -> int:
    """Run a script's work: a StreetwatchError becomes its one-line message and exit code, not a traceback."""
    try:
        work()
    except StreetwatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0
