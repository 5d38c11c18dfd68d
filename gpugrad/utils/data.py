"""``torch.utils.data``'s names: ``Dataset`` (a base class for map-style data sets), ``TensorDataset``,
and gpugrad's ``DataLoader`` (which shuffles unless told ``shuffle=False``; see ``gpugrad.data``)."""
from __future__ import annotations

from ..data import DataLoader
from ..tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "DataLoader"]


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
