"""gpugrad.nn and gpugrad.optim: registration, state dicts, devices, and optimizer steps by hand."""
import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from gpugrad import nn, optim


def _param(values, device):
    return nn.Parameter(gpugrad.tensor(np.asarray(values, dtype=np.float64), device=device))


def _set_grad(p, values):
    p.grad = gpugrad.tensor(np.asarray(values, dtype=np.float64), device=p.device)


def test_sgd_plain_and_weight_decay(device):
    p = _param([1.0, -2.0], device)
    opt = optim.SGD([p], lr=0.1, weight_decay=0.5)
    _set_grad(p, [0.5, 1.0])
    opt.step()
    # d = g + 0.5 p = [1.0, 0.0]; p -= 0.1 d
    np.testing.assert_allclose(p.numpy(), [0.9, -2.0], rtol=1e-15)


def test_sgd_momentum_and_nesterov(device):
    for nesterov, expected in ((False, [1 - 0.1 * 1.0 - 0.1 * 1.9]), (True, [1 - 0.1 * 1.9 - 0.1 * 2.71])):
        p = _param([1.0], device)
        opt = optim.SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov)
        _set_grad(p, [1.0])
        opt.step()  # buf = 1; d = buf (1) or g + 0.9 buf (1.9)
        _set_grad(p, [1.0])
        opt.step()  # buf = 0.9 + 1 = 1.9; d = 1.9 or 1 + 0.9 * 1.9 = 2.71
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-14)


def test_adam_first_steps_by_hand(device):
    p = _param([1.0, -1.0], device)
    opt = optim.Adam([p], lr=0.1)
    _set_grad(p, [0.5, -2.0])
    opt.step()
    # t = 1: m_hat = g, v_hat = g^2 -> step = lr * g / (|g| + eps) = 0.1 sign(g)
    np.testing.assert_allclose(p.numpy(), [1 - 0.1 * 0.5 / (0.5 + 1e-8), -1 + 0.1 * 2 / (2 + 1e-8)], rtol=1e-12)
    _set_grad(p, [0.5, -2.0])
    opt.step()
    m = 0.9 * 0.1 * np.array([0.5, -2.0]) + 0.1 * np.array([0.5, -2.0])
    v = 0.999 * 0.001 * np.array([0.25, 4.0]) + 0.001 * np.array([0.25, 4.0])
    step2 = 0.1 / (1 - 0.9 ** 2) * m / (np.sqrt(v) / np.sqrt(1 - 0.999 ** 2) + 1e-8)
    first = np.array([1 - 0.1 * 0.5 / (0.5 + 1e-8), -1 + 0.1 * 2 / (2 + 1e-8)])
    np.testing.assert_allclose(p.numpy(), first - step2, rtol=1e-12)


def test_adamw_decouples_weight_decay(device):
    p, q = _param([2.0], device), _param([2.0], device)
    adamw = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    adam_l2 = optim.Adam([q], lr=0.1, weight_decay=0.5)
    _set_grad(p, [1.0])
    _set_grad(q, [1.0])
    adamw.step()
    adam_l2.step()
    np.testing.assert_allclose(p.numpy(), [2.0 * (1 - 0.05) - 0.1 / (1 + 1e-8)], rtol=1e-14)  # decay, then Adam's step
    np.testing.assert_allclose(q.numpy(), [2.0 - 0.1 * 2 / (2 + 1e-8)], rtol=1e-14)  # L2: g + wd p = 2


def test_optimizer_updates_many_parameters_in_one_call(device):
    params = [_param(np.full(n, 1.0), device) for n in (3, 1, 1000, 7, 2, 5, 4, 9, 11, 6)]  # > 8: two launches
    opt = optim.SGD(params, lr=0.5, momentum=0.5)
    for _ in range(2):
        for p in params:
            _set_grad(p, np.ones(p.shape))
        opt.step()
    for p in params:
        np.testing.assert_allclose(p.numpy(), 1 - 0.5 - 0.5 * 1.5)


def test_optimizer_state_dict_round_trip(device):
    p = _param([1.0, 2.0], device)
    opt = optim.Adam([p], lr=0.01)
    _set_grad(p, [1.0, 1.0])
    opt.step()
    saved = opt.state_dict()
    q = _param(p.numpy(), device)
    opt2 = optim.Adam([q], lr=0.5)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.01
    for o, param in ((opt, p), (opt2, q)):
        _set_grad(param, [1.0, -1.0])
        o.step()
    np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-15)


def test_zero_grad():
    p = _param([1.0], "cpu")
    opt = optim.SGD([p], lr=0.1)
    _set_grad(p, [3.0])
    opt.zero_grad(set_to_none=False)
    assert p.grad.numpy().tolist() == [0.0]
    opt.zero_grad()
    assert p.grad is None


def test_optimizer_arguments_are_checked():
    p = _param([1.0], "cpu")
    with pytest.raises(ValueError, match=r"SGD: lr must be a finite number in \(0, inf\), got 0.0"):
        optim.SGD([p], lr=0)
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Adam: betas\[0\] must be a finite number in \[0, 1\), got 1.0"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)


def test_module_registration_and_names():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
            self.scale = nn.Parameter(gpugrad.ones(1))
            self.not_a_param = gpugrad.ones(1)

    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"]
    assert len(net.parameters()) == 5
    assert "Linear(in_features=4, out_features=3, bias=True)" in repr(net)
    net.eval()
    assert not net.body.training
    net.train()
    assert net.body[0].training


def test_linear_matches_pytorch_layout_and_init_bounds():
    gpugrad.manual_seed(0)
    layer = nn.Linear(100, 7)
    assert layer.weight.shape == (7, 100) and layer.bias.shape == (7,)
    bound = 1 / np.sqrt(100)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.weight.numpy()).max() > 0.9 * bound
    x = gpugrad.randn(5, 100)
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-5)


def test_state_dict_round_trip_and_strict_errors():
    a, b = nn.MLP([4, 8, 2]), nn.MLP([4, 8, 2])
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    sd = a.state_dict()
    del sd["0.bias"]
    sd["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['0.bias'\]; unexpected keys \['extra'\]"):
        b.load_state_dict(sd)
    result = b.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    with pytest.raises(ValueError, match=r"0.weight has shape \(3, 3\) in the state dict and \(8, 4\)"):
        b.load_state_dict({"0.weight": np.zeros((3, 3))}, strict=False)


def test_sequential_fuses_linear_and_activation_with_the_same_result(device):
    gpugrad.manual_seed(0)
    model = nn.MLP([6, 5, 4], activation="sigmoid", device=device)
    x = gpugrad.randn(3, 6, device=device)
    fused = model(x)
    unfused = model[2](model[1](model[0](x)))
    assert fused.creator.name == "Linear" and fused.creator.inputs[0].creator.activation == "sigmoid"
    np.testing.assert_allclose(fused.numpy(), unfused.numpy(), rtol=1e-6)


def test_maxout_and_activation_modules(device):
    gpugrad.manual_seed(0)
    layer = nn.Maxout(4, 3, pieces=2, device=device)
    x = gpugrad.randn(5, 4, device=device)
    assert layer(x).shape == (5, 3)
    for module in (nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(), nn.Softmax()):
        assert module(x).shape == (5, 4)


def test_init_functions():
    gpugrad.manual_seed(0)
    w = gpugrad.zeros(200, 300)
    nn.init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() <= np.sqrt(6 / 500)
    nn.init.he_normal_(w)
    assert abs(w.numpy().std() - np.sqrt(2 / 300)) < 0.01
    nn.init.constant_(w, 0.5)
    assert (w.numpy() == 0.5).all()
    nn.init.zeros_(w)
    assert not w.numpy().any()
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(gpugrad.zeros(3))


def test_mlp_arguments_are_checked():
    with pytest.raises(ValueError, match="MLP: activation must be one of"):
        nn.MLP([2, 3], activation="swish")
    with pytest.raises(ValueError, match="MLP: sizes must be at least two positive integers"):
        nn.MLP([2])


def test_loss_modules(device):
    gpugrad.manual_seed(0)
    scores = gpugrad.randn(4, 3, device=device)
    labels = np.array([0, 1, 2, 1])
    assert nn.CrossEntropyLoss()(scores, labels).item() == pytest.approx(F.cross_entropy(scores, labels).item())
    assert nn.SVMLoss()(scores, labels).item() >= 0
    assert nn.MSELoss()(scores, scores).item() == 0


def test_module_to_moves_parameters_in_place(cuda):
    model = nn.MLP([3, 4, 2])
    params = model.parameters()
    opt = optim.SGD(params, lr=0.1)
    model.to(cuda)
    assert all(p.device == "cuda:0" for p in model.parameters())
    assert model.parameters()[0] is params[0]
    loss = F.cross_entropy(model(gpugrad.randn(2, 3, device=cuda)), np.array([0, 1]))
    loss.backward()
    opt.step()
