from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
ESC10 = REPO.parent / "shared" / "data" / "esc10"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's feature cache or data home."""
    monkeypatch.setenv("SEDBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "feature-cache"))


def write_wav(path: Path, seconds: float = 1.0, sr: int = 16000, channels: int = 1, freq: float = 440.0,
              seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    sf.write(str(path), data, sr)
    return path


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small generated synth dataset, shared by the tests of one session."""
    from sedbench.cli import main

    out = tmp_path_factory.mktemp("synth") / "synth"
    rc = main(["data", "generate", "synth", "--out", str(out), "--minutes-train", "3", "--mixture-seconds", "30",
               "--sample-rate", "16000", "--instances-per-class", "10", "--seed", "7", "--quiet"])
    assert rc == 0
    return out


def esc10_or_skip() -> Path:
    if not ESC10.is_dir():
        pytest.skip(f"ESC-10 not found at {ESC10} (it lives in ../shared beside a developer or CI checkout)")
    return ESC10


def pytest_configure(config):
    os.environ.setdefault("SEDBENCH_DATA", str(REPO / "data"))


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
    return sw
