"""The layout is the architecture: the shared engine imports no domain, and the public
names load on first use."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "latentsteer"
# The package's front door (__init__.py) names a few MNIST conveniences lazily, as strings
# (`latentsteer.measure`, `latentsteer.datasets`), as the registry names built-in domains:
# neither imports a domain module when loaded, and the check below sees only imports.
ENGINE = sorted(SRC.glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement anywhere in ``path`` names (function-level too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_a_shared_module_imports_no_domain(path):
    bad = sorted(m for m in imported_modules(path) if m.startswith("latentsteer.domains"))
    assert not bad, f"{path.name} imports domain modules: {bad}"


def test_the_checker_sees_a_function_level_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from latentsteer.domains.mnist import judge\n")
    assert "latentsteer.domains.mnist.judge" in imported_modules(bad)


def test_submodules_and_names_load_on_first_use():
    code = (
        "import sys, latentsteer\n"
        "assert 'torch' not in sys.modules\n"
        "images, labels = latentsteer.datasets.mnist('test')\n"
        "print(images.shape, latentsteer.report.__name__, latentsteer.load_model.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=SRC.parents[1])  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "latentsteer.report load_model" in out.stdout
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        import latentsteer

        latentsteer.nothing  # noqa: B018
