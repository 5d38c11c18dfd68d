"""GELU, SiLU, Softplus, Dropout, LayerNorm, BatchNorm1d and Embedding: gradient-checked in float64 and
compared with torch.nn on copied weights, in train and eval mode, on every device."""
import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from gpugrad import nn
from conftest import T

rng = np.random.default_rng(11)


@pytest.mark.parametrize("make", [lambda x: F.gelu(x), lambda x: F.gelu(x, approximate="tanh"), F.silu,
                                  lambda x: F.softplus(x, beta=2.0, threshold=3.0)],
                         ids=["gelu", "gelu-tanh", "silu", "softplus"])
def test_input_saving_activations_gradcheck(device, make):
    x = T(rng.uniform(-3, 3, (3, 4)), device)
    x.data[0, 0] = 1.0  # away from softplus's threshold kink at beta x = 3
    assert gpugrad.gradcheck(make, [x])


def test_layer_and_batch_norm_gradcheck(device):
    x = T(rng.standard_normal((5, 3, 4)), device)
    w, b = T(rng.standard_normal(4), device), T(rng.standard_normal(4), device)
    assert gpugrad.gradcheck(lambda x, w, b: F.layer_norm(x, 4, w, b), [x, w, b])
    assert gpugrad.gradcheck(lambda x: F.layer_norm(x, (3, 4)), [x])
    cw, cb = T(rng.standard_normal(3), device), T(rng.standard_normal(3), device)
    assert gpugrad.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, cw, cb])
    mean, var = T(rng.standard_normal(3), device, requires_grad=False), T(rng.uniform(0.5, 2, 3), device, requires_grad=False)
    assert gpugrad.gradcheck(lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False), [x, cw, cb])


def test_embedding_gradcheck_and_padding(device):
    weight = T(rng.standard_normal((6, 3)), device)
    indices = np.array([[1, 5, 1], [0, 2, 1]])
    assert gpugrad.gradcheck(lambda w: F.embedding(indices, w), [weight])
    weight.grad = None
    F.embedding(indices, weight, padding_idx=1).sum().backward()
    grad = weight.grad.numpy()
    assert grad[1].tolist() == [0, 0, 0] and grad[0].tolist() == [1, 1, 1] and grad[3].tolist() == [0, 0, 0]
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 6\)"):
        F.embedding(np.array([6]), weight)


def test_layers_match_torch_in_train_and_eval_mode(device):
    torch = pytest.importorskip("torch")
    gpugrad.manual_seed(0)
    ours = nn.Sequential(nn.Linear(6, 8, dtype=np.float64), nn.BatchNorm1d(8, dtype=np.float64),
                         nn.GELU(approximate="tanh"), nn.Linear(8, 8, dtype=np.float64), nn.SiLU(),
                         nn.LayerNorm(8, dtype=np.float64), nn.Softplus(), nn.Linear(8, 3, dtype=np.float64)).to(device)
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.GELU(approximate="tanh"),
                                 torch.nn.Linear(8, 8), torch.nn.SiLU(), torch.nn.LayerNorm(8), torch.nn.Softplus(),
                                 torch.nn.Linear(8, 3)).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    opt, torch_opt = gpugrad.optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    for step in range(5):  # training: batch statistics, running statistics updated, SGD
        x = rng.standard_normal((16, 6))
        labels = rng.integers(0, 3, 16)
        loss = F.cross_entropy(ours(gpugrad.tensor(x, device=device)), labels)
        torch_loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(labels))
        assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-10)
        for o, t in ((opt, torch_opt),):
            o.zero_grad()
            t.zero_grad()
        loss.backward()
        torch_loss.backward()
        opt.step()
        torch_opt.step()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((4, 6))
    np.testing.assert_allclose(ours(gpugrad.tensor(x, device=device)).numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-9, atol=1e-12)


def test_dropout_train_eval_and_seeded(device):
    torch = pytest.importorskip("torch")
    layer = nn.Dropout(0.25)
    x = gpugrad.ones(200, 50, device=device, requires_grad=True)
    gpugrad.manual_seed(5)
    y = layer(x)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.02 and np.allclose(y.numpy()[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.numpy())  # dx = mask / (1 - p)
    gpugrad.manual_seed(5)
    assert (layer(x).numpy() == y.numpy()).all(), "the same seed gives the same mask"
    assert (layer(x).numpy() != y.numpy()).any(), "the next call draws a new mask"
    layer.eval()
    assert layer(x) is x
    assert F.dropout(x, 1.0).numpy().sum() == 0
    with pytest.raises(ValueError, match="dropout: p must be a number in \\[0, 1\\], got 1.5"):
        nn.Dropout(1.5)
    reference = torch.nn.Dropout(0.25).eval()
    assert torch.equal(reference(torch.ones(3)), torch.ones(3))  # the same eval semantics


@pytest.mark.parametrize("activation,param", [("relu", {}), ("sigmoid", {}), ("tanh", {}),
                                              ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.7})])
def test_an_activation_and_the_dropout_after_it_run_as_one_op(device, activation, param):
    """F.dropout(x, p, activation=...) (and Sequential(act, Dropout) in training) equals the activation then
    the dropout, with the same mask; its gradient too; in eval mode it is the activation alone."""
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(8).standard_normal((64, 33))
    x, t = T(values, device), torch.tensor(values, requires_grad=True)
    gpugrad.manual_seed(4)
    y = F.dropout(x, 0.3, activation=activation, **param)
    assert y.creator.name.endswith("+Dropout")
    mask = y.creator.saved[0].get() if device == "cuda" else y.creator.saved[0]
    theirs = getattr(torch.nn.functional, activation)(t, *param.values()) * torch.tensor(mask)
    np.testing.assert_allclose(y.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-15)
    upstream = np.random.default_rng(9).standard_normal(values.shape)
    y.backward(gpugrad.tensor(upstream, device=device))
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    module = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}
    model = nn.Sequential(nn.LayerNorm(33), module[activation](**param), nn.Dropout(0.3)).to(device).double()
    gpugrad.manual_seed(4)
    fused = model(x)
    assert fused.creator.name.endswith("+Dropout")
    gpugrad.manual_seed(4)
    np.testing.assert_array_equal(fused.numpy(), model[2](model[1](model[0](x))).numpy())
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), model[1](model[0](x)).numpy())
    assert F.dropout(x, 0.3, training=False, activation=activation, **param).creator.name != "Dropout"


def test_embedding_layer_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Embedding(7, 4, padding_idx=2, dtype=np.float64), torch.nn.Embedding(7, 4, padding_idx=2).double()
    assert ours.weight.numpy()[2].tolist() == [0, 0, 0, 0]
    theirs.load_state_dict({"weight": torch.from_numpy(ours.weight.numpy())})
    indices = np.array([[2, 3, 3], [6, 0, 2]])
    upstream = rng.standard_normal((2, 3, 4))
    out, torch_out = ours(indices), theirs(torch.from_numpy(indices))
    out.backward(gpugrad.tensor(upstream))
    torch_out.backward(torch.from_numpy(upstream))
    np.testing.assert_array_equal(out.numpy(), torch_out.detach().numpy())
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)
