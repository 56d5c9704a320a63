"""``sedbench compare``: is configuration A better than B? The difference, its calibrated interval, a verdict.

Three ways to name the two sides, each side a set of runs of one configuration (its seeds):

    sedbench compare RUN... --vs RUN...                       MLflow run ids or run folders
    sedbench compare --sweep NAME "OVERRIDES A" --vs "OVERRIDES B"   a sweep's completed trials
    sedbench compare --counts FILE... --vs FILE...            file_counts.csv files, one per run

Every run contributes its per-file counts (``file_counts.csv``, which every run records); the comparison is
:func:`sedbench.stats.compare`, whose false-verdict rate was measured by simulation (docs/statistics.md).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from sedbench.errors import SedbenchError

STATISTICS = {"f1": ("F1", True), "er": ("ER", False)}   # name -> (label, higher is better)
# what a run costs (metrics.json, docs/metrics.md): name -> (its record, label, unit); lower is better. Parameters
# and MACs are the architecture's (one value a configuration); the others are measured, run by run
COSTS = {"energy_train": ("energy_train_kwh", "training energy", "kWh"),
         "energy_test": ("energy_test_kwh", "test energy", "kWh"), "peak_rss": ("peak_rss_gb", "peak RSS", "GB"),
         "fit_time": ("fit_seconds", "training time", "s"), "macs": ("macs_per_10s", "MACs per 10 s", "MACs"),
         "params": ("n_params", "parameters", "")}


@dataclass
class Side:
    label: str
    runs: list[str]
    counts: list[list[list[int]]]
    names: list[str] = field(default_factory=list)   # test file names, where known
    sources: list[list[list[str]] | None] = field(default_factory=list)  # per run: its test files' source ids
    provenance: list[dict | None] = field(default_factory=list)  # per run: what produced it (sedbench.provenance)
    records: list[dict] = field(default_factory=list)  # per run: its metrics.json figures (costs), where known


def add_parser(sub) -> None:
    from sedbench.commands.options import add_storage, add_tracking

    p = sub.add_parser(
        "compare", help="is A better than B? difference of two sets of runs with its calibrated 95 %% interval",
        description="Compare two configurations, each trained with one or more seeds: each side's mean +/- std, "
                    "the difference A - B with its 95 % interval over seeds and test files (sedbench.stats.compare, "
                    "calibrated by simulation: docs/statistics.md) and what it can conclude. With one seed on a side "
                    "there is no interval and no verdict.",
        epilog='Examples: sedbench compare 3f2a... 9c1d... --vs 77ab... 0e4f...;  sedbench compare --sweep claims '
               '"model=crnn model.maps=16" --vs "model=cnn model.maps=16";  sedbench compare --counts a1.csv a2.csv '
               '--vs b1.csv b2.csv')
    p.add_argument("side_a", nargs="*", metavar="A",
                   help="side A: MLflow run ids or run folders; with --sweep, its overrides (key=value ...)")
    p.add_argument("--vs", nargs="+", required=True, metavar="B", help="side B, the same way")
    p.add_argument("--sweep", metavar="NAME", help="select each side's completed trials of this sweep by overrides")
    p.add_argument("--counts", nargs="+", metavar="FILE", help="side A as file_counts.csv files (then --vs files)")
    p.add_argument("--statistic", choices=[*STATISTICS, *COSTS], default="f1",
                   help="f1 (default) or er, over the test files; or a cost, lower is better: energy_train, "
                        "energy_test, peak_rss, fit_time (measured per run: the ratio A / B with its interval over "
                        "seeds), macs, params (the architecture's: an exact ratio)")
    p.add_argument("--resolution", choices=["frm", "1sec"], default="frm",
                   help="frm: one frame of 20 ms, the paper's F1_frm (default); 1sec: 1-s segments")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--allow-mixed", action="store_true",
                   help="draw a verdict even when the runs read different copies of the dataset (their fingerprints "
                        "differ); without it such a comparison shows its numbers and no verdict")
    add_storage(p, ", with --sweep")
    add_tracking(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.level < 1:
        raise SedbenchError(f"--level {args.level}: an interval level is between 0 and 1 (e.g. 0.95)")
    if args.counts and args.sweep:
        raise SedbenchError("--counts and --sweep name the sides in different ways. Fix: use one of them")
    cost = args.statistic in COSTS
    if args.counts:
        if args.side_a:
            raise SedbenchError(f"with --counts, side A is the files after --counts; {args.side_a[0]!r} is extra")
        a, b = (counts_side(paths, args.resolution, label, not cost)
                for paths, label in ((args.counts, "A"), (args.vs, "B")))
    elif args.sweep:
        if not args.side_a:
            raise SedbenchError('--sweep NAME needs side A\'s overrides. Fix: e.g. sedbench compare --sweep claims '
                                '"model=crnn" --vs "model=cnn"')
        a, b = sweep_sides(args.sweep, args.side_a, args.vs, args.resolution, args.storage, args.tracking, not cost)
    else:
        if not args.side_a:
            raise SedbenchError("no runs for side A. Fix: sedbench compare RUN... --vs RUN... (MLflow run ids or "
                                "run folders), or --sweep NAME / --counts FILE...")
        a, b = (runs_side(items, args.resolution, args.tracking, label, not cost)
                for items, label in ((args.side_a, "A"), (args.vs, "B")))
    if cost:
        result = compare_costs(a, b, args.statistic, args.level, args.allow_mixed)
        print(json.dumps(result, indent=2) if args.json else cost_text(result))
        return 0
    result = compare_sides(a, b, args.statistic, args.level, args.allow_mixed)
    print(json.dumps(result, indent=2) if args.json else as_text(result))
    return 0


# ---------------------------------------------------------------------------------------------- the sides
def _resolution(counts: dict, resolution: str, where: str) -> list[list[int]]:
    if resolution not in counts:
        raise SedbenchError(f"{where} has no per-file counts at resolution {resolution!r} (it has "
                            f"{', '.join(counts) or 'none'}). Fix: --resolution {next(iter(counts), 'frm')}")
    return counts[resolution]


def _names(path: Path, resolution: str) -> list[str]:
    import csv

    with open(path, newline="") as f:
        return [r["file"] for r in csv.DictReader(f) if r.get("resolution") == resolution]


def counts_side(paths: list[str], resolution: str, label: str, counted: bool = True) -> Side:
    """One side from ``file_counts.csv`` files (each with its run's metrics.json beside it, where it has one);
    ``counted=False``: only the runs' records are read (a cost comparison)."""
    from sedbench.training.artifacts import read_file_counts, read_file_sources

    counts, names, sources = [], [], []
    records = [_run_record(Path(p).parent / "metrics.json") for p in paths]
    for p in map(Path, paths):
        if not p.is_file():
            raise SedbenchError(f"{p}: no such file. Fix: give file_counts.csv files (one per run), found in each "
                                "run folder and as an MLflow artifact of every run")
        if not counted:
            continue
        try:
            counts.append(_resolution(read_file_counts(p), resolution, str(p)))
        except (KeyError, ValueError) as exc:
            raise SedbenchError(f"{p}: not a file_counts.csv ({exc}). Fix: the file every run writes, with the "
                                "header file,resolution,Ntp,Nref,Nsys,S,D,I") from None
        names.append(_names(p, resolution))
        sources.append(read_file_sources(p))
    return Side(label, [str(p) for p in paths], counts, names[0] if names else [], sources,
                [r.get("provenance") for r in records], records)


def _run_record(metrics_json: Path) -> dict:
    """What a run recorded in its metrics.json (beside its file_counts.csv): provenance, costs; empty without one."""
    if not metrics_json.is_file():
        return {}
    try:
        record = json.loads(metrics_json.read_text())
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def runs_side(items: list[str], resolution: str, tracking: str | None, label: str, counted: bool = True) -> Side:
    """One side from run folders (``file_counts.csv`` inside) or MLflow run ids (its artifact)."""
    import tempfile

    from sedbench.training.artifacts import FILE_COUNTS_PATH

    paths, store, tmp = [], None, Path(tempfile.mkdtemp(prefix="sedbench-compare-"))
    wanted = FILE_COUNTS_PATH if counted else "metrics.json"   # a cost comparison reads the run's record only
    for item in items:
        folder = Path(item)
        if folder.is_dir():
            path = folder / wanted
            if not path.is_file():
                raise SedbenchError(f"run folder {folder} has no {wanted}: the run failed, is still "
                                    "running, or was recorded by an older sedbench. Fix: train it again, or compare "
                                    "runs that finished")
            paths.append(path)
            continue
        if store is None:
            from sedbench.tracking import RunStore, tracking_uri

            store = RunStore.existing(tracking_uri(tracking))
        store.require(item)
        path = store.download(item, wanted, tmp / item)
        if counted:
            store.download(item, "metrics.json", tmp / item)  # beside it: what produced the run
        if path is None:
            raise SedbenchError(f"MLflow run {item} has no {wanted} artifact: it failed, is still running, "
                                + ("has clip labels, " if counted else "")
                                + "or was recorded by an older sedbench. Fix: compare finished runs"
                                + (" of strongly labelled data" if counted else ""))
        paths.append(path)
    side = counts_side([str(p) for p in paths], resolution, label, counted)
    side.runs = list(items)
    return side


def parse_overrides(tokens: list[str]) -> dict[str, str]:
    from sedbench.report.costs import parse_reference

    try:
        return parse_reference(" ".join(tokens))
    except ValueError as exc:
        raise SedbenchError(f"{exc}. Fix: give overrides as key=value") from None


def sweep_sides(name: str, tokens_a: list[str], tokens_b: list[str], resolution: str, storage: str | None,
                tracking: str | None, counted: bool = True) -> tuple[Side, Side]:
    """Each side: the completed trials of one configuration of sweep ``name`` that match its overrides (with their
    per-file counts unless ``counted`` is False: a cost comparison reads the trials' records only)."""
    import tempfile

    from sedbench.report.collect import collect, completed, file_counts, file_sources
    from sedbench.report.write import artifact_fetcher
    from sedbench.tracking import DEFAULT_STORAGE, tracking_uri

    uri = tracking_uri(tracking)
    rows, _ = collect(name, storage or DEFAULT_STORAGE, uri)
    done = completed(rows)
    keys = sorted({k for r in done for k in r.params})
    fetch = artifact_fetcher(uri, Path(tempfile.mkdtemp(prefix="sedbench-compare-")))
    sides = []
    for tokens, label in ((tokens_a, "A"), (tokens_b, "B")):
        wanted = parse_overrides(tokens)
        unknown = [k for k in wanted if k not in keys]
        if unknown:
            raise SedbenchError(f"side {label}: sweep {name!r} has no parameter {unknown[0]!r}. Fix: one of "
                                f"{', '.join(keys)}")
        match = [r for r in done if all(r.params.get(k, "").replace(" ", "") == v for k, v in wanted.items())]
        configs = {r.config_key() for r in match}
        if not match:
            raise SedbenchError(f"side {label}: no completed trial of sweep {name!r} has {' '.join(tokens)}")
        if len(configs) > 1:
            raise SedbenchError(f"side {label}: {' '.join(tokens)} matches {len(configs)} configurations of sweep "
                                f"{name!r} ({'; '.join(sorted(configs)[:4])}{' ...' if len(configs) > 4 else ''}). "
                                "Fix: add the overrides that single one out (its seeds are the repeats)")
        counts = [file_counts(r, fetch).get(resolution) for r in match] if counted else []
        lacking = [r.number for r, c in zip(match, counts, strict=True) if c is None] if counted else []
        if lacking:
            raise SedbenchError(f"side {label}: trials {lacking} of sweep {name!r} have no per-file counts at "
                                f"{resolution!r} (no file_counts.csv in MLflow {uri}). Fix: --tracking with the "
                                "sweep's MLflow store, or runs recorded by a current sedbench")
        sides.append(Side(f"{label}: {configs.pop() or 'base'}", [str(r.attrs.get("mlflow_run_id", r.number))
                                                                  for r in match], counts,
                          sources=[file_sources(r, fetch) for r in match] if counted else [],
                          provenance=[r.attrs.get("provenance") for r in match],
                          records=[{**r.attrs, **r.metrics} for r in match]))
    return sides[0], sides[1]


# ---------------------------------------------------------------------------------------------- the result
def provenance_of(a: Side, b: Side) -> dict[str, dict[str, list[str]]]:
    """What produced each side's runs, where it differs between or within the sides: ``{part: {"A": values,
    "B": values}}`` for the dataset fingerprint, the code state and the library versions."""
    from sedbench.provenance import distinct

    both = [*a.provenance, *b.provenance]
    every, va, vb = distinct(both), distinct(a.provenance, both), distinct(b.provenance, both)
    return {part: {"A": va[part], "B": vb[part]} for part, values in every.items() if len(values) > 1}


def compare_sides(a: Side, b: Side, statistic: str, level: float, allow_mixed: bool = False) -> dict:
    from sedbench.stats import ONE_SEED, compare

    lengths = {len(c) for c in (*a.counts, *b.counts)}
    if len(lengths) > 1:
        raise SedbenchError(f"the runs were scored on different test sets ({', '.join(map(str, sorted(lengths)))} "
                            "files): a paired comparison needs every run scored on the same files")
    if a.names and b.names and a.names != b.names:
        raise SedbenchError("the two sides list different test files (or in another order): compare runs of one "
                            "dataset and split")
    recorded = [*a.sources, *b.sources]
    sources = recorded[0] if recorded and recorded[0] and all(s == recorded[0] for s in recorded) else None
    c = compare(a.counts, b.counts, statistic, level, sources=sources)
    name, higher_better = STATISTICS[statistic]
    pct = 100 if statistic == "f1" else 1

    def side(s: Side, i: int) -> dict:
        return {"label": s.label, "runs": s.runs, "n": c.n_seeds[i], "mean": c.mean[i],
                "std": None if math.isnan(c.std[i]) else c.std[i]}

    mixed = provenance_of(a, b)
    if "dataset" in mixed and not allow_mixed:
        conclusion = ("no verdict: the runs read different copies of the dataset (fingerprints A: "
                      f"{', '.join(mixed['dataset']['A']) or '?'}; B: {', '.join(mixed['dataset']['B']) or '?'}). "
                      "Fix: compare runs of one copy, or --allow-mixed to decide anyway")
    elif not c.seed_variance_known:
        conclusion = f"no verdict: {ONE_SEED}"
    else:
        side_of = c.excludes(0.0)
        better = side_of > 0 if higher_better else side_of < 0
        if side_of == 0:
            conclusion = (f"inconclusive: the {100 * level:g} % interval holds 0, so these runs cannot tell A from B "
                          f"(power to see a 3-5 point F1 difference with {min(c.n_seeds)} seeds and {c.n_files} "
                          "files: docs/statistics.md)")
        else:
            conclusion = (f"{'A' if better else 'B'} is better on {name}: the {100 * level:g} % interval of A - B "
                          f"lies {'above' if side_of > 0 else 'below'} 0")
    return {"statistic": statistic, "name": name, "scale": pct, "higher_is_better": higher_better,
            "a": side(a, 0), "b": side(b, 1), "difference": c.difference,
            "low": None if math.isnan(c.low) else c.low, "high": None if math.isnan(c.high) else c.high,
            "level": level, "df": None if math.isnan(c.df) else c.df, "n_files": c.n_files, "method": c.method,
            "shared_sources": c.shared_sources, "mixed": mixed,
            "conclusion": conclusion}


def compare_costs(a: Side, b: Side, statistic: str, level: float, allow_mixed: bool = False) -> dict:
    """A's cost over B's: for a cost measured per run (energy, memory, time) the ratio of their geometric means with
    its interval over the seeds (:func:`sedbench.stats.cost_ratio`) and a verdict; for the architecture's own
    (parameters, MACs) the exact ratio. Lower is better."""
    from sedbench.stats import ONE_SEED, cost_ratio

    key, name, unit = COSTS[statistic]
    values, measured = [], []
    for s in (a, b):
        got = [_positive(r.get(key)) for r in s.records]
        lacking = [run for run, v in zip(s.runs, got, strict=True) if v is None]
        if lacking or not got:
            raise SedbenchError(f"side {s.label.split(':')[0]}: run {(lacking or s.runs or ['?'])[0]} recorded no "
                                f"{key} ({name}). Fix: compare runs recorded by a sedbench that measures it"
                                + (" with energy.enabled=true" if key.startswith("energy") else ""))
        values.append(got)
        measured.append(_measurements(s.records, got, key))
    r = cost_ratio(measured[0], measured[1], level)
    fixed = key in ("n_params", "macs_per_10s")
    methods = sorted({str(x.get("energy_method")) for s in (a, b) for x in s.records if x.get("energy_method")}) \
        if key.startswith("energy") else []
    mixed = provenance_of(a, b)
    if fixed:
        conclusion = (f"{'A' if r.ratio < 1 else 'B'} has fewer {name}: {r.ratio:.3g}x (the architecture's, the same "
                      "for every seed: exact, no interval needed)" if r.ratio != 1 else f"the same {name}")
    elif len(methods) > 1:
        conclusion = (f"no verdict: the energies were obtained in different ways ({'; '.join(methods)}). Fix: "
                      "compare runs measured alike (docs/metrics.md)")
    elif "dataset" in mixed and not allow_mixed:
        conclusion = ("no verdict: the runs read different copies of the dataset. Fix: compare runs of one copy, or "
                      "--allow-mixed to decide anyway")
    elif min(r.n) < 2 and min(len(v) for v in values) >= 2:
        conclusion = ("no verdict: a side's seeds were trained together (sweep.fuse), and seeds trained together "
                      f"share one measurement of their group's {name}, so that side has one measurement: its spread "
                      "is unknown. Fix: compare seeds trained solo (sweep.fuse=off), or several groups")
    elif min(r.n) < 2:
        conclusion = f"no verdict: {ONE_SEED}"
    elif r.excludes_one() == 0:
        conclusion = (f"inconclusive: the {100 * level:g} % interval of A / B holds 1, so these runs cannot tell A's "
                      f"{name} from B's")
    else:
        conclusion = (f"{'A' if r.excludes_one() < 0 else 'B'} costs less {name}: the {100 * level:g} % interval of "
                      f"A / B lies {'below' if r.excludes_one() < 0 else 'above'} 1")

    def side(s: Side, values: list[float], i: int) -> dict:
        from sedbench.stats import mean_std_interval

        mean, std, _ = mean_std_interval(values)
        return {"label": s.label, "runs": s.runs, "n": len(values), "measurements": r.n[i], "mean": mean,
                "std": None if math.isnan(std) else std, "geometric_mean": r.geometric_mean[i]}

    num = lambda v: None if math.isnan(v) else v  # noqa: E731
    return {"statistic": statistic, "name": name, "key": key, "unit": unit, "higher_is_better": False,
            "a": side(a, values[0], 0), "b": side(b, values[1], 1), "ratio": r.ratio, "low": num(r.low),
            "high": num(r.high), "level": level, "df": None if not math.isfinite(r.df) else r.df,
            "method": "exact" if fixed else "welch_log", "energy_methods": methods, "mixed": mixed,
            "conclusion": conclusion}


# what seeds trained together (sweep.fuse) measure once for their group and share among themselves
GROUP_MEASURED = ("energy_train_kwh", "fit_seconds", "peak_rss_gb")


def _measurements(records: list[dict], values: list[float], key: str) -> list[float]:
    """The side's independent measurements of ``key``: a run's own value, but one value (the mean of its shares)
    for the seeds of one fused group, whose training energy, time and peak memory were measured once for the
    group and shared (sedbench.training.fused): counting each share as a measurement would claim a precision
    that was never measured. Test energy is each member's own."""
    if key not in GROUP_MEASURED:
        return values
    groups: dict[str, list[float]] = {}
    out = []
    for record, v in zip(records, values, strict=True):
        group = record.get("fused_group")
        if group:
            groups.setdefault(str(group), []).append(v)
        else:
            out.append(v)
    return out + [sum(g) / len(g) for g in groups.values()]


def _positive(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def cost_text(r: dict) -> str:
    unit = f" {r['unit']}" if r["unit"] and r["unit"] != "MACs" else ""

    def num(v):
        return "–" if v is None else f"{v:.4g}"

    lines = _side_lines(r, num, unit)
    interval = f"[{r['low']:.3f}, {r['high']:.3f}]" if r["low"] is not None else "no interval"
    df = f", {r['df']:.1f} degrees of freedom" if r["df"] else ""
    what = "exact" if r["method"] == "exact" else \
        f"{100 * r['level']:g} % interval {interval} (geometric means, Welch's t on the logarithms{df})"
    lines.append(f"ratio A / B: {r['ratio']:.3f}, {what}")
    if r["energy_methods"]:
        lines.append(f"energy obtained by: {'; '.join(r['energy_methods'])}")
    return "\n".join(lines + _closing_lines(r))


def _side_lines(r: dict, num, unit: str) -> list[str]:
    """Each side's line: its label, mean ± std (``num`` formats a value) and n, and how many measurements those
    runs are where seeds trained together share one."""
    lines = []
    for key in ("a", "b"):
        s = r[key]
        spread = f" ± {num(s['std'])}{unit}" if s["std"] is not None else f"{unit} (one run: no spread)"
        shared = f" ({s['measurements']} measurement(s): seeds trained together)" \
            if s.get("measurements", s["n"]) != s["n"] else ""
        lines.append(f"{s['label']:<40} {r['name']} {num(s['mean'])}{spread}   n = {s['n']}{shared}")
    return lines


def _closing_lines(r: dict) -> list[str]:
    """How the two sides' runs differ in what produced them, and the conclusion."""
    lines = [f"note: the runs differ in {part} (A: {'; '.join(sides['A']) or '?'}; B: {'; '.join(sides['B']) or '?'})"
             for part, sides in (r.get("mixed") or {}).items()]
    return [*lines, f"conclusion: {r['conclusion']}"]


def as_text(r: dict) -> str:
    scale, unit = (100, " %") if r["scale"] == 100 else (1, "")
    digits = 1 if scale == 100 else 3

    def num(v):
        return "–" if v is None else f"{scale * v:.{digits}f}"

    lines = _side_lines(r, num, unit)
    interval = (f"[{scale * r['low']:+.{digits}f}, {scale * r['high']:+.{digits}f}]" if r["low"] is not None
                else "no interval")
    lines.append(f"difference A - B: {scale * r['difference']:+.{digits}f}{' points' if scale == 100 else ''}, "
                 f"{100 * r['level']:g} % interval {interval}  ({r['n_files']} test files"
                 + (", which share source instances" if r.get("shared_sources") else "")
                 + (f", {r['df']:.1f} degrees of freedom" if r["df"] is not None else "") + ")")
    return "\n".join(lines + _closing_lines(r))
