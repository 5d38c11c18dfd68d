"""``DistributedDataParallel``: one model replica per rank, gradients averaged over the ranks.

As PyTorch's DDP: rank 0's parameters and buffers are broadcast at construction; parameters go into
buckets of about ``bucket_cap_mb`` (in reverse order of registration, roughly the order backward
finishes them); when every gradient of a bucket is final, the bucket is copied into one flat buffer
and its all-reduce (mean) starts, non-blocking, while backward goes on; the end of backward waits
for what is still in flight and copies the averages back into ``.grad``. A gradient is final when
its parameter has received as many contributions as in the previous backward (learned on the first
one; a parameter used twice gets two); should one arrive after its bucket started, the bucket is
reduced again at the end, so a changing graph costs time, never correctness. ``no_sync()`` skips
the reduction (gradient accumulation); the next backward outside it reduces the sums. Inside
``gpugrad.compile`` each bucket's start and the final wait are replayed as calls at the same points.
"""
from __future__ import annotations

import contextlib
import weakref

from .. import autograd, distributed
from ..dtypes import DEFAULT_FLOAT, LOW_FLOATS
from .module import Module


class _Bucket:
    def __init__(self, params, xp):
        self.params = params
        dtype = params[0].dtype
        self.dtype = DEFAULT_FLOAT if dtype in LOW_FLOATS else dtype  # low-precision gradients reduced in float32
        self.slots, total = [], 0
        for p in params:
            self.slots.append((total, total + p.numel()))
            total += p.numel()
        with p.backend.device_context():
            self.flat = xp.zeros(total, dtype=self.dtype)
        self.handle = None


class DistributedDataParallel(Module):
    """Wrap ``module``; call it as the module. ``comm``: a communicator (default ``gpugrad.distributed.get_world()``);
    ``overlap=False`` starts every bucket at the end of backward instead (the same result)."""

    def __init__(self, module: Module, bucket_cap_mb: float = 25, comm=None, overlap: bool = True):
        super().__init__()
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb}")
        self.module = module
        comm = comm or distributed.get_world()
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise ValueError("DistributedDataParallel: the module has no parameter that requires grad")
        with autograd.no_grad():
            for tensor in params + [b for _, b in module.named_buffers()]:
                comm.broadcast(tensor.data, 0)
                autograd.mark_changed(tensor)
        buckets, current, size, cap = [], [], 0, bucket_cap_mb * 2 ** 20
        for p in reversed(params):
            if current and (size + p.data.nbytes > cap or p.dtype != current[0].dtype or p.backend is not current[0].backend):
                buckets.append(current)
                current, size = [], 0
            current.append(p)
            size += p.data.nbytes
        buckets.append(current)
        state = self.__dict__
        state["_comm"], state["_overlap"], state["_sync"] = comm, bool(overlap), True
        state["_buckets"] = [_Bucket(b, b[0].backend.xp) for b in buckets]
        state["_where"] = {id(p): (i, j) for i, b in enumerate(self._buckets) for j, p in enumerate(b.params)}
        state["_expected"] = {id(p): 1 for p in params}
        state["_seen"], state["_started"] = {}, {}
        ready, finish = weakref.WeakMethod(self._ready), weakref.WeakMethod(self._finish)
        hooks = {id(p): (lambda t, ready=ready: ready()(t)) for p in params}
        end = (lambda: finish()())
        autograd.features.gradient_hooks.update(hooks)
        autograd.features.backward_end_hooks.append(end)
        weakref.finalize(self, _unhook, list(hooks), end)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward inside accumulates local gradients only; the first backward after it reduces them."""
        previous, self.__dict__["_sync"] = self._sync, False
        try:
            yield
        finally:
            self.__dict__["_sync"] = previous

    # -- called by the engine ---------------------------------------------------------------------
    def _ready(self, tensor):
        if not self._sync:
            return
        key = id(tensor)
        count = self._seen[key] = self._seen.get(key, 0) + 1
        if not self._overlap or count != self._expected[key]:
            return
        index = self._where[key][0]
        bucket = self._buckets[index]
        if index not in self._started and all(self._seen.get(id(p), 0) >= self._expected[id(p)] for p in bucket.params):
            self._started[index] = {id(p): self._seen.get(id(p), 0) for p in bucket.params}
            self._call(lambda: self._start(bucket))

    def _finish(self):
        if not self._seen:
            return  # a backward through none of this model's parameters
        seen, started = self._seen, self._started
        self.__dict__["_seen"], self.__dict__["_started"] = {}, {}
        if not self._sync:
            return
        again = [i for i, counts in started.items() if any(seen.get(k, 0) != n for k, n in counts.items())]
        plan = [(i in started, i in again or i not in started) for i in range(len(self._buckets))]
        self._expected.update({id(p): seen.get(id(p), 0) for b in self._buckets for p in b.params})
        self._call(lambda: self._complete(plan))

    def _call(self, fn):
        if not autograd.replayed_call(fn, self):  # inside gpugrad.compile: at this point of every replay
            fn()

    # -- the communication ----------------------------------------------------------------------
    def _start(self, bucket):
        for p, (start, stop) in zip(bucket.params, bucket.slots):
            if p.grad is None:
                bucket.flat[start:stop] = 0
            else:
                bucket.flat[start:stop] = p.grad.data.reshape(-1)
        bucket.handle = self._comm.all_reduce_async(bucket.flat, op="mean")

    def _complete(self, plan):
        for bucket, (was_started, start) in zip(self._buckets, plan):
            if was_started and start:  # a gradient came after its bucket started: reduce it again
                bucket.handle.wait()
            if start:
                self._start(bucket)
        for bucket in self._buckets:
            bucket.handle.wait()
            bucket.handle = None
            for p, (start, stop) in zip(bucket.params, bucket.slots):
                values = bucket.flat[start:stop].reshape(p.shape)
                if p.grad is None:
                    p.grad = type(p)._make(values.astype(p.dtype, copy=True), False)
                else:
                    p.grad.data[...] = values


def _unhook(keys, end):
    for key in keys:
        autograd.features.gradient_hooks.pop(key, None)
    if end in autograd.features.backward_end_hooks:
        autograd.features.backward_end_hooks.remove(end)
