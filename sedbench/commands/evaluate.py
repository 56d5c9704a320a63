"""``sedbench evaluate``: re-score a recorded run's best weights, optionally on pitch-shifted test audio.

The paper's frequency-shift test (Sec. IV-B4, Fig. 5): each network, trained on the original
data, is scored on the test mixtures pitch-shifted by librosa by +-1 and +-2 quarter tones.
Results go to the same MLflow run as ``pitch_shift/<metric>`` with the shift (quarter
tones) as the step; step 0 is the unshifted re-score, equal to the run's ``test/f1_frm``. The per-file
counts of every shift go to the run's ``pitch_shift_counts.csv``, from which ``claims.md`` computes the
interval of the change of F1 (over seeds and test files).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from sedbench.errors import SedbenchError


def parse_shifts(text: str | None) -> list[int]:
    """``"-2,-1,1,2"`` -> ``[-2, -1, 1, 2]`` (quarter tones); 0 is always scored as the reference."""
    if not text:
        return []
    try:
        shifts = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SedbenchError(f"--pitch-shift={text!r}: expected whole quarter tones separated by commas. "
                            "Fix: e.g. --pitch-shift=-2,-1,1,2") from None
    return sorted(set(shifts) - {0})


def download_bundle(store, run_id: str, dst: Path):
    """The run's ``model/model.pt`` (a :class:`sedbench.training.artifacts.Bundle`) from a
    :class:`sedbench.tracking.RunStore`."""
    from sedbench.training.artifacts import BUNDLE_PATH, Bundle

    store.require(run_id)
    path = store.download(run_id, BUNDLE_PATH, dst)
    if path is None:
        raise SedbenchError(f"run {run_id} has no {BUNDLE_PATH} artifact (a failed run, a toy run, or one recorded "
                            "with tracking.log_model=false). Fix: evaluate a completed training run")
    return Bundle.load(path)


def data_config(stored: dict, overrides: Sequence[str]) -> dict:
    """The run's data config with ``data=NAME`` (a config group) and ``data.key=value`` overrides applied."""
    import yaml
    from omegaconf import OmegaConf

    bad = [o for o in overrides if not (o.startswith("data=") or o.startswith("data."))]
    if bad:
        raise SedbenchError(f"evaluate takes data overrides only, got {bad}. Fix: e.g. data=synth "
                            "data.root=/path/to/test/data")
    cfg = OmegaConf.create({"data": stored})
    groups = [o for o in overrides if o.startswith("data=")]
    if groups:
        from sedbench.commands.launch import compose

        cfg = compose(groups)
    for o in overrides:
        if o.startswith("data."):
            key, _, value = o.partition("=")
            OmegaConf.update(cfg, key, yaml.safe_load(value) if value else None, force_add=True)
    return OmegaConf.to_container(cfg.data, resolve=True)


def evaluate_bundle(bundle, data: dict, shifts: Sequence[int], cache_dir: str | None = None,
                    progress: bool = True) -> dict[int, dict]:
    """Scores of ``bundle`` on the test split of ``data`` for shift 0 and each of ``shifts`` (quarter tones)."""
    from tqdm.auto import tqdm

    from sedbench.data.features import FeatureCache
    from sedbench.data.layouts import dataset_from_config
    from sedbench.metrics import registry
    from sedbench.metrics.registry import SplitOutputs
    from sedbench.metrics.segment import score_activity

    ds = dataset_from_config(data, strict=False)  # a stored config may hold keys of an older sedbench
    if ds.weak:
        raise SedbenchError(f"{ds.name}: weak (clip) labels; pitch-shift evaluation scores frame activity. "
                            "Fix: evaluate a run trained on a strongly labelled dataset")
    if list(ds.classes) != bundle.classes:
        raise SedbenchError(f"{ds.name}: classes {list(ds.classes)} differ from the model's {bundle.classes}. "
                            "Fix: evaluate on data with the classes the run was trained on")
    recs = ds.recordings("test")
    cache = FeatureCache(cache_dir)
    refs = [rec.events for rec in recs]
    results = {}
    with tqdm(total=len(recs) * (1 + len(shifts)), desc="pitch shift", unit="file", disable=not progress,
              leave=False) as bar:
        for q in [0, *shifts]:
            bar.set_postfix_str(f"{q:+d} quarter tones")
            probs = []
            for rec in recs:
                probs.append(bundle.predict(cache.get(rec.audio, ds.sample_rate, bundle.features, pitch_shift=q)))
                bar.update(1)
            results[q] = score_activity(refs, probs, bundle.classes, bundle.features.hop_seconds, bundle.threshold)
            results[q].update(registry.compute(SplitOutputs(refs, probs, bundle.classes, bundle.features.hop_seconds,
                                                            bundle.threshold), weak=False))
            results[q]["files"] = [rec.name for rec in recs]
    return results


def evaluate_run(run_id: str, tracking_uri: str, shifts: Sequence[int], overrides: Sequence[str] = (),
                 progress: bool = True, device: str = "run") -> dict[int, dict]:
    """Evaluate a recorded run and log ``pitch_shift/<metric>`` (step = quarter tones) to the same run; on
    ``device`` (``run``: CUDA when the run trained on a GPU and this machine has one, else the CPU)."""
    from sedbench.metrics import registry
    from sedbench.tracking import RunStore
    from sedbench.training.artifacts import PITCH_SHIFT_COUNTS_PATH, shift_tag, write_file_counts
    from sedbench.training.device import evaluation_device

    store = RunStore.existing(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = download_bundle(store, run_id, Path(tmp))
    bundle.to(evaluation_device(bundle.accelerator, device))
    data = data_config(bundle.data_cfg, overrides)
    results = evaluate_bundle(bundle, data, shifts, progress=progress)
    series = {f"pitch_shift/{m.name}": {q: r[m.name] for q, r in results.items()}  # the paper's table's scores
              for m in registry.metrics(section="paper") if m.name in results[0]}
    series["pitch_shift/delta_f1_frm"] = {q: r["f1_frm"] - results[0]["f1_frm"] for q, r in results.items()}
    store.log_steps(run_id, series, {"pitch_shift_data": data["name"]})
    counts = {shift_tag(tag, q): rows for q, r in results.items() for tag, rows in r["file_counts"].items()}
    with tempfile.TemporaryDirectory() as tmp:
        store.log_file(run_id, write_file_counts(Path(tmp), results[0]["files"], counts, PITCH_SHIFT_COUNTS_PATH))
    return results


def evaluate(args: Sequence[str], shifts: Sequence[int], tracking_uri: str, sweep: str | None = None,
             storage: str | None = None, device: str = "run") -> None:
    """``sedbench evaluate``: ``args`` are run ids and ``data...=`` overrides; with ``sweep``, also every trial
    (each seed and fold) of each family's primary configuration (the one ``claims.md`` compares families at:
    most seeds) and of its best one by validation (the report's tables), so that ``claims.md`` can give the
    change of F1 an interval over seeds. A run that cannot be evaluated is skipped with the reason; the rest go
    on."""
    import sys

    overrides = [a for a in args if "=" in a]
    run_ids = [a for a in args if "=" not in a]
    best = {}
    if sweep:
        from sedbench.report.collect import best_groups, collect, primary_group

        rows, _ = collect(sweep, storage, None)
        for family, trials in best_groups(rows).items():
            for r in [*(primary_group(rows, family) or []), *trials]:
                if r.attrs.get("mlflow_run_id"):
                    best[r.attrs["mlflow_run_id"]] = f"{family}, trial {r.number}"
    if not run_ids and not best:
        raise SedbenchError("nothing to evaluate. Fix: give MLflow run ids or --sweep NAME")
    for run_id in run_ids:
        print(format_results(run_id, evaluate_run(run_id, tracking_uri, shifts, overrides, device=device)))
    if not best:
        return
    from tqdm.auto import tqdm

    with tqdm(list(best.items()), desc=f"pitch shift, sweep {sweep}", unit="run", file=sys.stderr,
              disable=None) as bar:  # drawn on a terminal only; the lines per run go to stdout either way
        for run_id, what in bar:  # one bar for the whole sweep; one line per run (its table is in the report)
            try:
                bar.write(format_line(f"{run_id[:8]} ({what})",
                                      evaluate_run(run_id, tracking_uri, shifts, overrides, progress=False,
                                                   device=device)))
            except SedbenchError as exc:
                bar.write(f"skipped {run_id} ({what}): {exc}", file=sys.stderr)


def format_line(run: str, results: dict[int, dict]) -> str:
    """One run's re-scoring on one line: F1_frm unshifted, and its change at each shift."""
    base = results[0]["f1_frm"]
    changes = ", ".join(f"{q:+d}: {100 * (results[q]['f1_frm'] - base):+.1f}" for q in sorted(results) if q)
    return f"run {run}: test F1_frm {100 * base:.1f} %; change under shift (quarter tones) {changes}"


def format_results(run_id: str, results: dict[int, dict]) -> str:
    base = results[0]["f1_frm"]
    lines = [f"run {run_id}: test scores against pitch shift (quarter tones)",
             f"  {'shift':>6}{'F1_frm %':>10}{'change':>9}{'ER_frm':>8}{'F1_1sec %':>11}{'ER_1sec':>9}"]
    for q in sorted(results):
        r = results[q]
        lines.append(f"  {q:>+6d}{100 * r['f1_frm']:>10.1f}{100 * (r['f1_frm'] - base):>+9.1f}{r['er_frm']:>8.3f}"
                     f"{100 * r['f1_1sec']:>11.1f}{r['er_1sec']:>9.3f}")
    return "\n".join(lines)


def add_parser(sub) -> None:
    from sedbench.commands.options import add_storage, add_tracking

    ev = sub.add_parser("evaluate", help="re-score recorded runs' best weights, e.g. on pitch-shifted test audio",
                        description="Re-score the best weights of recorded runs on their test data (or data=... "
                                    "overrides), with the test audio pitch-shifted by quarter tones through librosa "
                                    "(paper Fig. 5). Logs pitch_shift/* to the same MLflow runs; the sweep's "
                                    "report then adds pitch_shift.png.")
    ev.add_argument("run_ids", nargs="*", metavar="RUN_ID",
                    help="MLflow run ids, then optional data overrides, e.g. data=synth data.root=/other/test/set")
    ev.add_argument("--sweep", help="also every seed of each family's best configuration in this sweep")
    ev.add_argument("--pitch-shift", default="", help="quarter tones, comma-separated, e.g. -2,-1,1,2")
    ev.add_argument("--device", choices=("run", "cpu", "cuda"), default="run",
                    help="where to run the model: run (default) = CUDA when the run trained on a GPU and this "
                         "machine has one, else the CPU")
    add_storage(ev, ", with --sweep")
    add_tracking(ev)
    ev.set_defaults(handler=run)


def run(args) -> None:
    from sedbench.tracking import tracking_uri

    evaluate(args.run_ids, parse_shifts(args.pitch_shift), tracking_uri(args.tracking), args.sweep, args.storage,
             args.device)
