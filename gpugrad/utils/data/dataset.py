"""Map-style data sets as PyTorch's: ``Dataset`` (the base class), ``TensorDataset``, ``Subset``,
``random_split``."""
from __future__ import annotations

import math

import numpy as np

from ...generator import host_rng
from ...tensor import Tensor

class Dataset:
    """A map-style data set: subclasses give ``__len__`` and ``__getitem__`` (an index -> a sample)."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Samples are the i-th rows of the given tensors (of one length); the loader takes them whole."""

    def __init__(self, *tensors):
        if not tensors or not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError(f"TensorDataset: expected tensors, got {[type(t).__name__ for t in tensors]}")
        if len({len(t) for t in tensors}) != 1:
            raise ValueError(f"TensorDataset: the tensors differ in length: {[len(t) for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None, seed=None):
    """Disjoint ``Subset``s of a random permutation, of the given lengths, or fractions adding up to 1 (the
    remainder spread one by one from the first, as PyTorch). The permutation comes from ``generator`` (a
    ``gpugrad.Generator``), ``seed``, else gpugrad's CPU generator (``gpugrad.manual_seed`` makes it repeat)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1) and sum(lengths) != n:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n or any(int(k) != k or k < 0 for k in lengths):
        raise ValueError(f"random_split: lengths {lengths} do not add up to the data set's {n} samples")
    order = host_rng(seed, generator, "random_split").permutation(n)
    starts = np.cumsum([0] + [int(k) for k in lengths])
    return [Subset(dataset, order[a:b]) for a, b in zip(starts[:-1], starts[1:])]
