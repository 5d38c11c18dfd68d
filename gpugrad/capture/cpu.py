"""The CPU side of ``gpugrad.compile``: a tape of numpy calls replayed into fixed buffers.

While a step is captured, the engine hands each op ``Traced`` views of its arrays. A numpy operation
with a Traced operand runs on the plain arrays, is recorded as (call, arguments) with its result's
buffer passed as ``out=``, and hands back a Traced view of that buffer; so do array creations and
random draws through the CPU device. A replay makes the same calls in the same order into the same
buffers: no Tensors, no graph, no allocation (except numpy functions without ``out=``, whose result
is copied into its buffer). Views need no record: they share their buffer's memory. An operation
that would make an array the tape cannot record, or read a value on the host, raises.
"""
from __future__ import annotations

import operator

import numpy as np

from ..autograd import CaptureError, HostReadError

_tape = None  # the Tape recording now, or None

# numpy functions whose result can be written into a given buffer (out=); the others are recomputed
# at replay and copied into their buffer.
_WITH_OUT = {np.sum, np.mean, np.max, np.min, np.amax, np.amin, np.prod, np.cumsum, np.clip, np.einsum, np.dot,
             np.concatenate, np.stack, np.take, np.argmax, np.argmin, np.round, np.around}
# numpy functions that tell about an array's layout, not its values
_STRUCTURAL = {np.shape, np.ndim, np.size, np.may_share_memory, np.shares_memory, np.iscomplexobj, np.isrealobj}


def _plain(x):
    return x.view(np.ndarray) if type(x) is Traced else x


def _unwrap(obj):
    kind = type(obj)
    if kind is Traced:
        return obj.view(np.ndarray)
    if kind is tuple or kind is list:
        return kind(_unwrap(o) for o in obj)
    if kind is dict:
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


def _arrays_in(obj):
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _arrays_in(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _arrays_in(item)


def _root(array):
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _recompute(func, args, kwargs, targets):
    """A numpy function without out=: compute it again and copy each new result into its buffer."""
    result = func(*args, **kwargs)
    results = result if isinstance(result, (tuple, list)) else (result,)
    for i, buffer in targets:
        np.copyto(buffer, results[i])


def _take_item(buffer, source, key):
    np.copyto(buffer, source[key])


def _draw(backend, kind, buffer, work):
    getattr(backend.rng, kind)(dtype=work.dtype, out=work)
    if work is not buffer:
        np.copyto(buffer, work, casting="unsafe")


def _recording():
    tape = _tape
    return tape if tape is not None and not tape.paused else None


class Traced(np.ndarray):
    """An array of a step being captured: numpy operations on it are recorded on the tape."""

    def __array_finalize__(self, obj):
        if isinstance(obj, np.ndarray) and _recording() is not None and not np.may_share_memory(self, obj):
            raise CaptureError(
                "gpugrad.compile: an array operation in the captured step made a new array that the CPU replay "
                "cannot record (an ndarray method without a numpy function or ufunc behind it; the traceback "
                "shows where). Run the step eagerly (gpugrad.compile(fn, enabled=False)) or write it with ufuncs")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(_plain(x) for x in inputs)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        call = getattr(ufunc, method)
        result = call(*inputs, **kwargs)
        tape = _recording()
        if method == "at":
            if tape is not None:
                tape.add(call, inputs, kwargs, writes=inputs[:1])
            return None
        if out is not None:  # the caller's own objects back: `a -= b` rebinds a to what this returns
            if tape is not None:
                tape.add(call, inputs, kwargs, writes=kwargs["out"])
            return out[0] if len(out) == 1 else out
        if tape is None:
            return result
        results = result if isinstance(result, tuple) else (result,)
        buffers = tuple(tape.buffer(r) for r in results)
        kwargs["out"] = buffers
        tape.add(call, inputs, kwargs)
        views = tuple(b.view(Traced) for b in buffers)
        return views if isinstance(result, tuple) else views[0]

    def __array_function__(self, func, types, args, kwargs):
        args, kwargs = _unwrap(args), _unwrap(kwargs)
        result = func(*args, **kwargs)
        tape = _recording()
        return result if tape is None else tape.function(func, args, kwargs, result)

    # -- ndarray methods that make new arrays: through the numpy function, or recorded here --------
    def copy(self, order="C"):
        source = self.view(np.ndarray)
        result = source.copy(order)
        tape = _recording()
        if tape is None:
            return result
        tape.add(np.copyto, (tape.buffer(result), source), {})
        return result.view(Traced)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        source = self.view(np.ndarray)
        result = source.astype(dtype, order=order, casting=casting, copy=copy)
        tape = _recording()
        if result is source or tape is None:
            return self if result is source else result
        tape.add(np.copyto, (tape.buffer(result), source), {"casting": "unsafe"})
        return result.view(Traced)

    def __getitem__(self, key):
        source, key = self.view(np.ndarray), _unwrap(key)
        result = source[key]
        tape = _recording()
        if tape is None or not isinstance(result, (np.ndarray, np.generic)):
            return result
        if isinstance(result, np.ndarray) and np.may_share_memory(result, source):
            return result.view(Traced)
        buffer = tape.buffer(result)
        tape.add(_take_item, (buffer, source, key), {})
        return buffer.view(Traced)

    def __setitem__(self, key, value):
        target, key, value = self.view(np.ndarray), _unwrap(key), _unwrap(value)
        target[key] = value
        tape = _recording()
        if tape is not None:
            tape.add(operator.setitem, (target, key, value), {}, writes=(target,))

    def fill(self, value):
        target = self.view(np.ndarray)
        target.fill(value)
        tape = _recording()
        if tape is not None:
            tape.add(target.fill, (value,), {}, writes=(target,))

    def reshape(self, *shape, order="C"):
        return np.reshape(self, shape[0] if len(shape) == 1 else shape, order=order)

    def flatten(self, order="C"):
        return np.ravel(self, order).copy()

    # -- reading values on the host: refused while recording -----------------------------------------
    def _host(self, what):
        if _recording() is not None:
            raise HostReadError(
                f"gpugrad.compile: {what} of an array inside the captured step reads its value on the host, so a "
                "replay would reuse the value read at capture time (Python control flow on a tensor's value is "
                "one such read). Read it after the step, or run the step eagerly (gpugrad.compile(fn, enabled=False))")
        return self.view(np.ndarray)

    def __bool__(self):
        return bool(self._host("bool()"))

    def __float__(self):
        return float(self._host("float()"))

    def __int__(self):
        return int(self._host("int()"))

    def __index__(self):
        return operator.index(self._host("use as an index"))

    def item(self, *args):
        return self._host(".item()").item(*args)

    def tolist(self):
        return self._host(".tolist()").tolist()

    def __array__(self, dtype=None, copy=None):
        array = self._host("conversion to a numpy array")
        return array if dtype is None and not copy else np.array(array, dtype=dtype, copy=True)


def _through_function(name):
    function = getattr(np, name)

    def method(self, *args, **kwargs):
        return function(self, *args, **kwargs)
    method.__name__ = name
    return method


for _name in ("argmax", "argmin", "argsort", "take", "repeat", "dot", "nonzero", "sum", "mean", "max", "min", "prod",
              "cumsum", "cumprod", "any", "all", "clip", "round", "var", "std", "ravel", "trace", "diagonal"):
    setattr(Traced, _name, _through_function(_name))


class _Numpy:
    """numpy as the CPU device hands it out while a step is captured: creations are recorded."""

    def __init__(self, tape):
        self._tape = tape

    def __getattr__(self, name):
        return getattr(np, name)

    def _filled(self, array, value):
        if self._tape.paused:  # an optimizer's own state: not part of the tape
            return array
        buffer = self._tape.buffer(array)
        self._tape.add(buffer.fill, (value,), {})
        return buffer.view(Traced)

    def zeros(self, shape, dtype=float, order="C"):
        return self._filled(np.zeros(shape, dtype, order), 0)

    def ones(self, shape, dtype=None, order="C"):
        return self._filled(np.ones(shape, dtype, order), 1)

    def full(self, shape, fill_value, dtype=None, order="C"):
        return self._filled(np.full(shape, _plain(fill_value), dtype, order), _plain(fill_value))

    def empty(self, shape, dtype=float, order="C"):
        array = np.empty(shape, dtype, order)
        return array if self._tape.paused else self._tape.buffer(array).view(Traced)


class Tape:
    """The recorded calls of one captured CPU step, the buffers they write, and what they touch."""

    def __init__(self, backend):
        self.backend = backend
        self.steps = []  # (callable, args, kwargs), replayed in order
        self.made = {}  # id -> buffer made during the capture (kept alive here)
        self.written = {}  # id -> array from before the capture that the step writes in place
        self.paused = False

    # -- recording ----------------------------------------------------------------------------
    def buffer(self, array):
        if isinstance(array, np.generic):
            array = np.asarray(array)
        root = _root(array)  # numpy hands some new arrays out as views of a fresh base (fancy indexing)
        self.made[id(root)] = root
        self.made[id(array)] = array
        return array

    def add(self, call, args, kwargs, writes=()):
        self.steps.append((call, args, kwargs))
        for target in writes:
            root = _root(target)
            if id(root) not in self.made:
                self.written[id(root)] = root

    def function(self, func, args, kwargs, result):
        """Record a numpy function's call (``__array_function__``) and hand back Traced results."""
        if result is None:  # a function that writes into its argument (copyto, put, place, ...): call it again
            self.add(func, args, kwargs, writes=list(_arrays_in((args, kwargs)))[:1])
            return None
        single = isinstance(result, (np.ndarray, np.generic))
        if not single and not (isinstance(result, (tuple, list)) and result and
                               all(isinstance(r, (np.ndarray, np.generic)) for r in result)):
            if isinstance(result, (bool, int, float, complex)) and func not in _STRUCTURAL:
                raise HostReadError(
                    f"gpugrad.compile: numpy.{func.__name__} returned a Python value computed from an array of the "
                    "captured step: a replay would reuse it. Compute it after the step, or run the step eagerly")
            return result
        results = (result,) if single else result
        inputs = list(_arrays_in((args, kwargs)))
        new, handed = [], []
        for i, r in enumerate(results):
            if isinstance(r, np.ndarray) and any(np.may_share_memory(r, a) for a in inputs):
                handed.append(r.view(Traced))  # a view: shares its buffer's memory, nothing to record
            else:
                buffer = self.buffer(r)
                new.append((i, buffer))
                handed.append(buffer.view(Traced))
        if new:
            if single and func in _WITH_OUT:
                self.add(func, args, {**kwargs, "out": new[0][1]})
            else:
                self.add(_recompute, (func, args, kwargs, tuple(new)), {})
        return handed[0] if single else type(result)(handed)

    def random(self, kind, shape, dtype):
        """``backend.rand`` / ``randn`` while recording: each replay draws anew from the device's generator."""
        dtype = np.dtype(dtype)
        work = np.dtype(np.float32) if dtype == np.float16 else dtype
        buffer = self.buffer(np.empty(shape, dtype))
        scratch = buffer if work == dtype else np.empty(shape, work)
        _draw(self.backend, kind, buffer, scratch)
        self.add(_draw, (self.backend, kind, buffer, scratch), {})
        return buffer.view(Traced)

    def start(self):
        global _tape
        if _tape is not None:
            raise CaptureError("gpugrad.compile: a captured step called another captured step while it was captured")
        _tape = self
        backend = self.backend
        backend.xp = _Numpy(self)  # NOTE: instance attributes shadow the device's own until stop()
        backend.rand = lambda shape, dtype: self.random("random", shape, dtype)
        backend.randn = lambda shape, dtype: self.random("standard_normal", shape, dtype)

    def stop(self, failed=False):  # a failed step's tape is dropped with its capture: nothing to undo
        global _tape
        _tape = None
        for name in ("xp", "rand", "randn"):
            self.backend.__dict__.pop(name, None)

    def is_view(self, array) -> bool:
        """Whether ``array`` is a view in the eager sense: not one of the tape's buffers seen whole."""
        base = array.base
        return not (type(array) is Traced and id(base) in self.made and array.shape == base.shape
                    and array.strides == base.strides)

    def arrays(self, *arrays):
        for a in arrays:
            if not isinstance(a, np.ndarray):
                raise CaptureError(
                    f"gpugrad.compile: the step is captured for the CPU but an op got a {type(a).__module__} array; "
                    "pass the step's inputs as tensors on the device it runs on")
        return tuple(a if type(a) is Traced else a.view(Traced) for a in arrays)

    def host_call(self, fn, in_graph=None):
        """Run ``fn`` (an optimizer's update) unrecorded now, and call it again at every replay."""
        self.paused = True
        try:
            fn()
        finally:
            self.paused = False
        self.steps.append((fn, (), {}))

    def guard(self, check):  # a check that reads values: on the CPU it runs at every replay
        self.host_call(check)

    def static_copy(self, array):
        return self.buffer(np.array(array, copy=True))

    traced = staticmethod(lambda buffer: buffer.view(Traced))
    plain = staticmethod(_plain)

    def touched(self):
        """The arrays from before the capture that the step reads or writes (roots of views), by id."""
        found = dict(self.written)
        for call, args, kwargs in self.steps:
            for array in _arrays_in((args, kwargs)):
                root = _root(array)
                if id(root) not in self.made:
                    found[id(root)] = root
        return found

    # -- replaying ----------------------------------------------------------------------------
    def replay(self):
        for call, args, kwargs in self.steps:
            call(*args, **kwargs)

    copy_into = staticmethod(np.copyto)
    exact = True  # a replay equals the eager step bit for bit
    host = staticmethod(lambda array: array)

    @staticmethod
    def copy(array):
        return None if array is None else np.array(_plain(array), copy=True)

    def rng_state(self):
        return self.backend.rng.bit_generator.state

    def set_rng_state(self, state):
        self.backend.rng.bit_generator.state = state
