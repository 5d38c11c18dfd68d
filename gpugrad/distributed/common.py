"""What every communicator shares: the set-up error and the reduction ops."""
from __future__ import annotations


class DistributedError(RuntimeError):
    """A data-parallel set-up problem (missing MPI, a bad launcher environment, GPUs shared by ranks)."""


def _check_op(op):
    if op not in ("sum", "mean"):
        raise ValueError(f"all_reduce: op must be 'sum' or 'mean', got {op!r}")
