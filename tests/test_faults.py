"""Faults a sweep meets: a diverging loss, a results folder that cannot be written, servers that do not
answer. Each ends in a clear error (and a recorded, failed run), never a hang or a lost record.

Also here: a trial that raises, NaN objectives and SIGINT/SIGKILL of a sweep are in test_sweep.py; a damaged
feature-cache entry in test_features.py; workers killed on PostgreSQL in test_postgres.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from helpers import sedbench, train_cfg


# --------------------------------------------------------------------------- a diverging loss
def test_a_nan_loss_stops_training_with_a_clear_error_and_the_run_is_recorded_failed(synth_dir, tmp_path,
                                                                                      monkeypatch):
    from mlflow.tracking import MlflowClient

    from sedbench.errors import DivergedError
    from sedbench.training.module import SEDModule
    from sedbench.training.train import train

    loss = SEDModule._loss

    def diverging(self, logits, batch):  # the loss turns NaN at the 3rd optimizer step, as in a divergence
        value = loss(self, logits, batch)
        return value * float("nan") if self.training and self.global_step >= 2 else value

    monkeypatch.setattr(SEDModule, "_loss", diverging)
    cfg = train_cfg(synth_dir, tmp_path, "model.maps=4")
    with pytest.raises(DivergedError, match=r"training loss is nan at epoch \d+, step 2: the model diverged"):
        train(cfg)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["outcome"] == "DivergedError"
    assert "traceback.txt" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "DivergedError" in (tmp_path / "run" / "traceback.txt").read_text()
    assert not (tmp_path / "run" / "metrics.json").exists()  # no scores of a diverged model


# --------------------------------------------------------------------------- unwritable results
def train_args(synth_dir: Path, tmp: Path) -> list[str]:
    return ["data=folder", f"data.root={synth_dir}", "data.seq_len=32", "model.maps=4", "trainer.max_epochs=1",
            f"features.cache_dir={tmp}/cache"]


@pytest.mark.parametrize("target", ["hydra.run.dir", "tracking.uri", "tracking.artifacts", "features.cache_dir",
                                    "hydra.sweep.dir", "sweep.storage"])
def test_a_results_folder_that_cannot_be_written_is_refused_before_training(synth_dir, tmp_path, target):
    """The folder's place is taken by a file, which even root cannot write into."""
    blocked = tmp_path / "results"
    blocked.write_text("not a folder")
    where = {"tracking.uri": f"sqlite:///{blocked}/mlflow.db", "sweep.storage": f"sqlite:///{blocked}/optuna.db"}
    args = [*train_args(synth_dir, tmp_path), f"tracking.uri=sqlite:///{tmp_path}/ok/mlflow.db",
            f"hydra.run.dir={tmp_path}/ok/run", f"hydra.sweep.dir={tmp_path}/ok/sweep",
            f"sweep.storage=sqlite:///{tmp_path}/ok/optuna.db", f"{target}={where.get(target, blocked / 'x')}"]
    multirun = target.startswith(("hydra.sweep", "sweep."))
    r = sedbench("train", *(["-m", "seed=0,1"] if multirun else []), *args)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"{blocked} is a file, not a folder" in r.stderr and f"set {target.split('.')[0]}" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "ok").exists() and not (tmp_path / "cache").exists()  # nothing was started


def test_a_read_only_results_folder_is_refused_before_training(synth_dir, tmp_path):
    """Not writable even for root: as root, a read-only file system is mounted on ``results`` in a private
    mount namespace (``unshare -m``); otherwise the folder's permissions are 0555."""
    results = tmp_path / "results"
    results.mkdir()
    wrap = None
    if os.geteuid() == 0:
        wrap = ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o ro,size=1m sedbench-ro {results} && exec \"$@\""]
        probe = subprocess.run([*wrap, "sh", "touch", str(results / "x")], capture_output=True, text=True)
        if "Read-only file system" not in probe.stderr:
            pytest.skip(f"as root, a read-only mount is needed for this test and failed: {probe.stderr.strip()}")
    else:
        results.chmod(0o555)
    try:
        r = sedbench("train", *train_args(synth_dir, tmp_path), cwd=tmp_path, wrap=wrap)
    finally:
        results.chmod(0o755)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    reason = "Read-only file system" if wrap else "Permission denied"
    assert "results/runs/crnn/" in r.stderr and f"cannot write the run folder there ({reason} in results)" in r.stderr
    assert "set hydra.run.dir" in r.stderr and "Traceback" not in r.stderr
    assert os.listdir(results) == [] and not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------- servers that do not answer
@pytest.fixture
def silent_port():
    """A TCP port that accepts connections and never answers (a hung server, a firewall that drops)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


@pytest.mark.parametrize("kind", ["silent", "refused"])
def test_a_storage_that_does_not_answer_is_a_clear_error_not_a_hang(tmp_path, silent_port, kind):
    port = silent_port if kind == "silent" else closed_port()
    r = sedbench("train", "-m", "model.maps=1,2", f"sweep.storage=postgresql://me:secret@127.0.0.1:{port}/sweeps",
                 f"hydra.sweep.dir={tmp_path}/sweep", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                 f"features.cache_dir={tmp_path}/cache", timeout=90)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    reason = "timeout expired" if kind == "silent" else "Connection refused"
    assert f"the Optuna storage postgresql://me:***@127.0.0.1:{port}/sweeps does not answer" in r.stderr
    assert reason in r.stderr and "Fix: start the database server" in r.stderr
    assert "secret" not in r.stderr + r.stdout and "Traceback" not in r.stderr
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("multirun", [False, True])
def test_a_tracking_server_that_does_not_answer_is_a_clear_error_not_a_hang(synth_dir, tmp_path, silent_port,
                                                                              multirun):
    r = sedbench("train", *(["-m", "seed=0,1"] if multirun else []), *train_args(synth_dir, tmp_path),
                 f"tracking.uri=http://127.0.0.1:{silent_port}", f"hydra.run.dir={tmp_path}/run",
                 f"hydra.sweep.dir={tmp_path}/sweep", f"sweep.storage=sqlite:///{tmp_path}/optuna.db", timeout=90)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"the MLflow tracking server http://127.0.0.1:{silent_port} does not answer (timed out)" in r.stderr
    assert "Fix: start it" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()


# --------------------------------------------------------------------------- checkpoints
class Payload:
    """Unpickling this runs code (it creates ``marker``): what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_holding_more_than_weights_is_refused_not_unpickled(synth_dir, tmp_path, monkeypatch):
    """The best checkpoint is swapped for a hostile one between fitting and testing: train() refuses it."""
    import torch

    from sedbench.training import callbacks
    from sedbench.training.train import train

    marker = tmp_path / "code-ran"

    class Swap(callbacks.WarmupEarlyStopping):  # train() imports its early stopping from this module at call time
        def on_train_end(self, trainer, pl_module):
            best = trainer.checkpoint_callback.best_model_path
            state = torch.load(best, weights_only=True)
            state["hyper_parameters"] = {"note": Payload(marker)}
            torch.save(state, best)

    monkeypatch.setattr(callbacks, "WarmupEarlyStopping", Swap)
    from sedbench.errors import DataError

    with pytest.raises(DataError, match=r"best.*\.ckpt: refused to load this checkpoint: it holds more than weights"):
        train(train_cfg(synth_dir, tmp_path, "model.maps=4", "trainer.max_epochs=1"))
    assert not marker.exists()
    # the same file, loaded without the guard, would have run the payload: the test's premise holds
    torch.load(next((tmp_path / "run" / "checkpoints").glob("best*.ckpt")), weights_only=False)
    assert marker.exists()


def test_a_model_bundle_holding_more_than_weights_is_refused(tmp_path):
    import torch

    from sedbench.errors import DataError
    from sedbench.training.artifacts import Bundle

    marker, path = tmp_path / "code-ran", tmp_path / "model.pt"
    torch.save({"model": {"arch": "crnn"}, "extra": Payload(marker)}, path)
    with pytest.raises(DataError, match="model.pt: not a sedbench model bundle"):
        Bundle.load(path)
    assert not marker.exists()
