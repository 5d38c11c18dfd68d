"""NCCL through ``cupyx.distributed`` for CuPy arrays, one GPU per rank (rank i on ``cuda:local_rank``).

The rendezvous goes through MPI when mpi4py is there (``use_mpi=True``), else through CuPy's TCP store
at ``MASTER_ADDR:MASTER_PORT``. Collectives run on a stream of the communicator's own; an async
all-reduce's handle makes the current stream wait for it (no host synchronization).
"""
from __future__ import annotations

import os

import cupy

from . import DistributedError, _check_op


class _NCCLHandle:
    def __init__(self, event, array, scale):
        self.event, self.array, self.scale = event, array, scale

    def wait(self):
        if self.event is None:
            return
        cupy.cuda.get_current_stream().wait_event(self.event)
        self.event = None
        if self.scale is not None:
            self.array *= self.array.dtype.type(self.scale)


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
        try:
            import mpi4py  # noqa: F401
            use_mpi = True
        except ImportError:
            use_mpi = False
        self.comm = cupyx.distributed.init_process_group(
            size, rank, backend="nccl", host=os.environ.get("MASTER_ADDR"),
            port=int(os.environ["MASTER_PORT"]) if "MASTER_PORT" in os.environ else None, use_mpi=use_mpi)
        self.stream = cupy.cuda.Stream(non_blocking=True)

    def all_reduce_async(self, array, op="sum"):
        _check_op(op)
        self.stream.wait_event(cupy.cuda.get_current_stream().record())  # after the gradient is written
        self.comm.all_reduce(array, array, op="sum", stream=self.stream)
        return _NCCLHandle(self.stream.record(), array, 1.0 / self.size if op == "mean" else None)

    def all_reduce(self, array, op="sum"):
        self.all_reduce_async(array, op).wait()
        return array

    def broadcast(self, array, root=0):
        self.comm.broadcast(array, root, stream=cupy.cuda.get_current_stream())
        return array

    def barrier(self):
        self.comm.barrier()

    def abort(self, code=1):
        os._exit(code)  # NOTE: NCCL has no job-wide abort; the launcher ends the other ranks when one exits

    def finalize(self):
        pass
