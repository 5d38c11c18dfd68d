"""The layout the code keeps: no module-level import cycles, no file over 400 lines, CuPy never
imported by ``import gpugrad``, and each vocabulary defined once."""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gpugrad"


def _modules():
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name, path, modules):
    """Modules ``name`` imports at module level (imports inside functions are lazy and do not count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
            submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            yield from submodules if len(submodules) == len(node.names) else [target, *submodules]
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_no_import_cycles():
    modules = _modules()
    graph = {m: {d for d in _imports(m, p, modules) if d in modules and d != m} for m, p in modules.items()}
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for dependency in graph[module]:
            assert state.get(dependency) != "open", "import cycle: " + " -> ".join(trail + [dependency])
            if dependency not in state:
                visit(dependency, trail + [dependency])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_no_file_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_import_gpugrad_does_not_import_cupy():
    code = "import sys, gpugrad, gpugrad.nn, gpugrad.optim, gpugrad.functional; print('cupy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_the_activation_vocabulary_is_defined_once():
    from gpugrad import nn
    from gpugrad.ops.activation import ACTIVATIONS
    assert set(nn.layers.ACTIVATION_MODULES) == set(ACTIVATIONS)
    for name, module in nn.layers.ACTIVATION_MODULES.items():
        assert module.activation == name
    sources = [p for p in PACKAGE.rglob("*.py") if p.name != "activation.py"]
    for path in sources:  # no second table of activation codes
        assert "\"sigmoid\": 2" not in path.read_text() and "'sigmoid': 2" not in path.read_text(), path
