"""The direction of imports between the apps: review builds on generation's public
surface (models, selectors, services, errors); generation never knows about review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REVIEW_MAY_IMPORT = ("generation.models", "generation.selectors", "generation.services", "generation.errors")


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports, with `from a import b` also listed as `a.b`."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def python_files(app: str) -> list[Path]:
    return sorted((ROOT / app).rglob("*.py"))


def is_within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("path", python_files("generation"), ids=lambda p: str(p.relative_to(ROOT)))
def test_generation_never_imports_review(path):
    assert not [m for m in imported_modules(path) if is_within(m, "review")]


@pytest.mark.parametrize("path", python_files("review"), ids=lambda p: str(p.relative_to(ROOT)))
def test_review_imports_only_the_public_surface_of_generation(path):
    modules = imported_modules(path)
    # `from generation import selectors` lists both "generation" and "generation.selectors".
    reaching = [m for m in modules if is_within(m, "generation") and m != "generation"]
    assert [m for m in reaching if not any(is_within(m, allowed) for allowed in REVIEW_MAY_IMPORT)] == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from generation.rendering import note_text\nimport review.models\n")
    assert imported_modules(sample) == ["generation.rendering", "generation.rendering.note_text", "review.models"]
