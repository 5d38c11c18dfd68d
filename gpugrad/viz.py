"""Pictures of computational graphs, as on the lecture's slides: a node per gate and per input,
edges in the direction data flows, each edge labelled with its forward value (green, above) and,
after backward, its gradient (red, below).

    dot_text = gpugrad.viz.to_dot(f)           # Graphviz DOT
    gpugrad.viz.render(f, "graph.svg")         # SVG/PNG through `dot`, else writes graph.dot
"""
from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path

import numpy as np

from . import autograd
from .tensor import Tensor

GATE_LABELS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Pow": "**", "Square": "x²", "Neg": "-x",
               "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Abs": "abs", "MatMul": "@", "Sigmoid": "σ",
               "Tanh": "tanh", "ReLU": "relu", "Maximum": "max", "Minimum": "min", "Sum": "sum", "Mean": "mean",
               "Max": "max", "Min": "min", "Linear": "linear", "CrossEntropy": "cross-entropy"}


def format_value(array) -> str:
    """Scalars with 2-4 significant digits as on the slides; small arrays in full; others by shape."""
    array = np.asarray(array)
    if array.size == 1:
        v = float(array.reshape(()))
        if not np.isfinite(v):
            return str(v)
        if v == int(v) and abs(v) < 1e6:
            return str(int(v))
        return f"{v:.3g}"
    if array.size <= 4:
        if array.ndim > 1:
            return "[" + ", ".join(format_value(row) for row in array) + "]"
        return "[" + ", ".join(format_value(v) for v in array.ravel()) + "]"
    return f"{array.shape} {array.dtype}"


def graph_of(output: Tensor):
    """Functions and leaves reachable from ``output``, functions in the order data flows."""
    functions, leaves, seen, stack = [], [], set(), [output]
    while stack:
        t = stack.pop()
        f = t.creator
        if f is None:
            if id(t) not in seen:
                seen.add(id(t))
                leaves.append(t)
            continue
        if id(f) in seen:
            continue
        seen.add(id(f))
        functions.append(f)
        stack.extend(getattr(f, "inputs", ()))
    functions.sort(key=lambda f: f.serial)  # recording order is topological
    order = {}
    for f in functions:  # leaves in the order the gates first use them
        for t in f.inputs:
            if t.creator is None and id(t) not in order:
                order[id(t)] = len(order)
    leaves.sort(key=lambda t: order.get(id(t), len(order)))
    return functions, leaves


def gradients(output: Tensor) -> dict:
    """d(output)/d(t) for every tensor t of the graph: {id(t): array}. Needs the graph's saved
    arrays (call before backward(), or after backward(retain_graph=True)); empty when freed."""
    if output.creator is None:
        return {id(output): output.backend.unit_gradient(output.data.shape, output.dtype)}
    capture = {}
    try:
        autograd.run_backward(output, output.backend.xp.ones_like(output.data), retain_graph=True, capture=capture)
    except RuntimeError:
        return {}
    grads = {key: entry[1] for key, entry in capture.items()}
    grads[id(output)] = output.backend.xp.ones_like(output.data)
    return grads


def _edge_label(tensor, grads, values, show_grads):
    parts = []
    if values:
        parts.append(f'<font color="darkgreen">{html.escape(format_value(tensor.backend.to_numpy(tensor.data)))}</font>')
    if show_grads:
        grad = grads.get(id(tensor))
        if grad is None and tensor.grad is not None:
            grad = tensor.grad.data
        if grad is not None:
            parts.append(f'<font color="red">{html.escape(format_value(tensor.backend.to_numpy(grad)))}</font>')
    return "<" + "<br/>".join(parts) + ">" if parts else '""'


def to_dot(tensor: Tensor, values: bool = True, grads: bool = True, title: str | None = None) -> str:
    """Graphviz DOT for the graph that produced ``tensor``."""
    functions, leaves = graph_of(tensor)
    gradient_of = gradients(tensor) if grads else {}
    lines = ["digraph gpugrad {", "  rankdir=LR;", '  node [fontname="Helvetica"];', '  edge [fontname="Helvetica"];']
    if title:
        lines.append(f'  label="{html.escape(title)}"; labelloc=t;')
    names = {}
    for i, leaf in enumerate(leaves):
        names[id(leaf)] = f"leaf{i}"
        label = leaf.name or (format_value(leaf.backend.to_numpy(leaf.data)) if not leaf.requires_grad
                              else f"input {i}")
        lines.append(f'  leaf{i} [label="{html.escape(label)}", shape=plaintext];')
    for i, f in enumerate(functions):
        names[id(f)] = f"op{i}"
        label = GATE_LABELS.get(f.name, f.name)
        if f.name == "Linear" and getattr(f, "activation", None):
            label = f"linear + {f.activation}"
        lines.append(f'  op{i} [label="{html.escape(label)}", shape=circle];')
    for f in functions:
        for t in getattr(f, "inputs", ()):
            source = names[id(t.creator)] if t.creator is not None else names[id(t)]
            lines.append(f'  {source} -> {names[id(f)]} [label={_edge_label(t, gradient_of, values, grads)}];')
    out_label = tensor.name or "out"
    lines.append(f'  output [label="{html.escape(out_label)}", shape=plaintext];')
    source = names[id(tensor.creator)] if tensor.creator is not None else names[id(tensor)]
    lines.append(f"  {source} -> output [label={_edge_label(tensor, gradient_of, values, grads)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(tensor: Tensor, path, values: bool = True, grads: bool = True, title: str | None = None) -> Path:
    """Write the picture to ``path`` (.svg, .png or .pdf) through Graphviz's ``dot``; without it,
    write ``path`` with a .dot suffix and say how to render it. Returns the path written."""
    path = Path(path)
    text = to_dot(tensor, values, grads, title)
    dot = shutil.which("dot")
    if dot is None or path.suffix == ".dot":
        target = path.with_suffix(".dot")
        target.write_text(text)
        if dot is None:
            print(f"graphviz 'dot' not found: wrote {target}; render it with "
                  f"`dot -T{path.suffix.lstrip('.') or 'svg'} {target} -o {path}` (Debian: apt install graphviz)")
        return target
    subprocess.run([dot, f"-T{path.suffix.lstrip('.') or 'svg'}", "-o", str(path)], input=text, text=True,
                   check=True, capture_output=True)
    return path
