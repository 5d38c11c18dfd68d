#!/usr/bin/env python
"""What agreeing on a Ctrl-C costs an --nproc run: the compiled data-parallel step of ``gpugrad train``'s default
model (64-256-256-10, batch 64 per rank, AdamW, cross-entropy, DistributedDataParallel), alone, with a blocking
vote after every step (``comm.any_rank``), and with the train loop's vote (``_StopRequest.agreed``: one vote per
about 50 ms), in rounds that rotate the three, medians quoted. Run it under MPI:

    OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python bench/stop_vote_cost.py [--rounds 10] [--steps 500]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gpugrad  # noqa: E402
import gpugrad.functional as F  # noqa: E402
from gpugrad import distributed, nn, optim  # noqa: E402
from gpugrad.app.train import _StopRequest  # noqa: E402

NAMES = ("step", "vote every step", "train's vote")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    comm = distributed.init()
    gpugrad.manual_seed(0)
    model = nn.MLP([64, 256, 256, 10], activation="relu")
    ddp = nn.parallel.DistributedDataParallel(model, comm=comm)
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(comm.rank)
    x = gpugrad.tensor(rng.standard_normal((64, 64)).astype(np.float32))
    y = gpugrad.tensor(rng.integers(0, 10, 64))

    def step(xb, yb):
        loss = F.cross_entropy(ddp(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    run = gpugrad.compile(step)
    times = {name: [] for name in NAMES}
    every = []
    for r in range(args.rounds):
        for name in NAMES[r % 3:] + NAMES[:r % 3]:
            stop = _StopRequest(comm)
            comm.barrier()
            start = time.perf_counter()
            for _ in range(args.steps):
                run(x, y)
                if name == "vote every step":
                    comm.any_rank(False)
                elif name == "train's vote":
                    stop.agreed()
            times[name].append((time.perf_counter() - start) / args.steps)
            if name == "train's vote":
                every.append(stop.every)
    if comm.rank == 0:
        base = statistics.median(times["step"])
        print(f"{comm.size} ranks, {args.rounds} rounds x {args.steps} steps; the train loop voted every "
              f"{min(every)}-{max(every)} steps")
        for name in NAMES:
            median = statistics.median(times[name])
            print(f"  {name:16s} {median * 1e6:7.0f} us per step  ({median / base:.3f} x step; rounds: "
                  f"{' '.join(f'{t * 1e6:.0f}' for t in times[name])})")


if __name__ == "__main__":
    main()
