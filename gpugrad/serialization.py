"""``gpugrad.save`` / ``gpugrad.load``: tensors, arrays and numbers in nested dicts and lists, as .npz.

Files are read with ``allow_pickle=False``: loading never runs code. Nesting is stored as
slash-separated keys plus a small JSON description of the structure.
"""
from __future__ import annotations

import json

import numpy as np

from .tensor import Tensor

_STRUCTURE = "__gpugrad_structure__"


def _flatten(obj, prefix, arrays):
    if isinstance(obj, dict):
        return {"dict": [[str(k), _flatten(v, f"{prefix}{k}/", arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"list" if isinstance(obj, list) else "tuple": [_flatten(v, f"{prefix}{i}/", arrays) for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    key = prefix.rstrip("/") or "value"
    if isinstance(obj, Tensor):
        arrays[key] = obj.numpy()
        return {"tensor": key}
    array = obj.get() if hasattr(obj, "get") and not isinstance(obj, np.ndarray) else np.asarray(obj)
    if array.dtype == object:
        raise TypeError(f"gpugrad.save: cannot store {type(obj).__name__} at {key!r} (numbers, arrays and tensors only)")
    arrays[key] = array
    return {"array": key}


def _rebuild(node, archive):
    if "dict" in node:
        return {k: _rebuild(v, archive) for k, v in node["dict"]}
    if "list" in node:
        return [_rebuild(v, archive) for v in node["list"]]
    if "tuple" in node:
        return tuple(_rebuild(v, archive) for v in node["tuple"])
    if "value" in node:
        return node["value"]
    if "tensor" in node:
        return Tensor(archive[node["tensor"]].copy())
    return archive[node["array"]].copy()


def save(obj, path) -> None:
    """Write ``obj`` (a state dict, an optimizer state, nested dicts and lists of tensors/arrays/numbers)."""
    arrays: dict = {}
    structure = _flatten(obj, "", arrays)
    arrays[_STRUCTURE] = np.array(json.dumps(structure))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load(path):
    """Read what ``save`` wrote; tensors come back on the CPU (move them with ``.to``)."""
    with np.load(path, allow_pickle=False) as archive:
        if _STRUCTURE not in archive.files:
            return {k: Tensor(archive[k].copy()) for k in archive.files}  # a plain .npz of arrays
        return _rebuild(json.loads(str(archive[_STRUCTURE])), archive)
