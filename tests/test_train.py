"""`train(cfg)` on a tiny composed configuration: records, determinism, CLI."""

import json
import math

import pytest
from helpers import train_cfg

from sedbench.training.train import run_name, train


def tiny_cfg(synth_dir, tmp_path, *extra):
    return train_cfg(synth_dir, tmp_path, "model.maps=8", *extra)


def test_train_records_everything(synth_dir, tmp_path):
    import mlflow

    from sedbench import energy

    cfg = tiny_cfg(synth_dir, tmp_path)
    best = train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val/f1_frm"] == best and 0 <= best <= 1
    for key in ("test/f1_frm", "test/er_frm", "test/f1_1sec", "test/er_1sec", "n_params", "fit_seconds"):
        assert key in metrics and math.isfinite(metrics[key])
    assert len(metrics["class_wise_test_f1"]) == 16 and (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    assert 0.1 < metrics["peak_rss_gb"] < 8 and metrics["peak_rss_scope"] == "run"  # its own peak, from its start
    assert "peak_gpu_memory_gb" not in metrics  # on a GPU only
    assert metrics["energy_train_kwh"] > 0 and metrics["energy_test_kwh"] > 0  # measured, or estimated:
    if not energy.RAPL.exists():  # as on these machines
        assert metrics["energy_method"] == "cpu: estimate, 10 W per busy core (no RAPL)"
    # the architecture's cost per 10 s (500 frames): 8 maps on 40, 8 and 2 bands, a GRU of 8 on 8, 16 outputs
    assert metrics["macs_per_10s"] == 500 * (8 * 40 * 25 + 8 * 8 * 8 * 25 + 8 * 2 * 8 * 25 + 3 * 8 * 16 + 8 * 16)
    detection = ("f1_event", "er_event", "psds1", "psds2", "auroc_1sec")
    for key in (*detection, *[f"{k}_pp" for k in ("f1_frm", "er_frm", "f1_1sec", "er_1sec", *detection)]):
        assert math.isfinite(metrics[f"test/{key}"]), key  # raw and median-filtered, event-based and PSDS
    assert set(metrics["median_filter_s"]) == set(metrics["class_wise_test_f1_event"]) == set(metrics[
        "class_wise_test_f1"]) and metrics["detection_seconds"] > 0
    # where the run's time went (TrialClock): every part measured, together within the wall time
    parts = ("startup", "steps", "data", "validation", "fit_other", "test", "detection", "recording")
    assert all(metrics[f"time/{p}"] >= 0 for p in parts) and metrics["time/steps"] > 0
    assert metrics["time/steps"] + metrics["time/data"] + metrics["time/validation"] <= metrics["fit_seconds"] + 0.01
    assert sum(metrics[f"time/{p}"] for p in parts) <= metrics["time/wall"] + 0.01
    assert metrics["time/outside_steps_share"] == pytest.approx(1 - metrics["time/steps"] / metrics["time/wall"],
                                                                abs=1e-3)

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id])
    assert run.info.run_name == run_name(cfg) == "crnn-maps8-pool5.4.2-rnn1gru-fnn0-k5x5-seq64-folder-seed0"
    assert run.data.params["model.maps"] == "8" and run.data.params["model.pool"] == "[5, 4, 2]"
    assert run.data.params["macs_per_10s"] == str(metrics["macs_per_10s"])
    assert run.data.tags["energy_method"] == metrics["energy_method"] and run.data.tags["peak_rss_scope"] == "run"
    assert run.data.metrics["energy_train_kwh"] == pytest.approx(metrics["energy_train_kwh"])
    assert run.data.tags["family"] == "crnn" and run.data.tags["dataset"] == "folder" and run.data.tags["seed"] == "0"
    for key in ("test/f1_frm", "test/er_frm", "test/f1_1sec", "test/er_1sec", "n_params", "fit_seconds",
                "test/f1_frm/glass smash", "test/f1_event", "test/er_event", "test/psds1", "test/psds2",
                "test/f1_event_pp", "test/psds1_pp", "test/f1_event/glass smash",
                "postprocess/median_filter_s/glass smash"):
        assert key in run.data.metrics, key
    assert run.data.metrics["test/f1_frm"] == pytest.approx(metrics["test/f1_frm"])
    history = client.get_metric_history(run.info.run_id, "val/f1_frm")
    assert len(history) == 2 and len(client.get_metric_history(run.info.run_id, "train/loss")) == 2
    assert client.get_metric_history(run.info.run_id, "val/er_frm")
    assert run.data.metrics["val/f1_frm_best"] == pytest.approx(best) == max(h.value for h in history)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.json", "file_counts.csv"} <= artifacts
    # what produced it: the code's commit and state, the libraries' versions, the dataset's fingerprint
    from sedbench.data.dataset import read_folder
    from sedbench.data.fingerprint import dataset_fingerprint
    from sedbench.provenance import code, libraries

    prov = metrics["provenance"]
    assert prov["code"] == code() and prov["libraries"] == libraries() and prov["libraries"]["torch"] != "missing"
    assert prov["dataset"]["fingerprint"] == dataset_fingerprint(read_folder(synth_dir))
    assert run.data.tags["provenance.dataset.fingerprint"] == prov["dataset"]["fingerprint"]
    assert run.data.tags["provenance.libraries.mlflow"] == prov["libraries"]["mlflow"]
    assert run.data.tags["provenance.code.commit"] == str(prov["code"]["commit"])
    assert metrics["budget"] == run.data.tags["budget"] == "complete" and metrics["steps"] > 0
    # the learning curve and whether the budget was enough (two epochs, no early stop: plateau or improving)
    assert [p[1] for p in metrics["val_curve"]] == pytest.approx([h.value for h in history], abs=1e-6)
    assert metrics["val_curve"][-1][0] == metrics["steps"] and metrics["convergence"] in ("plateau", "improving")
    assert run.data.tags["convergence"] == metrics["convergence"] and metrics["converged"] == (
        metrics["convergence"] == "plateau")


def test_the_study_recipe_early_stopping_and_frames_per_step(synth_dir, tmp_path):
    """The claims study's options: output biases at the class priors, no output dropout, a learning-rate plateau
    schedule, 1,024 frames per step; with patience 0 early stopping ends the run, and the run says so (the best
    checkpoint loaded for testing must not erase that)."""
    import numpy as np
    import torch

    train(tiny_cfg(synth_dir, tmp_path, "model.output_bias=prior", "model.output_dropout=false",
                   "+trainer.lr_plateau={factor:0.5,patience:1}", "data.batch_frames=512", "trainer.max_epochs=8",
                   "trainer.patience=0"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["convergence"] == "early_stop" and metrics["converged"] and metrics["epochs"] < 7
    assert metrics["run_name"].endswith("-k5x5-biasprior-outdropFalse-seq64-bf512-folder-seed0")
    steps_per_epoch = metrics["val_curve"][0][0]
    assert steps_per_epoch == math.ceil(len_frames(synth_dir) / 512)  # batches of 512 / 64 = 8 sequences
    state = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert np.isfinite(state["net.out.bias"].numpy()).all()


def len_frames(synth_dir) -> int:
    """Training frames of the tiny dataset (20-ms hop), from its audio durations."""
    import soundfile as sf

    return sum(int(sf.info(str(p)).frames / sf.info(str(p)).samplerate / 0.02) for p in
               sorted((synth_dir / "audio" / "train").glob("*.wav")))


def test_file_counts_add_up_to_the_recorded_scores(synth_dir, tmp_path):
    import csv

    import numpy as np

    from sedbench.stats import bootstrap_files, er, f1

    train(tiny_cfg(synth_dir, tmp_path))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    with open(tmp_path / "run" / "file_counts.csv") as f:
        rows = list(csv.DictReader(f))
    for tag in ("frm", "1sec"):
        counts = np.array([[int(r[k]) for k in ("Ntp", "Nref", "Nsys", "S", "D", "I")] for r in rows
                           if r["resolution"] == tag])
        assert len(counts) == 2  # one row per test file
        assert float(f1(counts)) == pytest.approx(metrics[f"test/f1_{tag}"])
        assert float(er(counts)) == pytest.approx(metrics[f"test/er_{tag}"])
        ci = bootstrap_files(counts)
        assert ci.low <= metrics[f"test/f1_{tag}"] <= ci.high
    # each test file's source instances, from the dataset's metadata/sources.tsv, for comparisons to account for
    from sedbench.training.artifacts import read_file_sources

    sources = read_file_sources(tmp_path / "run" / "file_counts.csv")
    listed = {}
    with open(synth_dir / "metadata" / "sources.tsv") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["split"] == "test":
                listed.setdefault(r["filename"], []).append(r["source"])
    test_files = [r["file"] for r in rows if r["resolution"] == "frm"]
    assert sources == [listed[name] for name in test_files] and all(s.startswith("test/") for s in sources[0])


def test_the_wall_clock_guard_tags_the_run_truncated(synth_dir, tmp_path):
    import mlflow

    train(tiny_cfg(synth_dir, tmp_path, "trainer.max_epochs=1000", "trainer.patience=1000",
                   "trainer.max_time=00:00:00:02"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id])
    assert metrics["budget"] == run.data.tags["budget"] == "truncated" and metrics["epochs"] < 1000


def test_same_config_and_seed_give_the_same_metrics(synth_dir, tmp_path):
    results = []
    for i in range(2):
        cfg = tiny_cfg(synth_dir, tmp_path / str(i), "model=cnn", "model.maps=8")
        train(cfg)
        m = json.loads((tmp_path / str(i) / "run" / "metrics.json").read_text())
        timings = ("fit_seconds", "detection_seconds", "mlflow_run_id", "energy_train_kwh", "energy_test_kwh",
                   "peak_rss_gb")  # measurements of the machine, not results
        results.append({k: v for k, v in m.items() if k not in timings and not k.startswith("time/")})
    assert results[0] == results[1]  # every recorded metric, exactly (class-wise ones included)
    counts = [(tmp_path / str(i) / "run" / "file_counts.csv").read_text() for i in range(2)]
    assert counts[0] == counts[1]


def test_post_processing_uses_the_best_epochs_validation_outputs_without_predicting_again(synth_dir, tmp_path,
                                                                                           monkeypatch):
    """The validation outputs the module kept at the best checkpoint's epoch are exactly what predicting the
    validation split again with the best checkpoint's weights gives, so the run does not predict it again."""
    import numpy as np

    from sedbench.training import train as training

    seen = {}
    real = training.best_validation_outputs

    def spy(trainer, module, dm, checkpoint):
        kept = real(trainer, module, dm, checkpoint)
        seen.update(kept=kept, reused=kept is module.best_val_outputs, again=training.predict_best(
            trainer, module, dm.val_dataloader(), checkpoint.best_model_path))
        return kept

    monkeypatch.setattr(training, "best_validation_outputs", spy)
    train(tiny_cfg(synth_dir, tmp_path, "trainer.max_epochs=4", "trainer.patience=100"))
    curve = json.loads((tmp_path / "run" / "metrics.json").read_text())["val_curve"]
    assert len(curve) == 4 and seen["reused"]
    assert np.array_equal(seen["kept"], seen["again"])


def test_bf16_preset_trains_in_mixed_precision(synth_dir, tmp_path):
    """trainer=cpu_bf16 (make bench's faster choice on CPUs with bf16 units) trains and scores; on a CPU that
    only emulates bf16 it is refused before anything is recorded, and runs when explicitly allowed."""
    from sedbench.errors import ConfigError
    from sedbench.hardware import cpu_info

    args = ("trainer=cpu_bf16", "trainer.max_epochs=1", "trainer.max_time=null", "trainer.num_threads=1",
            "model.maps=4", "data.seq_len=32")
    cfg = tiny_cfg(synth_dir, tmp_path, *args)
    assert cfg.trainer.precision == "bf16-mixed"
    if not cpu_info()["bf16_native"]:
        with pytest.raises(ConfigError, match="on a CPU without native bfloat16"):
            train(cfg)
        assert not (tmp_path / "run").exists() and not (tmp_path / "mlflow.db").exists()
        cfg = tiny_cfg(synth_dir, tmp_path, *args, "trainer.allow_emulated_bf16=true")
    best = train(cfg)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["val/f1_frm"] == best and all(0 <= m[k] <= 1 for k in ("test/f1_frm", "test/f1_1sec"))


def test_cli_params_and_bad_override(capsys):
    from sedbench.commands.cli import main

    assert main(["params", "model=rnn", "n_classes=16"]) == 0
    assert "4,538,384 trainable parameters" in capsys.readouterr().out
    assert main(["params", "model=crnn", "model.pool=[8,8]", "n_classes=16"]) == 2
    err = capsys.readouterr().err
    assert "model.pool [8, 8] cannot pool 40 bands" in err and "Traceback" not in err
    assert main(["params", "model.nonexistent=3"]) != 0


@pytest.mark.parametrize("override", ["model.poool=[4]", "+model.poool=[4]"])
def test_a_misspelt_model_key_stops_train_before_any_data_is_read(override, tmp_path, monkeypatch, capsys):
    from sedbench.commands.cli import main

    monkeypatch.chdir(tmp_path)  # nothing may be written: no run folder, no dataset generated
    assert main(["train", override]) == 2
    err = capsys.readouterr().err
    assert "error: model.poool is not a setting of model.arch=crnn" in err and "pool, rnn_init, rnn_layers" in err
    assert main(["train", "model.maps=abc"]) == 2
    assert "model.maps='abc': expected a whole number" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_weak_labels_with_temporal_pooling(tmp_path):
    """Clip tags (CHiME-Home / ESC style): temporal max-pooling, clip F1, EER and accuracy."""
    import yaml
    from helpers import write_wav

    root = tmp_path / "weak"
    for split, n in (("train", 12), ("validation", 4), ("test", 4)):
        lines = ["filename\tevent_labels"]
        for i in range(n):
            label = ("low", "high")[i % 2]
            write_wav(root / "audio" / split / f"{i}.wav", seconds=1.0, sr=16000,
                      freq=300.0 if label == "low" else 3000.0,
                      seed=i)
            lines.append(f"{i}.wav\t{label}")
        (root / "metadata").mkdir(parents=True, exist_ok=True)
        (root / "metadata" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    (root / "dataset.yaml").write_text(yaml.safe_dump({"name": "weak", "classes": ["high", "low"],
                                                       "sample_rate": 16000, "weak": True}))
    cfg = tiny_cfg(root, tmp_path, "model.temporal_pool=true", "data.seq_len=50", "trainer.max_epochs=3")
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"val/f1_clip", "test/f1_clip", "test/eer", "test/accuracy"} <= set(metrics)
    assert 0 <= metrics["test/eer"] <= 1 and set(metrics["class_wise_test_eer"]) == {"high", "low"}


def test_psds_deferred_to_the_report_gives_the_numbers_the_run_would_have(synth_dir, tmp_path):
    """evaluation.psds=report: the run keeps its test scores, the report computes PSDS from them and records it
    in the run; the values equal those of the same run computing PSDS itself."""
    import mlflow

    from sedbench.report.collect import TrialRow
    from sedbench.report.write import fill_deferred_psds
    from sedbench.training.artifacts import TEST_SCORES_PATH

    train(tiny_cfg(synth_dir, tmp_path / "every"))
    every = json.loads((tmp_path / "every" / "run" / "metrics.json").read_text())
    train(tiny_cfg(synth_dir, tmp_path / "later", "evaluation.psds=report"))
    later = json.loads((tmp_path / "later" / "run" / "metrics.json").read_text())
    assert "test/psds1" not in later and later["test/f1_event_pp"] == every["test/f1_event_pp"]
    path = tmp_path / "later" / "run" / TEST_SCORES_PATH
    row = TrialRow(0, "COMPLETE", "crnn", {}, {"mlflow_run_id": later["mlflow_run_id"]},
                   metrics={"val/f1_frm": later["val/f1_frm"]})
    uri = f"sqlite:///{tmp_path}/later/mlflow.db"
    assert fill_deferred_psds([row], lambda run_id, p: path if p == TEST_SCORES_PATH else None, uri) == 1
    run = mlflow.tracking.MlflowClient(uri).get_run(later["mlflow_run_id"])
    for key in ("psds1", "psds2", "auroc_1sec", "psds1_pp", "psds2_pp", "auroc_1sec_pp"):
        assert row.metrics[f"test/{key}"] == run.data.metrics[f"test/{key}"] == every[f"test/{key}"], key
    assert all(run.data.metrics[f"test/auroc_1sec/{c}"] == v for c, v in every["class_wise_test_auroc_1sec"].items())
    assert fill_deferred_psds([row], lambda run_id, p: path, uri) == 0  # recorded: not computed again


def test_a_bad_psds_setting_fails_before_training(synth_dir, tmp_path):
    from sedbench.errors import ConfigError

    with pytest.raises(ConfigError, match="evaluation.psds='later'.*true, false or report"):
        train(tiny_cfg(synth_dir, tmp_path, "evaluation.psds=later"))
    assert not (tmp_path / "run" / "checkpoints").exists()
