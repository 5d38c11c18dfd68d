"""``torch.nn.functional``'s place: the functions of ``gpugrad.functional`` under the name PyTorch uses."""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
