"""gpugrad's one data package, spelled as PyTorch's ``torch.utils.data``: ``Dataset``, ``TensorDataset``,
``Subset``, ``random_split`` and ``DataLoader`` (which keeps the whole set on its device and shuffles unless
told ``shuffle=False``); and the data sets gpugrad ships or makes locally, as train and test arrays
(``digits()``, ``mnist1d()``, ``synthetic()``, ``toy()``, ``from_file()``, ``load(name)``; torchvision's
place in PyTorch)."""
from .dataloader import DataLoader
from .dataset import Dataset, Subset, TensorDataset, random_split
from .datasets import DATASETS, Splits, digits, from_file, load, mnist1d, stratified_split, synthetic, toy

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "DataLoader", "DATASETS", "Splits", "digits",
           "mnist1d", "synthetic", "toy", "from_file", "load", "stratified_split"]
