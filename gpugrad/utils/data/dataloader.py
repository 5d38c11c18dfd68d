"""``DataLoader``: minibatches of (X, y) tensors from arrays or a map-style data set, kept on the device."""
from __future__ import annotations

import numpy as np

from ...backend import backend_of, get_backend, is_cupy_array
from ...generator import host_rng
from ...tensor import Tensor


def _materialize(dataset):
    """(X, y) arrays from a dataset object; the loader keeps the whole set on its device anyway."""
    tensors = getattr(dataset, "tensors", None)  # a TensorDataset: its two tensors as they are
    if isinstance(tensors, tuple) and len(tensors) == 2:
        return tensors
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"DataLoader: expected arrays X, y or a dataset with __len__ and __getitem__, got "
                        f"{type(dataset).__name__}")
    items = [dataset[i] for i in range(len(dataset))]
    if not items or not all(isinstance(item, (tuple, list)) and len(item) == 2 for item in items):
        raise ValueError("DataLoader: a dataset's items must be (features, label) pairs, and there must be some")
    return (np.stack([np.asarray(x) for x, _ in items]), np.stack([np.asarray(label) for _, label in items]))


class DataLoader:
    """Minibatches of (X, y) as tensors. The whole data set is copied to ``device`` once; each
    epoch slices a fresh permutation there (no per-batch host-to-device copies).

    ``DataLoader(dataset, batch_size=64)`` takes a dataset object instead (``len`` and ``[i]`` giving
    (features, label) pairs, as PyTorch's ``Dataset``); unlike PyTorch's, it shuffles by default.
    Floating-point features come out as ``dtype`` (default float32, the dtype of gpugrad's layers:
    float64 numpy data would otherwise meet float32 weights); integer labels keep theirs. Pass
    ``dtype=None`` to keep the data's own dtype.
    """

    def __init__(self, X, y=None, batch_size: int = 1, shuffle: bool = True, drop_last: bool = False, seed=None,
                 device=None, dtype=np.float32, rank: int = 0, world_size: int = 1, generator=None):
        if y is None:  # a dataset object: len() and [i] -> (features, label), as PyTorch's Dataset
            X, y = _materialize(X)
        X = X.data if isinstance(X, Tensor) else X if hasattr(X, "dtype") else np.asarray(X)
        y = y.data if isinstance(y, Tensor) else y if hasattr(y, "dtype") else np.asarray(y)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"DataLoader: batch_size must be an integer, got {batch_size!r}")
        if dtype is not None:
            dtype = np.dtype(dtype)
            X = X.astype(dtype, copy=False) if X.dtype.kind == "f" else X
            y = y.astype(dtype, copy=False) if y.dtype.kind == "f" else y
        if len(X) != len(y):
            raise ValueError(f"DataLoader: X has {len(X)} samples but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        # device None: where the data is (a TensorDataset of CUDA tensors gives CUDA batches, as PyTorch's)
        self.backend = get_backend(device) if device is not None or not is_cupy_array(X) else backend_of(X)
        self.X, self.y = _on(self.backend, X), _on(self.backend, y)
        if not (isinstance(world_size, (int, np.integer)) and isinstance(rank, (int, np.integer)) and 0 <= rank < world_size):
            raise ValueError(f"DataLoader: rank must lie in [0, world_size), got rank {rank!r}, world_size {world_size!r}")
        if world_size > 1 and shuffle and seed is None:
            raise ValueError("DataLoader: sharding over ranks needs seed= (every rank must shuffle alike)")
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.rank, self.world_size = int(rank), int(world_size)
        # NOTE: with seed= (or generator=) one stream over the epochs; without, each epoch's order is drawn from
        # gpugrad's CPU generator when it starts, as PyTorch draws from its default generator
        self.rng = None if seed is None and generator is None else host_rng(seed, generator, "DataLoader")

    def __len__(self):
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _shard_size(self) -> int:
        n, w = len(self.X), self.world_size
        return n // w if self.drop_last else -(-n // w)

    def _order(self):
        """This rank's sample indices for one epoch (None: all, in order). With several ranks, as PyTorch's
        DistributedSampler: one permutation for all ranks (the same seed), then every world_size-th sample
        from the rank's own offset; the tail is padded with the first samples again so every rank takes the
        same number of steps, or dropped with drop_last."""
        n, w = len(self.X), self.world_size
        order = (self.rng or host_rng(op="DataLoader")).permutation(n) if self.shuffle else None
        if w == 1:
            return order
        order = np.arange(n) if order is None else order
        size = self._shard_size() * w
        order = np.resize(order, size) if size > n else order[:size]
        return order[self.rank::w]

    def __iter__(self):
        order = self._order()
        n = len(self.X) if order is None else len(order)
        order = None if order is None else self.backend.asarray(order)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_last and stop - start < self.batch_size:
                break
            if order is None:  # copies, as PyTorch's batches: changing one never changes the data set
                yield Tensor._make(self.X[start:stop].copy(), False), Tensor._make(self.y[start:stop].copy(), False)
            else:
                index = order[start:stop]
                yield Tensor._make(self.X[index], False), Tensor._make(self.y[index], False)


def _on(backend, array):
    """``array`` on ``backend``'s device: a device array comes to the host by ``.get()`` (never implicitly)."""
    if backend.kind == "cpu":
        return array.get() if is_cupy_array(array) else np.asarray(array)
    return backend.asarray(array)
