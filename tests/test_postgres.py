"""Scale-out on a real PostgreSQL server: two workers share one grid, one is SIGKILLed mid-trial, a rerun
finishes the grid. Optuna's storage and the MLflow tracking server's backend store are both PostgreSQL.

The server is a throwaway cluster on 127.0.0.1 made with Debian's ``postgresql`` package (``make test``
installs it when it is missing and runs as root); where it cannot start, the tests skip and say why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers.postgres import free_port

GRID = ("model.maps=2,3,4,5", "seed=0,1")  # 8 cells
CELLS = 8


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    """``mlflow server`` with its backend store on PostgreSQL and artifacts served from a folder."""
    from sedbench.commands.dashboard import start, stop, wait_ready

    store = postgres.create_database("mlflow")
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow-server") / "server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store, "--host", "127.0.0.1",
           "--port", str(port), "--workers", "2", "--artifacts-destination", str(log.parent / "artifacts")]
    server = start("MLflow server", cmd, port, "/health", log)
    try:
        wait_ready(server, timeout=180)
    except Exception as exc:
        stop([server])
        pytest.fail(f"{exc}\n{log.read_text()[-3000:]}")
    yield server.url
    stop([server])


def worker(synth_dir: Path, tmp_path: Path, storage: str, tracking: str, name: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sedbench", "train", "-m", *GRID, "data=folder", f"data.root={synth_dir}",
           "data.seq_len=64", "trainer.max_epochs=3", "trainer.max_time=null",
           "trainer.num_threads=1", "sweep.n_jobs=1",  # one trial per worker (in-worker processes: test_packing.py)
           "sweep.name=pg", "sweep.heartbeat_seconds=2", f"sweep.storage={storage}",
           f"tracking.uri={tracking}", f"features.cache_dir={tmp_path}/cache", f"hydra.sweep.dir={tmp_path}/{name}"]
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow  # end to end and long: make test-full (the fast tier covers the module with shorter cases)
def test_postgres_workers_share_a_grid_survive_sigkill_and_a_rerun_finishes_it(postgres, mlflow_server, synth_dir,
                                                                               tmp_path):
    import optuna
    from mlflow.tracking import MlflowClient

    from sedbench.sweep import cell_from_key

    storage = postgres.create_database("optuna")
    client = MlflowClient(mlflow_server)
    a = worker(synth_dir, tmp_path, storage, mlflow_server, "a")
    b = worker(synth_dir, tmp_path, storage, mlflow_server, "b")

    def trials():
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return optuna.load_study(study_name="pg", storage=storage).get_trials(deepcopy=False)
        except (KeyError, SQLAlchemyError):  # the workers have not created the study (or its tables) yet
            return []

    def in_training(pid):
        """A RUNNING trial of worker ``pid`` whose MLflow run exists: training has begun."""
        for t in trials():
            if t.state.name == "RUNNING" and t.user_attrs.get("pid") == pid:
                exp = client.get_experiment_by_name("sedbench")
                if exp and client.search_runs([exp.experiment_id], f"tags.sweep = 'pg' and tags.trial = '{t.number}'"):
                    return t
        return None

    deadline, victim = time.time() + 300, None
    while time.time() < deadline and victim is None:
        done_by_a = [t for t in trials() if t.state.name == "COMPLETE" and t.user_attrs.get("pid") == a.pid]
        victim = in_training(a.pid) if done_by_a else None  # a has finished one trial and is inside the next
        assert a.poll() is None, (tmp_path / "a.log").read_text()[-3000:]
        time.sleep(0.1)
    assert victim is not None, "worker a never got a second trial to kill"
    os.kill(a.pid, signal.SIGKILL)
    killed_at = time.time()
    a.wait()
    assert b.wait(timeout=600) == 0, (tmp_path / "b.log").read_text()[-3000:]
    rerun = worker(synth_dir, tmp_path, storage, mlflow_server, "rerun")
    assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-3000:]

    final = trials()
    complete = [t for t in final if t.state.name == "COMPLETE"]
    per_cell = Counter(tuple(cell_from_key(t.user_attrs["cell"])) for t in complete)
    assert len(per_cell) == CELLS and set(per_cell.values()) == {1}, per_cell  # none lost, none twice
    assert not [t for t in final if t.state.name in ("RUNNING", "WAITING")]
    dead = next(t for t in final if t.number == victim.number)
    assert dead.state.name == "FAIL" and dead.user_attrs["error"].startswith("worker died"), dead.user_attrs
    retry = next(t for t in complete if t.user_attrs["cell"] == victim.user_attrs["cell"])
    assert retry.number > victim.number
    retried_after = retry.datetime_start.timestamp() - killed_at
    noticed_after = dead.datetime_complete.timestamp() - killed_at  # failed and its cell queued again
    recovered = max(t.datetime_complete.timestamp() for t in complete) - killed_at

    exp = client.get_experiment_by_name("sedbench").experiment_id
    runs = client.search_runs([exp], "tags.sweep = 'pg'", max_results=1000)
    for t in complete:  # exactly one MLflow run per completed trial, finished, with its metrics
        mine = [r for r in runs if r.data.tags.get("trial") == str(t.number)]
        assert len(mine) == 1 and mine[0].info.run_id == t.user_attrs["mlflow_run_id"], mine
        assert mine[0].info.status == "FINISHED"
        assert {"test/f1_frm", "test/er_frm", "val/f1_frm_best", "n_params"} <= set(mine[0].data.metrics)
    finished = [r for r in runs if r.info.status == "FINISHED" and r.data.tags.get("kind") != "sweep"]
    assert len(finished) == CELLS
    killed_run = [r for r in runs if r.data.tags.get("trial") == str(victim.number)]
    assert [r.info.status for r in killed_run] == ["KILLED"]  # the dead worker's run is closed, not left running
    by = Counter("a" if t.user_attrs["pid"] == a.pid else "b" if t.user_attrs["pid"] == b.pid else "rerun"
                 for t in complete)
    print(f"\npostgres scale-out: {CELLS} cells, 2 workers, 1 killed (trial {victim.number}), "
          f"{len(final)} trials in all, completed by {dict(by)}, lost {CELLS - len(per_cell)}, "
          f"duplicates {sum(per_cell.values()) - len(per_cell)}, "
          f"the dead worker's trial failed and its cell queued again {noticed_after:.1f} s after the kill, "
          f"retried as trial {retry.number} from {retried_after:.1f} s, "
          f"grid complete {recovered:.1f} s after the kill; rerun: "
          f"{(tmp_path / 'rerun.log').read_text().strip().splitlines()[-1]}")
