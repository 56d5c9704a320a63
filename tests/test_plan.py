"""``sedbench plan``: seed spreads, failures, the files' share of the variance, power and seeds for 80 % per claim,
on a sweep made up by hand, on the demo and on the claims pilot."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from test_claims_report import make_rows

from sedbench.commands.cli import main
from sedbench.report.plan import as_markdown, plan_claims, plan_configurations


def test_a_plan_from_runs(tmp_path):
    rows, fetch = make_rows(tmp_path, seeds=3)
    configs = plan_configurations(rows)
    crnn = next(c for c in configs if "kernel=[5,5]" in c.label and c.label.startswith("CRNN"))
    # seeds 0, 1, 2 hit 18, 17, 18 of 20 files: F1 0.90, 0.85, 0.90
    assert crnn.runs == 3 and crnn.failed == 0 and not crnn.judged
    assert crnn.std == pytest.approx(statistics.stdev([0.9, 0.85, 0.9]))
    claims = {p.result.claim.name: p for p in plan_claims(rows, fetch)}
    primary = claims["CRNN beats CNN and RNN at matched parameter counts"]
    assert primary.level == 0.95 and 0 <= primary.power < 1 and 0 < primary.files_share < 1
    # the secondary claims are planned at Holm's first step over the three that can be tested
    assert claims["CRNN: filter shape (1,5) is the worst"].level == pytest.approx(1 - 0.05 / 3)
    # a larger difference takes fewer seeds
    big = {p.result.claim.name: p for p in plan_claims(rows, fetch, difference=0.3)}
    assert big[primary.result.claim.name].power > primary.power
    assert (big[primary.result.claim.name].seeds or 101) <= (primary.seeds or 101)
    text = as_markdown(configs, list(claims.values()), 0.05, 0.8)
    assert "## Configurations" in text and "seeds a side for 80 %" in text and "(rule needs 4 runs)" in text
    assert "needs CRNN trials at data.seq_len=128" in text  # a claim the runs cannot test says what it needs


def test_a_study_of_rounds_is_planned_at_its_last_look_with_its_own_claims(tmp_path):
    from sedbench.report.claims import TABLE4
    from sedbench.stats import look_levels

    rows, fetch = make_rows(tmp_path, seeds=3)
    last = look_levels([3, 5, 8], kind="obrien_fleming")[-1]
    claims = {p.result.claim.name: p for p in plan_claims(rows, fetch, claims=TABLE4, alpha=1 - last)}
    assert list(claims) == [c.name for c in TABLE4]
    primary = claims["CRNN: filter shape (1,5) is the worst"]
    assert primary.level == pytest.approx(last) and primary.power == primary.power  # planned, at 96.3 %
    assert claims["CRNN: filter shape (5,5) is among the best"].level == pytest.approx(last)  # the one testable
    # a larger test split: the files' share shrinks, the power at the last round's seeds grows
    small = plan_claims(rows, fetch, claims=TABLE4, alpha=1 - last, seeds_at=(8,))[0]
    large = plan_claims(rows, fetch, claims=TABLE4, alpha=1 - last, files=80, seeds_at=(8,))[0]
    assert large.files_share < small.files_share and large.power_at[8] > small.power_at[8]
    assert large.result.tests[0].comparison.n_files == 80
    assert claims["CRNN: filter shape (3,3) is among the best"].note.startswith("needs CRNN trials with "
                                                                                "model.kernel=[3,3]")


def test_the_report_records_the_failure_rule_on_each_run(tiny_sweep, tmp_path, capsys):
    """On the demo's runs: the MLflow tags, metrics.json and the study's attribute say which runs failed (none:
    one seed a configuration leaves the rule nothing to compare with)."""
    import optuna
    from mlflow.tracking import MlflowClient

    assert main(["report", tiny_sweep.name, "--storage", tiny_sweep.storage, "--tracking", tiny_sweep.tracking,
                 "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    study = optuna.load_study(study_name=tiny_sweep.name, storage=tiny_sweep.storage)
    assert study.user_attrs["failed_runs"] == {}
    client = MlflowClient(tiny_sweep.tracking)
    for t in study.trials:
        assert client.get_run(t.user_attrs["mlflow_run_id"]).data.tags["failed_run"] == "false"
        metrics = json.loads((Path(t.user_attrs["output_dir"]) / "metrics.json").read_text())
        assert metrics["failed_run"] is False and metrics["failed_reason"] == ""


def test_plan_on_the_demo_says_one_seed_cannot_be_planned_from(tiny_sweep, capsys):
    base = ["--storage", tiny_sweep.storage, "--tracking", tiny_sweep.tracking]
    assert main(["plan", tiny_sweep.name, *base]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# Plan from sweep {tiny_sweep.name}") and "no seed spread to plan from" in out
    assert main(["plan", tiny_sweep.name, *base, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {c["runs"] for c in got["configurations"]} == {1} and got["claims"][0]["power"] is None
    assert main(["plan", "no-such-sweep", *base]) == 2
    assert "no sweep named 'no-such-sweep'" in capsys.readouterr().err
    assert main(["plan", tiny_sweep.name, *base, "--target", "80"]) == 2
    assert "--target 80.0: a power between 0 and 1" in capsys.readouterr().err


def test_claims_over_the_demos_sweep(tiny_sweep, tmp_path, capsys):
    base = ["--storage", tiny_sweep.storage, "--tracking", tiny_sweep.tracking]
    out = tmp_path / "claims.md"
    assert main(["claims", tiny_sweep.name, *base, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CRNN beats CNN and RNN at matched parameter counts: no verdict on every dataset" in printed
    assert f"claims: {out}" in printed and f"## Dataset `{tiny_sweep.name}`" in out.read_text()
    assert main(["claims", tiny_sweep.name, tiny_sweep.name, *base]) == 2
    assert "a sweep is named twice" in capsys.readouterr().err


@pytest.mark.xdist_group("sweeps")
def test_plan_on_the_claims_pilot(synth_dir, tmp_path):
    """The pilot's sweep definition (sweeps/claims_pilot.yaml) with two seeds of the three families at a toy size
    and budget: plan gives each claim it can test a power and the seeds a side for 80 %."""
    sedbench = str(Path(sys.executable).with_name("sedbench"))
    store = [f"sweep.storage=sqlite:///{tmp_path}/optuna.db", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"]
    cmd = [sedbench, "sweep", "claims_pilot", f"data.root={synth_dir}", "sweep.name=pilot",
           "sweep.grid=[{model:[crnn,cnn,rnn],model.maps:[8],seed:[0,1]}]", *store,
           f"tracking.artifacts={tmp_path}/artifacts", f"hydra.sweep.dir={tmp_path}/runs", "trainer.max_steps=20",
           "trainer.max_time=null", "data.seq_len=64", "data.batch_frames=512"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    plan = subprocess.run([sedbench, "plan", "pilot", "--storage", f"sqlite:///{tmp_path}/optuna.db",
                           "--tracking", f"sqlite:///{tmp_path}/mlflow.db", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0, plan.stderr[-3000:]
    got = json.loads(plan.stdout)
    assert len(got["configurations"]) == 3 and all(c["runs"] == 2 for c in got["configurations"])
    primary = got["claims"][0]
    assert primary["claim"] == "CRNN beats CNN and RNN at matched parameter counts"
    assert primary["power"] is not None and 0 <= primary["power"] <= 1 and primary["level"] == 0.95
    from sedbench.stats import look_levels

    store = ["--storage", f"sqlite:///{tmp_path}/optuna.db", "--tracking", f"sqlite:///{tmp_path}/mlflow.db"]
    plan = subprocess.run([sedbench, "plan", "pilot", *store, "--rounds", "3,5,8"], capture_output=True, text=True,
                          timeout=300)
    assert plan.returncode == 0 and "Claims: `claims`; seeds in rounds 3,5,8 (obrien_fleming)" in plan.stdout
    assert f"| {100 * look_levels([3, 5, 8], kind='obrien_fleming')[-1]:.2f} % |" in plan.stdout
    bad = subprocess.run([sedbench, "plan", "pilot", *store, "--rounds", "5,3"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "Fix: e.g. --rounds 3,5,8" in bad.stderr
    bad = subprocess.run([sedbench, "plan", "pilot", *store, "--claims", "fig5"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "no such set of claims" in bad.stderr
