"""Data parallel on one card: NCCL at world size 1, two MPI ranks sharing it, the duplicate-GPU refusal."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import gpugrad
import gpugrad.functional as F
from gpugrad import nn, optim

from .common import ROOT, gpu_time, section


DP_RANK = """
import sys, json, numpy as np, gpugrad, gpugrad.nn as nn, gpugrad.optim as optim, gpugrad.functional as F
from gpugrad import distributed
comm = distributed.init(backend="mpi", device="cuda")  # two ranks share the one GPU: MPI, staged through the host
gpugrad.manual_seed(comm.rank)
model = nn.MLP([64, 128, 10], activation="relu", device="cuda")
ddp = nn.parallel.DistributedDataParallel(model)
opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
rng = np.random.default_rng(0)
X, Y = rng.standard_normal((10, 2 * 16, 64)).astype(np.float32), rng.integers(0, 10, (10, 2 * 16))
for s in range(10):
    part = slice(comm.rank * 16, comm.rank * 16 + 16)
    opt.zero_grad()
    F.cross_entropy(ddp(gpugrad.tensor(X[s, part], device="cuda")), gpugrad.tensor(Y[s, part], device="cuda")).backward()
    opt.step()
np.save(f"{sys.argv[1]}/rank{comm.rank}.npy", np.concatenate([p.numpy().ravel() for p in model.parameters()]))
"""


@section("data parallel")
def data_parallel(out: Path):
    """One card: NCCL at world size 1 (DDP equals plain training; all-reduce bus bandwidth of 100 MB), two
    ranks sharing the card through MPI with host staging (equal to one process on both halves), and NCCL's
    duplicate-GPU refusal as gpugrad's error."""

    import cupy
    from gpugrad import distributed
    from gpugrad.distributed.nccl import NCCLCommunicator
    result = {}
    comm = NCCLCommunicator(0, 1, 0)
    runs = []
    for wrap in (False, True):
        gpugrad.manual_seed(0)
        model = nn.MLP([256, 512, 10], activation="relu", device="cuda")
        net = nn.parallel.DistributedDataParallel(model, comm=comm) if wrap else model
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x = gpugrad.randn(64, 256, device="cuda")
        y = gpugrad.tensor(np.arange(64) % 10, device="cuda")
        for _ in range(10):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        runs.append(np.concatenate([p.numpy().ravel() for p in model.parameters()]))
    result["nccl_world_1_equals_plain"] = bool(np.array_equal(runs[0], runs[1]))
    try:  # a host (numpy) array staged through the device (the epoch's loss totals of gpugrad train); the host vote
        totals = np.array([3.5, 7.0])
        result["nccl_host_array_staged"] = comm.all_reduce(totals) is totals and totals.tolist() == [3.5, 7.0]
        result["nccl_host_max"] = comm.host_max([3, -1]).tolist() == [3, -1] and comm.any_rank(True)
    except Exception as error:
        result["nccl_host_paths_error"] = f"{type(error).__name__}: {error}"
    buffer = cupy.ones(25 * 2 ** 20, dtype=np.float32)  # 100 MB
    ms = gpu_time(lambda: comm.all_reduce(buffer), repeat=10, inner=5)
    result["allreduce_100MB_ms"] = ms
    result["allreduce_100MB_bus_GBps"] = buffer.nbytes / ms / 1e6  # world 1: the ring factor 2(N-1)/N is 0; algorithm bandwidth
    try:
        NCCLCommunicator(1, 2, cupy.cuda.runtime.getDeviceCount())
        result["duplicate_gpu_refused"] = False
    except distributed.DistributedError as error:
        result["duplicate_gpu_refused"] = str(error)
    folder = Path(tempfile.mkdtemp(dir=out))
    (folder / "rank.py").write_text(DP_RANK)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    done = subprocess.run([mpiexec if os.path.exists(mpiexec) else "mpiexec", "-n", "2", sys.executable,
                           str(folder / "rank.py"), str(folder)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    result["mpi_two_ranks_on_one_gpu"] = done.returncode == 0 and bool(
        np.array_equal(np.load(folder / "rank0.npy"), np.load(folder / "rank1.npy")))
    if done.returncode:
        result["mpi_two_ranks_error"] = done.stderr[-1500:]
    print(f"   {result}")
    return result
