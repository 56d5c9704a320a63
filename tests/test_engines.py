"""Sweeps on real distributed engines on this machine: a Ray cluster of two nodes and a one-node SLURM cluster.

Each test starts the engine it needs (Ray from pip, ``make ray``; SLURM, munge and MariaDB from Debian's
packages, ``make slurm`` as root), loses a job in the middle of a trial (a Ray worker node killed, a SLURM job
cancelled), and checks that every cell of the grid ends completed exactly once, with one finished MLflow run
each, and that the lost trial's run is closed (KILLED). Where an engine cannot start, the test skips and says why.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

GRID = ("model.maps=2,3", "seed=0,1")  # 4 cells


def sweep_cmd(synth_dir: Path, tmp_path: Path, name: str, *args: str, epochs: int = 3) -> list[str]:
    """A real (short) sweep on the small synth, its study and runs in ``tmp_path``; one cell per job."""
    return [sys.executable, "-m", "sedbench", "train", "-m", *GRID, "data=folder", f"data.root={synth_dir}",
            "data.seq_len=64", f"trainer.max_epochs={epochs}", "trainer.max_time=null", "trainer.num_threads=1",
            "sweep.fuse=off", f"sweep.name={name}", f"sweep.storage=sqlite:///{tmp_path}/optuna.db",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifacts={tmp_path}/artifacts",
            f"features.cache_dir={tmp_path}/cache", f"hydra.sweep.dir={tmp_path}/runs", *args]


def trials_of(tmp_path: Path, name: str) -> list:
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/optuna.db").get_trials(deepcopy=False)
    except (KeyError, SQLAlchemyError):  # the sweep has not created the study (or its tables) yet
        return []


def check_every_cell_once(tmp_path: Path, name: str, lost_numbers: set[int]) -> list:
    """Every cell of GRID completed exactly once, each completed trial with one FINISHED MLflow run with its
    metrics, the lost trials failed as lost with their runs KILLED, nothing left running; returns the trials."""
    from mlflow.tracking import MlflowClient

    from sedbench.sweep import cell_from_key

    final = trials_of(tmp_path, name)
    complete = [t for t in final if t.state.name == "COMPLETE"]
    per_cell = Counter(tuple(cell_from_key(t.user_attrs["cell"])) for t in complete)
    assert len(per_cell) == 4 and set(per_cell.values()) == {1}, per_cell  # none lost, none twice
    assert not [t for t in final if t.state.name in ("RUNNING", "WAITING")]
    lost = {t.number for t in final if t.user_attrs.get("lost")}
    assert lost == lost_numbers, (lost, [(t.number, t.state.name, t.user_attrs.get("error")) for t in final])
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id],
                              f"tags.sweep = '{name}'", max_results=1000)
    for t in complete:
        mine = [r for r in runs if r.data.tags.get("trial") == str(t.number)]
        assert [r.info.status for r in mine] == ["FINISHED"], mine
        assert {"test/f1_frm", "n_params"} <= set(mine[0].data.metrics)
    for number in lost_numbers:
        assert [r.info.status for r in runs if r.data.tags.get("trial") == str(number)] in ([], ["KILLED"])
    return final


# ------------------------------------------------------------------------------------------------------- Ray
@pytest.fixture
def ray_cluster():
    from helpers.ray_cluster import RayCluster

    cluster = RayCluster(cpus_per_node=1)
    try:
        cluster.start_node("head", head=True)
        cluster.start_node("worker")
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slow  # a Ray cluster and a real sweep: make test-full
def test_a_ray_worker_node_that_dies_mid_trial_loses_nothing(ray_cluster, synth_dir, tmp_path):
    """Two nodes on 127.0.0.1 (token authentication on), one trial on each; the worker node is killed while its
    trial trains. The task comes back lost, the trial fails, its run is ended KILLED, and its cell is trained
    again on the head node in the same sweep: every cell completes exactly once."""
    cmd = sweep_cmd(synth_dir, tmp_path, "ray", "hydra/launcher=ray_cluster", "sweep.n_jobs=2",
                    f"hydra.launcher.ray.init.address={ray_cluster.address}")
    log = open(tmp_path / "sweep.log", "w")  # noqa: SIM115 (closed with the process)
    sweep = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=ray_cluster.env)
    deadline, seen, victim = time.time() + 300, None, None
    while time.time() < deadline and victim is None:
        assert sweep.poll() is None, (tmp_path / "sweep.log").read_text()[-3000:]
        if ray_cluster.tasks_on("worker"):  # a trial runs on the worker node: let it train a few seconds
            seen = seen or time.time()
            if time.time() - seen > 5:
                victim = [t for t in trials_of(tmp_path, "ray") if t.state.name == "RUNNING"]
        time.sleep(0.2)
    assert victim, "no trial ran on the worker node"
    ray_cluster.kill_node("worker")
    assert sweep.wait(timeout=600) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    out = (tmp_path / "sweep.log").read_text()
    final = trials_of(tmp_path, "ray")
    lost = {t.number for t in final if t.user_attrs.get("lost")}
    assert len(lost) == 1 and lost <= {t.number for t in victim}, out
    check_every_cell_once(tmp_path, "ray", lost)
    assert "LOST: Ray lost the task (NodeDiedError" in out and "its cell is trained again" in out, out
    assert "A worker died" not in out and "Traceback" not in out, out
    print(f"\nRay: 2 nodes, worker node killed during trial {sorted(lost)}; {len(final)} trials for 4 cells; "
          f"{out.strip().splitlines()[-1]}")


# ----------------------------------------------------------------------------------------------------- SLURM
@pytest.fixture
def slurm():
    from helpers.slurm import SlurmCluster

    cluster = SlurmCluster(cpus=2)
    try:
        cluster.start()
    except RuntimeError as exc:
        pytest.fail(f"the SLURM cluster did not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def wait_for_training(slurm, sweep: subprocess.Popen | None, log: Path, seconds: float = 5) -> list[str]:
    """The SLURM jobs running once one of them has run ``seconds``: its trial is training."""
    deadline, seen = time.time() + 300, None
    while time.time() < deadline:
        if sweep is not None:
            assert sweep.poll() is None, log.read_text()[-3000:]
        jobs = slurm.running_jobs()
        if jobs:
            seen = seen or time.time()
            if time.time() - seen > seconds:
                return jobs
        time.sleep(0.5)
    raise AssertionError(f"no SLURM job ran: {slurm.log('slurmctld')}")


@pytest.mark.slow  # a SLURM cluster and a real sweep: make test-full
def test_a_slurm_job_array_with_a_cancelled_job_loses_nothing(slurm, synth_dir, tmp_path):
    """``hydra/launcher=slurm``: a job array sbatch refuses (no such partition) is one error line, and its trials
    are not left running. Then the 4 cells go out as one job array; one job is cancelled (scancel) while its
    trial trains. The array's other trials keep their results; the cancelled one comes back lost (submitit reads
    CANCELLED from sacct), its run is closed KILLED, and its cell goes out again as an array of one."""
    refused = subprocess.run(sweep_cmd(synth_dir, tmp_path, "refused", "hydra/launcher=slurm",
                                       "hydra.launcher.partition=nosuch", "hydra.launcher.gpus_per_node=0",
                                       "hydra.launcher.mem_gb=null"),
                             capture_output=True, text=True, env=slurm.env, timeout=300)
    assert refused.returncode == 2 and "error: hydra/launcher=slurm: sbatch refused the job array: " in \
        refused.stderr and "Traceback" not in refused.stderr, refused.stdout + refused.stderr
    assert not [t for t in trials_of(tmp_path, "refused") if t.state.name == "RUNNING"]  # failed and queued again
    cmd = sweep_cmd(synth_dir, tmp_path, "slurm", "hydra/launcher=slurm", "sweep.n_jobs=4",
                    "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
                    "hydra.launcher.gpus_per_node=0", "hydra.launcher.mem_gb=null", "hydra.launcher.timeout_min=20",
                    epochs=10)  # a trial trains well past the SIGKILL that follows scancel's SIGTERM (KillWait=5)
    log = tmp_path / "sweep.log"
    with open(log, "w") as out:
        sweep = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=slurm.env)
        jobs = wait_for_training(slurm, sweep, log, seconds=3)
        array = {j.split("_")[0] for j in jobs}
        assert len(array) == 1 and len(jobs) == 4, jobs  # one array of the 4 cells, running together
        victim = sorted(jobs)[1]
        slurm.run("scancel", victim)
        assert sweep.wait(timeout=600) == 0, log.read_text()[-3000:]
    text = log.read_text()
    lost = {t.number for t in trials_of(tmp_path, "slurm") if t.user_attrs.get("lost")}
    assert len(lost) == 1, text
    final = check_every_cell_once(tmp_path, "slurm", lost)
    assert f"LOST: SLURM job {victim} ended without a result (CANCELLED" in text and "trained again" in text, text
    assert "Traceback" not in text, text
    states = slurm.run("sacct", "-X", "-n", "-P", "-o", "JobID,State")
    print(f"\nSLURM job arrays: job {victim} cancelled mid-trial; {len(final)} trials for 4 cells; sacct:\n{states}")


def array_task(pid) -> str | None:
    """The SLURM array task a process runs in (its SLURM_ARRAY_TASK_ID), or None."""
    try:
        env = Path(f"/proc/{int(pid)}/environ").read_bytes().split(b"\0")
    except (OSError, TypeError, ValueError):
        return None
    return next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"SLURM_ARRAY_TASK_ID=")), None)


WORKER = """#!/bin/bash
#SBATCH --array=0-1
#SBATCH --cpus-per-task=1
#SBATCH --output={dir}/worker-%a.log
srun {cmd}
"""


@pytest.mark.slow  # a SLURM cluster, PostgreSQL and real sweeps: make test-full
def test_independent_slurm_workers_on_postgres_with_one_cancelled_lose_nothing(slurm, postgres, synth_dir, tmp_path):
    """The independent-workers pattern: an sbatch array of 2 tasks, each `srun sedbench train -m ...` on one
    PostgreSQL study (and MLflow on PostgreSQL). Task 0 is cancelled while its trial trains: SIGTERM fails that
    trial, ends its run KILLED and queues its cell again, and task 1 trains it; every cell completes once."""
    import shlex

    storage = postgres.create_database("optuna_slurm")
    tracking = postgres.create_database("mlflow_slurm")
    cmd = sweep_cmd(synth_dir, tmp_path, "workers", "sweep.n_jobs=1", "model.maps=2,3,4", epochs=30)
    cmd = [a.replace(f"sqlite:///{tmp_path}/optuna.db", storage).replace(f"sqlite:///{tmp_path}/mlflow.db", tracking)
           for a in cmd]
    cmd[cmd.index("model.maps=2,3"):cmd.index("model.maps=2,3") + 1] = []  # 6 cells: maps 2, 3, 4 x seeds 0, 1
    runs = cmd.index(f"hydra.sweep.dir={tmp_path / 'runs'}")
    cmd[runs] = f"hydra.sweep.dir={tmp_path}/runs/$SLURM_ARRAY_TASK_ID"  # each task its own folder
    script = tmp_path / "workers.sbatch"
    script.write_text(WORKER.format(dir=tmp_path, cmd=" ".join(shlex.quote(a) if "$" not in a else f'"{a}"'
                                                                for a in cmd)))
    import optuna
    from mlflow.tracking import MlflowClient

    # MLflow's tables made once before the workers start (two workers creating them at once race; with an MLflow
    # server, as docs/scale-out.md has it, the server makes them)
    MlflowClient(tracking).search_experiments()
    array = slurm.run("sbatch", "--parsable", str(script)).strip()

    deadline, victim = time.time() + 300, None
    while time.time() < deadline and victim is None:  # a trial of task 0 that has trained for a second
        try:
            running = optuna.load_study(study_name="workers", storage=storage).get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        except KeyError:  # no study yet
            running = []
        victim = next((t for t in running if array_task(t.user_attrs.get("pid")) == "0"
                       and time.time() - t.datetime_start.timestamp() > 1), None)
        time.sleep(0.2)
    assert victim is not None, (tmp_path / "worker-0.log").read_text()
    slurm.run("scancel", f"{array}_0")
    deadline = time.time() + 600
    while time.time() < deadline and slurm.run("squeue", "-h", "-j", array).strip():
        time.sleep(1)
    logs = {i: (tmp_path / f"worker-{i}.log").read_text() for i in (0, 1)}
    assert not slurm.run("squeue", "-h", "-j", array).strip(), logs
    from sedbench.sweep import cell_from_key

    final = optuna.load_study(study_name="workers", storage=storage).get_trials(deepcopy=False)
    complete = [t for t in final if t.state.name == "COMPLETE"]
    per_cell = Counter(tuple(cell_from_key(t.user_attrs["cell"])) for t in complete)
    assert len(per_cell) == 6 and set(per_cell.values()) == {1}, (per_cell, logs)
    stopped = [t for t in final if t.state.name == "FAIL"]
    assert [t.number for t in stopped] == [victim.number], ([(t.number, t.user_attrs.get("error")) for t in stopped],
                                                            logs)
    assert stopped[0].user_attrs["error"] == "interrupted (SIGTERM)", logs
    assert not [t for t in final if t.state.name in ("RUNNING", "WAITING")]
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id], "tags.sweep = 'workers'",
                              max_results=1000)
    for t in complete:
        assert [r.info.status for r in runs if r.data.tags.get("trial") == str(t.number)] == ["FINISHED"]
    assert [r.info.status for r in runs if r.data.tags.get("trial") == str(stopped[0].number)] in ([], ["KILLED"])
    states = slurm.run("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", array)
    print(f"\nSLURM independent workers: task 0 cancelled during trial {stopped[0].number}; {len(final)} trials for "
          f"6 cells, completed by task 1 after it: {sum(1 for t in complete if t.number > stopped[0].number)}; "
          f"sacct:\n{states}")
