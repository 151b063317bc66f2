"""Every dvc.yaml stage declares exactly the ``latentsteer`` modules its script imports.

For each stage (``foreach`` entries expanded by DVC's own resolver, so ``optimize@thicken``
is one test), the script named in ``cmd`` is parsed with :mod:`ast`, never imported, and its
``latentsteer`` imports are followed transitively: module-level and function-level imports,
``from latentsteer.x import y`` where ``y`` is a submodule, ``from latentsteer import name``
through the lazy ``_LAZY`` map of the package ``__init__.py``, relative imports,
``importlib.import_module("...")`` with a literal name, and every parent package that
importing a module runs. A module that imports a computed name (the domain registry's
``BUILT_IN = {"mnist": "latentsteer.domains.mnist.domain:MNIST"}``) is taken to import every
``latentsteer`` module its string literals name: which one runs is decided by data (the
domain a model folder records), so a stage that may run it depends on it. Imports under
``if TYPE_CHECKING:`` never run and are skipped. The script itself, and any helper next to
it that it imports, must be declared too; an import of a module that does not exist (left
behind by a move) fails.

Left out of the comparison:

* the shared plumbing listed on the ``# plumbing:`` line at the top of ``dvc.yaml`` (the
  one place it is defined): it changes how errors are reported, never what a stage writes;
* package ``__init__.py`` files that hold no code: only a docstring, imports and the lazy
  name map (with the ``__getattr__``/``__dir__`` that serve it). The map is resolved here,
  so the module a name maps to is the dep; declaring the ``__init__.py`` itself would re-run
  every stage whenever a public name is added. An ``__init__.py`` with any other statement
  holds code and must be declared.

What the modules left out import is still followed: that code runs too.
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "latentsteer"
PLUMBING_LINE = re.compile(r"^#\s*plumbing:(.*)$")
MODULE_LITERAL = re.compile(rf"({PACKAGE}(?:\.\w+)+)(?::\w+)?")
# Besides lazy maps, the top-level names an ``__init__.py`` may bind and still hold no code.
NO_CODE_NAMES = {"__all__", "__version__"}
NO_CODE_FUNCTIONS = {"__getattr__", "__dir__"}


# --- reading dvc.yaml --------------------------------------------------------------------


def read_plumbing(dvc_yaml: str) -> frozenset[str]:
    """The paths on the ``# plumbing:`` line of the comment block that opens ``dvc.yaml``."""
    for line in dvc_yaml.splitlines():
        if not line.startswith("#"):
            break
        if match := PLUMBING_LINE.match(line):
            return frozenset(match.group(1).split())
    raise AssertionError("dvc.yaml: no '# plumbing: <paths>' line in its opening comment")


def resolved_stages(root: Path) -> dict[str, dict]:
    """Every stage of ``root/dvc.yaml`` as DVC resolves it (``foreach`` expanded).

    DVC's resolver gets only the filesystem it reads ``params.yaml`` through: opening a
    ``dvc.repo.Repo`` would write ``.dvc/.gitignore`` entries, and a test writes nothing.
    """
    from dvc.fs import LocalFileSystem
    from dvc.parsing import DataResolver

    repo = SimpleNamespace(fs=LocalFileSystem(), config={})
    data = yaml.safe_load((root / "dvc.yaml").read_text())
    return DataResolver(repo, str(root), data).resolve()["stages"]


def stage_script(cmd: str | list[str]) -> tuple[str, str]:
    """``("file", "pipeline/x.py")`` or ``("module", "pkg.mod")``: what ``cmd`` runs."""
    for line in [cmd] if isinstance(cmd, str) else cmd:
        words = shlex.split(line)
        for i, word in enumerate(words):
            if word == "-m" and i + 1 < len(words):
                return "module", words[i + 1]
            if word.endswith(".py"):
                return "file", word
    raise AssertionError(f"no python script or -m module in cmd {cmd!r}")


def dep_paths(stage: dict) -> list[str]:
    """The ``deps`` of a stage as plain relative paths."""
    paths = []
    for dep in stage.get("deps") or []:
        paths.extend([dep] if isinstance(dep, str) else list(dep))
    return [Path(p).as_posix().removeprefix("./") for p in paths]


# --- static imports ----------------------------------------------------------------------


class ImportGraph:
    """Modules of the ``latentsteer`` package under ``root/src``, read without importing."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.src = root / "src"
        self._trees: dict[Path, ast.Module] = {}

    def tree(self, path: Path) -> ast.Module:
        if path not in self._trees:
            self._trees[path] = ast.parse(path.read_text(), filename=str(path))
        return self._trees[path]

    @functools.cache  # noqa: B019  (one graph per tree, kept for the session)
    def file_of(self, module: str) -> Path | None:
        """The file a module runs (``__init__.py`` for a package); None for a namespace
        package or a module that does not exist."""
        base = self.src.joinpath(*module.split("."))
        for path in (base / "__init__.py", base.with_suffix(".py")):
            if path.is_file():
                return path
        return None

    def exists(self, module: str) -> bool:
        return self.file_of(module) is not None or self.src.joinpath(*module.split(".")).is_dir()

    def lazy_map(self, package: str) -> dict[str, str]:
        """The lazy names of a package: every module-level ``{name: "latentsteer.mod"}``
        literal of its ``__init__.py`` (``_LAZY``, ``_SUBMODULES``) merged, name -> module."""
        path = self.file_of(package)
        if path is None or path.name != "__init__.py":
            return {}
        merged: dict[str, str] = {}
        for node in self.tree(path).body:
            if isinstance(node, ast.Assign) and _is_name_map(node.value):
                merged.update(ast.literal_eval(node.value))
        return merged

    def resolve_from(self, base: str, name: str) -> set[str]:
        """What ``from base import name`` (or ``base.name`` on the package) imports."""
        if name == "*":
            return set(self.lazy_map(base).values())
        if self.exists(f"{base}.{name}"):
            return {f"{base}.{name}"}
        lazy = self.lazy_map(base)
        return {lazy[name]} if name in lazy else set()

    def named_modules(self, path: Path) -> set[str]:
        """Modules named by string literals (``"pkg.mod"`` or ``"pkg.mod:attr"``) in a file
        that imports a computed name, as a registry of built-in domains does: each may run."""
        literals = (
            MODULE_LITERAL.fullmatch(node.value)
            for node in ast.walk(self.tree(path))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        )
        return {m.group(1) for m in literals if m and self.exists(m.group(1))}

    def holds_code(self, path: Path) -> bool:
        """Whether an ``__init__.py`` holds more than a docstring, imports and lazy maps."""
        for i, node in enumerate(self.tree(path).body):
            if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the docstring
            if isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.Assign) and (
                _is_name_map(node.value)
                or all(isinstance(t, ast.Name) and t.id in NO_CODE_NAMES for t in node.targets)
            ):
                continue
            if isinstance(node, ast.FunctionDef) and node.name in NO_CODE_FUNCTIONS:
                continue
            return True
        return False

    def imports(self, path: Path, module: str | None) -> set[str]:
        """The ``latentsteer`` modules that running ``path`` imports (``module`` is its
        dotted name, None for a script), parents included."""
        package = None
        if module is not None:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = self.tree(path)
        # A package's __getattr__ imports names computed from its lazy maps, or submodules:
        # both are resolved name by name where they are imported, not here.
        lazy_getattr = {
            id(node)
            for top in tree.body
            if path.name == "__init__.py"
            and isinstance(top, ast.FunctionDef)
            and top.name == "__getattr__"
            for node in ast.walk(top)
        }
        bound = {  # local names bound to the package by `import latentsteer[.x] [as y]`
            alias.asname or PACKAGE
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name == PACKAGE or (alias.asname is None and alias.name.startswith(PACKAGE))
        }
        found: set[str] = set()
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, package, path)
                found.add(base)
                for alias in node.names:
                    found.update(self.resolve_from(base, alias.name))
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
            ):
                found.update(self.resolve_from(PACKAGE, node.attr))  # `latentsteer.datasets`
            elif isinstance(node, ast.Call) and _is_import_module(node) and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
                elif id(node) not in lazy_getattr:
                    found.update(self.named_modules(path))
        ours = {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}
        return {p for m in ours for p in _with_parents(m)}

    def siblings(self, script: Path) -> set[Path]:
        """Files next to a script that it imports as top-level modules (``import helpers``
        runs ``pipeline/helpers.py``: Python puts the script's folder first on the path)."""
        names = set()
        for node in _runtime_nodes(self.tree(script)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found = {script.parent / f"{n}.py" for n in names - {PACKAGE}}
        return {path for path in found if path.is_file()}

    @functools.cache  # noqa: B019  (stages running one script share its closure)
    def closure(
        self, script: Path | None, start: str | None = None
    ) -> tuple[dict[str, list[str]], dict[Path, list[str]]]:
        """Every ``latentsteer`` module a script (or ``python -m start``) runs, and every
        script file it runs (itself and the helpers next to it), each with the import chain
        that reaches it."""
        chains: dict[str, list[str]] = {}
        scripts: dict[Path, list[str]] = {}
        queue: deque[str] = deque()
        if script is None:
            first = {module: [f"-m {start}", module] for module in _with_parents(start)}
        else:
            scripts[script] = [script.relative_to(self.root).as_posix()]
            todo = [script]
            while todo:
                current = todo.pop()
                for sibling in sorted(self.siblings(current)):
                    if sibling not in scripts:
                        rel = sibling.relative_to(self.root).as_posix()
                        scripts[sibling] = [*scripts[current], rel]
                        todo.append(sibling)
            first = {}
            for path, chain in scripts.items():
                for module in sorted(self.imports(path, None)):
                    first.setdefault(module, [*chain, module])
        for module, chain in sorted(first.items()):
            chains[module] = chain
            queue.append(module)
        while queue:
            module = queue.popleft()
            path = self.file_of(module)
            if path is None:
                continue
            for child in sorted(self.imports(path, module)):
                if child not in chains:
                    chains[child] = [*chains[module], child]
                    queue.append(child)
        return chains, scripts


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (they never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_name_map(value: ast.expr) -> bool:
    """Whether ``value`` is a ``{"name": "latentsteer.module", ...}`` literal (a lazy map)."""
    if not isinstance(value, ast.Dict) or not value.values:
        return False
    keys_ok = all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in value.keys)
    return keys_ok and all(
        isinstance(v, ast.Constant)
        and isinstance(v.value, str)
        and re.fullmatch(rf"{PACKAGE}(\.\w+)+", v.value) is not None
        for v in value.values
    )


def _is_import_module(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name == "import_module"


def _absolute(node: ast.ImportFrom, package: str | None, path: Path) -> str:
    if node.level == 0:
        return node.module or ""
    if package is None:
        raise AssertionError(f"{path}: relative import outside a package (line {node.lineno})")
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


# --- the check ---------------------------------------------------------------------------


def stage_problems(
    name: str, stage: dict, root: Path, plumbing: frozenset[str], graph: ImportGraph | None = None
) -> list[str]:
    """One line per problem: a missing or surplus ``src/latentsteer`` dep, an undeclared
    script, or an import of a module that does not exist. Empty when the stage is right."""
    graph = graph or ImportGraph(root)
    kind, target = stage_script(stage["cmd"])
    deps = dep_paths(stage)
    problems = []
    if kind == "file":
        script = root / target
        if not script.is_file():
            return [f"stage {name!r}: cmd runs {target}, which does not exist"]
        chains, scripts = graph.closure(script)
    else:
        chains, scripts = graph.closure(None, start=target)
    for path, chain in scripts.items():
        rel = path.relative_to(root).as_posix()
        if rel not in deps:
            problems.append(f"stage {name!r}: missing dep {rel} (runs via {' -> '.join(chain)})")
    needed: dict[str, list[str]] = {}
    for module, chain in chains.items():
        path = graph.file_of(module)
        if path is None:
            if not graph.exists(module):
                via = " -> ".join(chain)
                problems.append(f"stage {name!r}: imports {module}, which does not exist ({via})")
            continue  # a namespace package: no file runs
        rel = path.relative_to(root).as_posix()
        if rel in plumbing or (path.name == "__init__.py" and not graph.holds_code(path)):
            continue
        needed.setdefault(rel, chain)
    pkg_dir = f"src/{PACKAGE}"
    declared = {d for d in deps if d == pkg_dir or d.startswith(pkg_dir + "/")}
    for rel in sorted(needed.keys() - declared):
        chain = " -> ".join(needed[rel])
        problems.append(f"stage {name!r}: missing dep {rel} (imported via {chain})")
    for rel in sorted(declared - needed.keys()):
        if not (root / rel).exists():
            problems.append(f"stage {name!r}: dep {rel} is declared but does not exist")
            continue
        why = " (listed as plumbing)" if rel in plumbing else ""
        problems.append(f"stage {name!r}: dep {rel} is declared but never imported{why}")
    return problems


DVC_YAML = (REPO / "dvc.yaml").read_text()
PLUMBING = read_plumbing(DVC_YAML)
STAGES = resolved_stages(REPO)
GRAPH = ImportGraph(REPO)


def test_plumbing_files_exist() -> None:
    """Each plumbing entry names a real file: a stale one means the list missed a move."""
    assert PLUMBING, "dvc.yaml: the '# plumbing:' line lists no files"
    stale = sorted(p for p in PLUMBING if not (REPO / p).is_file())
    assert not stale, f"dvc.yaml '# plumbing:' names files that do not exist: {stale}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_declares_exactly_what_it_imports(name: str) -> None:
    problems = stage_problems(name, STAGES[name], REPO, PLUMBING, GRAPH)
    assert not problems, "\n".join(problems)


# --- the checker itself can fail ---------------------------------------------------------


def _tiny_tree(root: Path) -> None:
    lazy_init = (
        '"""Docs."""\nimport importlib\n'
        '_LAZY = {"load": "latentsteer.model", "other": "latentsteer.unused"}\n'
        '_SUBMODULES = {"short": "latentsteer.domains.toy.deep"}\n'
        "def __getattr__(name):\n"
        "    if name in _SUBMODULES:\n"
        "        return importlib.import_module(_SUBMODULES[name])\n"
        '    return importlib.import_module(f"latentsteer.{name}")\n'
    )
    registry = (
        "import importlib\n"
        'BUILT_IN = {"toy": "latentsteer.domains.toy.plugin:Toy"}\n'
        "def get(name):\n    return importlib.import_module(BUILT_IN[name].split(':')[0])\n"
    )
    files = {
        "src/latentsteer/__init__.py": lazy_init,
        "src/latentsteer/config.py": "import latentsteer.errors\n",
        "src/latentsteer/errors.py": "",
        "src/latentsteer/model.py": "from .io import save\nfrom latentsteer import registry\n",
        "src/latentsteer/io.py": "def save():\n    from latentsteer.domains.toy import net\n",
        "src/latentsteer/registry.py": registry,
        "src/latentsteer/domains/__init__.py": '"""Only a docstring."""\n',
        "src/latentsteer/domains/toy/__init__.py": "SIZE = 3\n",
        "src/latentsteer/domains/toy/net.py": "",
        "src/latentsteer/domains/toy/plugin.py": "",
        "src/latentsteer/domains/toy/deep.py": "",
        "src/latentsteer/hints.py": "",
        "src/latentsteer/unused.py": "",
        "src/latentsteer/helped.py": "",
        "pipeline/helpers.py": "import latentsteer.helped\n",
        "pipeline/run.py": (
            "import helpers\n"
            "import latentsteer\n"
            "def main():\n    return latentsteer.short\n"
            "from typing import TYPE_CHECKING\n"
            "from latentsteer import load, config\n"
            "if TYPE_CHECKING:\n    import latentsteer.hints\n"
        ),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


TINY_PLUMBING = frozenset({"src/latentsteer/config.py", "src/latentsteer/errors.py"})
TINY_DEPS = [
    "pipeline/run.py",
    "pipeline/helpers.py",  # next to the script, which imports it
    "src/latentsteer/helped.py",  # imported by that helper
    "src/latentsteer/model.py",  # through the lazy map
    "src/latentsteer/io.py",  # a relative import
    "src/latentsteer/registry.py",
    "src/latentsteer/domains/toy/__init__.py",  # it holds code
    "src/latentsteer/domains/toy/net.py",  # a function-level import
    "src/latentsteer/domains/toy/plugin.py",  # named in the registry
    "src/latentsteer/domains/toy/deep.py",  # `latentsteer.short`, through _SUBMODULES
]


def test_checker_resolves_lazy_relative_nested_and_registry_imports(tmp_path: Path) -> None:
    _tiny_tree(tmp_path)
    stage = {"cmd": "python pipeline/run.py --flag", "deps": TINY_DEPS}
    assert stage_problems("run", stage, tmp_path, TINY_PLUMBING) == []


def test_checker_catches_missing_and_surplus_deps(tmp_path: Path) -> None:
    _tiny_tree(tmp_path)
    dropped = {"src/latentsteer/io.py", "pipeline/helpers.py"}
    deps = [*(d for d in TINY_DEPS if d not in dropped), "src/latentsteer/unused.py"]
    stage = {"cmd": "python pipeline/run.py", "deps": deps}
    assert stage_problems("run", stage, tmp_path, TINY_PLUMBING) == [
        "stage 'run': missing dep pipeline/helpers.py (runs via pipeline/run.py -> "
        "pipeline/helpers.py)",
        "stage 'run': missing dep src/latentsteer/io.py (imported via pipeline/run.py -> "
        "latentsteer.model -> latentsteer.io)",
        "stage 'run': dep src/latentsteer/unused.py is declared but never imported",
    ]


def test_checker_catches_an_import_of_a_moved_module(tmp_path: Path) -> None:
    _tiny_tree(tmp_path)
    (tmp_path / "src/latentsteer/helped.py").rename(tmp_path / "src/latentsteer/moved.py")
    stage = {"cmd": "python pipeline/run.py", "deps": TINY_DEPS}
    assert stage_problems("run", stage, tmp_path, TINY_PLUMBING) == [
        "stage 'run': imports latentsteer.helped, which does not exist (pipeline/run.py -> "
        "pipeline/helpers.py -> latentsteer.helped)",
        "stage 'run': dep src/latentsteer/helped.py is declared but does not exist",
    ]


def test_checker_catches_a_dep_dropped_from_the_real_dvc_yaml() -> None:
    name = "download"
    stage = dict(STAGES[name])
    ours = [d for d in dep_paths(stage) if d.startswith(f"src/{PACKAGE}/")]
    assert ours, f"stage {name!r} declares no src/{PACKAGE} dep to drop"
    stage["deps"] = [d for d in dep_paths(stage) if d != ours[0]]
    problems = stage_problems(name, stage, REPO, PLUMBING, GRAPH)
    assert any(f"missing dep {ours[0]} " in p for p in problems), problems
