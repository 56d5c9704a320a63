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
from helpers import app_cmd, completed_per_cell, run_app, trained
from helpers import load_study as study

from sedbench.sweep import cell_from_key, grid_cells

pytestmark = pytest.mark.xdist_group("sweeps")  # whole sweeps: one worker, one at a time


def test_conditional_grid_cells():
    cells = grid_cells([{"model": ["crnn", "cnn"], "model.kernel": [[5, 5], [1, 5]]}, {"model": ["rnn"]}],
                       {"model.maps": ["96", "256"]})
    assert len(cells) == 2 * 2 * 2 + 2
    assert ("model=rnn", "model.maps=96") in cells and ("model=cnn", "model.kernel=[1,5]", "model.maps=256") in cells


def test_a_member_told_while_its_group_runs_counts_once_against_the_budget():
    """Seeds trained together tell their trials one by one while the job still runs: the trials left to ask
    for count such a member once (as done), not twice (done and in flight), so the next group is not cut short."""
    from sedbench.sweep import left_to_ask

    st = optuna.create_study()
    running = [st.ask() for _ in range(3)]  # one group of 3 seeds, the first member already told
    st.tell(running[0], 0.5)
    st.tell(st.ask(), 0.4)  # a trial of an earlier job
    assert left_to_ask(st, 10, [t.number for t in running]) == 10 - 2 - 2
    assert left_to_ask(st, 10, []) == 8


def test_grid_exhaustion_and_resume(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2,3,4")
    assert r.returncode == 0, r.stdout + r.stderr
    st = study(tmp_path)
    assert sorted(completed_per_cell(st).values()) == [1, 1, 1, 1] and len(st.trials) == 4
    again = run_app(tmp_path, "model.maps=1,2,3,4")
    assert again.returncode == 0 and "nothing new to train (4 of 4 trials done)" in again.stdout
    assert len(study(tmp_path).trials) == 4 and sum(trained(tmp_path).values()) == 4
    wider = run_app(tmp_path, "model.maps=1,2,3,4,5")  # another grid under the same name: refused, nothing run
    assert wider.returncode == 2 and "the grid differs from the one this study was started with" in wider.stderr
    assert sum(trained(tmp_path).values()) == 4


@pytest.mark.slow  # end to end and long: make test-full (the fast tier covers the module with shorter cases)
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


def test_failure_rate_stops_the_sweep_and_the_command_fails(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2,3,4,5,6,7,8", "+toy.fail=[1,2,3,4,5,6,7,8]", "sweep.max_failure_rate=0.5")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == ("error: sweep s stopped: 4 of 4 trials failed, more than "
                                                 "sweep.max_failure_rate=0.5; see the errors above")
    assert sum(trained(tmp_path).values()) == 4


def test_a_sweep_whose_trials_all_fail_exits_non_zero(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2", "+toy.fail=[1,2]")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == ("error: sweep s failed: none of the 2 trials run now completed; "
                                                 "see the errors above")


@pytest.mark.parametrize("override, message", [
    ("data.root=/nonexistent/sedbench-data", "/nonexistent/sedbench-data: dataset folder not found. Fix: "),
    ("+model.poool=[4]", "model.poool is not a setting of model.arch=crnn (crnn). Fix: remove it or use one of"),
    ("model=crnn,crnnn",
     "sweep cell model=crnnn model.maps=1 does not compose: In 'config': Could not find 'model/crnnn'"),
    ("trainer=cpu_bf16", "trainer.precision=bf16-mixed on a CPU without native bfloat16"),
    ("sweep.claims=fig5", "sweep.claims=fig5: no such set of claims. Fix: one of claims, table4, fig4"),
    ("sweep.rounds=[5,3]", "sweep.rounds=[5, 3]: increasing seed counts, the first at least 2. Fix: "),
    ("sweep.rounds=[2,3]", "sweep.rounds adds seeds, but cell model.maps=1 has no seed. Fix: "),
    ("seed=0,1 sweep.rounds=[2,3]", "sweep.rounds ends at 3 seeds but 3 configuration(s) list fewer (e.g. "
                                    "model.maps=1). Fix: list at least 3 seeds in every grid block"),
    ("seed=0,1,2 sweep.rounds=[2,3] sweep.pruner=median", "sweep.rounds looks at every seed's test score"),
    ("sweep.energy_reference='model.maps=9'", "sweep.energy_reference 'model.maps=9' matches no cell of the grid. "
                                              "Fix: name a configuration the grid trains, e.g. 'model.maps=1'"),
    ("sweep.energy_reference=crnn", "sweep.energy_reference: 'crnn' is not key=value"),
])
def test_an_error_every_cell_shares_is_one_line_and_exit_2_with_nothing_enqueued(tmp_path, override, message):
    if override == "trainer=cpu_bf16":
        from sedbench.hardware import cpu_info

        if cpu_info()["bf16_native"]:
            pytest.skip("this CPU computes bf16 natively: cpu_bf16 is allowed here")
    r = run_app(tmp_path, "model.maps=1,2,3", *override.split())
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "Traceback" not in r.stderr and sum(trained(tmp_path).values()) == 0
    assert not (tmp_path / "optuna.db").exists() or not optuna.get_all_study_names(f"sqlite:///{tmp_path}/optuna.db")


def test_two_processes_share_one_sqlite_study(tmp_path):
    args = ["model.maps=1,2,3,4,5,6,7,8", "+toy.sleep=2.0"]  # long enough that both workers overlap, even when
    # the second one starts slowly on a loaded machine
    procs = [run_app(tmp_path, *args, wait=False) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    st = study(tmp_path)
    assert sorted(completed_per_cell(st).values()) == [1] * 8  # none lost
    assert sorted(trained(tmp_path).values()) == [1] * 8       # none trained twice
    pids = {line.split()[1] for line in (tmp_path / "trained.log").read_text().splitlines()}
    assert len(pids) == 2                                       # both workers did share the work


@pytest.mark.parametrize("sig", [signal.SIGKILL, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_killed_mid_trial_then_rerun_completes_the_grid(tmp_path, sig):
    args = ["model.maps=1,2,3,4", "+toy.sleep=2"]
    proc = run_app(tmp_path, *args, wait=False)
    deadline = time.time() + 120
    while sum(trained(tmp_path).values()) < 2 and time.time() < deadline:  # the 2nd trial has started
        time.sleep(0.05)
    time.sleep(0.5)  # well inside its 2 s
    os.kill(proc.pid, sig)
    proc.communicate(timeout=60)
    st = study(tmp_path)
    running = [t for t in st.trials if t.state.name == "RUNNING"]
    state = [(t.number, t.state.name, t.user_attrs.get("error")) for t in st.trials]
    if sig == signal.SIGINT:  # Ctrl-C (as SIGTERM, a SLURM task cancelled: tests/test_engines.py): the running trial
        # is marked failed and its cell queued again, for another worker of the study or the rerun
        assert not running, state
        (stopped,) = [t for t in st.trials if t.user_attrs.get("error", "").startswith("interrupted")]
        assert [t.state.name for t in st.trials if t.user_attrs["cell"] == stopped.user_attrs["cell"]] == \
            ["FAIL", "WAITING"], state
    else:
        assert len(running) == 1, state  # SIGKILL leaves it running; the rerun finds the dead worker
    r = run_app(tmp_path, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(completed_per_cell(study(tmp_path)).values()) == [1] * 4
    assert not [t for t in study(tmp_path).trials if t.state.name == "RUNNING"]


@pytest.mark.slow  # end to end and long: make test-full (the fast tier covers the module with shorter cases)
def test_pruning(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2,3,4,5,6,7,8,9,10", "sweep.pruner=median", "+toy.epochs=4")
    assert r.returncode == 0, r.stdout + r.stderr
    states = Counter(t.state.name for t in study(tmp_path).trials)
    assert states["PRUNED"] >= 3 and states["COMPLETE"] >= 5 and states["FAIL"] == 0


@pytest.mark.slow  # end to end and long: make test-full (the fast tier covers the module with shorter cases)
def test_changed_base_overrides_are_refused(tmp_path):
    assert run_app(tmp_path, "model.maps=1,2", "model=cnn").returncode == 0
    r = run_app(tmp_path, "model.maps=1,2", "model=rnn")
    assert r.returncode == 2 and "'model=cnn'" in r.stderr and "now [" in r.stderr and "'model=rnn'" in r.stderr
    assert "Traceback" not in r.stderr
    assert run_app(tmp_path, "model.maps=1,2", "model=cnn", "sweep.n_jobs=2").returncode == 0  # neutral: fine


SWEEP_CELLS = {"demo": 14, "paper_grid_crnn": 48, "paper_grid_cnn": 48, "paper_grid_rnn": 36, "filter_shape": 7,
               "seq_len": 14, "seeds": 50, "small_data": 36, "variants": 5, "acrnn_esc10": 5, "claims": 30,
               "claims_pilot": 10, "claims_pilot2": 3, "claims_pilot3": 4, "claims_pilot4": 4,
               "table4": 96, "table4_pilot": 24, "fig4": 104, "fig4_pilot": 26}


@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(__file__).parents[1] / "sweeps").glob("*.yaml")))
def test_every_sweep_definition_composes(name):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    repo = Path(__file__).resolve().parents[1]
    with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+sweeps={name}", f"hydra.searchpath=[file://{repo}]"])
    sw = cfg.sweep
    assert sw.name == name and sw.sampler in ("grid", "tpe", "random")
    if sw.sampler == "grid":
        cells = grid_cells(OmegaConf.to_container(sw.grid, resolve=True))
        assert len(cells) == SWEEP_CELLS[name]
        for cell in cells[:3]:  # each cell composes into a runnable config
            with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
                trial_cfg = compose(config_name="config", overrides=[f"+sweeps={name}", *cell,
                                                                      f"hydra.searchpath=[file://{repo}]"])
            assert (repo / "conf" / "model" / f"{trial_cfg.model.name}.yaml").is_file()
    else:
        assert sw.n_trials and sw.space


def test_real_sweep_records_in_mlflow_and_optuna(synth_dir, tmp_path):
    """Ad-hoc grid through `sedbench train -m`: one cell trains, one fails once its data is loaded (a fault injected
    into the trial's process: an impossible configuration is refused before the sweep starts)."""
    import os

    import mlflow

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "from sedbench.training import train\n"
        "real = train.model_costs\n"
        "def model_costs(cfg, net, n_features):\n"
        "    if cfg.model.maps == 5:\n"
        "        raise RuntimeError('a fault injected into the trial')\n"
        "    return real(cfg, net, n_features)\n"
        "train.model_costs = model_costs\n")
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
           "PYTHONPATH": os.pathsep.join(p for p in [str(hook), os.environ.get("PYTHONPATH", "")] if p)}
    cmd = [sys.executable, "-m", "sedbench", "train", "-m", "data=folder", f"data.root={synth_dir}",
           "data.seq_len=32", "model.maps=4,5", "trainer.max_epochs=2",
           "trainer.max_time=null", "trainer.num_threads=1", "sweep.n_jobs=1", "sweep.name=real",
           f"sweep.storage=sqlite:///{tmp_path}/optuna.db", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
           f"tracking.artifacts={tmp_path}/artifacts", f"features.cache_dir={tmp_path}/cache",
           f"hydra.sweep.dir={tmp_path}/runs"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    st = study(tmp_path, "real")
    ok, bad = sorted(st.trials, key=lambda t: t.state.name)
    assert ok.state.name == "COMPLETE" and bad.state.name == "FAIL"
    assert "a fault injected into the trial" in bad.user_attrs["error"]
    for key in ("mlflow_run_id", "n_params", "macs_per_10s", "test/f1_frm", "test/er_frm", "test/f1_1sec",
                "fit_seconds"):
        assert key in ok.user_attrs, key
    assert ok.params == {"model.maps": "4"}

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id])
    parent = [x for x in runs if x.data.tags.get("kind") == "sweep"]
    children = [x for x in runs if x.data.tags.get("mlflow.parentRunId")]
    assert len(parent) == 1 and len(children) == 2 and parent[0].info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent[0].info.run_id}
    good = client.get_run(ok.user_attrs["mlflow_run_id"])
    assert good.info.status == "FINISHED" and "test/f1_frm" in good.data.metrics
    failed = next(c for c in children if c.info.run_id != good.info.run_id)
    assert failed.info.status == "FAILED"
    assert "traceback.txt" in {a.path for a in client.list_artifacts(failed.info.run_id)}
    # what produced them: the sweep's start and each run (the failed one too: tagged when its data was loaded)
    from sedbench.provenance import code, libraries

    start, mine = st.user_attrs["provenance"], ok.user_attrs["provenance"]
    assert start["code"] == mine["code"] == code() and start["libraries"] == mine["libraries"] == libraries()
    assert mine["dataset"]["fingerprint"] in start["datasets"] and ok.user_attrs["provenance_differs"] == []
    assert good.data.tags["provenance.dataset.fingerprint"] == failed.data.tags["provenance.dataset.fingerprint"] \
        == mine["dataset"]["fingerprint"] and failed.data.tags["provenance.code.dirty"] == str(mine["code"]["dirty"])
    assert "nothing new" not in r.stdout and "best per family" in r.stdout

    from sedbench.commands.cli import main

    out = tmp_path / "report"
    assert main(["report", "real", "--storage", f"sqlite:///{tmp_path}/optuna.db",
                 "--tracking", f"sqlite:///{tmp_path}/mlflow.db", "--out", str(out)]) == 0
    per_class = (out / "per_class.md").read_text()  # class-wise F1 read back from the MLflow run
    assert "| glass smash |" in per_class and "CRNN" in per_class and "[per_class.md]" in (out / "index.md").read_text()
    scores = (out / "scores.md").read_text()  # raw and post-processed detection scores, side by side
    assert "## Detection scores, raw and post-processed" in scores and "| CRNN | post-processed | 1 |" in scores
    assert "PSDS1" in scores and "F1_event" in scores
    header = (out / "trials.csv").read_text().splitlines()[0].split(",")
    assert {"test/psds1", "test/psds2", "test/f1_event", "test/f1_event_pp", "test/psds1_pp"} <= set(header)
    assert header[header.index("n_params") + 1] == "macs_per_10s"  # the architecture's costs side by side
    assert not [h for h in header if h.count("/") > 1]  # class-wise scores stay in MLflow


def test_tpe_conditional_space_and_budget(tmp_path):
    space = ("++sweep.space={model.maps:{low:1,high:50,int:true},model.rnn_layers:{choices:[0,1]},"
             "model.cell:{choices:[gru,lstm],when:{model.rnn_layers:[1]}}}")
    for budget in (3, 7):
        r = run_app(tmp_path, "sweep.sampler=tpe", f"sweep.n_trials={budget}", space)
        assert r.returncode == 0, r.stdout + r.stderr
    trials = [t for t in study(tmp_path).trials if t.state.name == "COMPLETE"]
    assert len(trials) == 7 and sum(trained(tmp_path).values()) == 7  # a total budget across restarts
    for t in trials:
        assert ("model.cell" in t.params) == (t.params["model.rnn_layers"] == "1")  # conditional parameter


@pytest.mark.slow  # joblib processes are the default launcher's: tests/test_packing.py runs them in the fast tier
def test_parallel_trials_through_the_joblib_launcher(tmp_path):
    r = run_app(tmp_path, "model.maps=1,2,3,4", "+toy.sleep=1.0", "sweep.n_jobs=2", "hydra/launcher=joblib",
                "hydra.launcher.n_jobs=2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(completed_per_cell(study(tmp_path)).values()) == [1] * 4
    pids = {line.split()[1] for line in (tmp_path / "trained.log").read_text().splitlines()}
    assert len(pids) == 2  # two worker processes


@pytest.mark.slow  # the local launcher is the default: tests/test_packing.py runs it in the fast tier
def test_parallel_trials_through_the_local_launcher_preset(tmp_path):
    """``hydra/launcher=local``: joblib processes, as many as sweep.n_jobs."""
    r = run_app(tmp_path, "model.maps=1,2,3,4", "+toy.sleep=1.0", "sweep.n_jobs=2", "hydra/launcher=local")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(completed_per_cell(study(tmp_path)).values()) == [1] * 4
    assert len({line.split()[1] for line in (tmp_path / "trained.log").read_text().splitlines()}) == 2


@pytest.mark.slow  # end to end and long: make test-full (the fast tier covers the module with shorter cases)
def test_trials_through_submitit(tmp_path):
    """The submitit launcher (SLURM's, here in its local mode: each trial a submitted job in its own
    process) under the sedbench sweeper: results, failures and trial folders come back as with joblib."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'sedbench[slurm]'")
    r = run_app(tmp_path, "model.maps=1,2,3", "+toy.fail=[2]", "sweep.n_jobs=3", "hydra/launcher=submitit_local",
                "hydra.launcher.timeout_min=5")
    assert r.returncode == 0, r.stdout + r.stderr
    st = study(tmp_path)
    states = {cell_from_key(t.user_attrs["cell"])[0]: t for t in st.trials}
    assert states["model.maps=1"].state.name == "COMPLETE" and states["model.maps=3"].state.name == "COMPLETE"
    assert states["model.maps=2"].state.name == "FAIL" and "toy failure" in states["model.maps=2"].user_attrs["error"]
    assert len({line.split()[1] for line in (tmp_path / "trained.log").read_text().splitlines()}) == 3
    assert (tmp_path / "runs" / "s" / ".submitit").is_dir()
    assert Path(states["model.maps=1"].user_attrs["output_dir"]) == tmp_path / "runs" / "s" / "s" / "0"


def test_the_slurm_preset_composes_for_a_cluster():
    from hydra import compose, initialize_config_dir

    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'sedbench[slurm]'")
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=slurm", "sweep.n_jobs=16",
                                                       "hydra.launcher.partition=gpu"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.sedbench_sweeper.launchers.SlurmLauncher"
    assert launcher.array_parallelism == 16 and launcher.partition == "gpu" and launcher.gpus_per_node == 1


def test_a_slurm_job_without_a_result_is_lost_and_the_array_keeps_the_others():
    """sedbench's SLURM launcher awaits each job of an array on its own: a job SLURM ended without a result
    (cancelled: submitit's UncompletedJobError) comes back lost (the sweep trains its cell again), one that could
    not run the trial fails, and the others keep their results (hydra-submitit's launch raises for the whole array).
    The cluster itself: tests/test_engines.py (make test-full)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'sedbench[slurm]'")
    from hydra.core.utils import JobReturn, JobStatus
    from submitit.core.utils import FailedJobError, UncompletedJobError

    from hydra_plugins.sedbench_sweeper.launchers import SlurmLauncher
    from sedbench.errors import JobLost

    class Job:
        def __init__(self, outcome, job_id: str, state: str):
            self.outcome, self.job_id, self.state = outcome, job_id, state

        def results(self):
            if isinstance(self.outcome, BaseException):
                raise self.outcome
            return [self.outcome]

    done = JobReturn(overrides=["model.maps=1"], status=JobStatus.COMPLETED, _return_value=0.5)
    rets = [SlurmLauncher._outcome(Job(done, "7_0", "COMPLETED"), ["model.maps=1"]),
            SlurmLauncher._outcome(Job(UncompletedJobError("no output"), "7_1", "CANCELLED by 0"), ["model.maps=2"]),
            SlurmLauncher._outcome(Job(FailedJobError("no module named sedbench"), "7_2", "FAILED"), ["model.maps=3"])]
    assert rets[0] is done and rets[0].return_value == 0.5
    assert rets[1].status == JobStatus.FAILED and rets[1].overrides == ["model.maps=2"]
    with pytest.raises(JobLost, match=r"SLURM job 7_1 ended without a result \(CANCELLED by 0\)"):
        rets[1].return_value  # noqa: B018 (raises)
    with pytest.raises(FailedJobError, match="no module named sedbench"):
        rets[2].return_value  # noqa: B018 (raises)


def test_an_engine_that_is_not_there_is_one_error_before_anything_is_queued(tmp_path, monkeypatch):
    """The sweeper's preflight asks sedbench's launchers whether their engine is there: Ray installed; SLURM's
    commands answering (sbatch, squeue, and sacct, which is how a cancelled job is seen to end)."""
    import importlib.util

    from hydra_plugins.sedbench_sweeper.launchers import RayLauncher
    from sedbench.errors import ConfigError

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"Ray is not installed. Fix: pip install 'sedbench\[ray\]'"):
        RayLauncher().check()
    monkeypatch.undo()
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'sedbench[slurm]'")
    from hydra_plugins.sedbench_sweeper.launchers import SlurmLauncher

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="sbatch, sacct, squeue not found. Fix: run the sweep on a SLURM login"):
        SlurmLauncher(submitit_folder=str(tmp_path)).check()
    for cmd in ("sbatch", "sacct", "squeue"):  # SLURM's commands, but no cluster answers
        (tmp_path / cmd).write_text("#!/bin/sh\necho 'squeue: fatal: Could not establish a configuration source' >&2\n"
                                    "exit 1\n")
        (tmp_path / cmd).chmod(0o755)
    with pytest.raises(ConfigError, match="`squeue -h -u .*` fails here: squeue: fatal: Could not establish"):
        SlurmLauncher(submitit_folder=str(tmp_path)).check()


def test_trials_through_ray(tmp_path):
    """``hydra/launcher=ray_cluster``: trials as Ray tasks on a Ray started by the sweep. A trial that raises fails
    and is not retried; a task whose process dies (the engine lost it) fails as lost, and its cell is trained
    again as a new trial in the same sweep; nothing else trains twice."""
    pytest.importorskip("ray", reason="Ray is optional: `make ray` (or pip install 'sedbench[ray]') installs it")
    r = run_app(tmp_path, "model.maps=1,2,3", "+toy.fail=[2]", "+toy.die_once=[3]", "sweep.n_jobs=3",
                "hydra/launcher=ray_cluster", "+hydra.launcher.ray.init.num_cpus=2")
    assert r.returncode == 0, r.stdout + r.stderr
    by_cell = Counter((cell_from_key(t.user_attrs["cell"])[0], t.state.name) for t in study(tmp_path).trials)
    assert by_cell == {("model.maps=1", "COMPLETE"): 1, ("model.maps=2", "FAIL"): 1, ("model.maps=3", "FAIL"): 1,
                       ("model.maps=3", "COMPLETE"): 1}
    assert trained(tmp_path) == {"1": 1, "2": 1, "3": 2}
    (gone,) = [t for t in study(tmp_path).trials if t.user_attrs.get("lost")]
    assert "Ray lost the task" in gone.user_attrs["error"]
    assert "LOST: Ray lost the task" in r.stderr and "its cell is trained again" in r.stderr
    assert "toy failure for maps=2" in r.stderr


@pytest.mark.slow  # end to end and long: make test-full (the fast tier covers the module with shorter cases)
def test_a_worker_on_another_host_that_dies_is_noticed_by_its_heartbeat(tmp_path):
    """Worker a runs under another host name (a UTS namespace, as on another machine), so its process
    cannot be looked up; once SIGKILLed, its trial falls silent and worker b fails and retries it."""
    if os.geteuid() != 0 or subprocess.run(["unshare", "-u", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs root and `unshare -u` to give a worker another host name")
    args = ["model.maps=1,2,3,4", "+toy.sleep=2", "sweep.heartbeat_seconds=0.5"]
    a = subprocess.Popen(["unshare", "-u", "sh", "-c", 'hostname other-machine && exec "$@"', "sh",
                          *app_cmd(tmp_path, *args, name="h")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(t.state.name == "RUNNING" and t.user_attrs.get("host") == "other-machine"
                                              for t in _trials(tmp_path, "h")):
        time.sleep(0.05)
    a.kill()
    a.communicate(timeout=60)
    killed_at = time.time()
    b = run_app(tmp_path, *args, name="h")
    assert b.returncode == 0, b.stdout + b.stderr
    st = study(tmp_path, "h")
    assert sorted(completed_per_cell(st).values()) == [1] * 4
    (dead,) = [t for t in st.trials if t.user_attrs.get("host") == "other-machine" and t.state.name == "FAIL"]
    assert "no heartbeat for" in dead.user_attrs["error"]
    assert "had lost their worker" in b.stdout + b.stderr
    retry = next(t for t in st.trials if t.state.name == "COMPLETE" and t.user_attrs["cell"] == dead.user_attrs["cell"])
    assert retry.datetime_start.timestamp() - killed_at >= 4 * 0.5 - 0.5  # not before it fell silent


def _trials(tmp_path, name):
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return study(tmp_path, name).trials
    except (KeyError, SQLAlchemyError):  # the worker has not created the study (or the storage's tables) yet
        return []


# ------------------------------------------------------------------ seeds trained together (sweep.fuse)
def _jobs(tmp_path) -> Counter:
    """Trainings per job (the job's first trial), from the toy's log."""
    return Counter(line.split()[2] for line in (tmp_path / "trained.log").read_text().splitlines())


def test_seeds_of_a_configuration_run_as_one_job_each_with_its_own_trial(tmp_path):
    """sweep.fuse=auto: the cells that differ only in seed, waiting next to each other, run as one job (one trial
    process); every member keeps its own trial, told the moment the member is recorded, with its run folder and
    metrics; a failing member fails alone. sweep.fuse=off: one job per cell, as before."""
    args = ["model.maps=1,2", "seed=0,1,2", "+toy.seeds=true", "+toy.fail_seeds=[1]"]
    r = run_app(tmp_path, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "seeds of a configuration train together (sweep.fuse=auto): 6 cells of 2 configurations" in \
        r.stdout + r.stderr
    assert sorted(_jobs(tmp_path).values()) == [3, 3]                 # two jobs of three seeds
    assert sorted(trained(tmp_path).values()) == [1] * 6
    st = study(tmp_path)
    states = {tuple(cell_from_key(t.user_attrs["cell"])): t.state.name for t in st.trials}
    assert sorted(states.values()) == ["COMPLETE"] * 4 + ["FAIL"] * 2
    assert all(s == "FAIL" for c, s in states.items() if "seed=1" in c)
    for t in st.trials:   # each member's own folder, metrics and overrides, as a solo trial's
        assert Path(t.user_attrs["output_dir"]).name == str(t.number)
        assert t.user_attrs["overrides"][-1].startswith("seed=") and "heartbeat" in t.user_attrs
        if t.state.name == "COMPLETE":
            assert t.user_attrs["n_params"] in (1, 2) and t.value == 1 / t.user_attrs["n_params"]
        else:
            assert "toy failure for seed=1" in t.user_attrs["error"]
    assert sum(" trial " in line for line in (r.stdout + r.stderr).splitlines() if line.startswith("[")) == 6

    off = tmp_path / "off"
    off.mkdir()
    r = run_app(off, *args, "sweep.fuse=off")
    assert r.returncode == 0 and "train together" not in r.stdout + r.stderr
    assert sorted(_jobs(off).values()) == [1] * 6


def test_a_killed_group_keeps_its_finished_members_and_retries_the_others(tmp_path):
    """The sweep is killed (SIGKILL) while the second of three seeds trains in its group: the first, recorded and
    told, stays complete; the rerun retries the second and third only; every cell completes exactly once."""
    args = ["model.maps=1", "seed=0,1,2", "+toy.seeds=true", "+toy.sleep=2"]
    proc = run_app(tmp_path, *args, wait=False)
    deadline = time.time() + 120
    while sum(trained(tmp_path).values()) < 2 and time.time() < deadline:  # the 2nd member has started
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    before = {t.number: t.state.name for t in study(tmp_path).trials}
    assert sorted(before.values()) == ["COMPLETE", "RUNNING", "RUNNING"], before
    r = run_app(tmp_path, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(completed_per_cell(study(tmp_path)).values()) == [1] * 3
    assert trained(tmp_path) == Counter({"1/0": 1, "1/1": 2, "1/2": 1})  # the finished member was not retrained


def test_the_claims_sweep_trains_its_seeds_together_and_records_them_as_before(synth_dir, tmp_path):
    """`sedbench sweep claims` (one epoch per trial on the test synth): its 30 cells run as 8 groups of seeds, two
    at a time, and every trial is recorded as a solo trial is (Optuna attributes, MLflow run nested under the
    sweep's, run folder with metrics.json and file_counts.csv), tagged with its group; the report reads them."""
    import json

    import mlflow

    from sedbench.commands.cli import main

    r = subprocess.run([sys.executable, "-m", "sedbench", "sweep", "claims", "data=folder", f"data.root={synth_dir}",
                        f"sweep.storage=sqlite:///{tmp_path}/optuna.db", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                        f"tracking.artifacts={tmp_path}/artifacts", f"features.cache_dir={tmp_path}/cache",
                        f"hydra.sweep.dir={tmp_path}/runs", "trainer.max_epochs=1"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "seeds of a configuration train together (sweep.fuse=auto): 30 cells of 8 configurations" in r.stderr
    st = study(tmp_path, "claims")
    assert [t.state.name for t in st.trials] == ["COMPLETE"] * 30
    groups = Counter(t.user_attrs["fused_group"] for t in st.trials)
    assert sorted(groups.values()) == [3] * 5 + [5] * 3
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    for t in st.trials:
        out = Path(t.user_attrs["output_dir"])
        assert out.name == str(t.number) and (out / "file_counts.csv").is_file()
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["val/f1_frm"] == t.value and metrics["steps"] == t.user_attrs["steps"] > 0
        assert t.user_attrs["provenance_differs"] == [] and metrics["fused_group"] == t.user_attrs["fused_group"]
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FINISHED" and run.data.tags["trial"] == str(t.number)
        assert run.data.tags["fused_group"] == t.user_attrs["fused_group"] and "mlflow.parentRunId" in run.data.tags
        assert "test/f1_frm" in run.data.metrics and len(client.get_metric_history(run.info.run_id, "val/f1_frm")) == 1
    assert main(["report", "claims", "--storage", f"sqlite:///{tmp_path}/optuna.db",
                 "--tracking", f"sqlite:///{tmp_path}/mlflow.db", "--out", str(tmp_path / "report")]) == 0
    claims = (tmp_path / "report" / "claims.md").read_text()
    assert "| CRNN beats CNN and RNN at matched parameter counts |" in claims and "5 vs 5 seeds" in claims


def test_seeds_added_in_rounds_train_the_next_round_after_a_look_and_resume(synth_dir, tmp_path):
    """`sweep.rounds=[2,6]` (issue 38): 2 seeds of the CRNN, CNN and RNN; the look at 2 seeds (99.93 %, the
    O'Brien-Fleming share of the 5 %) cannot decide one-epoch models, so the 3 configurations get 6 seeds; the
    sweep ends after the last look, the report shows each verdict with its look, a rerun trains nothing."""
    from sedbench.commands.cli import main

    cmd = [sys.executable, "-m", "sedbench", "train", "-m", "data=folder", f"data.root={synth_dir}",
           "model=crnn,cnn,rnn", "model.maps=4", "seed=0,1,2,3,4,5", "data.seq_len=32", "trainer.max_epochs=1",
           "trainer.max_time=null", "trainer.num_threads=1", "sweep.n_jobs=1", "sweep.name=rounds",
           "sweep.rounds=[2,6]", f"sweep.storage=sqlite:///{tmp_path}/optuna.db",
           f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifacts={tmp_path}/artifacts",
           f"features.cache_dir={tmp_path}/cache", f"hydra.sweep.dir={tmp_path}/runs"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "sweep rounds: round 1 of 2: 2 seeds for 3 configurations" in r.stderr
    assert "sweep rounds: round 2 of 2: 6 seeds for 3 configurations (after look 1)" in r.stderr
    assert "sweep rounds: rounds: done after look 2 of 2" in r.stderr
    st = study(tmp_path, "rounds")
    assert [t.state.name for t in st.trials] == ["COMPLETE"] * 18
    assert Counter(t.params["model"] for t in st.trials) == Counter({"crnn": 6, "cnn": 6, "rnn": 6})
    assert [t.params["seed"] for t in st.trials[:6]] in (["0", "0", "0", "1", "1", "1"], ["0", "1"] * 3)
    assert st.user_attrs["rounds"] == {"seeds": [2, 6], "spending": "obrien_fleming"}
    assert st.user_attrs["claims"] == "claims" and st.user_attrs["budget"] == 18
    assert main(["report", "rounds", "--storage", f"sqlite:///{tmp_path}/optuna.db",
                 "--tracking", f"sqlite:///{tmp_path}/mlflow.db", "--out", str(tmp_path / "report")]) == 0
    claims = (tmp_path / "report" / "claims.md").read_text()
    assert "**Seeds added in rounds** (`sweep.rounds`: 2, 6 seeds" in claims and "rounds: done after look 2" in claims
    assert "(look 2 of 2, 6 seeds)" in claims and "6 vs 6 seeds" in claims
    assert main(["claims", "rounds", "--storage", f"sqlite:///{tmp_path}/optuna.db", "--tracking",
                 f"sqlite:///{tmp_path}/mlflow.db", "--out", str(tmp_path / "across.md")]) == 0
    assert "(look 2 of 2, 6 seeds)" in (tmp_path / "across.md").read_text()  # decided look by look there too
    status = subprocess.run([sys.executable, "-m", "sedbench", "status", "rounds", "--storage",
                             f"sqlite:///{tmp_path}/optuna.db"], capture_output=True, text=True, timeout=120)
    assert "18 of 18 done" in status.stdout and "seeds in rounds (2, 6 a configuration)" in status.stdout
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "nothing new to train (18 of 18 trials done)" in r.stdout, r.stderr[-2000:]
