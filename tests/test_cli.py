import subprocess
import sys

import pytest
from helpers import CONF, sedbench

from sedbench.commands.cli import main


def test_help_answers_without_heavy_imports():
    code = ("import sys; from sedbench.commands.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'librosa', 'mlflow', 'optuna', 'numpy', 'soundfile') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usage: sedbench" in out and "HEAVY []" in out


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "sedbench", "data", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for action in ("generate", "mix", "info", "prepare", "features"):
        assert action in out.stdout


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["data", "info", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "dataset folder not found" in err and "sedbench data generate synth" in err
    assert "Traceback" not in err


def test_missing_named_dataset_says_how_to_prepare(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEDBENCH_DATA", str(tmp_path))
    assert main(["data", "info", "tut_sed_2016"]) == 2
    err = capsys.readouterr().err
    assert "sedbench data prepare tut_sed_2016 --root" in err and str(tmp_path / "tut_sed_2016") in err


def test_info_on_weak_labels_and_features_cache(tmp_path, capsys):
    from helpers import esc10_or_skip

    esc = esc10_or_skip()
    assert main(["data", "info", str(esc)]) == 0
    out = capsys.readouterr().out
    assert "dataset esc10" in out and "weak (clip tags)" in out and "classes: 10" in out
    assert "Dog bark" in out and "mean poly" not in out


def test_features_command_cold_then_warm(synth_dir, tmp_path, capsys):
    from sedbench.data.dataset import read_folder

    n = sum(len(v) for v in read_folder(synth_dir).splits.values())
    for expected in (f"0 hits, {n} computed", f"{n} hits, 0 computed"):
        assert main(["data", "features", str(synth_dir), "--cache", str(tmp_path / "c")]) == 0
        assert expected in capsys.readouterr().out


def test_features_kinds_are_the_feature_configs(synth_dir, tmp_path, capsys):
    from sedbench.commands.cli import build_parser
    from sedbench.commands.data import feature_kinds

    assert feature_kinds() == sorted(p.stem for p in (CONF / "features").glob("*.yaml"))
    assert {"gammatone", "waveform", "logmel"} <= set(feature_kinds())
    assert build_parser().parse_args(["data", "features", "x", "--kind", "gammatone"]).kind == "gammatone"
    # the kind's settings are its config's: gammatone is 128 bands + deltas at an 11.5-ms hop
    assert main(["data", "features", str(synth_dir), "--kind", "gammatone", "--cache", str(tmp_path / "c")]) == 0
    assert "gammatone features of" in capsys.readouterr().out
    from sedbench.commands.launch import compose
    from sedbench.data.dataset import read_folder
    from sedbench.data.features import FeatureCache, params_from_config

    params, _ = params_from_config(compose(["features=gammatone"]).features)
    cache = FeatureCache(tmp_path / "c")
    ds = read_folder(synth_dir)
    assert cache.get(ds.recordings("test")[0].audio, ds.sample_rate, params).shape[1] == 256
    assert (cache.hits, cache.misses) == (1, 0)


def test_generate_into_a_file_path(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["data", "generate", "synth", "--out", str(f), "--minutes-train", "0.2", "--quiet"]) == 2
    assert "is a file, not a folder. Fix: " in capsys.readouterr().err and f.read_text() == "x"


@pytest.mark.slow
def test_train_on_a_fresh_checkout_generates_the_embedded_dataset_first(tmp_path):
    """No data/ yet: `sedbench train` generates the synth set in the data home (here a small recipe), trains
    and records the run; a root outside the data home is an error, never generated."""
    import os

    # MLflow's set_tracking_uri, called by an earlier in-process test of this worker, exports MLFLOW_TRACKING_URI
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["SEDBENCH_DATA"] = str(tmp_path / "data")
    small = ["data.generate.minutes_train=0.3", "+data.generate.mixture_seconds=10", "+data.generate.sample_rate=8000",
             "+data.generate.instances_per_class=3", "data.seq_len=32", "model.maps=4", "trainer.max_epochs=1",
             "trainer.num_threads=1", f"features.cache_dir={tmp_path}/cache", "tracking.log_model=false"]
    r = subprocess.run([sys.executable, "-m", "sedbench", "train", *small], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "data/synth not found: generating the embedded synth dataset there" in r.stdout + r.stderr
    assert (tmp_path / "data" / "synth" / "dataset.yaml").is_file() and (tmp_path / "results" / "mlflow.db").is_file()
    assert "test/f1_frm" in r.stdout
    elsewhere = subprocess.run([sys.executable, "-m", "sedbench", "train", *small, f"data.root={tmp_path}/other"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert elsewhere.returncode == 2 and "other: dataset folder not found" in elsewhere.stderr
    assert not (tmp_path / "other").exists()


def test_an_objective_validation_does_not_log_or_the_labels_cannot_give_is_refused(synth_dir, tmp_path, capsys):
    """optimized_metric must be a score validation logs (sedbench.metrics.registry), and one the dataset's labels
    produce: refused in one line with the fix, before any run or study."""
    base = [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"hydra.run.dir={tmp_path}/run"]
    assert main(["train", "optimized_metric=val/f1_event", *base]) == 2
    assert "validation does not log it. Fix: auto, or one of val/f1_frm, val/er_frm" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "mlflow.db").exists()
    r = sedbench("train", "-m", "data=folder", f"data.root={synth_dir}", "model.maps=1,2", "optimized_metric=val/eer",
                 f"sweep.storage=sqlite:///{tmp_path}/o.db", *base)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "optimized_metric=val/eer needs clip labels, and this dataset has frame (event) labels" in r.stderr
    assert "Fix: optimized_metric=auto, or one of val/f1_frm, val/er_frm" in r.stderr
    assert not (tmp_path / "o.db").exists()  # nothing enqueued
