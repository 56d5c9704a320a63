"""The console as an interface: a sweep prints a header, one line per trial and its summary; each trial's
whole output is in its run folder (and MLflow); known library noise is silenced where it starts."""

import logging
import os
import re
import sys
import warnings

import pytest

from sedbench.console import quiet_libraries, short_cell, trial_line, trial_output

NOISE = ("Tip", "TPU", "GPU available", "Joblib", "Warning", "warning", "Epoch", "LeafSpec", "INFO", "HYDRA",
         "Launching jobs", "litlogger", "Creating initial", "Restoring states", "it/s")


def test_a_sweeps_console_is_a_header_one_line_per_trial_and_the_summary(tiny_sweep):
    err = tiny_sweep.stderr.splitlines()
    trials = [line for line in err if re.match(r"\[[123]/3\] trial +\d+  (crnn|cnn|rnn) maps=8 ", line)]
    assert len(trials) == 3, tiny_sweep.stderr
    assert all(re.search(r" 1 ep \d+ steps  val 0\.\d{3}  test 0\.\d{3} +\d+ s$", line) for line in trials), trials
    header = [line for line in err if line not in trials]
    assert len(header) == 2 and header[0].startswith("sweep: 2 processes x 1 thread"), err
    assert header[1].startswith("sweep tiny: 3 cells, 0 done, 3 to run now (storage sqlite:///"), err
    out = tiny_sweep.stdout.splitlines()
    assert out[0] == "study tiny: 3 trials" and "best per family (by validation F1_frm):" in out, out
    assert out[-1].startswith("orchestration: sweep wall") and len(out) == 10, out  # 2 + 3 trials + 1 + 3 + 1
    for noise in NOISE:
        assert noise not in tiny_sweep.stderr + tiny_sweep.stdout, noise


def test_each_trials_whole_output_is_in_its_run_folder_and_its_mlflow_run(tiny_sweep):
    import mlflow
    import optuna

    study = optuna.load_study(study_name="tiny", storage=tiny_sweep.storage)
    client = mlflow.tracking.MlflowClient(tiny_sweep.tracking)
    for t in study.trials:
        log = (tiny_sweep.root / "runs" / "tiny" / str(t.number) / "trial.log").read_text()
        assert re.search(r"^epoch +0  step +\d+  train loss \d\.\d{4}  val/f1_frm 0\.\d{3}  best 0\.\d{3}$", log,
                         re.M), log
        assert "run folder:" in log and t.user_attrs["mlflow_run_id"] in log  # the run's own summary
        assert "trial.log" in {a.path for a in client.list_artifacts(t.user_attrs["mlflow_run_id"])}


def test_trial_output_captures_python_and_c_level_output_and_the_traceback(tmp_path, capfd):
    with pytest.raises(ValueError, match="boom"), trial_output(tmp_path) as path:
        print("from python")
        print("to stderr", file=sys.stderr)
        os.write(1, b"from the C level\n")
        raise ValueError("boom")
    text = path.read_text()
    assert "from python" in text and "to stderr" in text and "from the C level" in text
    assert "Traceback" in text and "ValueError: boom" in text
    print("after")  # the process's own output is back
    assert capfd.readouterr().out == "after\n"
    with trial_output(tmp_path, capture=False) as nothing:
        print("not captured")
    assert nothing is None and "not captured" in capfd.readouterr().out


def test_known_noise_is_silenced_and_a_new_warning_still_shows():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        quiet_libraries()
        warnings.warn_explicit("pkg_resources is deprecated as an API.", UserWarning, "utils.py", 12,
                               module="dcase_util.utils.utils")
        warnings.warn_explicit("The number of training batches (5) is smaller than the logging interval "
                               "Trainer(log_every_n_steps=10).", UserWarning, "fit_loop.py", 3,
                               module="pytorch_lightning.loops.fit_loop")
        warnings.warn_explicit("a new warning of sedbench's own", UserWarning, "train.py", 1,
                               module="sedbench.training.train")
        warnings.warn_explicit("pkg_resources is deprecated as an API.", UserWarning, "x.py", 1, module="sedbench.x")
    # the same words from another module still show: filters match the library that says them
    assert [str(w.message) for w in seen] == ["a new warning of sedbench's own",
                                              "pkg_resources is deprecated as an API."]
    assert logging.getLogger("pytorch_lightning.utilities.rank_zero").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("sedbench").level == logging.NOTSET  # sedbench's own loggers are left alone


def test_lightnings_srun_reminder_is_silenced_where_slurm_is_installed(tmp_path, monkeypatch):
    """A machine with SLURM's client tools (a cluster's node, or the SLURM tests' own) makes Lightning ask for
    `srun` at every run: a sedbench trial trains in one process, so the reminder is noise."""
    from lightning_fabric.plugins.environments.slurm import SLURMEnvironment

    srun = tmp_path / "srun"
    srun.write_text("#!/bin/sh\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(key)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        SLURMEnvironment._validate_srun_used()
        assert any("srun" in str(w.message) for w in seen)  # what Lightning says without the filter
        seen.clear()
        quiet_libraries()
        SLURMEnvironment._validate_srun_used()
    assert not seen


def test_a_database_error_mlflow_raises_again_prints_no_traceback_of_its_own(tmp_path, capfd):
    """MLflow's session logs a SQLite error with its traceback, then raises it: a Ctrl-C landing inside a write
    printed that traceback on a single run's console (once in a `make test` run). Only the raised error remains."""
    import pytest
    import sqlalchemy
    from mlflow.exceptions import MlflowException
    from mlflow.store.db.utils import _get_managed_session_maker

    quiet_libraries()
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/x.db")
    maker = _get_managed_session_maker(sqlalchemy.orm.sessionmaker(bind=engine), "sqlite")
    with pytest.raises(MlflowException, match="interrupted"), maker() as session:
        session.execute(sqlalchemy.text("SELECT 1"))
        raise sqlalchemy.exc.OperationalError("INSERT ...", {}, Exception("interrupted"))
    out = capfd.readouterr()
    assert "Traceback" not in out.out + out.err and "SQLAlchemy database error" not in out.out + out.err


def test_short_cells_and_trial_lines():
    assert short_cell(["model=crnn", "model.maps=32", "model.kernel=[5,5]", "seed=0"]) == "crnn maps=32 k=5x5 seed=0"
    assert short_cell(["data.seq_len=512", "model.pool=[5,4,2]"]) == "seq=512 pool=[5,4,2]"
    done = trial_line(3, "crnn maps=32", "complete", {"epochs": 20, "steps": 480, "val/f1_frm": 0.41234,
                                                      "test/f1_frm": 0.39, "time/wall": 61.2, "budget": "truncated"})
    assert "20 ep 480 steps  val 0.412  test 0.390    61 s  truncated by trainer.max_time (!)" in done
    failed = trial_line(4, "rnn maps=8", "failed", {}, "ConfigError: bad", "/runs/4/trial.log")
    assert failed.endswith("FAILED: ConfigError: bad  (log: /runs/4/trial.log)") and "trial   4" in failed
