"""The GPU side of ``gpugrad.compile``: CUDA graphs captured from a side stream.

The step runs once under CuPy's stream capture (``Stream.begin_capture`` / ``end_capture``; nothing
executes while a stream captures, so each captured segment is launched right after it ends). An
optimizer whose fused kernel takes every parameter joins the graph: its kernels read the learning
rate and the other hyperparameters from device memory, which a refresh writes (stream-ordered, when
they changed) before every launch, and Adam's step count is counted on the device. Otherwise (a
parameter no kernel takes, a GradScaler's step, a first step that makes the state) the step ends a
segment and runs as a host call between two graphs, its fused kernel launched as in eager mode.
Memory: the graphs' arrays come from a memory pool of their own, which no other allocation uses, so
nothing outside reuses memory a graph writes. GEMMs go through a cuBLAS handle of the capture's own, called
through ``gpugrad.cuda.cublas`` (CuPy's cuBLAS bindings refuse to run while a stream captures), bound once to
the capture stream with a workspace from that pool, and each GEMM shape of the eager warm-up call runs once
on it before the capture begins. A capture that fails ends the capture, discards the graph unlaunched and
raises the step's own error. Dropout draws its mask in its kernel from a
counter in device memory, so each replay draws anew; other random draws inside a captured GPU step
are refused (CuPy's generator advances on the host: each replay would repeat the captured draws).
"""
from __future__ import annotations

import contextlib
import weakref

import cupy
from cupy.cuda import cublas

from ..autograd import CaptureError
from ..backend.cupy_backend import GEMM_ITEMSIZE, gemm
from ..cuda import cublas as capture_blas

_WORKSPACE = 32 * 1024 * 1024  # cuBLAS's recommended workspace for Hopper is 32 MiB
_tapes = weakref.WeakSet()  # live captures, whose pools gpugrad.cuda.memory_allocated counts


def pool_bytes(device: int) -> int:
    """Bytes held in the memory pools of live captured steps on ``device``."""
    return sum(t.pool.used_bytes() for t in list(_tapes) if t.backend.index == device)


def _refuse_random(*_args):
    raise CaptureError(
        "gpugrad.compile: random numbers from CuPy's generator (rand, randn, randint; dropout where its fused kernel "
        "does not apply: a non-contiguous input) inside a step captured on a GPU are not supported: a replay would "
        "repeat the captured draws. Capture the step without them, or run it eagerly (gpugrad.compile(fn, enabled=False))")


class GraphTape:
    exact = False  # within float32 rounding: the same kernels, but reductions may add in another order
    host = staticmethod(cupy.asnumpy)

    def __init__(self, backend, gemms=()):
        self.backend, self.gemms = backend, tuple(gemms)  # the GEMM signatures of the eager warm-up call
        with backend.device:
            self.pool = cupy.cuda.MemoryPool()
            self.stream = cupy.cuda.Stream(non_blocking=True)
            self.workspace = self.pool.malloc(_WORKSPACE)
            self.handle = capture_blas.create()
        # NOTE: bound once, never per GEMM: the stream first (binding a stream resets the workspace), then a workspace
        # from the capture's pool, so cuBLAS allocates nothing while the stream captures
        capture_blas.setStream(self.handle, self.stream.ptr)
        capture_blas.setWorkspace(self.handle, self.workspace.ptr, _WORKSPACE)
        capture_blas.setPointerMode(self.handle, cublas.CUBLAS_POINTER_MODE_HOST)  # alpha, beta baked into the graph
        self.steps = []  # graph launches and host calls, in order
        self.refreshers = []  # what brings the device scalars of the optimizers in the graphs up to date
        self.made = set()  # addresses of the capture's allocations (its arrays, not the caller's)
        self.seen = {}  # id -> arrays from before the capture that an op read or an in-place change wrote
        self.paused = False
        self._context = None
        _tapes.add(self)

    def __del__(self):
        try:
            capture_blas.destroy(self.handle)
        except Exception:  # interpreter shutdown
            pass

    # -- capture ------------------------------------------------------------------------------
    def start(self):
        backend = self.backend
        with contextlib.ExitStack() as stack:  # NOTE: unwound here if starting fails; else by stop()
            stack.enter_context(backend.device)
            self._outside = cupy.cuda.get_current_stream()
            self.stream.wait_event(self._outside.record())  # the capture starts after what was queued
            self._allocator = cupy.cuda.get_allocator()
            stack.enter_context(self.stream)
            self._warm_up()
            stack.enter_context(cupy.cuda.using_allocator(self._malloc))
            stack.callback(setattr, backend, "blas", backend.blas)
            stack.callback(setattr, backend, "cublas_handle", backend.cublas_handle)
            backend.blas, backend.cublas_handle = capture_blas, self.handle
            backend.rand = backend.randn = _refuse_random  # NOTE: instance attributes, removed when the capture ends
            stack.callback(lambda: [backend.__dict__.pop(name, None) for name in ("rand", "randn")])
            self.stream.begin_capture()
            self._context = stack.pop_all()

    def _warm_up(self):
        """Each GEMM shape of the warm-up call, once on the capture's handle and stream, before the capture:
        cuBLAS picks its kernels and loads them now, not inside the graph (operands: scratch memory)."""
        for shape in self.gemms:
            op_b, op_a, n, m, k, data_type, ld_b, ld_a, stride_b, stride_a, count, _ = shape
            item = GEMM_ITEMSIZE[data_type]
            span_b = stride_b * (count - 1) + ld_b * (k if op_b == cublas.CUBLAS_OP_N else n)
            span_a = stride_a * (count - 1) + ld_a * (m if op_a == cublas.CUBLAS_OP_N else k)
            b, a, out = (self.pool.malloc(max(size, 1) * item) for size in (span_b, span_a, n * m * count))
            gemm(capture_blas, self.handle, shape, b.ptr, a.ptr, out.ptr)

    def _malloc(self, size):
        memory = self.pool.malloc(size)
        self.made.add(memory.ptr)
        return memory

    def _end_segment(self):
        graph = self.stream.end_capture()
        for refresh in self.refreshers:  # not capturing now: the device scalars the graph reads can be written
            refresh()
        graph.launch(stream=self.stream)  # nothing ran while capturing: this is the capture run's real work
        self.steps.append(graph)

    def host_call(self, fn, in_graph=None):
        refresh = None if in_graph is None else in_graph()
        if refresh is not None:  # an optimizer whose kernels read their scalars from device memory: into the graph
            fn()
            self.refreshers.append(refresh)
            return
        self._end_segment()
        self.paused = True
        try:
            with cupy.cuda.using_allocator(self._allocator):  # optimizer state lives outside the graphs' pool
                fn()
        finally:
            self.paused = False
        self.steps.append(fn)
        self.stream.begin_capture()

    def guard(self, check):
        pass  # a value check would need a host read: on a GPU it is skipped inside a captured step

    def stop(self, failed=False):
        """End the capture: its last segment is launched (nothing ran while capturing), or, when the step failed,
        discarded unlaunched. Raises what ending the capture raised, after the device state is put back."""
        try:
            if self.stream.is_capturing():
                if failed:
                    self.stream.end_capture()  # NOTE: dropped, never launched: the failed step's work does not run
                else:
                    self._end_segment()
        finally:
            self._context.close()
            self._outside.wait_event(self.stream.record())  # later work waits for the capture run

    def arrays(self, *arrays):
        for array in arrays:  # what the first replay's check must restore: arrays in memory it did not allocate
            if array.data.mem.ptr not in self.made:
                root = array
                while root.base is not None:
                    root = root.base
                self.seen[id(root)] = root
        return arrays

    @staticmethod
    def is_view(array):
        return array.base is not None

    def static_copy(self, array):
        with self.backend.device, cupy.cuda.using_allocator(self._malloc):
            return array.copy()

    traced = plain = staticmethod(lambda array: array)

    # -- replay -------------------------------------------------------------------------------
    def replay(self):
        stream = cupy.cuda.get_current_stream()
        for refresh in self.refreshers:  # the learning rate a schedule set, in stream order before the graphs
            refresh()
        for step in self.steps:
            if callable(step):
                step()
            else:
                step.launch(stream=stream)

    @staticmethod
    def copy_into(target, source):
        cupy.copyto(target, source)

    @staticmethod
    def copy(array):
        return None if array is None else array.copy()

    def touched(self):
        """The arrays from before the capture that its ops read or its in-place changes (Tensor API) wrote, by id:
        the first replay's check restores them between its two runs (raw writes into other arrays are not seen)."""
        return dict(self.seen)

    def rng_state(self):  # the fused dropout's (seed, offset): the check's eager run must not move it
        state = getattr(self.backend, "dropout_state", None)
        return None if state is None else state.copy()

    def set_rng_state(self, state):
        if state is not None:
            cupy.copyto(self.backend.dropout_state, state)
