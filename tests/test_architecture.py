"""The shape of the code: one module per concern, no import cycles, data flowing one way."""

import ast
import re
from pathlib import Path

from helpers import REPO

PACKAGES = ("sedbench", "hydra_plugins")


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the two packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import a.b.c` where only a.b is a module of ours
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_even_through_lazy_imports():
    found = cycles(graph())
    assert not found, f"import cycles: {found}"


def test_training_and_sweeping_do_not_import_each_other():
    g = graph()
    training = {m: deps for m, deps in g.items() if m.startswith("sedbench.training")}
    assert training and not any("sedbench.sweep" in deps or any(d.startswith("hydra_plugins") for d in deps)
                                for deps in training.values())
    sweeper = g["hydra_plugins.sedbench_sweeper.sweeper"]
    assert not any(d.startswith("sedbench.training") for d in sweeper), sweeper


def test_every_mlflow_call_lives_in_the_tracking_module():
    pattern = re.compile(r"MlflowClient|MLFlowLogger|import mlflow|from mlflow")
    users = sorted(str(p.relative_to(REPO)) for p in modules().values() if pattern.search(p.read_text()))
    assert users == ["sedbench/tracking.py"]


def test_default_store_locations_are_written_once():
    for location in ("results/mlflow.db", "results/optuna.db", "results/mlartifacts"):
        holders = sorted(str(p.relative_to(REPO)) for p in [*modules().values(), *(REPO / "conf").rglob("*.yaml")]
                         if location in p.read_text())
        assert holders == ["sedbench/tracking.py"], (location, holders)


def test_the_lightning_module_sees_batches_only():
    for path in (REPO / "sedbench" / "training").glob("*.py"):
        assert "trainer.datamodule" not in path.read_text(), path
    module = (REPO / "sedbench" / "training" / "module.py").read_text()
    assert "self.scores" not in module and "test_probs" not in module


def test_the_optuna_and_hydra_apis_used_are_public():
    private = re.compile(r"\._storage\b|\._trial_id\b|\._study_id\b|\._return_value\b")
    for path in modules().values():
        assert not private.search(path.read_text()), path


def test_the_command_line_module_is_thin():
    assert len((REPO / "sedbench" / "cli.py").read_text().splitlines()) <= 250


def test_optuna_storage_methods_are_called_in_the_studies_module_only():
    """Optuna documents its storage classes as library-internal: sedbench.studies wraps every call to them."""
    methods = re.compile(r"^(get_trial|set_trial_\w+|get_study_id_from_name|get_trial_id_from_study_id_trial_number)$")
    callers = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and methods.match(node.func.attr):
                target = node.func.value
                if isinstance(target, ast.Name) and target.id == "storage" or (
                        isinstance(target, ast.Attribute) and target.attr in ("storage", "_storage")):
                    callers.add(name)
    assert callers == {"sedbench.studies"}, callers
