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
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                assert lines <= 60, f"{path.relative_to(REPO)}:{node.lineno} {node.name} is {lines} lines"


def app_of(path: Path) -> str:
    """The app a module of detector/apps belongs to: its file (scan.py) or its folder (rescan/)."""
    return path.relative_to(PACKAGE / "apps").parts[0].removesuffix(".py")


def test_apps_import_no_sibling_app_but_the_step_and_watch_the_desk():
    for path in modules("apps"):
        own = app_of(path)
        allowed = {own, "step", "__init__"} | ({"serve"} if own == "watch" else set())
        siblings = {m.split(".")[2] for m in imports_of(path) if m.startswith("detector.apps.")}
        assert siblings <= allowed, f"{path.relative_to(REPO)} imports the apps {sorted(siblings - allowed)}"


def private_names_defined(tree: ast.AST) -> set[str]:
    """The `_private` names a file defines: functions, classes, module and class variables, attributes it sets."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            found.add(node.attr)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
    return {name for name in found if _private(name)}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_nobody_reads_another_modules_private_names():
    """`_name` is a module's own: another module (of detector/, testkit/ or scripts/) importing it or reading
    it off an object is reaching into an implementation it should reach through a public name."""
    wrong = []
    for path in [*PACKAGE.rglob("*.py"), *(REPO / "testkit").rglob("*.py"), *(REPO / "scripts").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = private_names_defined(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("detector", "testkit", "scripts")):
                wrong += [f"{path.relative_to(REPO)}:{node.lineno} imports {a.name}" for a in node.names
                          if _private(a.name)]
            elif (isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own
                  and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno} reads .{node.attr}")
    assert not wrong, "\n".join(wrong)
