"""The package's layering, as the architecture note states it, checked on the imports themselves."""

import ast
from pathlib import Path

from testkit import REPO

PACKAGE = REPO / "detector"


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("detector")}


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def test_the_camera_flow_imports_only_config_and_the_shared_types():
    allowed = ("detector.camera", "detector.config", "detector.detections", "detector.geometry", "detector.kinds")
    for path in modules("camera"):
        bad = [m for m in imports_of(path) if not m.startswith(allowed)]
        assert not bad, f"{path.name} imports {bad}"


def test_video_never_imports_the_model_and_only_the_cli_imports_apps():
    for path in modules("video"):
        assert not [m for m in imports_of(path) if m.startswith("detector.model")], path.name
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "apps" or "apps" in path.relative_to(PACKAGE).parts or path.name in ("cli.py",
                                                                                                     "__init__.py"):
            continue
        assert not [m for m in imports_of(path) if m.startswith("detector.apps")], path


def test_the_top_level_stays_small_and_functions_short():
    assert len([p for p in PACKAGE.glob("*.py")]) <= 8
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno  # type: ignore[operator]
                assert lines < 70, f"{path.name}:{node.name} is {lines} lines"
