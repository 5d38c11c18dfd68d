"""What every communicator shares: the set-up error, the reduction ops and the host-side vote."""
from __future__ import annotations

import numpy as np


class DistributedError(RuntimeError):
    """A data-parallel set-up problem (missing MPI, a bad launcher environment, GPUs shared by ranks)."""


def _check_op(op):
    if op not in ("sum", "mean"):
        raise ValueError(f"all_reduce: op must be 'sum' or 'mean', got {op!r}")


def _host_max(MPI, comm, values) -> np.ndarray:
    """On the host, through MPI: the element-wise maximum over the ranks of a few integers."""
    values = np.array(values, np.int64).reshape(-1)
    comm.Allreduce(MPI.IN_PLACE, values, op=MPI.MAX)
    return values
