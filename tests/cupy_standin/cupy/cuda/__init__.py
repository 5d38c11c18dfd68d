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
_current = []


class Event:
    def record(self, stream=None): return self
    def synchronize(self): pass


class Graph:
    def launch(self, stream=None): pass


class Stream:
    def __init__(self, null=False, non_blocking=False): self.ptr, self._capturing = 1234, False
    def __enter__(self): _current.append(self); return self
    def __exit__(self, *a): _current.pop(); return False
    def record(self, event=None): return Event()
    def wait_event(self, event): pass
    def begin_capture(self, mode=None): self._capturing = True
    def end_capture(self): self._capturing = False; return Graph()
    def is_capturing(self): return self._capturing
    def synchronize(self): pass


_null = Stream()


def get_current_stream(): return _current[-1] if _current else _null


class MemoryPool:
    def malloc(self, n):
        class _P: ptr = 0
        return _P()
    def used_bytes(self): return 0


def get_allocator(): return None


@_contextlib.contextmanager
def using_allocator(allocator=None): yield
