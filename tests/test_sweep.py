"""Sweep orchestration: resume, grid exhaustion, failures, NaN, concurrency, kill and rerun, pruning."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from sedbench.sweep import cell_from_key, grid_cells

APP = Path(__file__).with_name("sweep_app.py")


def run_app(tmp_path, *args, name="s", wait=True, log="trained.log"):
    cmd = [sys.executable, str(APP), "-m", f"sweep.name={name}", f"sweep.storage=sqlite:///{tmp_path}/optuna.db",
           f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifacts={tmp_path}/artifacts",
           f"hydra.sweep.dir={tmp_path}/runs/{name}", f"+toy.log={tmp_path}/{log}", *args]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def study(tmp_path, name="s"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/optuna.db")


def completed_per_cell(st):
    return Counter(tuple(cell_from_key(t.user_attrs["cell"])) for t in st.trials if t.state.name == "COMPLETE")


def trained(tmp_path, log="trained.log"):
    path = tmp_path / log
    return Counter(line.split()[0] for line in path.read_text().splitlines()) if path.is_file() else Counter()


def test_conditional_grid_cells():
    cells = grid_cells([{"model": ["crnn", "cnn"], "model.kernel": [[5, 5], [1, 5]]}, {"model": ["rnn"]}],
                       {"model.maps": ["96", "256"]})
    assert len(cells) == 2 * 2 * 2 + 2
    assert ("model=rnn", "model.maps=96") in cells and ("model=cnn", "model.kernel=[1,5]", "model.maps=256") in cells


def test_grid_exhaustion_and_resume(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2,3,4")
    assert r.returncode == 0, r.stdout + r.stderr
    st = study(tmp_path)
    assert sorted(completed_per_cell(st).values()) == [1, 1, 1, 1] and len(st.trials) == 4
    again = run_app(tmp_path, "model.maps=1,2,3,4")
    assert again.returncode == 0 and "nothing new to train (4 of 4 trials done)" in again.stdout
    assert len(study(tmp_path).trials) == 4 and sum(trained(tmp_path).values()) == 4
    wider = run_app(tmp_path, "model.maps=1,2,3,4,5")  # another grid under the same name: refused, nothing run
    assert wider.returncode != 0 and "the grid differs from the one this study was started with" in wider.stderr
    assert sum(trained(tmp_path).values()) == 4


def test_budget_across_restarts(tmp_path):
    assert run_app(tmp_path, "model.maps=1,2,3,4,5,6", "sweep.n_trials=2").returncode == 0
    assert sum(completed_per_cell(study(tmp_path)).values()) == 2
    assert run_app(tmp_path, "model.maps=1,2,3,4,5,6", "sweep.n_trials=5").returncode == 0
    assert sum(completed_per_cell(study(tmp_path)).values()) == 5 and sum(trained(tmp_path).values()) == 5


def test_a_raising_trial_and_a_nan_trial_fail_and_the_sweep_goes_on(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2,3,4,5", "+toy.fail=[2]", "+toy.nan=[4]")
    assert r.returncode == 0, r.stdout + r.stderr
    st = study(tmp_path)
    states = {int(cell_from_key(t.user_attrs["cell"])[0].split("=")[1]): t for t in st.trials}
    assert states[2].state.name == "FAIL" and "RuntimeError: toy failure for maps=2" in states[2].user_attrs["error"]
    assert states[4].state.name == "FAIL" and "objective is nan" in states[4].user_attrs["error"]
    assert {states[k].state.name for k in (1, 3, 5)} == {"COMPLETE"}
    # the rerun retries only the failed cells (here they fail again)
    run_app(tmp_path, "model.maps=1,2,3,4,5", "+toy.fail=[2]", "+toy.nan=[4]")
    assert trained(tmp_path) == Counter({"1": 1, "2": 2, "3": 1, "4": 2, "5": 1})


def test_failure_rate_stops_the_sweep(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2,3,4,5,6,7,8", "+toy.fail=[1,2,3,4,5,6,7,8]", "sweep.max_failure_rate=0.5")
    assert r.returncode == 0 and "max_failure_rate" in r.stdout + r.stderr
    assert sum(trained(tmp_path).values()) == 4


def test_two_processes_share_one_sqlite_study(tmp_path):
    args = ["model.maps=1,2,3,4,5,6,7,8", "+toy.sleep=0.3"]
    procs = [run_app(tmp_path, *args, wait=False) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    st = study(tmp_path)
    assert sorted(completed_per_cell(st).values()) == [1] * 8  # none lost
    assert sorted(trained(tmp_path).values()) == [1] * 8       # none trained twice
    pids = {line.split()[1] for line in (tmp_path / "trained.log").read_text().splitlines()}
    assert len(pids) == 2                                       # both workers did share the work


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_mid_trial_then_rerun_completes_the_grid(tmp_path, sig):
    args = ["model.maps=1,2,3,4,5", "+toy.sleep=1.5"]
    proc = run_app(tmp_path, *args, wait=False)
    deadline = time.time() + 120
    while sum(trained(tmp_path).values()) < 2 and time.time() < deadline:  # mid-way through the 2nd trial
        time.sleep(0.1)
    time.sleep(0.3)
    os.kill(proc.pid, sig)
    proc.communicate(timeout=60)
    st = study(tmp_path)
    running = [t for t in st.trials if t.state.name == "RUNNING"]
    if sig == signal.SIGINT:  # Ctrl-C: the running trial is marked failed, the study stays consistent
        assert not running and any(t.user_attrs.get("error", "").startswith("interrupted") for t in st.trials)
    else:
        assert len(running) == 1  # SIGKILL leaves it running; the rerun finds the dead worker
    r = run_app(tmp_path, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(completed_per_cell(study(tmp_path)).values()) == [1] * 5
    assert not [t for t in study(tmp_path).trials if t.state.name == "RUNNING"]


def test_pruning(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2,3,4,5,6,7,8,9,10", "sweep.pruner=median", "+toy.epochs=4")
    assert r.returncode == 0, r.stdout + r.stderr
    states = Counter(t.state.name for t in study(tmp_path).trials)
    assert states["PRUNED"] >= 3 and states["COMPLETE"] >= 5 and states["FAIL"] == 0
