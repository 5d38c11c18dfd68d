"""The card, its driver and the versions of everything measured."""
from __future__ import annotations

import platform
import subprocess
import time

import numpy as np

from .common import section


@section("environment")
def environment():
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    info = {
        "gpu": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
        "multiprocessors": props["multiProcessorCount"],
        "memory_gib": round(props["totalGlobalMem"] / 2 ** 30, 1),
        "driver": cupy.cuda.runtime.driverGetVersion(),
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cupy": cupy.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    try:
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as error:
        info["nvidia_smi"] = str(error)
    for k, v in info.items():
        print(f"   {k}: {v}")
    return info
