"""``cupyx.distributed`` (``cupyx/distributed/_init.py``, ``_nccl_comm.py``): one process's communicator whose
collectives leave the array as it is (a world of one), refusing, as CuPy's NCCL backend does, the dtypes NCCL is not
given (``_nccl_dtypes``: no bool, no bfloat16), non-contiguous arrays, unknown ops, and host (numpy) arrays, whose
``.data`` is a memoryview without the ``.ptr`` that ``_DenseNCCLCommunicator`` hands to NCCL (AttributeError). ``init_process_group``'s
``use_mpi`` is kept in ``_LAST`` for tests."""
_NCCL_DTYPES = "bBiIlLqQefdFD"
_LAST = {}


def _check(array):
    if array.dtype.char not in _NCCL_DTYPES:
        raise TypeError(f"Unknown dtype {array.dtype} for NCCL")
    if not array.flags.c_contiguous and not array.flags.f_contiguous:
        raise RuntimeError("NCCL requires arrays to be either c- or f-contiguous")


class _Comm:
    def all_reduce(self, in_array, out_array, op="sum", stream=None):
        if op not in ("sum", "prod", "max", "min"):
            raise RuntimeError(f"Unknown op {op} for NCCL")
        _check(in_array)
        _check(out_array)
        in_array.data.ptr, out_array.data.ptr  # noqa: B018 -- as CuPy reads them: a numpy array has no .ptr

    def broadcast(self, in_out_array, root=0, stream=None):
        _check(in_out_array)
        in_out_array.data.ptr  # noqa: B018

    def barrier(self): pass


def init_process_group(n_devices, rank, *, backend="nccl", host=None, port=None, use_mpi=False):
    assert backend == "nccl" and n_devices >= 1
    _LAST.update(n_devices=n_devices, rank=rank, use_mpi=use_mpi)
    return _Comm()
