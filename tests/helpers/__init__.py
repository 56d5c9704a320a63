"""Helpers shared by the test modules (fixtures live in conftest.py). Test modules never import each other."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
ESC10 = REPO.parent / "shared" / "data" / "esc10"
SWEEP_APP = REPO / "tests" / "sweep_app.py"


# --------------------------------------------------------------------------- audio and datasets
def write_wav(path: Path, seconds: float = 1.0, sr: int = 16000, channels: int = 1, freq: float = 440.0,
              seed: int = 0) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    sf.write(str(path), data, sr)
    return path


def esc10_or_skip() -> Path:
    if not ESC10.is_dir():
        pytest.skip(f"ESC-10 not found at {ESC10} (it lives in ../shared beside a developer or CI checkout)")
    return ESC10


def tiny_folder_dataset(root: Path) -> Path:
    """A ``folder`` dataset of one 1-s file per split (two classes): what a sweep's preflight reads when the
    trials themselves never touch data (the toy sweeps)."""
    import yaml

    if (root / "dataset.yaml").is_file():
        return root
    for i, split in enumerate(("train", "validation", "test")):
        write_wav(root / "audio" / split / f"{split}.wav", seconds=1.0, sr=8000, seed=i)
        (root / "metadata").mkdir(parents=True, exist_ok=True)
        (root / "metadata" / f"{split}.tsv").write_text(f"filename\tonset\toffset\tevent_label\n"
                                                        f"{split}.wav\t0.1\t0.6\tbeep\n")
    (root / "dataset.yaml").write_text(yaml.safe_dump({"name": "tiny", "classes": ["beep", "hum"],
                                                       "sample_rate": 8000}))
    return root


def urban(root: Path) -> Path:
    """A two-files-per-split URBAN-SED tree."""
    root = root / "URBAN-SED_v2.0.0"
    for split in ("train", "validate", "test"):
        for i in range(2):
            write_wav(root / "audio" / split / f"soundscape_{split}_bimodal{i}.wav", seconds=3.0, sr=8000)
            ann = root / "annotations" / split / f"soundscape_{split}_bimodal{i}.txt"
            ann.parent.mkdir(parents=True, exist_ok=True)
            ann.write_text("0.25\t1.5\tdog_bark\n1.0\t2.9\tsiren\n")
    return root


# --------------------------------------------------------------------------- configs and commands
def tiny_overrides(synth_dir: Path, tmp_path: Path) -> list[str]:
    """A small, quick training on ``synth_dir`` that records under ``tmp_path``."""
    return ["data=folder", f"data.root={synth_dir}", "data.seq_len=64", "data.batch_size=8",
            "trainer.max_epochs=2", "trainer.max_time=null", "trainer.num_threads=1",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifacts={tmp_path}/artifacts",
            f"features.cache_dir={tmp_path}/cache", f"+run_dir={tmp_path}/run"]


def train_cfg(synth_dir: Path, tmp_path: Path, *extra: str):
    """:func:`tiny_overrides` composed, plus ``extra``."""
    return compose_cfg(*tiny_overrides(synth_dir, tmp_path), *extra)


def compose_cfg(*overrides: str):
    """The project's config composed with ``overrides``, as ``sedbench train`` would."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def sedbench(*args: str, cwd: Path | None = None, timeout: float = 120, wrap: list[str] | None = None
             ) -> subprocess.CompletedProcess:
    """``sedbench ARGS`` in a fresh interpreter."""
    cmd = [sys.executable, "-m", "sedbench", *args]
    if wrap:  # a shell command line that ends by running "$@"
        cmd = [*wrap, "sh", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)


# --------------------------------------------------------------------------- toy sweeps (tests/sweep_app.py)
def app_cmd(tmp_path: Path, *args: str, name: str = "s", log: str = "trained.log", storage: str | None = None
            ) -> list[str]:
    """The toy task under the real config and sweeper, its stores under ``tmp_path`` (the Optuna study in
    ``storage`` when given)."""
    data = tiny_folder_dataset(tmp_path / "tiny_data")
    storage = storage or f"sqlite:///{tmp_path}/optuna.db"
    # one trial at a time unless a test asks for more (the default, sweep.n_jobs=auto, has its own tests)
    jobs = [] if any(a.startswith("sweep.n_jobs=") for a in args) else ["sweep.n_jobs=1"]
    return [sys.executable, str(SWEEP_APP), "-m", *jobs, f"sweep.name={name}", f"sweep.storage={storage}",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifacts={tmp_path}/artifacts",
            f"hydra.sweep.dir={tmp_path}/runs/{name}", f"+toy.log={tmp_path}/{log}", "data=folder",
            f"data.root={data}", *args]


def run_app(tmp_path: Path, *args: str, name: str = "s", wait: bool = True, log: str = "trained.log",
            storage: str | None = None):
    cmd = app_cmd(tmp_path, *args, name=name, log=log, storage=storage)
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=interruptible)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def load_study(tmp_path: Path, name: str = "s", storage: str | None = None):
    import optuna

    return optuna.load_study(study_name=name, storage=storage or f"sqlite:///{tmp_path}/optuna.db")


def completed_per_cell(st) -> Counter:
    from sedbench.sweep import cell_from_key

    return Counter(tuple(cell_from_key(t.user_attrs["cell"])) for t in st.trials if t.state.name == "COMPLETE")


def trained(tmp_path: Path, log: str = "trained.log") -> Counter:
    """How many times each cell (by its ``model.maps``) started training, from the toy's log."""
    path = tmp_path / log
    return Counter(line.split()[0] for line in path.read_text().splitlines()) if path.is_file() else Counter()


def interruptible() -> None:
    """``preexec_fn`` of a child the test will Ctrl-C: SIGINT back to its default, so that the child's Python
    raises KeyboardInterrupt even when the tests run in a background job (a non-interactive shell starts
    ``cmd &`` with SIGINT ignored, and children inherit that)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


HIT, MISS = (1, 1, 1, 0, 0, 0), (0, 1, 1, 1, 0, 0)  # one test file's frame counts: found, and missed


def write_file_counts(path: Path, hits: int, files: int = 20) -> list:
    """A run's ``file_counts.csv`` with ``hits`` of its ``files`` test files found (the rest missed); the counts."""
    import csv

    from sedbench.metrics.segment import FILE_COUNTS

    counts = [HIT] * hits + [MISS] * (files - hits)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "resolution", *FILE_COUNTS])
        w.writerows([f"f{i}.wav", "frm", *c] for i, c in enumerate(counts))
    return counts
