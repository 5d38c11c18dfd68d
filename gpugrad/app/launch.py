"""Starting N ranks: ``mpiexec -n N python -m gpugrad ...`` (``--nproc`` of train and bench)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys


def launch_ranks(nproc, argv) -> int:
    """``mpiexec -n N python -m gpugrad <argv>``: MPICH's launcher from the dist extra, else the system's;
    one BLAS thread per rank on the CPU (N ranks share the cores)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    ranks = subprocess.Popen([mpiexec(), "-n", str(nproc), sys.executable, "-m", "gpugrad", *argv], env=env)
    while True:
        try:
            return ranks.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the ranks too: they end and say how to resume; wait for them
            continue


def mpiexec() -> str:
    """The mpiexec beside this Python (the dist extra's MPICH), else the system's."""
    launcher = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if launcher is None:
        raise ImportError("--nproc needs mpiexec: pip install 'gpugrad[dist]' (mpi4py and MPICH)")
    return launcher
