import numpy as _np
class RandomState:
    def __init__(self, seed): self.r = _np.random.default_rng(seed)
    def standard_normal(self, shape, dtype=_np.float64):
        import cupy; return cupy._wrap(self.r.standard_normal(shape).astype(dtype))
    def random_sample(self, shape, dtype=_np.float64):
        import cupy; return cupy._wrap(self.r.random(shape).astype(dtype))
    def permutation(self, n):
        import cupy; return cupy._wrap(self.r.permutation(n))
    def randint(self, low, high=None, size=None, dtype=int):
        import cupy; return cupy._wrap(_np.asarray(self.r.integers(low, high, size), dtype=dtype))


def random(size=None, dtype=float):
    import cupy; return cupy._wrap(_np.random.default_rng().random(size).astype(dtype))
