"""Ordinary PyTorch programs (tests/programs/, kept apart): each runs as ``main(torch)`` and as
``main(gpugrad)``, unchanged, and what they return must agree."""
import importlib
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

import gpugrad

torch = pytest.importorskip("torch")
PROGRAMS = Path(__file__).parent / "programs"
sys.path.insert(0, str(PROGRAMS))


def _run(program, library, tmp_path):
    args = {"tmp_path": tmp_path / library.__name__} if "tmp_path" in inspect.signature(program.main).parameters else {}
    for path in args.values():
        path.mkdir()
    return program.main(library, **args)


@pytest.mark.parametrize("name", sorted(p.stem for p in PROGRAMS.glob("p[0-9]*.py")))
def test_program_runs_on_gpugrad_as_on_pytorch(name, tmp_path):
    program = importlib.import_module(name)
    tolerance = getattr(program, "TOLERANCE", dict(rtol=1e-4, atol=1e-5))  # float32 over tens of steps
    torch.manual_seed(0)
    expected = _run(program, torch, tmp_path)
    got = _run(program, gpugrad, tmp_path)
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        if np.asarray(want).dtype.kind in "USO":  # names (state_dict keys): equal as they are
            assert got[key] == want, f"{name}: {key!r}"
            continue
        np.testing.assert_allclose(np.asarray(got[key], dtype=np.float64), np.asarray(want, dtype=np.float64),
                                   err_msg=f"{name}: {key!r}", **tolerance)
