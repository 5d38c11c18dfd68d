class _Comm:
    def all_reduce(self, a, b, op="sum", stream=None): pass
    def broadcast(self, a, root=0, stream=None): pass
    def barrier(self): pass
def init_process_group(n_devices, rank, *, backend="nccl", host=None, port=None, use_mpi=False):
    assert backend == "nccl" and n_devices >= 1
    return _Comm()
