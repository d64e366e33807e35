"""The package's shape: no import cycle, sizes a reader can hold, `status` loads no daemon."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "awscli_uploader"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for dep in sorted(graph.get(name, ())):
            found = visit(dep, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name, [])
        if found:
            return found
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle() -> None:
    modules = {p.stem: p for p in PACKAGE.glob("*.py")}
    graph = {name: _imports(path) & set(modules) for name, path in modules.items()}
    assert _cycle(graph) is None


def test_modules_classes_and_functions_are_sizes_a_reader_can_hold() -> None:
    too_big = []
    for path in sorted(PACKAGE.glob("*.py")):
        source = path.read_text()
        if len(source.splitlines()) > 300:
            too_big.append(f"{path.name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            size = (node.end_lineno or 0) - node.lineno + 1
            if isinstance(node, ast.ClassDef) and size > 150:
                too_big.append(f"{path.name}: class {node.name} {size} lines")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > 60:
                too_big.append(f"{path.name}: {node.name}() {size} lines")
    assert too_big == []


def test_status_loads_neither_the_daemon_nor_the_aws_cli_seam() -> None:
    code = (
        "import sys, awscli_uploader.cli, awscli_uploader.status; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('awscli_uploader', 'sh')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = set(out.stdout.split())
    assert "awscli_uploader.status" in loaded
    for heavy in (
        "awscli_uploader.daemon",
        "awscli_uploader.uploader",
        "awscli_uploader.awscli",
        "sh",
    ):
        assert heavy not in loaded
