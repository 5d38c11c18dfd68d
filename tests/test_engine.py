"""The backward engine: ordering, accumulation, freeing, memory, deep graphs, gradient checks."""
import gc
import tracemalloc

import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from conftest import T


def test_gradients_add_at_branches(device):
    x = T(3.0, device)
    y = x * x + x * 2 + x  # dy/dx = 2x + 3
    y.backward()
    assert x.grad.item() == 9.0


def test_leaf_gradients_accumulate_until_reset(device):
    x = T([1.0, 2.0], device)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_diamond_graph_visits_each_node_once(device):
    x = T(2.0, device)
    a = x * 3
    b = a.exp()
    c = a * a
    (b + c).backward()
    # d/dx [exp(3x) + 9x^2] = 3 exp(3x) + 18 x
    assert x.grad.item() == pytest.approx(3 * np.exp(6) + 36)


def test_ten_thousand_deep_graph_has_no_recursion_limit():
    x = T(1.0)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000)


def test_backward_twice_needs_retain_graph(device):
    x = T([1.0, 2.0], device)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_mse_backward_in_place_and_with_retain_graph(device, reduction):
    # The loss scales its saved difference in place when the graph is freed after backward, and
    # into a fresh array when retain_graph keeps it: both give 2 (p - t) (/ n for the mean).
    p_np, t_np = np.array([[1.0, -2.0], [0.5, 3.0]]), np.array([[0.0, 1.0], [2.0, 3.0]])
    expected = 2 * (p_np - t_np) / (p_np.size if reduction == "mean" else 1)
    pred, target = T(p_np, device), T(t_np, device)
    loss = F.mse_loss(pred, target, reduction=reduction)
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(pred.grad.numpy(), expected, rtol=1e-15)
    loss.backward()  # the saved difference was not scaled by the first call
    np.testing.assert_allclose(pred.grad.numpy(), 2 * expected, rtol=1e-15)
    np.testing.assert_allclose(target.grad.numpy(), -2 * expected, rtol=1e-15)
    pred.grad = target.grad = None
    (F.mse_loss(pred, target, reduction=reduction) * 3).backward()  # an upstream gradient of 3
    np.testing.assert_allclose(pred.grad.numpy(), 3 * expected, rtol=1e-15)
    np.testing.assert_allclose(target.grad.numpy(), -3 * expected, rtol=1e-15)


def test_saved_arrays_are_freed_after_backward():
    x = T(np.ones(3))
    y = x.exp()
    function = y.creator
    y.sum().backward()
    assert function.saved is not None and not isinstance(function.saved, np.ndarray)


def test_backward_on_non_scalar_needs_grad(device):
    x = T([1.0, 2.0], device)
    with pytest.raises(RuntimeError, match=r"scalar output, got shape \(2,\)"):
        (x * 2).backward()
    (x * 2).backward(gpugrad.ones(2, dtype=np.float64, device=device))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_requires_grad_on_integers_is_a_type_error():
    with pytest.raises(TypeError, match="floating-point.*int64"):
        gpugrad.tensor(np.array([1, 2]), requires_grad=True)


def test_matmul_shape_mismatch_names_both_shapes(device):
    a, b = gpugrad.zeros(2, 3, device=device), gpugrad.zeros(4, 5, device=device)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        a @ b


def test_wrong_gradient_shape_names_the_op():
    class BadShape(gpugrad.Function):
        def forward(self, x):
            return x.sum()

        def backward(self, grad_output):
            return np.ones((5, 1, 257, 80))

    x = T(np.ones((257, 80)))
    with pytest.raises(RuntimeError, match=r"BadShape returned a gradient of shape \(5, 1, 257, 80\).*\(257, 80\)"):
        BadShape()(x).backward()


def test_wrong_gradient_dtype_names_the_op():
    class BadDtype(gpugrad.Function):
        def forward(self, x):
            return x * 2

        def backward(self, grad_output):
            return grad_output.astype(np.float32)

    with pytest.raises(RuntimeError, match="BadDtype.*float32.*float64"):
        BadDtype()(T([1.0])).sum().backward()


def test_no_grad_records_nothing_and_restores(device):
    x = T([1.0], device)
    with gpugrad.no_grad():
        y = x * 2
        with gpugrad.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.creator is None
    assert z.requires_grad
    assert gpugrad.is_grad_enabled()

    @gpugrad.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad


def test_no_grad_decorator_nests_through_recursion():
    @gpugrad.no_grad()
    def depth(n):
        assert not gpugrad.is_grad_enabled()
        if n:
            depth(n - 1)
            assert not gpugrad.is_grad_enabled()
        return n

    with gpugrad.enable_grad():
        depth(3)
        assert gpugrad.is_grad_enabled()


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with gpugrad.no_grad():
            1 / 0
    assert gpugrad.is_grad_enabled()


def test_inplace_update_of_a_leaf_needs_no_grad():
    w = T([1.0])
    with pytest.raises(RuntimeError, match="no_grad"):
        w -= 1.0
    with gpugrad.no_grad():
        w -= 1.0
    assert w.item() == 0.0


def test_only_needed_gradients_are_computed():
    x = gpugrad.tensor(np.ones((4, 3)))  # data, no grad
    w = T(np.ones((3, 2)))
    (x @ w).sum().backward()
    assert x.grad is None and w.grad is not None


def _training_step(X, labels, W1, b1, W2, b2):
    h = F.linear(X, W1, b1, activation="relu")
    loss = F.cross_entropy(F.linear(h, W2, b2), labels)
    for p in (W1, b1, W2, b2):
        p.grad = None
    loss.backward()
    with gpugrad.no_grad():
        for p in (W1, b1, W2, b2):
            p -= 0.01 * p.grad
    return loss


def test_graph_has_no_cycles_memory_stays_flat_over_1000_steps():
    rng = np.random.default_rng(0)
    X = gpugrad.tensor(rng.standard_normal((32, 20)).astype(np.float32))
    labels = rng.integers(0, 5, 32)
    params = [T(rng.standard_normal(s) * 0.1, dtype=np.float32) for s in ((16, 20), (16,), (5, 16), (5,))]
    gc.collect()
    gc.disable()
    try:
        tracemalloc.start()
        for _ in range(2000):  # tracemalloc's own tables settle first
            _training_step(X, labels, *params)
        objects_before = len(gc.get_objects())
        bytes_before, _ = tracemalloc.get_traced_memory()
        for _ in range(1000):
            _training_step(X, labels, *params)
        bytes_after, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(gc.get_objects()) - objects_before < 10, "objects pile up: the graph holds a cycle"
        assert bytes_after - bytes_before < 32 * 1024, f"memory grew by {bytes_after - bytes_before} bytes"
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_graph_is_freed_by_reference_counting_alone():
    import weakref
    gc.disable()
    try:
        x = T(np.ones(3))
        y = (x.exp() * 2).sum()
        ref = weakref.ref(y.creator)
        y.backward()
        del y
        assert ref() is None
    finally:
        gc.enable()


def test_leaf_gradients_are_writeable_and_leave_the_unit_gradient_alone():
    x = T(np.ones(3))
    x.reshape(3, 1).sum().backward()  # the gradient reaches x as a view of a broadcast
    assert x.grad.data.base is None and x.grad.data.flags.writeable
    x.grad.data[...] = 0  # zeroing in place must neither fail nor touch the graph's arrays
    y = T(2.0)
    y.backward()
    y.grad.data[...] = 5
    z = T(2.0)
    z.backward()
    assert z.grad.item() == 1.0


def test_leaf_gradients_own_their_memory():
    # Add passes its upstream gradient straight through and reshape returns a view of it: each
    # leaf's .grad must still be an array of its own, not the caller's grad nor another leaf's.
    x, w = T(np.ones((2, 2))), T(np.ones((2, 2)))
    g = np.arange(4.0).reshape(2, 2)
    (x + w).backward(gpugrad.tensor(g))
    assert not np.shares_memory(x.grad.data, g) and not np.shares_memory(w.grad.data, g)
    assert not np.shares_memory(x.grad.data, w.grad.data)
    v = T(np.ones(4))
    v.reshape(2, 2).backward(gpugrad.tensor(g))
    assert v.grad.data.base is None and not np.shares_memory(v.grad.data, g)
    np.testing.assert_array_equal(v.grad.numpy(), g.reshape(4))


# -- the recording and the backward loop ----------------------------------------------------------

def test_function_call_takes_no_keyword_arguments():
    with pytest.raises(TypeError, match="keyword"):
        gpugrad.ops.arith.Mul()(T(1.0), other=T(2.0))


def test_several_outputs_are_one_node_and_each_output_gets_its_gradient():
    class SplitHalves(gpugrad.Function):
        def forward(self, x):
            return x[:2] * 2, x[2:] * 3

        def backward(self, g_low, g_high):
            return np.concatenate([g_low * 2, g_high * 3])

    x = T(np.arange(4.0))
    low, high = SplitHalves()(x)
    assert low.creator is high.creator and low.requires_grad and high.requires_grad
    (low.sum() + high.sum() * 10).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 30, 30])
    only_low, _ = SplitHalves()(T(np.arange(4.0)))
    y = only_low.creator.inputs[0]
    only_low.sum().backward()  # the unused output gets a zero gradient
    np.testing.assert_array_equal(y.grad.numpy(), [2, 2, 0, 0])


def test_zero_d_results_are_arrays_and_need_no_grad_is_not_recorded():
    a, b = T(2.0), T(3.0, requires_grad=False)
    y = a * b
    assert type(y.data) is np.ndarray and y.shape == () and y.creator is not None
    z = b * b
    assert type(z.data) is np.ndarray and z.creator is None and not z.requires_grad


def test_a_failing_forward_records_nothing_and_the_graph_still_works():
    class Fails(gpugrad.Function):
        def forward(self, x):
            raise ValueError("Fails: on purpose")

    x = T(np.ones(3))
    with pytest.raises(ValueError, match="on purpose"):
        Fails()(x)
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])



def test_arrays_of_another_type_take_the_same_call_and_backward():
    # NOTE: an ndarray subclass stands in for another array type (CuPy's on the GPU): one engine for all.
    class Foreign(np.ndarray):
        pass

    x = gpugrad.Tensor(np.arange(3.0).view(Foreign), requires_grad=True)
    w = gpugrad.Tensor(np.full(3, 2.0).view(Foreign), requires_grad=True)
    y = (x * w + x * x).sum()
    assert type(y.data) is Foreign and y.creator is not None
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2.0 + 2 * np.arange(3.0))
    np.testing.assert_array_equal(w.grad.numpy(), np.arange(3.0))

def test_a_training_step_leaks_no_references():
    import sys
    rng = np.random.default_rng(0)
    X, Y = gpugrad.tensor(rng.standard_normal((8, 5))), gpugrad.tensor(rng.standard_normal((8, 3)))
    params = [T(rng.standard_normal(s) * 0.1) for s in ((5, 4), (4, 3))]
    opt = gpugrad.optim.SGD(params, lr=0.1)

    def step():  # the lecture's step: two-input ops on the data and the weights
        loss = F.mse_loss(F.sigmoid(X @ params[0]) @ params[1], Y, reduction="sum")
        opt.zero_grad()
        loss.backward()
        opt.step()

    def references():
        return [sys.getrefcount(a) for a in (X, X.data, Y, Y.data, *params, *[p.data for p in params])]

    step()
    opt.zero_grad()
    before = references()
    for _ in range(200):
        step()
    opt.zero_grad()
    assert references() == before
