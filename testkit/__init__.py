"""What tests and scripts share: composed test media, an RTSP server, PostgreSQL, a worker process."""

import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent  # the checkout


def free_port(udp: bool = False) -> int:
    """A port nobody listens on now, on 127.0.0.1 (TCP, or UDP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script(name: str) -> ModuleType:
    """A script of `scripts/` as a module, for tests of its functions (scripts are not a package API)."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
