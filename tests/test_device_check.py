"""bench/device_check.py without a GPU: every section it defines is in main()'s plan, a run cut short by its
--budget still writes what it has (results.json, results.md) and names the sections it skipped, and each section
runs in a process of its own: one that fails or outlives its limit records its error and the next still runs."""
import ast
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "device_check.py"


def _load():
    for name in [m for m in sys.modules if m == "devcheck" or m.startswith("devcheck.")]:
        del sys.modules[name]  # fresh results for each load
    spec = importlib.util.spec_from_file_location("device_check_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sections():
    """Every function decorated ``@section(name)`` in the sections' modules (bench/devcheck/)."""
    found = {}
    for path in sorted((ROOT / "bench" / "devcheck").glob("*.py")):
        tree = ast.parse(path.read_text())
        found.update({f"{path.stem}.{node.name}": ast.literal_eval(decorator.args[0]) for node in tree.body
                      if isinstance(node, ast.FunctionDef) for decorator in node.decorator_list
                      if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "section"})
    return found


def test_every_section_is_in_the_plan_in_the_order_the_lease_needs():
    module, sections = _load(), _sections()
    planned = [name for name, _ in module.PLAN]
    assert len(sections) >= 10
    assert sorted(set(sections.values()) - set(planned)) == []  # a section not planned is never measured
    assert set(module._functions()) == set(sections.values())
    assert {f"{f.__module__.rpartition('.')[2]}.{f.__name__}" for f in module._functions().values()} <= set(sections)
    assert planned[:4] == ["environment", "pytest -m gpu", "pytest -m gpu (capture and train)", "CPU-GPU loss curve"]
    assert planned[-1] == "torch.compile"


def test_a_section_that_fails_or_hangs_costs_itself_alone(tmp_path, capfd):
    module = _load()
    module.run_section("ceilings", tmp_path, 0.01)  # killed at once: its limit
    assert "killed after" in module.RESULTS["errors"]["ceilings"]
    module.run_section("environment", tmp_path, 120)  # no CuPy here: the section's own error, from its process
    assert "cupy" in module.RESULTS["errors"]["environment"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # a section's files stay out of --out


def test_a_run_past_its_budget_writes_what_it_has_and_names_what_it_skipped(tmp_path):
    module = _load()
    assert module.main(["--out", str(tmp_path), "--skip-tests", "--budget", "0"]) == 1  # nothing measured: not a pass
    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted(results["skipped"]) == sorted(name for name, _ in module.PLAN if not name.startswith("pytest"))
    assert results["sections"] == {} and results["errors"] == {}
    table = (tmp_path / "results.md").read_text()
    assert "- SKIPPED small MLP under autocast: the --budget was spent before this section" in table
