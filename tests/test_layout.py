"""The layout the code keeps: one-way layers (the library never imports the application in ``gpugrad.app``;
no import cycle, counting imports inside functions; lazy imports only of optional dependencies; no module
binding its names into another), no file over 400 lines, CuPy never imported by ``import gpugrad``, and each
vocabulary defined once."""
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


# What may be imported inside a function: the optional dependencies, and the package's own modules that
# import one of them at module level (each checked below), so that ``import gpugrad`` needs neither.
OPTIONAL = {"cupy", "cupyx", "cuda", "mpi4py", "torch", "matplotlib", "tqdm", "ml_dtypes", "scipy", "safetensors",
            "mnist1d", "threadpoolctl"}
OPTIONAL_WRAPPERS = {"gpugrad.backend.cupy_backend", "gpugrad.capture.cuda", "gpugrad.distributed.nccl",
                     "gpugrad.cuda.kernels"}


def _imports(name, path, modules, nodes=None):
    """Modules ``name`` imports, at module level and inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in nodes if nodes is not None else ast.walk(ast.parse(path.read_text())):
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


def _function_level_imports(path):
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top
            and not _guarded(tree, node)]


def _guarded(tree, node):
    """An ``if TYPE_CHECKING:`` import never runs."""
    for parent in ast.walk(tree):
        if isinstance(parent, ast.If) and getattr(parent.test, "id", None) == "TYPE_CHECKING" and node in parent.body:
            return True
    return False


def test_lazy_imports_are_of_optional_dependencies_only():
    modules = _modules()
    lazy = []
    for name, path in modules.items():
        for node in _function_level_imports(path):
            for target in _imports(name, path, modules, [node]):
                if target.split(".")[0] not in OPTIONAL and target not in OPTIONAL_WRAPPERS:
                    lazy.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {target}")
    assert not lazy, "imports inside functions (only optional dependencies may load late):\n" + "\n".join(lazy)
    for wrapper in OPTIONAL_WRAPPERS:  # each earns its place by importing an optional dependency at module level
        top = ast.parse(modules[wrapper].read_text()).body
        assert {t.split(".")[0] for t in _imports(wrapper, modules[wrapper], modules, top)} & OPTIONAL, wrapper


def test_the_library_never_imports_the_application():
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("gpugrad.app") or name == "gpugrad.__main__":
            continue
        assert not [t for t in _imports(name, path, modules) if t.startswith("gpugrad.app")], name


def test_no_module_binds_names_into_another():
    """``other_module.name = value`` on a module it imported (a late binding that hides a cycle), and ``global``
    only where a module keeps state of its own."""
    modules = _modules()
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names
                    if any(target.rpartition(".")[2] == alias.name.split(".")[-1] or target == alias.name
                           for target in _imports(name, path, modules, [node]) if target in modules)}
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                root = target
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(target, ast.Attribute) and isinstance(root, ast.Name) and root.id in imported:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} sets {ast.unparse(target)}")
        rebinds = any(isinstance(node, ast.Global) for node in ast.walk(ast.parse(path.read_text())))
        assert not rebinds or name in GLOBAL_STATE, f"{name} rebinds a module global"
    assert not found, "\n".join(found)


# Modules that rebind a global of their own (``global name``): their own state, set by their own functions from
# what they compute, never a name another module hands in (as the old ``bind_tensor_type`` did).
GLOBAL_STATE = {
    "gpugrad.app.benchmark",  # _shared: the arrays every candidate of a run works on
    "gpugrad.backend.cupy_backend",  # _installed: the CuPy memory pool set up once
    "gpugrad.capture.cpu",  # _tape: the CPU tape recording now
    "gpugrad.distributed",  # _world: the communicator init() made
}


def test_no_file_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_host_arrays_are_told_apart_by_is_host_array():
    """``isinstance(x, np.ndarray)`` holds for the CuPy stand-in's device arrays (numpy subclasses) and not for
    CuPy's, so a path chosen by it alone differs between the stand-in and a card. Every such test either is
    ``gpugrad.backend.is_host_array`` or asks about CuPy arrays in the same expression; the CPU capture (host
    arrays only) is exempt."""
    loose = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).as_posix() in ("capture/cpu.py",):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.BoolOp, ast.Call)):
                for child in ast.walk(node):
                    child.bool_parent = getattr(child, "bool_parent", None) or (node if isinstance(node, ast.BoolOp)
                                                                                  else None)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2 \
                    and "np.ndarray" in ast.unparse(node.args[1]):
                context = ast.unparse(node.bool_parent) if getattr(node, "bool_parent", None) else ""
                if "is_cupy_array" not in context:
                    loose.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert loose == ["backend/__init__.py:108: isinstance(array, (np.ndarray, np.generic))"], loose


def test_import_gpugrad_does_not_import_cupy_or_other_optional_dependencies():
    """``import gpugrad`` stays light: ml_dtypes (0.75 s at import before), scipy, tqdm, matplotlib, torch, mpi4py
    and CuPy load only when used; bfloat16 works once asked for, and an ml_dtypes array a user made is known."""
    code = ("import sys, gpugrad, gpugrad.nn, gpugrad.optim, gpugrad.functional, gpugrad.utils.data; "
            "print(sorted(m for m in ('cupy', 'ml_dtypes', 'scipy', 'tqdm', 'matplotlib', 'torch', 'mpi4py', "
            "'safetensors') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
    code = ("import gpugrad, ml_dtypes, numpy as np; x = gpugrad.tensor(np.ones(2, ml_dtypes.bfloat16), "
            "requires_grad=True); (x * 2).sum().backward(); print(x.grad.dtype, gpugrad.dtypes.is_float(x.dtype))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "bfloat16 True", done.stderr[-2000:]


def test_the_activation_vocabulary_is_defined_once():
    from gpugrad import nn
    from gpugrad.ops.formulas import ACTIVATIONS
    assert set(nn.layers.ACTIVATION_MODULES) == set(ACTIVATIONS)
    for name, module in nn.layers.ACTIVATION_MODULES.items():
        assert module.activation == name
    sources = [p for p in PACKAGE.rglob("*.py") if p.name != "formulas.py"]
    for path in sources:  # no second table of activation codes
        assert "\"sigmoid\": 2" not in path.read_text() and "'sigmoid': 2" not in path.read_text(), path


def test_each_optimizer_family_holds_its_paths_and_makes_its_state():
    """Its formula (``update``), its fused launch (``fused``, named: no string dispatch), its hyperparameters
    listed once (``arguments``) and its state made in one place (``make_state``), all in its own file; the kernel
    launches take arrays, never a state dict; the scaler meets the optimizer through PyTorch's public protocol."""
    from gpugrad import optim
    for family in (optim.SGD, optim.Adam, optim.RMSprop, optim.Adagrad):
        for method in ("check", "arguments", "make_state", "update"):
            assert method in vars(family), (family.__name__, method)
    assert "fused" in vars(optim.SGD) and "fused" in vars(optim.Adam)
    base = (PACKAGE / "optim" / "optimizer.py").read_text()
    assert "getattr(backend.kernels" not in base and "import amp" not in base and "from ..amp" not in base
    assert "state[" not in (PACKAGE / "cuda" / "kernels.py").read_text()
    amp = (PACKAGE / "amp.py").read_text()
    assert "._step(" not in amp and "_step_supports_amp_scaling" in amp


def test_features_meet_the_engine_through_the_seam():
    """The engine's slots are plugged through ``seam.features.plug``, never assigned from outside seam.py."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "seam.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            for target in (node.targets if isinstance(node, ast.Assign) else []):
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute) and \
                        target.value.attr == "features":
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not found, found
