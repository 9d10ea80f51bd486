"""The package's layering: no module imports another that (directly or through others) imports it back, and
every module imports on its own, first, with nothing of cnnlab loaded before it (no hidden import-order
dependency such as a resolver registered as a side effect of some other import)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from cnnlab import REPO_ROOT

SRC = REPO_ROOT / "src"
MODULES = sorted(
    ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for path in (SRC / "cnnlab").rglob("*.py")
)


def imports_of(module: str, top_level_only: bool) -> set[str]:
    """The cnnlab modules `module` imports (its own statements; a name imported from a package counts as the
    submodule when there is one)."""
    path = SRC / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # module level, including inside if/try blocks there
        nodes = [n for stmt in tree.body for n in ast.walk(stmt)
                 if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_module_list_is_complete():
    assert {"cnnlab.train", "cnnlab.models.simple_cnn", "cnnlab.reports.questions.pooling",
            "cnnlab.lightning_compat", "cnnlab.config_diff", "cnnlab.api"} <= set(MODULES)
    assert not any(name.startswith("cnnlab.sweeps") for name in MODULES)  # folded into cnnlab.reports


def test_no_import_cycle_at_module_level():
    graph = {m: imports_of(m, top_level_only=True) for m in MODULES}
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


def test_no_import_cycle_even_through_imports_deferred_into_functions():
    """Imports inside functions (deferred to keep `--help` fast) still go only downward."""
    graph = {m: imports_of(m, top_level_only=False) for m in MODULES}
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


def test_the_leaf_modules_import_nothing_of_cnnlab():
    for leaf in ("cnnlab.paths", "cnnlab.config_diff", "cnnlab.errors", "cnnlab.lightning_compat"):
        assert imports_of(leaf, top_level_only=False) == set(), leaf


# One interpreter loads the third-party libraries (the slow part: torch, Lightning, Hydra), then forks a child
# per cnnlab module; each child imports that one module first, with no cnnlab module loaded before it.
FORK_EACH = r"""
import importlib, os, sys, traceback
import torch, torchvision, lightning, torchmetrics, hydra, omegaconf, matplotlib, rich, yaml  # noqa: E401, F401
assert not [m for m in sys.modules if m == "cnnlab" or m.startswith("cnnlab.")]
failed = 0
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            os._exit(0)
        except BaseException:
            os.write(write, traceback.format_exc().encode()[-3000:])
            os._exit(1)
    os.close(write)
    message = b""
    while chunk := os.read(read, 65536):
        message += chunk
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed += 1
        print(f"--- {name} does not import on its own:\n{message.decode()}")
print(f"{len(sys.argv) - 1 - failed} of {len(sys.argv) - 1} modules import on their own")
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_on_its_own_first():
    done = subprocess.run([sys.executable, "-c", FORK_EACH, *MODULES], capture_output=True, text=True,
                          timeout=240, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert f"{len(MODULES)} of {len(MODULES)} modules import on their own" in done.stdout
