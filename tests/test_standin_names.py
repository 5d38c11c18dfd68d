"""The CuPy stand-in defines nothing the real packages lack: every public name of its modules (cupy, cupy.cuda and
its bindings, cupyx, cuda.pathfinder) and every public attribute of the classes it defines exists in cupy-cuda13x
14.2 and its cuda-pathfinder, the versions the GPU runs use. The real packages import without a GPU but need
libcublas, so they live in an environment of their own: ``GPUGRAD_REAL_CUPY_PYTHON`` names its Python (CI makes it
in ``.ci/run``: numpy, cupy-cuda13x, nvidia-cublas). Without it the test skips, except under CI, where it fails."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "cupy_standin"
REAL = os.environ.get("GPUGRAD_REAL_CUPY_PYTHON")


def _missing_in_real(defined):
    done = subprocess.run([REAL, "-P", str(STANDIN / "list_names.py"), "--missing"], input=json.dumps(defined),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.skipif(not REAL and not os.environ.get("CI"),
                    reason="set GPUGRAD_REAL_CUPY_PYTHON to a Python with cupy-cuda13x==14.2.0 and nvidia-cublas "
                           "(.ci/run makes one)")
def test_the_standin_defines_no_name_cupy_lacks():
    assert REAL, "CI must set GPUGRAD_REAL_CUPY_PYTHON (see .ci/run)"
    version = subprocess.run([REAL, "-P", "-c", "import cupy; print(cupy.__version__)"], capture_output=True,
                             text=True, timeout=120)
    assert version.stdout.strip() == "14.2.0", version.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), str(ROOT)]))
    done = subprocess.run([sys.executable, str(STANDIN / "list_names.py")], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    defined = json.loads(done.stdout.splitlines()[-1])
    assert len(defined["cupy"]["names"]) > 300 and "setStream" in defined["cupy.cuda.cublas"]["names"]
    # the comparison finds what CuPy lacks: the workspace binding CuPy never had, a numpy-only function
    assert _missing_in_real({"cupy.cuda.cublas": {"names": ["setWorkspace", "gemmEx"], "classes": {}},
                             "cupy": {"names": ["busday_count"], "classes": {"ndarray": ["setflags", "get"]}}}) == [
        "cupy.cuda.cublas.setWorkspace", "cupy.busday_count", "cupy.ndarray.setflags"]
    assert _missing_in_real(defined) == []


def _cupy_calls():
    """Every ``xp.NAME(...)`` / ``cupy.NAME(...)`` call in gpugrad (``xp`` a backend's array module): the keywords
    it passes and the most positional arguments, by name."""
    import ast
    calls = {}
    for path in sorted((ROOT / "gpugrad").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            base = node.func.value
            if (isinstance(base, ast.Name) and base.id in ("xp", "cupy")) or (
                    isinstance(base, ast.Attribute) and base.attr == "xp"):
                entry = calls.setdefault(node.func.attr, {"keywords": set(), "positional": 0, "where": []})
                entry["keywords"].update(k.arg for k in node.keywords if k.arg)
                entry["positional"] = max(entry["positional"], sum(not isinstance(a, ast.Starred) for a in node.args))
                entry["where"].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return calls


@pytest.mark.skipif(not REAL and not os.environ.get("CI"),
                    reason="set GPUGRAD_REAL_CUPY_PYTHON to a Python with cupy-cuda13x==14.2.0 (.ci/run makes one)")
def test_every_cupy_call_passes_arguments_cupy_takes():
    """The stand-in's functions are numpy's, whose keywords CuPy may lack: a keyword CuPy's function does not take
    (or too many positional arguments) would be a TypeError on a card only. Checked against CuPy 14.2's signatures
    (a ufunc's: its inputs, out, dtype, casting); RawModule, a Cython class, against cupy/_core/raw.pyx."""
    assert REAL, "CI must set GPUGRAD_REAL_CUPY_PYTHON (see .ci/run)"
    calls = _cupy_calls()
    assert {"take_along_axis", "unique", "RawModule", "zeros"} <= set(calls) and len(calls) > 40
    done = subprocess.run([REAL, "-P", str(STANDIN / "list_names.py"), "--parameters"],
                          input=json.dumps(sorted(calls)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    found["RawModule"] = {"parameters": ["code", "path", "options", "backend", "translate_cucomplex",  # keyword-only
                                         "enable_cooperative_groups", "name_expressions", "jitify"],
                          "var_keyword": False}
    assert calls["RawModule"]["positional"] == 0
    unreadable = sorted(name for name, params in found.items() if params is None)
    assert unreadable == ["from_dlpack"], unreadable  # (capsule) -> array: one positional argument
    wrong = {name: (sorted(entry["keywords"] - set(found[name]["parameters"])), entry["positional"], entry["where"][:3])
             for name, entry in calls.items() if found[name] is not None and not found[name]["var_keyword"] and (
                 entry["keywords"] - set(found[name]["parameters"]) or entry["positional"] > len(found[name]["parameters"]))}
    assert wrong == {}
