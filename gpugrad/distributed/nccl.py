"""NCCL through ``cupyx.distributed`` for CuPy arrays, one GPU per rank (rank i on ``cuda:local_rank``).

The rendezvous goes through MPI (``use_mpi=True``) only when an MPI launcher started the job and MPI's world is
the job's (under a RANK / WORLD_SIZE launcher each process would be an MPI world of one, make its own NCCL id and
wait forever); else through CuPy's TCP store at ``MASTER_ADDR:MASTER_PORT``. Collectives run on a stream of the
communicator's own; an async all-reduce's handle makes the current stream wait for it (no host synchronization).
``cupyx.distributed`` knows no bfloat16 or bool (``cupyx/distributed/_nccl_comm.py``, ``_nccl_dtypes``): their
broadcasts move the bits as a same-size type NCCL has; their all-reduces are refused with the fix. NCCL reads device
pointers (``in_array.data.ptr``): a numpy array is staged through the device and copied back by ``wait``.
``host_max`` / ``any_rank`` go through MPI when the rendezvous did (host only, the GPU's streams untouched), else
through the device (a synchronization).
"""
from __future__ import annotations

import os

import cupy
import numpy as np

from ..backend import is_host_array
from .common import DistributedError, _check_op, _host_max


# the dtypes cupyx.distributed hands to NCCL (by dtype.char, as _nccl_comm.py's _nccl_dtypes); others travel as bits
_NCCL_DTYPES = frozenset("bBiIlLqQefdFD")
# NOTE: NCCL has no 16-bit integer type; a broadcast copies bytes whatever the type, so float16 carries 2-byte bits
_SAME_SIZE = {1: "u1", 2: "f2", 4: "u4", 8: "u8"}


def use_mpi(size: int, environ=None) -> bool:
    """Whether NCCL's rendezvous may go through MPI: an MPI launcher (Open MPI's or MPICH's variables) started this
    job, mpi4py imports, and MPI's world has the job's ``size`` processes."""
    env = os.environ if environ is None else environ
    if not ("OMPI_COMM_WORLD_SIZE" in env or "PMI_SIZE" in env):
        return False  # NOTE: checked before importing mpi4py.MPI, which would make this process an MPI world of one
    try:
        from mpi4py import MPI
    except ImportError:
        return False
    return MPI.COMM_WORLD.Get_size() == size


class _NCCLHandle:
    def __init__(self, event, array, scale, host=None):
        self.event, self.array, self.scale, self.host = event, array, scale, host

    def wait(self):
        if self.event is None:
            return
        cupy.cuda.get_current_stream().wait_event(self.event)
        self.event = None
        if self.scale is not None:
            self.array *= self.array.dtype.type(self.scale)
        if self.host is not None:  # a numpy array staged through the device
            self.host[...] = self.array.get()


class NCCLCommunicator:
    backend = "nccl"

    def __init__(self, rank, size, local_rank):
        import cupyx.distributed
        count = cupy.cuda.runtime.getDeviceCount()
        if local_rank >= count:
            raise DistributedError(
                f"gpugrad.distributed: NCCL needs one GPU per rank; local rank {local_rank} on a node with {count} "
                "visible GPU(s) (NCCL refuses two ranks on one GPU: 'Duplicate GPU detected'). Start at most "
                f"{count} ranks per node, or use backend='mpi' (host staging)")
        self.rank, self.size, self.local_rank = rank, size, local_rank
        self.device = cupy.cuda.Device(local_rank)
        self.device.use()
        through_mpi = use_mpi(size)
        self.comm = cupyx.distributed.init_process_group(
            size, rank, backend="nccl", host=os.environ.get("MASTER_ADDR"),
            port=int(os.environ["MASTER_PORT"]) if "MASTER_PORT" in os.environ else None, use_mpi=through_mpi)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._mpi = None
        if through_mpi:
            from mpi4py import MPI
            self._mpi = MPI

    def all_reduce_async(self, array, op="sum"):
        _check_op(op)
        host = None
        if is_host_array(array):
            if not array.flags.c_contiguous:
                raise ValueError("all_reduce: the array must be C-contiguous (it is reduced in place)")
            host, array = array, cupy.asarray(array)
        if array.dtype.char not in _NCCL_DTYPES:
            raise DistributedError(f"gpugrad.distributed: NCCL (cupyx.distributed) cannot all-reduce {array.dtype} "
                                   f"(shape {tuple(array.shape)}); keep parameters and gradients in float32 and train "
                                   "in bfloat16 under gpugrad.autocast, or use backend='mpi'")
        self.stream.wait_event(cupy.cuda.get_current_stream().record())  # after the gradient is written
        self.comm.all_reduce(array, array, op="sum", stream=self.stream)
        return _NCCLHandle(self.stream.record(), array, 1.0 / self.size if op == "mean" else None, host)

    def all_reduce(self, array, op="sum"):
        self.all_reduce_async(array, op).wait()
        return array

    def host_max(self, values):
        if self._mpi is not None:
            return _host_max(self._mpi, self._mpi.COMM_WORLD, values)
        # NOTE: without MPI, NCCL's own max on the device, then back to the host (a synchronization)
        values = cupy.asarray(np.array(values, np.int64).reshape(-1))
        self.stream.wait_event(cupy.cuda.get_current_stream().record())
        self.comm.all_reduce(values, values, op="max", stream=self.stream)
        self.stream.synchronize()
        return values.get()

    def any_rank(self, flag) -> bool:
        return bool(self.host_max([1 if flag else 0])[0])

    def broadcast(self, array, root=0):
        bits = array if array.dtype.char in _NCCL_DTYPES else array.view(_SAME_SIZE[array.dtype.itemsize])
        self.comm.broadcast(bits, root, stream=cupy.cuda.get_current_stream())
        return array

    def barrier(self):
        self.comm.barrier()

    def abort(self, code=1):
        os._exit(code)  # NOTE: NCCL has no job-wide abort; the launcher ends the other ranks when one exits

    def finalize(self):
        pass
