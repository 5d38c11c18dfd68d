"""PyTorch's ``torch.utils`` place: ``gpugrad.utils.data`` (Dataset, TensorDataset, DataLoader)."""
from . import data

__all__ = ["data"]
