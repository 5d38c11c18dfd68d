"""CUDA stream capture, as the stand-in does it: while a stream captures, every operation on device arrays
(ufuncs, numpy functions, the array methods that compute or write, kernel launches, cuBLAS calls, zero and
one fills) still runs, so that the Python code sees arrays of the right shapes, and is also recorded; when
the capture ends, every device array that existed before it gets back the values it had (on a GPU nothing
runs while a stream captures), and the graph's launch runs the recorded operations again, in order, each
writing where it wrote during the capture. A host-to-device copy while capturing is refused, as CUDA
refuses it."""
import weakref

import numpy as np

OWNERS = weakref.WeakValueDictionary()  # id -> device arrays that own their memory (or wrap a host array that does)
STATE = {"ops": None, "snapshot": None, "depth": 0, "kept": None}


def capturing() -> bool:
    return STATE["ops"] is not None


def recording() -> bool:
    return STATE["ops"] is not None and STATE["depth"] == 0


def record(operation) -> None:
    """Keep ``operation`` (a no-argument call that redoes one write) for the graph's launches."""
    STATE["ops"].append(operation)


class quiet:
    """Inside one recorded operation: the operations it makes are part of it, not recorded again."""

    def __enter__(self):
        STATE["depth"] += 1

    def __exit__(self, *exc):
        STATE["depth"] -= 1
        return False


def begin() -> None:
    if capturing():
        raise RuntimeError("cupy stand-in: a stream is already capturing")
    STATE["snapshot"] = [(array, np.array(array.view(np.ndarray), copy=True)) for array in list(OWNERS.values())]
    STATE["ops"], STATE["kept"] = [], []


def keep(array) -> None:
    """A graph keeps the memory it writes through raw pointers (cuBLAS's), as a capture's pool does."""
    if capturing():
        STATE["kept"].append(array)


def end() -> list:
    operations, snapshot = STATE["ops"], STATE["snapshot"]
    operations.append(STATE["kept"].copy)  # held by the graph's operations: a no-op when launched
    STATE["ops"] = STATE["snapshot"] = STATE["kept"] = None
    for array, values in snapshot:  # nothing ran while capturing: what existed before is as it was
        if array.flags.writeable:
            array.view(np.ndarray)[...] = values
    return operations


def refuse_host_copy(what: str) -> None:
    if capturing():
        raise RuntimeError(f"cupy stand-in: {what} (a host-to-device copy) while a stream captures")


def plain(value):
    """The array as numpy's own type (what numpy's implementations get), anything else as it is."""
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
        return value.view(np.ndarray)
    if isinstance(value, (tuple, list)):
        return type(value)(plain(v) for v in value)
    return value


def copy_back(target, value) -> None:
    """Write a recomputed result into the array the capture returned for it (where it is its own memory)."""
    if isinstance(target, tuple):
        for t, v in zip(target, value):
            copy_back(t, v)
        return
    if not isinstance(target, np.ndarray) or not target.flags.writeable:
        return
    if isinstance(value, np.ndarray) and np.shares_memory(plain(target), plain(value)):
        return
    plain(target)[...] = plain(value)
