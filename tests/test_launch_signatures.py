"""Every kernel launch passes what its kernel declares, checked without a GPU.

The launch wrappers (``gpugrad/cuda/kernels.py``) run on CUDA tensors of a CuPy stand-in
(``tests/cupy_standin``: no-op kernels that record the types of their arguments), driven through the
ops, layers, optimizers and the loss scaler; nvcc compiles ``kernels/*.cu`` to PTX with the options
the runtime uses, and each kernel's parameter list is read from its (demangled) entry. A launch with
one argument too many or too few, or a Python float where a kernel takes an int, would read garbage
on a card; here it fails with the kernel's name and both lists.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpugrad.cuda.sources import kernel_dir

ROOT = Path(__file__).resolve().parents[1]
STANDIN = Path(__file__).resolve().parent / "cupy_standin"
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None or shutil.which("c++filt") is None,
                                reason="needs nvcc (CUDA) and c++filt (binutils)")


@pytest.fixture(scope="module")
def report():
    """What tests/cupy_standin/drive_launches.py prints: the launches, the kernels, options, a capture's glue."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), str(ROOT)]))
    done = subprocess.run([sys.executable, str(STANDIN / "drive_launches.py")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])

# C parameter type -> the argument types (as the stand-in tags them) that a launch may pass for it; a null pointer
# travels as uint64 0
SCALARS = {"long long": "int64", "unsigned long long": "uint64", "int": "int32", "unsigned int": "uint32",
           "double": "float64", "float": "float32", "__half": "float16", "__nv_bfloat16": "bfloat16"}
ACCEPTS = {"long long": {"int64"}, "unsigned long long": {"uint64", "int64"}, "int": {"int32"},
           "double": {"float64"}, "float": {"float32"}}
ACCEPTS.update({f"{c}*": {f"pointer to {dtype}", "uint64"} for c, dtype in SCALARS.items()})


def _declared(kernels, options, tmp_path):
    """{name expression: [C parameter types]} of every kernel nvcc compiles from kernels/*.cu."""
    entries = {}
    for module in kernels:
        out = tmp_path / f"{module}.ptx"
        done = subprocess.run(["nvcc", "-arch=sm_90", "--ptx", *options, "-o", str(out),
                               str(kernel_dir() / f"{module}.cu")], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        mangled = re.findall(r"\.entry\s+(\S+)\(", out.read_text())
        demangled = subprocess.run(["c++filt"], input="\n".join(mangled), capture_output=True, text=True,
                                   check=True).stdout.splitlines()
        for line in demangled:
            found = re.fullmatch(r"(?:void )?(.+?)\((.*)\)", line.strip())  # templates demangle with "void"
            assert found, f"{module}.cu: a kernel without C++ linkage ({line}): its parameters cannot be read"
            name, params = found.groups()
            entries[name] = [p.strip() for p in params.split(",")] if params.strip() else []
    return entries


def _kind(c_type):
    # NOTE: the kernels' working types: Accum<T>::type (bias_act.cu) is double for double, else float;
    # Compute<T>::type (common.cuh) is float for the half types, else T
    c_type = re.sub(r"Accum<(.+?)>::type", lambda m: "double" if m.group(1) == "double" else "float", c_type)
    c_type = re.sub(r"Compute<(.+?)>::type", lambda m: "float" if "half" in m.group(1) or "bfloat16" in m.group(1)
                    else m.group(1), c_type)
    return " ".join(c_type.replace("const", "").replace("*", " *").split()).replace(" *", "*")


@needs_nvcc
def test_every_launch_passes_the_parameters_its_kernel_declares(report, tmp_path):
    declared = _declared(report["kernels"], report["options"], tmp_path)
    for module, names in report["kernels"].items():  # every name the runtime compiles is an entry of its file
        assert set(names) <= set(declared), f"{module}.cu lacks {sorted(set(names) - set(declared))}"
    launches = report["launches"]
    for name, tags in launches:
        params = declared[name]
        assert len(tags) == len(params), f"{name}: launched with {len(tags)} arguments, declares {len(params)}: " \
                                         f"{tags} for {params}"
        for i, (tag, c_type) in enumerate(zip(tags, params)):
            assert tag in ACCEPTS[_kind(c_type)], f"{name}: argument {i} is {tag}, the kernel takes {c_type}"
    family = lambda name: name.split("<")[0]  # noqa: E731 -- a kernel template, whatever its types
    missing = {family(n) for names in report["kernels"].values() for n in names} - {family(n) for n, _ in launches}
    assert not missing, f"the driver launched no {sorted(missing)}: drive them in tests/cupy_standin/drive_launches.py"


def test_a_captured_step_holds_the_optimizer_and_writes_each_new_learning_rate(report):
    """Glue only (the stand-in's graphs do nothing): the SGD step joins the one graph, no host call is left
    between graphs, and each learning rate StepLR sets is written to the device before the capture run and
    each replay (0.1 was the eager warm-up's; then 0.05, 0.025, 0.0125), never while the stream captures;
    switching momentum off or replacing the state (load_state_dict) afterwards fails a guard and the step is captured
    again (before the guards, it raised CaptureError). The capture's
    cuBLAS handle (gpugrad.cuda.cublas, the C API) is bound once, stream before workspace, and each of the step's
    five GEMM shapes (two forward, three backward) runs on it once before the capture (the warm-up), then once while capturing; replays call
    cuBLAS no more."""
    capture = dict(report["capture"])
    assert capture.pop("capture handle") == ["cublasCreate_v2", "cublasSetStream_v2", "cublasSetWorkspace_v2",
                                             "cublasSetPointerMode_v2"] + ["cublasGemmEx"] * 10
    assert capture.pop("other handles") == []
    assert capture.pop("momentum changed") == "captured again: 1 new"
    assert capture.pop("state changed") == "captured again: 1 new"
    assert capture.pop("rmsprop host calls") == 1  # no kernel: its update stays a host call between two graphs
    assert capture == {"graphs": 1, "host_calls": 0, "learning_rates_written": [0.05, 0.025, 0.0125]}


def test_every_product_is_one_cublas_call_with_the_arguments_cublas_reads_as_meant():
    """The GPU's matmul against numpy's on the stand-in, whose cuBLAS computes what cuBLAS's documentation
    defines for the arguments it is given (operations, leading dimensions, batch strides): vectors, batches,
    broadcasting, transposed views and strided operands in four dtypes are each one GemmEx or
    GemmStridedBatchedEx (none left to cupy.matmul), none where the product is empty or sums over nothing
    (zeros); the compute type follows
    set_matmul_precision (TF32 under "high") for batched products too."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), str(ROOT)]))
    done = subprocess.run([sys.executable, str(STANDIN / "drive_gemms.py")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    tolerance = {"float32": 1e-5, "float64": 1e-12, "float16": 2e-3, "bfloat16": 2e-2}
    assert len(report["cases"]) >= 300
    for case in report["cases"]:
        got, want = case["shape"]
        assert got == want, case
        assert case["error"] <= tolerance[case["dtype"]], case
        inner = case["a"][0][-1]
        assert len(case["gemms"]) == (1 if 0 not in want and inner else 0), case
    exact, tf32 = report["compute"]["32F"], report["compute"]["TF32"]
    assert report["precision"] == {"highest": [["gemmStridedBatchedEx", exact], ["gemmEx", exact]],
                                   "high": [["gemmStridedBatchedEx", tf32], ["gemmEx", tf32]]}


# The stand-in lacks what this needs: the memory pool's statistics.
STANDIN_LACKS = ["-k", "not memory_statistics"]


def test_the_gpu_tests_pass_on_the_standin_where_it_computes():
    """The tests marked gpu, run on CUDA tensors of the stand-in: ops, layers, losses, optimizers, the loss
    scaler, captured steps (gpugrad.compile's CUDA graphs, gpugrad train), gradient checks and the kernels' parity
    tests go through gpugrad's real GPU glue (device object, launch wrappers, cuBLAS calls, stream capture), with
    every kernel and cuBLAS computed from the memory their arguments point at and graphs that replay what was
    captured. Not a GPU run: it shows what the glue passes, not what a card computes."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), str(ROOT)]))
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests",
                           *STANDIN_LACKS], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, "\n".join(line for line in done.stdout.splitlines() if line.startswith("FAILED"))[-4000:] \
        or summary
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 540, summary


def test_the_source_compiled_holds_the_header_so_cupys_cache_key_follows_it(tmp_path):
    """CuPy keys its on-disk kernel cache by the source text and options, not by the headers the source includes:
    the source gpugrad compiles has common.cuh written into it, so a change to the header alone is a new key."""
    for f in kernel_dir().iterdir():
        if f.suffix in (".cu", ".cuh"):
            (tmp_path / f.name).write_text(f.read_text())
    script = ("import sys, gpugrad.cuda.sources as s; from pathlib import Path; s.kernel_dir = lambda: Path(sys.argv[1]); "
              "from gpugrad.cuda import kernels; print(repr(kernels._compile('activation', True).code))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), str(ROOT)]))

    def compiled_source():
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout
    before = compiled_source()
    assert '#include \\"common.cuh\\"' not in before and "Compute" in before
    (tmp_path / "common.cuh").write_text((tmp_path / "common.cuh").read_text() + "\n// a change to the header alone\n")
    assert compiled_source() != before


def test_the_standin_takes_arguments_as_cupy_does():
    """cupy/cuda/function.pyx ``_pointer``: a cupy.ndarray goes as a pointer, a numpy.ndarray of size one by value
    (a pointer parameter then fails the PTX check above), a larger numpy.ndarray is refused. A ufunc refuses a numpy
    array among device arrays (``_preprocess_arg``), 0-d too; scalars pass. A device array never becomes a host
    one implicitly (``__array__``), and a numpy function CuPy lacks has no implementation (``__array_function__``)."""
    script = ("import numpy as np, cupy\n"
              "from cupy import _tag\n"
              "print(_tag(cupy.ones(3, np.float32)), _tag(np.ones(1, np.float32)), _tag(np.int64(2)))\n"
              "try:\n    _tag(np.ones(3, np.float32))\nexcept TypeError as error:\n    print('refused:', error)\n"
              "a = cupy.ones(3)\n"
              "assert (a + 1).tolist() == (a * np.float32(2)).tolist() == [2.0] * 3\n"
              "for mixed in (lambda: a + np.ones(3), lambda: np.ones(3) * a, lambda: cupy.add(a, np.asarray(1.0)),\n"
              "              lambda: cupy.multiply(a, a, out=np.empty(3)), lambda: cupy.concatenate([a, np.ones(3)]),\n"
              "              lambda: cupy.where(np.ones(3, bool), a, a), lambda: a + [1.0, 2.0, 3.0]):\n"
              "    try:\n        mixed()\n        print('accepted')\n"
              "    except TypeError as error:\n        assert 'Unsupported type' in str(error), error\n"
              "assert cupy.concatenate([a, a]).shape == (6,) and cupy.where(a > 0, a, 0.0).shape == (3,)\n"
              "for refused, says in ((lambda: np.asarray(a), 'Implicit conversion to a NumPy array is not allowed'),\n"
              "                      (lambda: np.array(a * 2), 'Implicit conversion'),\n"
              "                      (lambda: np.insert(a, 0, 1.0), \"no implementation found for 'numpy.insert'\")):\n"
              "    try:\n        refused()\n        print('accepted')\n"
              "    except TypeError as error:\n        assert says in str(error), error\n"
              "assert np.array_equal(a.get(), np.ones(3)) and np.asarray(a.get()).shape == (3,)\n"
              "cupy.add.at(a, np.array([0, 0]), 1.0)\n"
              "assert a.get().tolist() == [3.0, 1.0, 1.0]\n"
              "try:\n    cupy.multiply.at(a, [0], 2.0)\n    print('accepted')\n"
              "except NotImplementedError as error:\n    assert 'cupy_multiply.at' in str(error)\n"
              "stream = cupy.cuda.Stream(non_blocking=True)\n"
              "with stream:\n"
              "    stream.begin_capture()\n"
              "    for read in (a.get, lambda: float(a[0]), lambda: a.tolist(), lambda: bool(a[0]), stream.synchronize):\n"
              "        try:\n            read()\n            print('accepted')\n"
              "        except RuntimeError as error:\n            assert 'while' in str(error) or 'captures' in str(error)\n"
              "    stream.end_capture()\n"
              "assert float(a[0]) == 3.0\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "pointer to float32 float32 int64"
    assert second.startswith("refused: You are trying to pass a numpy.ndarray of shape (3,) as a kernel parameter")
