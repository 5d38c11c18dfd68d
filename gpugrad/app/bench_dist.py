"""``gpugrad bench --nproc N``: the data-parallel step time, its speedup and its scaling efficiency.

The parent times the MLP step (784-1024-1024-10, SGD, cross-entropy) in one process at the per-rank
batch, then starts N ranks under mpiexec (one BLAS thread each on the CPU), each taking that batch,
so the global batch is N times larger; rank 0 prints the median step time of each, the samples per
second, the speedup (N x batch / step time with N) / (batch / step time with 1), perfect = N, and the scaling
efficiency, speedup / N, perfect = 1.00. On one machine with fewer cores than ranks, the ranks share the
cores: the efficiency then measures the sharing, not the communication.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import distributed, nn, optim
from .. import functional as F
from ..backend import get_backend
from ..creation import manual_seed, tensor
from .launch import launch_ranks, ready


SIZES, BATCH, STEPS = [784, 1024, 1024, 10], 256, 20


def _step_times(device, comm=None, steps=STEPS):

    manual_seed(0)
    model = nn.MLP(SIZES, activation="relu", device=device)
    net = model if comm is None else nn.parallel.DistributedDataParallel(model, comm=comm)
    opt = optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0 if comm is None else comm.rank)
    x = tensor(rng.standard_normal((BATCH, SIZES[0])).astype(np.float32), device=device)
    y = tensor(rng.integers(0, SIZES[-1], BATCH), device=device)
    sync = get_backend(device).synchronize
    times = []
    for i in range(steps + 3):
        if comm is not None:
            comm.barrier()
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        sync()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return times


def run(args) -> int:
    device = (args.device or "cpu").split(",")[0]
    if os.environ.get("GPUGRAD_BENCH_RANK_OF"):  # one of the N ranks: rank 0 writes the median
        comm = distributed.init(device=device)
        ready(comm)
        if device.startswith("cuda"):
            device = f"cuda:{comm.local_rank}"
        median = statistics.median(_step_times(device, comm))
        if comm.rank == 0:
            Path(os.environ["GPUGRAD_BENCH_RANK_OF"]).write_text(json.dumps({"ms": median * 1e3}))
        return 0
    one = statistics.median(_step_times(device)) * 1e3
    with tempfile.TemporaryDirectory(prefix="gpugrad-bench-") as folder:
        result = Path(folder) / "ranks.json"
        finished = launch_ranks(args.nproc, ["bench", "--nproc", str(args.nproc), "--device", device],
                                env={"GPUGRAD_BENCH_RANK_OF": str(result)})
        if finished.interrupted and finished.status:  # the ranks left on a Ctrl-C
            raise KeyboardInterrupt
        if finished.status or not result.exists():
            print(f"gpugrad bench: error: the {args.nproc} ranks failed (mpiexec's exit status {finished.status}; "
                  "their messages are above)", file=sys.stderr)
            return 1
        many = json.loads(result.read_text())["ms"]
    speedup = (args.nproc * BATCH / many) / (BATCH / one)  # samples/s with N ranks over one process's
    efficiency = speedup / args.nproc
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH} per rank, {device}:")
    print(f"  1 process:  {one:8.2f} ms per step, {BATCH / one * 1e3:8.0f} samples/s")
    print(f"  {args.nproc} ranks:    {many:8.2f} ms per step, {args.nproc * BATCH / many * 1e3:8.0f} samples/s "
          f"(global batch {args.nproc * BATCH}); speedup {speedup:.2f} (perfect {args.nproc}), scaling efficiency "
          f"{efficiency:.2f} (perfect 1.00)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"nproc": args.nproc, "device": device, "one_ms": one, "ranks_ms": many,
                       "speedup": speedup, "scaling_efficiency": efficiency, "sizes": SIZES, "batch_per_rank": BATCH}, f, indent=2)
    return 0
