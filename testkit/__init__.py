"""What tests and scripts share: composed test media, an RTSP server, PostgreSQL, a worker process."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent  # the checkout


def script(name: str) -> ModuleType:
    """A script of `scripts/` as a module, for tests of its functions (scripts are not a package API)."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
