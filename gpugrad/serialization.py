"""``gpugrad.save`` / ``gpugrad.load``: tensors, arrays and numbers in nested dicts, lists and tuples, as .npz.

Files are read with ``allow_pickle=False``: loading never runs code. A state dict (a flat dict of string keys
to tensors) is stored under its own keys, as any npz reader expects. Anything else: each array under a
generated name (``a0``, ``a1``, ...) and the nesting as a small JSON description in one more entry, so no key
can collide with another or with the description. Dict keys may be str, int,
float, bool or None and come back with their type. ``save`` writes a temporary file beside the
target and renames it over the target: a crash never leaves half a checkpoint.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from .backend import is_host_array
from .tensor import Tensor

_STRUCTURE = "__gpugrad_structure__"
_FORMAT = 2
_KEY_TYPES = {str: "str", int: "int", float: "float", bool: "bool", type(None): "none"}


class CheckpointError(ValueError):
    """A file that ``gpugrad.load`` cannot read: not an .npz, truncated, or written by something else."""


def _encode_key(key, where):
    tag = _KEY_TYPES.get(type(key))
    if tag is None:
        raise TypeError(f"gpugrad.save: dict key {key!r} at {where or 'the top level'} is a {type(key).__name__}; "
                        "keys must be str, int, float, bool or None")
    if tag == "float" and not math.isfinite(key):
        return [tag, repr(key)]
    return [tag, key]


def _decode_key(pair):
    tag, key = pair
    return float(key) if tag == "float" else key


def _flatten(obj, where, arrays):
    if isinstance(obj, dict):
        return {"dict": [[_encode_key(k, where), _flatten(v, f"{where}[{k!r}]", arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_flatten(v, f"{where}[{i}]", arrays) for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, str)):
        return {"value": obj}
    if isinstance(obj, float):
        return {"float": repr(obj)}  # repr keeps nan and inf, which JSON cannot hold
    name = f"a{len(arrays)}"
    if isinstance(obj, Tensor):
        arrays[name] = obj.numpy()
        return {"tensor": name, "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, np.generic):
        array, kind = np.asarray(obj), "scalar"
    elif is_host_array(obj):
        array, kind = obj, "array"
    elif type(obj).__module__.startswith("cupy"):
        array, kind = obj.get(), "array"
    else:
        raise TypeError(f"gpugrad.save: cannot store a {type(obj).__name__} at {where or 'the top level'} "
                        "(dicts, lists, tuples, None, bools, numbers, strings, arrays and tensors only)")
    if array.dtype.kind not in "biufc":
        raise TypeError(f"gpugrad.save: cannot store an array of dtype {array.dtype} at {where or 'the top level'}")
    arrays[name] = array
    return {kind: name}


def _rebuild(node, archive, path):
    if "dict" in node:
        # NOTE: format 1 (gpugrad 0.1's first files) stored plain string keys
        return {(_decode_key(k) if isinstance(k, list) else k): _rebuild(v, archive, path) for k, v in node["dict"]}
    if "list" in node:
        return [_rebuild(v, archive, path) for v in node["list"]]
    if "tuple" in node:
        return tuple(_rebuild(v, archive, path) for v in node["tuple"])
    if "value" in node:
        return node["value"]
    if "float" in node:
        return float(node["float"])
    for kind in ("tensor", "array", "scalar"):
        if kind in node:
            name = node[kind]
            if name not in archive.files:
                raise CheckpointError(f"gpugrad.load: {path} is damaged: its index names {name!r}, which is missing")
            array = archive[name]
            if kind == "tensor":
                return Tensor(array.copy(), requires_grad=node.get("requires_grad", False))
            return array[()] if kind == "scalar" else array.copy()
    raise CheckpointError(f"gpugrad.load: {path} has an index entry gpugrad does not know: {node!r:.80}")


def save(obj, path) -> None:
    """Write ``obj`` (a state dict, an optimizer state, nested dicts/lists/tuples of tensors, arrays,
    numbers and strings) to ``path``, atomically. Anything else is refused before a byte is written. A path
    ending in ``.safetensors`` is written by the ``safetensors`` package (a flat dict of tensors only)."""
    if Path(path).suffix == ".safetensors":
        return _save_safetensors(obj, path)
    if _plain_state_dict(obj):  # a state dict: its own keys, no index (numpy and any npz reader see them)
        arrays = {key: tensor.numpy() for key, tensor in obj.items()}
    else:
        arrays = {}
        structure = _flatten(obj, "", arrays)
        arrays[_STRUCTURE] = np.array(json.dumps({"format": _FORMAT, "root": structure}))
    write_atomically(path, lambda f: np.savez(f, **arrays), "gpugrad.save")


def _save_safetensors(obj, path) -> None:
    if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())):
        raise TypeError(f"gpugrad.save: a .safetensors file holds a flat dict of string keys to tensors (a state dict); "
                        f"got {type(obj).__name__} for {path} (save anything else as .npz)")
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise ImportError("gpugrad.save: .safetensors files need the safetensors package: pip install "
                          "'gpugrad[safetensors]'") from None
    arrays = {key: np.ascontiguousarray(tensor.numpy()) for key, tensor in obj.items()}
    temporary = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")
    try:
        save_file(arrays, str(temporary))
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _load_safetensors(path):
    """A .safetensors file as a dict of CPU tensors (read through safetensors' memory map; never pickle)."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise ImportError("gpugrad.load: .safetensors files need the safetensors package: pip install "
                          "'gpugrad[safetensors]'") from None
    try:
        with safe_open(str(path), framework="numpy") as f:
            return {key: Tensor(f.get_tensor(key)) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"gpugrad.load: cannot read {path} as .safetensors ({error})") from None


def _plain_state_dict(obj) -> bool:
    """A non-empty flat dict of string keys to tensors that need no gradient (what ``state_dict()`` returns),
    which loads back as it was from the arrays alone."""
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and k and not k.startswith("__gpugrad") and isinstance(v, Tensor) and not v.requires_grad
        for k, v in obj.items())


def write_atomically(path, write, op="write") -> None:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then rename it over ``path``: a
    crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise type(error)(error.errno, f"{op}: cannot write {path} ({error.strerror})") from None
    finally:
        if temporary.exists():
            temporary.unlink()


def _describe(path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array, not an .npz archive (read it with numpy.load)"
    if head.startswith(b"PK"):
        return "a damaged or truncated zip archive"
    if head[:1] == b"\x80":
        return "a pickle (perhaps an old PyTorch checkpoint): gpugrad reads only .npz files, never pickles"
    return "not an .npz archive"


def load(path):
    """Read what ``save`` wrote (or a plain .npz of arrays, or a .safetensors file); tensors come back on the CPU."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"gpugrad.load: {path} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"gpugrad.load: no such file: {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise CheckpointError(f"gpugrad.load: cannot read {path}: {_describe(path)}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(f"gpugrad.load: cannot read {path}: {_describe(path)}")
    with archive:
        files = archive.files
        foreign = [n for n in archive.zip.namelist() if not n.endswith(".npy")]
        if foreign:
            hint = " (a PyTorch .pt checkpoint: load it with torch.load and convert the tensors)" \
                if any(n.endswith("data.pkl") for n in foreign) else ""
            raise CheckpointError(f"gpugrad.load: {path} is a zip archive but not an .npz of arrays: it holds "
                                  f"{foreign[:3]}{hint}")
        try:
            if _STRUCTURE not in files:
                return {k: Tensor(archive[k].copy()) for k in files}  # a plain .npz of arrays
            index = json.loads(str(archive[_STRUCTURE]))
            if isinstance(index, dict) and "format" not in index:
                return _rebuild(index, archive, path)  # format 1: the structure itself
            if not isinstance(index, dict) or index.get("format") != _FORMAT:
                raise CheckpointError(f"gpugrad.load: {path} was written in a format this gpugrad does not read "
                                      f"({index.get('format') if isinstance(index, dict) else index!r:.40})")
            return _rebuild(index["root"], archive, path)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
            if isinstance(error, CheckpointError):
                raise
            raise CheckpointError(f"gpugrad.load: {path} is damaged ({type(error).__name__}: {error})") from None
