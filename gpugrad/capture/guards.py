"""Guards: the Python-level state a captured step read, checked before every replay (``torch.compile``'s idea).

A capture notes the modules its step called (with their sub-modules), the leaf tensors its ops read or its
in-place changes wrote, the optimizers whose step it
replays, grad mode and autocast. After the capture it keeps, of each: a module's ``training`` flag (and its
parameters and buffers); a leaf tensor's array (its identity: ``p.data = ...``, ``load_state_dict`` that
rebinds, ``.to()`` are seen) and ``requires_grad``; an optimizer's parameter groups (which groups, which
parameters) and their structural hyperparameters (``arguments(group)``'s switches: momentum on or off,
Nesterov, centered, decoupled weight decay), and on a GPU, where its kernels join the graph, the identity of
its state arrays. ``failing()`` names the first guard that no longer holds (None: replay); the step is then
captured again under the new state.
"""
from __future__ import annotations

import weakref

from ..amp import get_autocast_dtype, is_autocast_enabled
from ..grad_mode import is_grad_enabled


class Guards:
    def __init__(self, backend):
        self.on_gpu = backend.kind != "cpu"
        self.grad_enabled = is_grad_enabled()
        self.autocast = (is_autocast_enabled(), get_autocast_dtype())
        self._read: dict = {}  # id(leaf tensor) -> weakref, as the ops read them
        self._called: dict = {}  # id(module) -> module
        self.modules, self.tensors, self.optimizers = (), (), ()

    # -- while capturing (the capture protocol's read and module) --------------------------------
    def read(self, tensors) -> None:
        read = self._read
        for t in tensors:
            if t.creator is None and id(t) not in read:
                read[id(t)] = weakref.ref(t)

    def module(self, module) -> None:
        self._called[id(module)] = module

    # -- after it: what the guards compare ---------------------------------------------------------
    def seal(self, optimizers, exclude) -> None:
        """Keep the state the guards compare, as the capture left it; ``exclude``: ids of the capture's own input
        tensors (copied into its buffers at every call: never guarded)."""
        modules = {}  # the called modules and everything under them (a Sequential runs some layers fused, uncalled)
        for called in self._called.values():
            for module in called.modules():
                modules.setdefault(id(module), module)
        self.modules = tuple((m, bool(m.training)) for m in modules.values())
        refs = dict(self._read)
        for module in modules.values():
            for t in [*module._parameters.values(), *module._buffers.values()]:
                if t is not None:
                    refs.setdefault(id(t), weakref.ref(t))
        self.tensors = tuple((ref, t.data, t.requires_grad) for key, ref in refs.items()
                             if key not in exclude and (t := ref()) is not None)
        self.optimizers = tuple((opt, tuple(self._group(opt, g) for g in opt.param_groups), len(opt.param_groups))
                                for opt in optimizers)
        self._read, self._called = {}, {}

    def _group(self, opt, group):
        arrays = ()
        if self.on_gpu:  # a GPU graph holds the state arrays' addresses
            arrays = tuple(v for p in group["params"] for v in opt.state.get(p, {}).values() if hasattr(v, "shape"))
        return group, group["params"], len(group["params"]), opt.arguments(group)[1], arrays

    def failing(self):
        """None if every guard holds, else what changed (a few words, for the warning of a step that keeps
        failing its guards)."""
        if is_grad_enabled() is not self.grad_enabled:
            return "grad mode (gpugrad.no_grad / enable_grad / set_grad_enabled)"
        if (is_autocast_enabled(), get_autocast_dtype()) != self.autocast:
            return "autocast (entered, left, or another dtype)"
        for module, training in self.modules:
            if module.training is not training and bool(module.training) is not training:  # (1 / 0 set by hand)
                return f"{type(module).__name__}.training (train() / eval())"
        for ref, data, requires_grad in self.tensors:
            t = ref()
            if t is not None:
                if t.data is not data:
                    return f"the array of a tensor of shape {tuple(data.shape)} (.data =, .to(), load_state_dict)"
                if t.requires_grad is not requires_grad:
                    return f"requires_grad of a tensor of shape {tuple(data.shape)}"
        for opt, groups, count in self.optimizers:
            name = type(opt).__name__
            if len(opt.param_groups) != count:
                return f"{name}'s parameter groups (add_param_group)"
            for (group, params, size, switches, arrays), now in zip(groups, opt.param_groups):
                if now is not group or group["params"] is not params or len(params) != size:
                    return f"{name}'s parameter groups (which parameters)"
                if opt.arguments(group)[1] != switches:
                    return f"{name}'s structural hyperparameters (momentum on or off, nesterov, centered, decoupling)"
                if arrays and not self._state_holds(opt, params, arrays):
                    return f"{name}'s state arrays (load_state_dict, a new optimizer state)"
        return None

    @staticmethod
    def _state_holds(opt, params, arrays) -> bool:
        now = tuple(v for p in params for v in opt.state.get(p, {}).values() if hasattr(v, "shape"))
        return len(now) == len(arrays) and all(a is b for a, b in zip(now, arrays))
