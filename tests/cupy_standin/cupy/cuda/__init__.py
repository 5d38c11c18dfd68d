from . import runtime, cublas, compiler, memory, device  # noqa
class Device:
    def __init__(self, i=0): self.attributes = {"MultiProcessorCount": 132}; self.id = i
    def __enter__(self): return self
    def __exit__(self, *a): return False
    def synchronize(self): pass
    def use(self): pass
def set_allocator(f): pass

# -- added for the capture smoke test: streams, graphs, pools, allocators (no-ops on the CPU) --
import contextlib as _contextlib
import numpy as _np
_current = []


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False): self._time = None
    def record(self, stream=None):
        import time
        self._time = time.perf_counter()
        return self
    def synchronize(self): pass


def get_elapsed_time(start_event, end_event):  # milliseconds, as cupy.cuda.get_elapsed_time (stream.pyx)
    return (end_event._time - start_event._time) * 1e3


class Graph:
    def __init__(self, operations): self.operations = operations
    def launch(self, stream=None):
        import cupy
        with cupy._internal():  # the stand-in's own numpy, redone
            for operation in self.operations:
                operation()


import itertools as _itertools
import weakref as _weakref
_streams = _weakref.WeakValueDictionary()  # pointer -> stream (cuBLAS's stand-ins look up the stream a handle runs on)
_stream_ids = _itertools.count(0x7000)


class Stream:
    def __init__(self, null=False, non_blocking=False):
        self.ptr, self._capturing = (0 if null else next(_stream_ids)), False
        _streams[self.ptr] = self
    def __enter__(self): _current.append(self); return self
    def __exit__(self, *a): _current.pop(); return False
    def record(self, event=None): return Event()
    def wait_event(self, event): pass
    def begin_capture(self, mode=None):
        from .. import _graphs
        _graphs.begin()
        self._capturing = True
    def end_capture(self):
        from .. import _graphs
        self._capturing = False
        return Graph(_graphs.end())
    def is_capturing(self): return self._capturing
    def synchronize(self):
        if self._capturing:  # cudaStreamSynchronize on a capturing stream: cudaErrorStreamCaptureUnsupported
            raise RuntimeError("cupy stand-in: synchronize() of a stream that captures")


_null = Stream(null=True)


def get_current_stream(): return _current[-1] if _current else _null


_allocators = []  # using_allocator's, innermost last
_next = [None]  # the address of the array whose memory the stand-in's pool "allocates" now (None: a plain malloc)


class _Memory:  # a MemoryPointer: a plain malloc gets memory of its own (a workspace, scratch operands)
    def __init__(self, size):
        if _next[0] is None:
            self._buffer = _np.empty(max(size, 1) + 255, _np.uint8)
            self.ptr = (self._buffer.ctypes.data + 255) // 256 * 256  # aligned as CuPy's pool aligns
        else:
            self.ptr = _next[0]


class MemoryPool:
    def malloc(self, n): return _Memory(n)
    def used_bytes(self): return 0


def get_allocator(): return None


@_contextlib.contextmanager
def using_allocator(allocator=None):
    _allocators.append(allocator)  # called for each new array's memory (cupy/__init__.py, __array_finalize__)
    try:
        yield
    finally:
        _allocators.pop()
