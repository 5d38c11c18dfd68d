"""bench/device_check.py without a GPU: every section it defines runs from main(), and a run cut short
by its --budget still writes what it has (results.json, results.md) and names the sections it skipped."""
import ast
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "device_check.py"


def _sections_and_calls():
    tree = ast.parse(SCRIPT.read_text())
    sections = {node.name: ast.literal_eval(decorator.args[0]) for node in tree.body if isinstance(node, ast.FunctionDef)
                for decorator in node.decorator_list
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "section"}
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    called = {node.func.id for node in ast.walk(main) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    return sections, called


def test_every_section_runs_from_main():
    sections, called = _sections_and_calls()
    assert len(sections) >= 9
    assert sorted(set(sections) - called) == []  # a section main() never calls is never measured on a device


def test_a_run_past_its_budget_writes_what_it_has_and_names_what_it_skipped(tmp_path):
    spec = importlib.util.spec_from_file_location("device_check_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path), "--skip-tests", "--budget", "0"]) == 1  # nothing measured: not a pass
    results = json.loads((tmp_path / "results.json").read_text())
    sections, _ = _sections_and_calls()
    assert sorted(results["skipped"]) == sorted(set(sections.values()) - {"pytest -m gpu"})
    assert results["sections"] == {} and results["errors"] == {}
    table = (tmp_path / "results.md").read_text()
    assert "- SKIPPED small MLP under autocast: the --budget was spent before this section" in table
