"""Where the CUDA sources are, and the text gpugrad compiles from them (no CuPy needed to read them)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def kernel_dir() -> Path:
    """The folder holding the CUDA sources: ``gpugrad/kernels`` when installed, ``kernels/`` in a checkout."""
    try:
        installed = resources.files("gpugrad.kernels")
        if installed.joinpath("activation.cu").is_file():
            return Path(str(installed))
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "kernels"


def kernel_source(module_name: str) -> str:
    """``kernels/<module_name>.cu`` with ``common.cuh`` written in place of its include: CuPy's on-disk cache is keyed
    by the source text (and options), not by the headers it includes, so a change to the header alone must change
    the source, or a stale binary is loaded."""
    header = (kernel_dir() / "common.cuh").read_text()
    return (kernel_dir() / f"{module_name}.cu").read_text().replace('#include "common.cuh"', header)
