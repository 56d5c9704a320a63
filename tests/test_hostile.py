"""Every command against bad stores, as a new user meets them (issue 39): one `error:` line naming the store (its
password hidden) and the fix, exit code 2, no traceback, and nothing created."""

from __future__ import annotations

import pytest

from sedbench.commands.cli import main

READERS = [["report", "demo"], ["status"], ["status", "demo"], ["plan", "demo"], ["claims", "demo"],
           ["compare", "--sweep", "demo", "model=crnn", "--vs", "model=cnn"], ["evaluate", "--sweep", "demo"]]


def one_error(capsys) -> str:
    out = capsys.readouterr()
    lines = [x for x in out.err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.out + out.err, out
    return lines[0]


def one_error_of(argv: list[str], cwd, env: dict | None = None) -> tuple[int, str]:
    """``sedbench ARGV`` in a process of its own (a sweep's console needs a real stderr, which capsys is not): its
    exit code and its one `error:` line."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "MLFLOW_TRACKING_URI"}
    r = subprocess.run([sys.executable, "-m", "sedbench", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stdout + r.stderr, r.stderr
    return r.returncode, lines[0]


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_a_reading_command_in_a_folder_without_sweeps_says_so_and_creates_nothing(argv, tmp_path, monkeypatch,
                                                                                   capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = one_error(capsys)
    assert "results/optuna.db: no Optuna storage here (no sweep has run with it)" in line and "Fix: " in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["evaluate", "0123abcd"], ["compare", "0123abcd", "--vs", "4567ef01"]],
                         ids=" ".join)
def test_reading_runs_in_a_folder_without_runs_says_so_and_creates_nothing(argv, tmp_path, monkeypatch, capsys):
    """`evaluate RUN_ID` and `compare A --vs B` used to create an empty results/mlflow.db, then say the run was not
    in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(argv) == 2
    assert "results/mlflow.db: no MLflow store here (no run has been recorded in it). Fix: " in one_error(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url, message", [
    ("sqlite:///{tmp}/bad.db", "bad.db: not a readable Optuna storage (file is not a database). Fix: "),
    ("sqlite:///{tmp}/empty.db", "empty.db: not a readable Optuna storage (no such table: version_info). Fix: "),
    ("postgresql://me:secret@127.0.0.1:1/x", "the Optuna storage postgresql://me:***@127.0.0.1:1/x does not answer"),
    ("not-a-url", "--storage 'not-a-url' is not a usable database URL"),
])
@pytest.mark.parametrize("argv", [["report", "demo"], ["status"], ["plan", "demo"], ["claims", "demo"],
                                  ["compare", "--sweep", "demo", "model=crnn", "--vs", "model=cnn"],
                                  ["evaluate", "--sweep", "demo"]], ids=" ".join)
def test_a_bad_store_is_one_line_with_its_password_hidden(argv, url, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.db").write_text("these bytes are not a database")
    (tmp_path / "empty.db").write_bytes(b"")
    before = sorted((p.name, p.stat().st_size) for p in tmp_path.iterdir())
    assert main([*argv, "--storage", url.format(tmp=tmp_path)]) == 2
    line = one_error(capsys)
    assert message in line and "secret" not in line
    assert sorted((p.name, p.stat().st_size) for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("overrides, message", [
    (["model.maps=0"], "model.maps=0: must be a whole number of feature maps or units >= 1. Fix: e.g. model.maps=16"),
    (["data.seq_len=-5"], "data.seq_len=-5: must be a whole number of frames >= 1. Fix: "),
    (["model.dropout=1.5"], "model.dropout=1.5: must be a dropout rate in [0, 1). Fix: "),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0: must be a whole number of epochs >= 1 (0 would record an "
                               "untrained model)"),
    (["model.kernel=[5]"], "model.kernel=[5]: must be a [frequency, time] filter shape"),
    (["model.pool=[5,0,2]"], "model.pool=[5, 0, 2]: must be a list of frequency pooling factors (or one factor)"),
    (["model.cell=gruu"], "model.cell='gruu': must be gru or lstm"),
    (["data.seq_len=128", "data.batch_frames=64"], "data.batch_frames=64 is fewer frames than one sequence"),
    (["trainer.max_steps=0"], "trainer.max_steps=0: must be a whole number of optimizer steps >= 1, or null"),
    (["features.n_mels=0"], "features.n_mels=0: must be a whole number of bands >= 1. Fix: e.g. features.n_mels=40"),
    (["features.hop_seconds=0.1"], "features.hop_seconds=0.1 is longer than a frame (features.frame_seconds=0.04)"),
    (["features=mfcc", "features.delta_width=4"], "features.delta_width=4: must be an odd whole number of frames"),
])
def test_a_value_out_of_range_is_one_line_before_any_work(overrides, message, tmp_path, monkeypatch, capsys):
    """Checked before data loading, a run folder or an MLflow run exists: nothing is created in the folder."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", *overrides, f"data.root={tmp_path}/no-data-needed"]) == 2
    assert message in one_error(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("overrides, message", [
    (["data=tut_sed_2016"], "tut_sed_2016: dataset folder not found. Fix: create it with `sedbench data prepare "
                            "tut_sed_2016 --root"),
    (["data=folder", "data.root={tmp}"], "dataset.yaml: not found: a folder dataset needs dataset.yaml. Fix: "),
    (["data=folder", "data.root={synth}", "optimized_metric=val/f1_clip"],
     "optimized_metric=val/f1_clip needs clip labels, and this dataset has frame (event) labels"),
    (["data=folder", "data.root={synth}", "model.pool=[10,10,10]"],
     "model.pool [10, 10, 10] cannot pool 40 bands (stuck at 4 bands before 10). Fix: "),
])
def test_a_dataset_that_cannot_serve_the_run_is_one_line_before_a_run_exists(overrides, message, synth_dir, tmp_path,
                                                                           monkeypatch, capsys):
    """A missing dataset, or a model its features cannot feed, used to be found after Hydra had made a run folder
    and a FAILED MLflow run (the model after every feature was extracted)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEDBENCH_DATA", str(tmp_path / "data"))
    assert main(["train", *(o.format(tmp=tmp_path, synth=synth_dir) for o in overrides)]) == 2
    assert message in one_error(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["train", "model=nosuch"], "the overrides do not compose: In 'config': Could not find 'model/nosuch' Available "
                                "options in 'model': acrnn cnn crnn"),
    (["params", "data=nosuch"], "Could not find 'data/nosuch' Available options in 'data': chime_home"),
    (["sweep", "demo", "foo=1"], "the overrides do not compose: Could not override 'foo'. To append to your config "
                                 "use +foo=1. Fix: "),
    (["train", "model.maps=["], "'model.maps=[' is not a valid override (no viable alternative at input '['). Fix: "),
    (["train", "model.maps=4,8"], "model.maps=4,8: several values in one run. Fix: -m to sweep them"),
    (["train", "-m", "model.maps=4,8", "--cfg", "job"], "-m and --cfg cannot go together: Hydra prints or runs, "
                                                        "not both. Fix: drop -m"),
    (["params", "model.maps=0"], "model.maps=0: must be a whole number of feature maps or units >= 1"),
    (["sweep", "demo", "model.poool=3"], "model.poool is not a setting of model.arch=crnn (crnn). Fix: remove it or "
                                         "use one of arch, bidirectional"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else None)
def test_hydras_own_errors_are_one_line_before_hydra_starts(argv, message, tmp_path, monkeypatch, capsys):
    """Hydra answered these with its own multi-line message and exit 1 (`sedbench train model.maps=4,8` with an
    internal error): now one line and exit 2, and nothing is created."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in one_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_cell_out_of_range_is_named_before_anything_is_enqueued(tmp_path):
    code, line = one_error_of(["train", "-m", "model.maps=16,0", f"data.root={tmp_path}/no-data-needed"], tmp_path)
    assert code == 2 and "model.maps=0: must be a whole number" in line
    assert "(found in sweep cell model.maps=0)" in line and list(tmp_path.iterdir()) == []


def test_every_default_config_is_in_range():
    """The shipped configs pass their own ranges: each model, dataset and trainer preset composed."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from sedbench.preflight import check_ranges_of

    conf = Path(__file__).resolve().parents[1] / "conf"
    for group in ("model", "data", "trainer"):
        for option in sorted(p.stem for p in (conf / group).glob("*.yaml")):
            with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
                check_ranges_of(compose(config_name="config", overrides=[f"{group}={option}"]))


@pytest.mark.parametrize("argv, message", [
    (["score", "--resolution", "0", "ref.tsv"], "sedbench score: argument --resolution: 0 is out of range: must be "
                                                "greater than 0. Fix: see `sedbench score --help`"),
    (["score", "--resolution", "abc", "ref.tsv"], "argument --resolution: 'abc' is not a number"),
    (["score", "--bootstrap", "-3", "ref.tsv"], "argument --bootstrap: -3 is out of range: must be at least 0"),
    (["score", "--resolution", "inf", "ref.tsv"], "argument --resolution: inf is not a finite number"),
    (["status", "--watch", "0"], "argument --watch: 0 is out of range: must be greater than 0"),
    (["data", "generate", "synth", "--minutes-train", "-1"], "argument --minutes-train: -1 is out of range"),
    (["dashboard", "--port", "70000"], "argument --port: 70000 is out of range: must be at least 1 and at most 65,535"),
    (["report"], "sedbench report: the following arguments are required: name"),
    (["nosuchcommand"], "sedbench: argument COMMAND: invalid choice: 'nosuchcommand'"),
])
def test_a_bad_command_option_is_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in one_error(capsys) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, count", [(["model=vggish_rnn", "n_classes=16"], "638,736"),
                                         (["model=crnn"], "3,684,368"), (["model=cnn", "model.maps=16"], "15,552")])
def test_params_counts_without_generating_or_loading_a_dataset(argv, count, tmp_path, monkeypatch, capsys):
    """`sedbench params` of the embedded synth: its classes and sample rate come from its recipe; nothing is
    generated in the data home (`params model=vggish_rnn` used to generate a 100 MB dataset)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEDBENCH_DATA", str(tmp_path / "data"))
    assert main(["params", *argv]) == 0
    assert f"{count} trainable parameters" in capsys.readouterr().out and list(tmp_path.iterdir()) == []


def test_params_of_a_missing_dataset_is_one_line_with_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEDBENCH_DATA", str(tmp_path / "data"))
    assert main(["params", "data=esc10_mix"]) == 2
    assert "(or pass n_classes=K to count without the dataset)" in one_error(capsys)


REFERENCE = "filename\tonset\toffset\tevent_label\na.wav\t0.5\t2.0\tdog\na.wav\t3.0\t4.0\tcar\nb.wav\t1.0\t5.0\tdog\n"


@pytest.mark.parametrize("system, warning", [
    ("filename\tonset\toffset\tevent_label\na.wav\t0.5\t2.0\tdogs\n", "labels the reference never uses: 'dogs' "
                                                                       "(their events count as false positives)"),
    ("filename\tonset\toffset\tevent_label\na.wav\t0.5\t2.0\tdog\nc.wav\t1.0\t2.0\tdog\n",
     "1 of its 2 files are not in the reference (e.g. 'c.wav'): they are not scored"),
    ("filename\tonset\toffset\tevent_label\na.wav\t22050\t88200\tdog\n", "times up to 88,200 against the "
                                                                          "reference's 5.0 s, as if in samples"),
])
def test_score_warns_once_about_what_the_reference_lacks_and_strict_refuses_it(system, warning, tmp_path, capsys):
    (tmp_path / "ref.tsv").write_text(REFERENCE)
    (tmp_path / "sys.tsv").write_text(system)
    assert main(["score", str(tmp_path / "ref.tsv"), str(tmp_path / "sys.tsv"), "--no-events"]) in (0, None)
    out = capsys.readouterr()
    warnings = [x for x in out.err.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 1 and warning in warnings[0] and "Fix: " in warnings[0], out.err
    assert main(["score", str(tmp_path / "ref.tsv"), str(tmp_path / "sys.tsv"), "--strict"]) == 2
    assert warning in one_error(capsys)


@pytest.mark.parametrize("system", ["filename\tonset\toffset\tevent_label\n", ""])
def test_an_empty_system_output_scores_as_a_system_that_detected_nothing(system, tmp_path, capsys):
    import json

    (tmp_path / "ref.tsv").write_text(REFERENCE)
    (tmp_path / "sys.tsv").write_text(system)
    assert main(["score", str(tmp_path / "ref.tsv"), str(tmp_path / "sys.tsv"), "--json", "--no-events"]) in (0, None)
    got = json.loads(capsys.readouterr().out)
    frames = next(v for k, v in got.items() if "0.02" in k)
    assert frames["overall"]["recall"] == 0 and frames["overall"]["error_rate"] == 1.0


@pytest.mark.parametrize("argv", [["data", "generate", "synth", "--out", "a-file/synth", "--minutes-train", "0.1"],
                                  ["report", "demo", "--out", "a-file/report"]], ids=lambda a: a[0])
def test_an_output_folder_that_cannot_be_written_is_one_line_before_any_work(argv, tmp_path, monkeypatch, capsys):
    import optuna

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("a file where a folder is asked for")
    if argv[0] == "report":
        (tmp_path / "results").mkdir()
        optuna.create_study(study_name="demo", storage="sqlite:///results/optuna.db")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(argv) == 2
    line = one_error(capsys)
    assert line.startswith(f"error: a-file/{'report' if argv[0] == 'report' else 'synth'}: cannot write the")
    assert "cannot write the" in line and "a-file is a file, not a folder. Fix: " in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_an_internal_error_is_one_line_naming_its_saved_traceback(monkeypatch, capsys):
    from pathlib import Path

    from sedbench.commands import status

    def broken(args):
        raise RuntimeError("a bug in sedbench")

    monkeypatch.setattr(status, "run", broken)
    assert main(["status"]) == 1
    line = one_error(capsys)
    assert line.startswith("error: internal error (RuntimeError: a bug in sedbench); the traceback is in ")
    path = Path(line.split("the traceback is in ")[1].split(". Please report")[0])
    text = path.read_text()
    assert "sedbench status" in text and "Traceback (most recent call last)" in text and "a bug in sedbench" in text


def interrupt_training(tmp_path, synth_dir, ready, sig: str, env: dict | None = None) -> tuple[int, str, str]:
    """``sedbench train`` in a process of its own, sent the real signal ``sig`` once ``ready()`` holds: its exit
    code, its stdout and its stderr. SIGINT is restored in it (a background job's children ignore it)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from helpers import interruptible

    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "sedbench", "train", "data=folder", f"data.root={synth_dir}",
                             "model.maps=4", "data.seq_len=32", "trainer.max_epochs=100000", "trainer.max_time=null",
                             "trainer.patience=null", "trainer.num_threads=1", f"hydra.run.dir={tmp_path}/run",
                             f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifacts={tmp_path}/art",
                             f"features.cache_dir={tmp_path}/cache"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    deadline = time.time() + 240
    while not ready() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def assert_killed(tmp_path, code: int, expected: int, what: str, out: str, err: str) -> None:
    """One line, the exit code, no traceback, and the one MLflow run KILLED."""
    import mlflow

    assert code == expected, err[-3000:]
    assert "Traceback" not in err and "Detected KeyboardInterrupt" not in out + err, err[-6000:]
    assert err.strip().splitlines()[-1] == f"interrupted ({what}): a run already recorded is marked KILLED with what " \
                                            "it had"
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id])
    assert [r.info.status for r in runs] == ["KILLED"]


@pytest.mark.parametrize("sig, code, what", [("SIGINT", 130, "Ctrl-C"), ("SIGTERM", 143, "SIGTERM")])
def test_a_signal_during_an_epoch_is_one_line_its_exit_code_and_a_killed_run(sig, code, what, synth_dir, tmp_path):
    """A real signal once training has run one epoch: one line, 130 or 143, and the MLflow run KILLED (Lightning
    ended an interrupted fit with exit 1 and the run was recorded FAILED)."""
    run_dir = tmp_path / "run"
    got, out, err = interrupt_training(tmp_path, synth_dir, lambda: bool(list(run_dir.glob("**/*.ckpt"))), sig)
    assert_killed(tmp_path, got, code, what, out, err)  # a checkpoint: one epoch trained and validated


def test_ctrl_c_during_feature_loading_is_one_line_130_and_a_killed_run(synth_dir, tmp_path):
    """A real SIGINT while the features are extracted (it printed a 50-line KeyboardInterrupt traceback). The
    training process extracts its first file, then says so with a marker file and extracts slowly: the signal
    lands inside the extraction, at a moment the test knows, not by a race with the clock."""
    marker = tmp_path / "extracting"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import pathlib, time\n"
        "from sedbench.data import features\n"
        "real = features.extract\n"
        "def extract(*args, **kwargs):\n"
        "    out = real(*args, **kwargs)\n"
        f"    pathlib.Path({str(marker)!r}).touch()\n"
        "    time.sleep(0.5)\n"
        "    return out\n"
        "features.extract = extract\n")
    import os

    path = os.pathsep.join(p for p in [str(hook), os.environ.get("PYTHONPATH", "")] if p)
    got, out, err = interrupt_training(tmp_path, synth_dir, marker.exists, "SIGINT", {"PYTHONPATH": path})
    assert_killed(tmp_path, got, 130, "Ctrl-C", out, err)
    assert not list((tmp_path / "run").glob("**/*.ckpt"))  # stopped before training


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_to_a_sweep_is_one_line_143_and_its_trials_and_runs_recorded(jobs, synth_dir, tmp_path):
    """SIGTERM to the sweep's process alone (a scheduler's or `kill`'s, not the terminal's Ctrl-C to every
    process): it killed the sweep unrecorded, its trials left RUNNING and its workers' MLflow runs RUNNING. Now:
    one line, exit 143, the running trials failed as interrupted, every MLflow run KILLED, and no process left
    (trials in the sweep's own process with sweep.n_jobs=1, in worker processes with 2)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import mlflow
    import optuna

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "sedbench", "train", "-m", "model.maps=4,5", "data=folder",
                             f"data.root={synth_dir}", "data.seq_len=32", "trainer.max_epochs=100000",
                             "trainer.max_time=null", "trainer.patience=null", "trainer.num_threads=1",
                             f"sweep.n_jobs={jobs}", "sweep.name=s", f"sweep.storage=sqlite:///{tmp_path}/optuna.db",
                             f"hydra.sweep.dir={tmp_path}/runs", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                             f"tracking.artifacts={tmp_path}/art", f"features.cache_dir={tmp_path}/cache"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 240
    while len(list(tmp_path.glob("runs/**/*.ckpt"))) < jobs and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)  # every running trial has trained and validated an epoch
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in out + err, err[-3000:]
    numbers = list(range(jobs))
    assert err.strip().splitlines()[-1] == f"interrupted (SIGTERM): trials {numbers} were stopped (marked failed, " \
                                           "their runs KILLED); finished trials are kept, and the same command " \
                                           "again resumes the sweep"
    assert "nothing new to train" not in out
    trials = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/optuna.db").trials
    assert [(t.state.name, t.user_attrs.get("error")) for t in trials if t.state.name != "WAITING"] == \
        [("FAIL", "interrupted (SIGTERM)")] * jobs
    # the stopped cells are queued again (another worker of the study trains them, or the next run): both wait
    assert sorted(t.user_attrs["cell"] for t in trials if t.state.name == "WAITING") == \
        ['["model.maps=4"]', '["model.maps=5"]']
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id])
    assert sorted(r.info.status for r in runs) == ["KILLED"] * (jobs + 1)  # its trials' runs and the sweep's own
    deadline = time.time() + 30
    while time.time() < deadline:  # the workers end with their sweep
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("a process of the sweep outlived it")


def other_store(path, kind: str) -> None:
    """A file where a store is expected: bytes that are not a database, or the other program's database."""
    import sqlite3

    if kind == "garbage":
        path.write_text("these bytes are not a database")
        return
    with sqlite3.connect(path) as conn:  # the tables that name each program's database
        conn.execute("CREATE TABLE studies (study_id INTEGER)" if kind == "optuna" else
                     "CREATE TABLE experiments (experiment_id INTEGER)")
    conn.close()


@pytest.mark.parametrize("kind, message", [
    ("garbage", "bad.db: not a readable MLflow store (file is not a database). Fix: give tracking.uri"),
    ("optuna", "bad.db: a database without MLflow's tables (it is an Optuna storage). Fix: give tracking.uri"),
])
@pytest.mark.parametrize("argv", [["train"], ["train", "-m", "model.maps=4,8"], ["dashboard", "--tracking"]],
                         ids=" ".join)
def test_a_bad_tracking_store_is_one_line_before_any_data_is_read(argv, kind, message, tmp_path, monkeypatch,
                                                                  capsys):
    """The README says the tracking store is checked before training: it is, before the data (the dataset named
    here does not exist, and its error would come first otherwise) and before a run folder."""
    monkeypatch.chdir(tmp_path)
    other_store(tmp_path / "bad.db", kind)
    data = [f"data.root={tmp_path}/elsewhere/no-data"]
    args = [*argv, "sqlite:///bad.db"] if argv[0] == "dashboard" else [*argv, "tracking.uri=sqlite:///bad.db", *data]
    before = sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*"))
    if "-m" in args:
        code, line = one_error_of(args, tmp_path)
    else:
        code, line = main(args), one_error(capsys)
    assert code == 2 and message in line
    assert sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("storage, message", [
    ("sqlite:///bad.db", "bad.db: not a readable Optuna storage (file is not a database). Fix: give sweep.storage"),
    ("sqlite:///mlflow.db", "mlflow.db: a database without Optuna's tables (it is an MLflow store). Fix: give "
                            "sweep.storage"),
    ("postgresql://me:secret@127.0.0.1:1/x", "the Optuna storage postgresql://me:***@127.0.0.1:1/x does not answer"),
    ("not-a-url", "sweep.storage 'not-a-url' is not a usable database URL"),
], ids=["garbage", "mlflow", "unreachable", "malformed"])
def test_a_sweep_on_a_bad_storage_is_one_line_before_any_data_is_read(storage, message, tmp_path):
    other_store(tmp_path / "bad.db", "garbage")
    other_store(tmp_path / "mlflow.db", "mlflow")
    before = sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*"))
    code, line = one_error_of(["train", "-m", "model.maps=4,8", f"sweep.storage={storage}",
                               f"data.root={tmp_path}/elsewhere/no-data"], tmp_path)
    assert code == 2 and message in line and "secret" not in line
    assert sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("argv", [["train", "data.root={home}/synht"],
                                  ["train", "-m", "data.root=${{oc.env:SEDBENCH_DATA}}/synth_a,{home}/synht"],
                                  ["sweep", "demo", "data.root={home}/synht"]], ids=lambda a: " ".join(a[:2]))
def test_a_data_root_typed_on_the_command_line_is_never_generated(argv, tmp_path):
    """A misspelled root in the data home used to start generating a new 12-minute synth there."""
    home = tmp_path / "data"
    (home / "synth_a").mkdir(parents=True)
    code, line = one_error_of([a.format(home=home) for a in argv], tmp_path, {"SEDBENCH_DATA": str(home)})
    assert code == 2 and line.startswith(f"error: data.root={home}/synht: no dataset there, and a root given on the "
                                         "command line is never generated")
    assert f"the data home {home} has: synth_a)" in line
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["data", "data/synth_a"]
