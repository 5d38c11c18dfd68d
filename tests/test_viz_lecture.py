"""Graph pictures (DOT with values and gradients) and the `gpugrad lecture` walkthrough."""
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import gpugrad
from gpugrad import viz
from gpugrad.app import lecture


def _edges(dot):
    """(source label, target label, value, gradient) for every edge of a DOT text."""
    labels = dict(re.findall(r'^\s+(\w+) \[label="([^"]*)"', dot, flags=re.M))
    edges = []
    for source, target, value, grad in re.findall(
            r'^\s+(\w+) -> (\w+) \[label=<<font color="darkgreen">([^<]*)</font>(?:<br/><font color="red">([^<]*)</font>)?>\]',
            dot, flags=re.M):
        edges.append((labels[source], labels[target], value, grad))
    return edges


def test_add_mul_graph_has_the_slides_values_and_gradients():
    f, _ = lecture.add_mul()
    edges = _edges(viz.to_dot(f))
    assert ("x", "+", "-2", "-4") in edges and ("y", "+", "5", "-4") in edges
    assert ("+", "*", "3", "-4") in edges and ("z", "*", "-4", "3") in edges
    assert ("*", "f", "-12", "1") in edges
    assert len(edges) == 5


def test_values_only_before_backward_and_grads_optional():
    x = gpugrad.tensor(2.0, requires_grad=True, name="x")
    y = (x * 3).exp()
    dot = viz.to_dot(y, grads=False)
    assert "red" not in dot and 'label="x"' in dot and 'label="exp"' in dot
    assert "403" in dot  # exp(6) = 403.4 -> 3 significant digits


def test_sigmoid_neuron_gradients_on_edges():
    f, _ = lecture.sigmoid_neuron()
    edges = _edges(viz.to_dot(f))
    by_source = {(s, t): (v, g) for s, t, v, g in edges}
    assert by_source[("w0", "*")] == ("2", "-0.197")
    assert by_source[("x0", "*")] == ("-1", "0.393")
    assert by_source[("x1", "*")] == ("-2", "-0.59")
    assert by_source[("/", "f")] == ("0.731", "1")


def test_arrays_are_abbreviated():
    small = gpugrad.tensor([0.2, 0.4], requires_grad=True, name="x")
    big = gpugrad.tensor(np.ones((30, 40)), requires_grad=True, name="W")
    dot = viz.to_dot((big @ gpugrad.ones(40, dtype=np.float64)).sum() + (small * small).sum())
    assert "[0.2, 0.4]" in dot and "(30, 40) float64" in dot
    assert viz.format_value(np.array([[0.1, 0.5], [-0.3, 0.8]])) == "[[0.1, 0.5], [-0.3, 0.8]]"
    assert viz.format_value(np.float64(0.19661193)) == "0.197" and viz.format_value(-12.0) == "-12"


def test_graph_after_a_freeing_backward_shows_leaf_gradients():
    x = gpugrad.tensor(3.0, requires_grad=True, name="x")
    y = x * x
    y.backward()
    edges = _edges(viz.to_dot(y))
    assert all(e[3] == "6" for e in edges if e[0] == "x")


def test_render_falls_back_to_dot_text(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    f, _ = lecture.add_mul()
    written = viz.render(f, tmp_path / "g.svg")
    assert written == tmp_path / "g.dot" and written.read_text().startswith("digraph")
    assert "graphviz 'dot' not found" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_svg_with_graphviz(tmp_path):
    f, _ = lecture.add_mul()
    path = viz.render(f, tmp_path / "g.svg")
    assert path.suffix == ".svg" and "<svg" in path.read_text()


def test_lecture_command_prints_the_slides_numbers(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gpugrad", "lecture", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "df/dx = [1] x [-4] = -4" in out and "df/dy = [1] x [-4] = -4" in out and "df/dz = [3] x [1] = 3" in out
    assert "df/dx0 = [2] x [0.197] = 0.393" in out and "f = Div(1, d) = 0.731" in out
    assert "df/dx = [-4] x [2] = -8" in out and "df/dw = [0] x [2] = 0" in out
    assert "df/dW = [[0.2, 0.4]ᵀ] x [[0.44, 0.52]] = [[0.088, 0.176], [0.104, 0.208]]" in out
    assert "df/dx = " in out and "[-0.112, 0.636]" in out
    assert "dL/dW1 = " in out and "(1000, 100) float64" in out
    pictures = sorted(p.stem for p in tmp_path.iterdir())
    assert pictures == sorted(lecture.EXAMPLES)


def test_lecture_rejects_unknown_examples():
    result = subprocess.run([sys.executable, "-m", "gpugrad", "lecture", "--example", "nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice: 'nope'" in result.stderr


def test_names_of_user_tensors_are_left_alone(tmp_path):
    a = gpugrad.tensor(1.0, requires_grad=True)
    b = a * 2
    lecture.walkthrough(b, "t", None, log=lambda *_: None)
    assert a.name is None
