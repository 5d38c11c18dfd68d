"""Data parallel communication: ``init()`` returns a communicator for this process's rank.

The launcher says who is who: ``mpiexec`` (MPICH's ``PMI_RANK`` / ``PMI_SIZE`` / ``MPI_LOCALRANKID``,
Open MPI's ``OMPI_COMM_WORLD_RANK`` / ``_SIZE`` / ``_LOCAL_RANK``) or ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK`` (with ``MASTER_ADDR`` / ``MASTER_PORT`` for NCCL's rendezvous). Backends:

- ``"mpi"``: ``mpi4py`` (``pip install 'gpugrad[dist]'`` brings it and MPICH as a wheel). numpy arrays
  go to MPI as they are; CuPy arrays are staged through host memory.
- ``"nccl"``: ``cupyx.distributed`` (NCCL, one GPU per rank), for CuPy arrays.
- ``"auto"``: NCCL when CuPy and NCCL can be used and a GPU is visible, else MPI; a world of one
  process needs neither (``LocalCommunicator``).

Each communicator has ``rank``, ``size``, ``local_rank``, in-place ``all_reduce(array, op="sum" | "mean")``,
``all_reduce_async`` (returns a handle; ``handle.wait()`` completes it), ``broadcast(array, root)``,
``barrier()``, ``host_max(values)`` (the element-wise maximum over the ranks of a few integers, on the host: the
GPU's streams are left alone), ``any_rank(flag)`` (True on every rank when it is True on one, e.g. to agree on
the step to stop after) and ``finalize()``.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from ..backend import is_host_array
from .common import DistributedError, _check_op, _host_max  # noqa: F401 -- DistributedError is public here

__all__ = ["init", "get_world", "is_initialized", "finalize", "launcher_env", "LocalCommunicator",
           "MPICommunicator", "DistributedError"]


def launcher_env(environ=None) -> tuple[int, int, int]:
    """(rank, world size, local rank) from the launcher's variables; (0, 1, 0) when there is none."""
    env = os.environ if environ is None else environ
    for rank, size, local in (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
                              ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"), ("RANK", "WORLD_SIZE", "LOCAL_RANK")):
        if rank in env and size in env:
            try:
                r, s = int(env[rank]), int(env[size])
                lr = int(env.get(local, r))
            except ValueError:
                raise DistributedError(f"gpugrad.distributed: {rank}={env[rank]!r} and {size}={env[size]!r} must be "
                                       "integers") from None
            if not 0 <= r < s:
                raise DistributedError(f"gpugrad.distributed: rank {r} is outside a world of {s} ({rank}, {size})")
            return r, s, lr
    return 0, 1, 0


class _Done:
    def wait(self):
        return None


class LocalCommunicator:
    """A world of one process: every collective is the identity (no MPI or NCCL needed)."""
    backend = "local"

    def __init__(self):
        self.rank, self.size, self.local_rank = 0, 1, 0

    def all_reduce(self, array, op="sum"):
        _check_op(op)
        return array

    def all_reduce_async(self, array, op="sum"):
        _check_op(op)
        return _Done()

    def broadcast(self, array, root=0):
        return array

    def barrier(self):
        pass

    def host_max(self, values):
        return np.array(values, np.int64).reshape(-1)

    def any_rank(self, flag) -> bool:
        return bool(flag)

    def abort(self, code=1):
        os._exit(code)

    def finalize(self):
        pass


class _MPIHandle:
    """An MPI Iallreduce in flight; ``wait`` completes it (and divides for "mean", copies back a staged array)."""

    def __init__(self, request, host, array, scale):
        self.request, self.host, self.array, self.scale = request, host, array, scale

    def wait(self):
        if self.request is None:
            return
        self.request.Wait()
        self.request = None
        if self.scale is not None:
            self.host *= self.host.dtype.type(self.scale)
        if self.host is not self.array:  # a CuPy array staged through host memory
            self.array.set(self.host)


class MPICommunicator:
    """MPI through mpi4py; numpy arrays in place, CuPy arrays staged through host memory."""
    backend = "mpi"

    def __init__(self, comm=None, local_rank=None):
        try:
            from mpi4py import MPI
        except ImportError as error:
            raise DistributedError(f"gpugrad.distributed: backend 'mpi' needs mpi4py and an MPI ({error}): "
                                   "pip install 'gpugrad[dist]'") from None
        self.MPI = MPI
        self.comm = comm or MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.local_rank = launcher_env()[2] if local_rank is None else local_rank

    def _host(self, array):
        if is_host_array(array):
            if not array.flags.c_contiguous:
                raise ValueError("all_reduce: the array must be C-contiguous (it is reduced in place)")
            return array
        return array.get()  # CuPy: staged through host memory

    def all_reduce_async(self, array, op="sum"):
        _check_op(op)
        host = self._host(array)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
        return _MPIHandle(request, host, array, 1.0 / self.size if op == "mean" else None)

    def all_reduce(self, array, op="sum"):
        self.all_reduce_async(array, op).wait()
        return array

    def broadcast(self, array, root=0):
        host = self._host(array)
        self.comm.Bcast(host, root=root)
        if host is not array:
            array.set(host)
        return array

    def barrier(self):
        self.comm.Barrier()

    def host_max(self, values):
        return _host_max(self.MPI, self.comm, values)

    def any_rank(self, flag) -> bool:
        return bool(self.host_max([1 if flag else 0])[0])

    def abort(self, code=1):
        self.comm.Abort(code)

    def finalize(self):
        pass  # mpi4py finalizes MPI at exit


_world = None


def init(backend: str = "auto", device=None):
    """The communicator of this process (made once; later calls return it). ``"auto"``: NCCL when ``device``
    is a GPU and NCCL can be used, else MPI. Also installs an exception hook: an exception on one rank
    aborts every rank with that rank's message, so a job never hangs."""
    global _world
    if _world is not None:
        return _world
    if backend not in ("auto", "mpi", "nccl"):
        raise ValueError(f"gpugrad.distributed.init: backend must be 'auto', 'mpi' or 'nccl', got {backend!r}")
    rank, size, local_rank = launcher_env()
    if size == 1 and backend == "auto":
        _world = LocalCommunicator()
        return _world
    on_gpu = device is not None and str(device).startswith("cuda")
    if backend == "nccl" or (backend == "auto" and on_gpu and _nccl_usable()):
        from .nccl import NCCLCommunicator
        _world = NCCLCommunicator(rank, size, local_rank)
    else:
        _world = MPICommunicator(local_rank=local_rank)
    _install_abort_hook(_world)
    return _world


def _nccl_usable() -> bool:
    try:
        import cupy
        import cupyx.distributed  # noqa: F401
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _install_abort_hook(world):
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.write(f"gpugrad.distributed: rank {world.rank} of {world.size} failed ({kind.__name__}: {value}); "
                         "aborting every rank\n")
        sys.stderr.flush()
        time.sleep(0.5)  # NOTE: the launcher forwards this rank's output before the abort tears the job down
        world.abort(1)
    sys.excepthook = hook


def get_world():
    """The communicator ``init`` made, or a LocalCommunicator when ``init`` was not called."""
    return _world if _world is not None else LocalCommunicator()


def is_initialized() -> bool:
    return _world is not None


def finalize():
    global _world
    if _world is not None:
        _world.finalize()
        _world = None
