"""A stand-in for ``cuda.pathfinder`` (NVIDIA's cuda-pathfinder, which CuPy 14 depends on and calls to load its
libraries; ``cuda/pathfinder/_dynamic_libs/load_nvidia_dynamic_lib.py``): ``load_nvidia_dynamic_lib("cublas")``
returns a ``LoadedDL`` whose ``abs_path`` is a C library with libcublas's entry points (``libcublas.c``, built here
with the system's C compiler), computed by ``_libcublas.py``."""
import dataclasses as _dataclasses
import functools as _functools
import hashlib as _hashlib
import os as _os
import shutil as _shutil
import subprocess as _subprocess
import tempfile as _tempfile
from pathlib import Path as _Path


class DynamicLibNotFoundError(RuntimeError):
    pass


@_dataclasses.dataclass
class LoadedDL:
    abs_path: str | None
    was_already_loaded_from_elsewhere: bool
    _handle_uint: int
    found_via: str


@_functools.cache
def load_nvidia_dynamic_lib(libname: str) -> LoadedDL:
    if libname != "cublas":
        raise DynamicLibNotFoundError(f'Failure finding "lib{libname}.so": the stand-in has only libcublas')
    source = _Path(__file__).with_name("libcublas.c")
    digest = _hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    path = _Path(_tempfile.gettempdir()) / f"gpugrad-standin-libcublas-{digest}.so"
    if not path.exists():
        compiler = _shutil.which("cc") or _shutil.which("gcc")
        if compiler is None:
            raise DynamicLibNotFoundError("the stand-in's libcublas needs a C compiler (cc or gcc)")
        partial = path.with_suffix(f".{_os.getpid()}.tmp")
        _subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(partial), str(source)], check=True)
        _os.replace(partial, path)  # atomic: processes building it at once each see a whole library
    from . import _libcublas
    handle = _libcublas.connect(str(path))
    return LoadedDL(str(path), False, handle, "stand-in")
