"""``Module``: parameters and sub-modules that register themselves, state dicts, devices."""
from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple

import numpy as np

from .. import autograd
from ..autograd import mark_changed
from ..backend import backend_of, get_backend, is_host_array
from ..dtypes import bfloat16, is_float
from ..seam import refuse_in_capture
from ..tensor import Tensor

LoadResult = namedtuple("LoadResult", ["missing_keys", "unexpected_keys"])


class StateDictError(KeyError, ValueError):
    """``load_state_dict`` refused a state dict (keys or shapes); nothing was loaded."""

    def __str__(self):  # KeyError would print the message in quotes
        return str(self.args[0])


class Parameter(Tensor):
    """A tensor that a ``Module`` owns and an optimizer updates (``requires_grad=True``)."""

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter(" + super().__repr__() + ")"


class HookHandle:
    """What ``register_forward_hook`` / ``register_forward_pre_hook`` return: ``remove()`` takes the hook off."""
    _ids = itertools.count()

    def __init__(self, registry, hook):
        self.registry, self.id = registry, next(HookHandle._ids)
        registry[self.id] = hook

    def remove(self) -> None:
        self.registry.pop(self.id, None)


class Module:
    """Base class: attributes that are ``Parameter``s or ``Module``s are registered in order."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting {name!r}")
        if name in self._buffers:  # assigning to a registered buffer keeps it a buffer
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(value).__name__}")
            self._buffers[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
            if isinstance(value, Parameter):
                self._parameters[name] = value
            elif isinstance(value, Module):
                self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor) -> None:
        """State that is not a parameter (running statistics): in ``state_dict``, moved by ``to()``."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: a buffer name is a non-empty string without '.', got {name!r}")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"register_buffer: attribute {name!r} already exists")
        self._buffers[name] = None
        setattr(self, name, tensor)

    def apply(self, fn):
        """Call ``fn`` on every sub-module, then on this one (as PyTorch: e.g. weight initialisation)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        if autograd.features.capture is not None:  # a capture guards on the modules a step calls (train / eval)
            autograd.features.capture.module(self)
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        if autograd.features.capture is not None:
            raise autograd.CaptureError(
                f"gpugrad.compile: {type(self).__name__} has a forward hook, which would run at the capture only, "
                "not at replays; remove it inside the captured step or run the step eagerly "
                "(gpugrad.compile(fn, enabled=False))")
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_pre_hook(self, hook) -> HookHandle:
        """``hook(module, args)`` runs before each call's forward; it may return new args (PyTorch's)."""
        refuse_in_capture("register_forward_pre_hook()", "register the hook before compiling the step")
        return HookHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> HookHandle:
        """``hook(module, args, output)`` runs after each call's forward; it may return a new output (PyTorch's:
        e.g. to keep a layer's features)."""
        refuse_in_capture("register_forward_hook()", "register the hook before compiling the step")
        return HookHandle(self._forward_hooks, hook)

    def _hooked(self) -> bool:
        return bool(self._forward_pre_hooks or self._forward_hooks)

    # -- traversal ----------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (module for _, module in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def named_parameters(self, prefix=""):
        seen = set()
        for module_prefix, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{module_prefix}.{name}" if module_prefix else name), param

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for module_prefix, module in self.named_modules(prefix):
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_prefix}.{name}" if module_prefix else name), buffer

    def _named_state(self):
        """Parameters, then buffers, module by module: PyTorch's state_dict order. A module (or tensor) reached by
        two paths is listed under both names, as PyTorch's state_dict keeps both key sets."""
        state = []
        for prefix, module in self.named_modules():
            for name, value in [*module._parameters.items(), *module._buffers.items()]:
                if value is not None:
                    state.append((f"{prefix}.{name}" if prefix else name, value))
        return state

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """Parameter and buffer names -> detached tensors sharing their data."""
        return OrderedDict((name, p.detach()) for name, p in self._named_state())

    def load_state_dict(self, state_dict, strict: bool = True) -> LoadResult:
        """Copy values in by name. Every key and shape is checked first: on any mismatch (missing or
        unexpected keys with ``strict``, a shape that differs) it raises one error naming all of them
        and changes nothing."""
        own = dict(self._named_state())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        values, problems = {}, []
        for name, param in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            value = value.numpy() if isinstance(value, Tensor) else value.get() if hasattr(value, "get") and \
                not isinstance(value, dict) and not is_host_array(value) else np.asarray(value)
            if tuple(value.shape) != param.shape:
                problems.append(f"{name} has shape {tuple(value.shape)} in the state dict and {param.shape} in the model")
            elif value.dtype.kind not in "biuf":
                problems.append(f"{name} has dtype {value.dtype} in the state dict")
            values[name] = value
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if problems:
            raise StateDictError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems) +
                                 " (nothing was loaded)")
        for name, value in values.items():
            param = own[name]
            param.data[...] = param.backend.asarray(value.astype(param.dtype, copy=False))
            mark_changed(param)
        return LoadResult(missing, unexpected)

    def train(self, mode: bool = True):
        refuse_in_capture(f"{type(self).__name__}.{'train' if mode else 'eval'}()",
                          "switch modes outside the compiled step (a replay after the switch captures again)")
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, device):
        """Move every parameter to ``device`` in place (optimizers keep working on the same objects)."""
        target = get_backend(device)
        for _, p in self._named_state():
            if backend_of(p.data) is not target:
                with target.device_context():
                    p.data = target.asarray(p.backend.to_numpy(p.data))
                p.grad = None
        return self

    def astype(self, dtype):
        """Convert every floating-point parameter to ``dtype`` in place (gradients are dropped)."""
        dtype = np.dtype(dtype)
        for p in self.parameters():
            if p.dtype != dtype and is_float(p.dtype):
                p.data = p.data.astype(dtype)
                p.grad = None
                mark_changed(p)
        return self

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def half(self):
        return self.astype(np.float16)

    def bfloat16(self) -> "Module":
        return self.astype(bfloat16())

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index=0):
        return self.to(f"cuda:{index}")

    # -- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + (")" if not lines else "\n" + "\n".join(lines) + "\n)")


class Sequential(Module):
    """Modules applied in order. A module with ``fused_forward(x, following)`` runs together with the module
    after it when that returns a result: a ``Linear`` followed by an activation module (ReLU, Sigmoid, Tanh,
    LeakyReLU, ELU) is one fused op; an activation module followed by ``Dropout`` in training mode is one
    too (``F.dropout(x, p, activation=...)``)."""

    def __init__(self, *modules):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} is a {type(module).__name__}, not a Module")
            setattr(self, str(index), module)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, index):
        """A module, or a slice of them as a Sequential (sharing the modules), as PyTorch's."""
        modules = list(self._modules.values())
        return type(self)(*modules[index]) if isinstance(index, slice) else modules[index]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        # NOTE: a module whose ``fused_forward(x, following)`` returns a result runs with the next one as
        # one fused op (Linear + activation, activation + Dropout): the same values, one pass fewer.
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            module = modules[i]
            following = modules[i + 1] if i + 1 < len(modules) else None
            fused = module.fused_forward(x, following) if following is not None and hasattr(module, "fused_forward") \
                and not (module._hooked() or following._hooked()) else None  # a hooked module runs as itself
            if fused is not None:
                x = fused
                i += 2
            else:
                x = module(x)
                i += 1
        return x


class _Listed:
    """Indexing, length, iteration and ``extend`` over one registry of a module (ModuleList, ParameterList);
    the subclass gives ``append``."""
    registry = ""

    def __init__(self, items=()):
        super().__init__()
        self.extend(items)

    def extend(self, items):
        for item in items:
            self.append(item)
        return self

    def __getitem__(self, index):
        return list(getattr(self, self.registry).values())[index]

    def __len__(self):
        return len(getattr(self, self.registry))

    def __iter__(self):
        return iter(getattr(self, self.registry).values())


class ModuleList(_Listed, Module):
    """Modules in a list, registered (their parameters are the list's); indexable and iterable."""
    registry = "_modules"

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList takes modules, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self


class ParameterList(_Listed, Module):
    """Parameters in a list, registered as "0", "1", ... (tensors become Parameters); indexable and iterable."""
    registry = "_parameters"

    def append(self, parameter):
        setattr(self, str(len(self._parameters)),
                parameter if isinstance(parameter, Parameter) else Parameter(parameter))
        return self


class ModuleDict(Module):
    """Modules by name, registered; a dict's keys, values, items and ``[name]``."""

    def __init__(self, modules=None):
        super().__init__()
        for name, module in dict(modules or {}).items():
            self[name] = module

    def __setitem__(self, name, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict takes modules, got {type(module).__name__} for {name!r}")
        setattr(self, name, module)

    def __getitem__(self, name):
        return self._modules[name]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
