"""Two halves of tests/test_standin_names.py. Run on the stand-in (this folder first on PYTHONPATH): print as JSON
the public names each imitated module defines, and the public attributes of the classes the stand-in defines in
them. Run with ``--missing`` by a Python with the real packages (cupy-cuda13x, cuda-pathfinder; ``python -P``, so
that this folder does not shadow them): read that JSON on stdin and print the names the real packages lack
(``hasattr``: CuPy loads its library bindings, cupy.cuda.cublas among them, on first access); with ``--parameters``,
read a JSON list of ``cupy`` function names and print each one's parameters."""
import importlib
import inspect
import json
import sys
import warnings

MODULES = ["cupy", "cupy.random", "cupy.cuda", "cupy.cuda.compiler", "cupy.cuda.cublas", "cupy.cuda.device",
           "cupy.cuda.memory", "cupy.cuda.runtime", "cupyx", "cupyx.distributed", "cupyx.scipy",
           "cupyx.scipy.special", "cuda.pathfinder"]


def resolve(name):
    """The module ``name``; CuPy's library bindings (cupy.cuda.cublas) are attributes of their package."""
    try:
        return importlib.import_module(name)
    except ImportError:
        parent, _, leaf = name.rpartition(".")
        return getattr(resolve(parent), leaf)


def defined():
    found = {}
    for name in MODULES:
        module = resolve(name)
        public = sorted(n for n in dir(module) if not n.startswith("_"))
        classes = {n: sorted(a for a in vars(value) if not a.startswith("_")) for n in public
                   for value in [getattr(module, n)] if inspect.isclass(value) and value.__module__.startswith(
                       ("cupy", "cupyx", "cuda."))}
        found[name] = {"names": public, "classes": classes}
    return found


def missing(standin):
    warnings.simplefilter("ignore")  # CuPy warns when NCCL is missing: the names are there regardless
    lacking = []
    for name, defined_there in standin.items():
        module = resolve(name)
        lacking += [f"{name}.{n}" for n in defined_there["names"] if not hasattr(module, n)]
        for cls, attributes in defined_there["classes"].items():
            real = getattr(module, cls, None)
            lacking += [f"{name}.{cls}.{a}" for a in attributes if real is not None and not hasattr(real, a)]
    return lacking


def parameters(names):
    """For each ``cupy`` function named: its parameters and whether it takes ``**kwargs`` (from its signature, or a
    ufunc's ``nin`` and numpy's ufunc keywords), or None where neither can be read."""
    import cupy
    found = {}
    for name in names:
        function = getattr(cupy, name, None)
        try:
            signature = inspect.signature(function)
            found[name] = {"parameters": list(signature.parameters), "var_keyword": any(
                p.kind is p.VAR_KEYWORD for p in signature.parameters.values())}
        except (TypeError, ValueError):
            if isinstance(function, cupy.ufunc):  # out=, dtype=, casting= are every ufunc's (cupy/_core/_kernel.pyx)
                found[name] = {"parameters": [f"x{i}" for i in range(function.nin)] + ["out", "dtype", "casting"],
                               "var_keyword": False}
            else:
                found[name] = None
    return found


if __name__ == "__main__":
    if "--missing" in sys.argv:
        print(json.dumps(missing(json.load(sys.stdin))))
    elif "--parameters" in sys.argv:
        print(json.dumps(parameters(json.load(sys.stdin))))
    else:
        print(json.dumps(defined()))
