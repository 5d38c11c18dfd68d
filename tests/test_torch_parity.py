"""nn + optim against torch.nn and torch.optim with copied weights: every optimizer variant, every
activation, each loss, ten steps in float64."""
import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from gpugrad import nn, optim

torch = pytest.importorskip("torch")

OPTIMIZERS = {
    "sgd": (lambda p: optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd-momentum": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "sgd-dampening": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3),
                      lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3)),
    "sgd-nesterov": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "sgd-weight-decay": (lambda p: optim.SGD(p, lr=0.1, weight_decay=0.01),
                         lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01)),
    "sgd-momentum-weight-decay": (lambda p: optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01),
                                  lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01)),
    "adam": (lambda p: optim.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam-l2": (lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
                lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adamw": (lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    "rmsprop": (lambda p: optim.RMSprop(p, lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    "rmsprop-centered-momentum": (
        lambda p: optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    "adagrad": (lambda p: optim.Adagrad(p, lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "adagrad-decay": (lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1),
                      lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.01,
                                                    initial_accumulator_value=0.1)),
}
ACTIVATIONS = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh,
               "leaky_relu": torch.nn.LeakyReLU, "elu": torch.nn.ELU}


def _pair(activation, sizes=(6, 8, 8, 3)):
    ours = nn.MLP(sizes, activation=activation).double()
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out).double())
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    theirs = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for (name, p), (torch_name, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert name == torch_name
            q.copy_(torch.from_numpy(p.numpy()))
    return ours, theirs


def _losses(name, out, labels, torch_out, torch_labels):
    if name == "cross_entropy":
        return F.cross_entropy(out, labels), torch.nn.functional.cross_entropy(torch_out, torch_labels)
    if name == "mse":
        target = np.eye(out.shape[1])[labels]
        return F.mse_loss(out, gpugrad.tensor(target)), torch.nn.functional.mse_loss(torch_out, torch.from_numpy(target))
    # NOTE: PyTorch's multi_margin_loss divides each sample's sum by the number of classes; ours does not.
    return (F.svm_loss(out, labels),
            torch.nn.functional.multi_margin_loss(torch_out, torch_labels) * out.shape[1])


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("activation,loss", [("relu", "cross_entropy"), ("sigmoid", "mse"), ("tanh", "svm"),
                                             ("leaky_relu", "cross_entropy"), ("elu", "cross_entropy")])
def test_training_steps_equal_pytorch(optimizer, activation, loss):
    gpugrad.manual_seed(0)
    ours, theirs = _pair(activation)
    make_ours, make_theirs = OPTIMIZERS[optimizer]
    opt, torch_opt = make_ours(ours.parameters()), make_theirs(theirs.parameters())
    rng = np.random.default_rng(1)
    for step in range(10):
        x = rng.standard_normal((16, 6))
        labels = rng.integers(0, 3, 16)
        value, torch_value = _losses(loss, ours(gpugrad.tensor(x)), labels, theirs(torch.from_numpy(x)),
                                     torch.from_numpy(labels))
        np.testing.assert_allclose(value.item(), torch_value.item(), rtol=1e-10, err_msg=f"loss at step {step}")
        opt.zero_grad()
        value.backward()
        opt.step()
        torch_opt.zero_grad()
        torch_value.backward()
        torch_opt.step()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam", "rmsprop-centered-momentum", "adagrad-decay"])
def test_optimizer_state_dict_keys_and_steps_match_torch(optimizer):
    ours, theirs = _pair("relu")
    make_ours, make_theirs = OPTIMIZERS[optimizer]
    opt, torch_opt = make_ours(ours.parameters()), make_theirs(theirs.parameters())
    x = np.random.default_rng(2).standard_normal((4, 6))
    for _ in range(3):
        for model, o, tensor in ((ours, opt, gpugrad.tensor), (theirs, torch_opt, torch.from_numpy)):
            o.zero_grad()
            model(tensor(x)).sum().backward()
            o.step()
    state, torch_state = opt.state_dict(), torch_opt.state_dict()
    assert sorted(state["state"]) == sorted(torch_state["state"])
    for i, entry in state["state"].items():
        assert sorted(entry) == sorted(torch_state["state"][i]), optimizer
        for key, value in entry.items():
            np.testing.assert_allclose(np.asarray(value, dtype=np.float64), torch_state["state"][i][key].numpy(),
                                       rtol=1e-9, atol=1e-12, err_msg=f"{optimizer} {key}")
