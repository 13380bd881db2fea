"""The layering is a test: import-linter checks the contracts in .importlinter (docs/architecture.md explains them).

A change that makes a service import one above it, reintroduces a cycle, lets pages reach the backend or the
backend reach a web framework, or writes order tables from outside orders fails here with import-linter's report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("marketplace_app", "pages", "components", "state", "backend")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--config", str(tree / ".importlinter"), "--no-cache"], cwd=tree,
                          env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def copy_of_the_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_a_service_importing_one_above_it_is_refused(tmp_path):
    """The contracts bite: payments (below orders) importing orders breaks the layering and the cycle check."""
    tree = copy_of_the_tree(tmp_path)
    with (tree / "backend" / "payments" / "ports.py").open("a") as f:
        f.write("\nimport backend.orders.process  # noqa: E402,F401\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "backend.payments.ports -> backend.orders.process" in result.stdout


def test_a_new_backend_package_must_be_given_its_layer(tmp_path):
    """`exhaustive = true`: a package the layering does not name fails until it is placed."""
    tree = copy_of_the_tree(tmp_path)
    (tree / "backend" / "newcomer").mkdir()
    (tree / "backend" / "newcomer" / "__init__.py").write_text("")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "backend.newcomer" in result.stdout
