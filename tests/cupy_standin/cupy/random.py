import numpy as _np
class RandomState:
    def __init__(self, seed): self.r = _np.random.default_rng(seed)
    def standard_normal(self, shape, dtype=_np.float64):
        import cupy; return cupy._wrap(self.r.standard_normal(shape).astype(dtype))
    def random_sample(self, shape, dtype=_np.float64):
        import cupy; return cupy._wrap(self.r.random(shape).astype(dtype))
    def permutation(self, n):
        import cupy; return cupy._wrap(self.r.permutation(n))
