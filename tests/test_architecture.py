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
    plugin = {d for m, deps in g.items() if m.startswith("hydra_plugins.sedbench_sweeper") for d in deps}
    assert "hydra_plugins.sedbench_sweeper.space" in plugin  # the sweeper's parts are modules of its package
    assert not any(d.startswith("sedbench.training") for d in plugin), plugin


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


# the packages from the top down: a package imports only packages of lower layers (lazily or not)
LAYERS = (("sedbench.bench", "sedbench.__main__"),
          ("sedbench.commands",),                                  # what users run: CLI, Hydra start-up, ...
          ("hydra_plugins.sedbench_sweeper",),                     # the sweep's orchestration
          ("sedbench.sweep", "sedbench.pruning", "sedbench.calibration"),
          ("sedbench.report",),
          ("sedbench.packing", "sedbench.preflight"),
          ("sedbench.training",),
          ("sedbench.console", "sedbench.studies", "sedbench.hardware", "sedbench.provenance", "sedbench.energy"),
          ("sedbench.tracking",),
          ("sedbench.metrics", "sedbench.models"),
          ("sedbench.data", "sedbench.stats", "sedbench.ranges"),
          ("sedbench.errors", "sedbench"))


def package(module: str) -> str:
    """A module's package-level node: its subpackage (sedbench.report), or the top-level module itself."""
    return ".".join(module.split(".")[:2])


def package_graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, deps in graph().items():
        out.setdefault(package(module), set()).update(package(d) for d in deps)
    return {p: deps - {p} for p, deps in out.items()}


def test_the_package_graph_has_no_cycle():
    found = cycles(package_graph())
    assert not found, f"package-level import cycles: {found}"


def test_every_package_imports_only_layers_below_it():
    layer = {p: i for i, names in enumerate(LAYERS) for p in names}
    g = package_graph()
    assert set(g) <= set(layer), f"packages without a layer: {sorted(set(g) - set(layer))}"
    upward = sorted(f"{p} -> {d}" for p, deps in g.items() for d in deps if layer[d] <= layer[p])
    assert not upward, upward
    below = {p for p, i in layer.items() if i > layer["sedbench.commands"]}
    offenders = [f"{m} -> {d}" for m, deps in graph().items() if package(m) in below
                 for d in deps if package(d) == "sedbench.commands"]
    assert not offenders  # nothing below the commands layer reaches into it


def _literals(path: Path):
    """Every tuple, list, set and dict literal of a module, with its string constants (dict: its keys)."""
    for node in ast.walk(ast.parse(path.read_text())):
        items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(
            node, (ast.Tuple, ast.List, ast.Set)) else None
        if items is not None:
            yield node.lineno, [x.value for x in items if isinstance(x, ast.Constant) and isinstance(x.value, str)]


def test_one_registry_per_concept():
    """Metric names and model families are listed in their registries only: a collection that names three or
    more scores (``f1_frm``, ``test/er_frm``, ``val/f1_clip``), or two or more families, anywhere else is a
    second list that a new metric or family would have to be added to. Exempt: the scorers the registry names as
    the source of its built-in metrics (they produce them), the claims (the paper's claims name the CRNN, CNN and
    RNN) and the bench (it measures named runs)."""
    from sedbench.metrics.registry import REGISTRY
    from sedbench.models.families import FAMILIES

    names = {*REGISTRY, *(f"{p}/{m}" for m in REGISTRY for p in ("test", "val")), *(f"val/{m}_best" for m in REGISTRY)}
    known = modules()
    scorers = {max((m for m in known if metric.source.startswith(m + ".") or metric.source.startswith(m + " ")),
                   key=len) for metric in REGISTRY.values() if metric.source}
    assert {"sedbench.metrics.segment", "sedbench.metrics.psds", "sedbench.training.scoring"} <= scorers
    exempt = {"sedbench.metrics.registry", "sedbench.models.families", "sedbench.report.claims", *scorers}
    found = []
    for module, path in known.items():
        if module in exempt or package(module) == "sedbench.bench":
            continue
        for line, strings in _literals(path):
            if len(set(strings) & names) >= 3 or len(set(strings) & set(FAMILIES)) >= 2:
                found.append(f"{path.relative_to(REPO)}:{line}")
    assert not found, f"lists of metrics or families outside their registries: {found}"


def test_the_study_database_is_touched_by_the_studies_module_only():
    """SQL (the claims table, engines) and Optuna's storage live in sedbench.studies; nothing else imports
    SQLAlchemy."""
    users = sorted(name for name, path in modules().items() if "sqlalchemy" in path.read_text())
    assert users == ["sedbench.studies"], users


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
