"""Fixtures shared by the test modules; plain helpers live in tests/helpers."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's feature cache or data home."""
    monkeypatch.setenv("SEDBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "feature-cache"))


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small generated synth dataset, shared by the tests of one session."""
    from sedbench.commands.cli import main

    out = tmp_path_factory.mktemp("synth") / "synth"
    rc = main(["data", "generate", "synth", "--out", str(out), "--minutes-train", "3", "--mixture-seconds", "30",
               "--sample-rate", "16000", "--instances-per-class", "10", "--seed", "7", "--quiet"])
    assert rc == 0
    return out


def pytest_configure(config):
    """Tests never read or write the user's data home: named datasets (and the embedded synth, generated on
    first use) live in a folder of this test session."""
    config._sedbench_data = tempfile.mkdtemp(prefix="sedbench-test-data-")
    os.environ["SEDBENCH_DATA"] = config._sedbench_data


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "_sedbench_data", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_sweep(synth_dir, tmp_path_factory):
    """A real three-trial sweep (one CRNN, CNN and RNN of 8 maps, one epoch each) on ``synth_dir``."""
    import subprocess
    import sys
    from types import SimpleNamespace

    root = tmp_path_factory.mktemp("tiny_sweep")
    sw = SimpleNamespace(name="tiny", root=root, storage=f"sqlite:///{root}/optuna.db",
                         tracking=f"sqlite:///{root}/mlflow.db")
    cmd = [str(Path(sys.executable).with_name("sedbench")), "sweep", "demo", f"data.root={synth_dir}",
           "sweep.grid=[{model:[crnn,cnn,rnn],model.maps:[8]}]", f"sweep.name={sw.name}",
           f"sweep.storage={sw.storage}", f"tracking.uri={sw.tracking}", f"tracking.artifacts={root}/artifacts",
           f"hydra.sweep.dir={root}/runs", "trainer.max_epochs=1", "trainer.max_time=null", "data.seq_len=64",
           "trainer.num_threads=1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sw.stdout, sw.stderr = done.stdout, done.stderr  # its console (tests/test_console.py)
    return sw


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server on 127.0.0.1 (skips, saying why, where none can start)."""
    from helpers.postgres import Postgres

    server = Postgres()
    server.start()
    yield server
    server.stop()
