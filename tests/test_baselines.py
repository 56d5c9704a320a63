"""The paper's baselines: the FNN (maxout on stacked frames) and the GMM (likelihood ratio)."""

import json
import math

import pytest
import torch
from helpers import compose_cfg, train_cfg

from sedbench.models.families import build_model, count_parameters
from sedbench.models.fnn import FNN
from sedbench.training.train import run_name, train


def trained(cfg, tmp_path, family):
    """Train ``cfg``; its metrics.json, checked for the family, the returned score and finite test scores."""
    best = train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["family"] == family and metrics["val/f1_frm"] == best
    assert all(math.isfinite(metrics[k]) for k in ("test/f1_frm", "test/er_frm", "test/f1_1sec", "test/er_1sec"))
    return metrics


def test_fnn_has_the_papers_size():
    cfg = compose_cfg("model=fnn")
    n = count_parameters(build_model(cfg.model, n_in=40, n_classes=16))
    assert n == 1_616_016 and abs(n - 1.6e6) / 1.6e6 < 0.05


def test_fnn_stacks_five_frames_around_each_frame():
    net = FNN(3, 2, units=8, layers=1, context=5)
    x = torch.arange(1, 1 + 2 * 6 * 3, dtype=torch.float32).view(2, 6, 3)
    s = net.stack(x)
    assert s.shape == (2, 6, 15)
    assert torch.equal(s[1, 3], torch.cat([x[1, 1], x[1, 2], x[1, 3], x[1, 4], x[1, 5]]))
    assert torch.equal(s[0, 0, :6], torch.zeros(6)) and torch.equal(s[0, 0, 6:], x[0, :3].reshape(-1))
    assert net(x).shape == (2, 6, 2)


def test_fnn_trains_and_is_recorded(synth_dir, tmp_path):
    cfg = train_cfg(synth_dir, tmp_path, "model=fnn", "model.units=64")
    trained(cfg, tmp_path, "fnn")
    assert run_name(cfg) == "fnn-units64-layers2-maxout_pool2-context5-seq64-folder-seed0"


def test_gmm_decision_is_the_windowed_likelihood_ratio():
    import numpy as np

    from sedbench.models.gmm import GMMDetector

    rng = np.random.default_rng(0)
    T, D = 400, 3
    y = np.zeros((T, 2), np.float32)
    y[100:250, 0], y[50:120, 1] = 1, 1
    x = rng.normal(size=(T, D)) + 3 * y[:, :1] - 2 * y[:, 1:]
    det = GMMDetector(["a", "b"], n_components=2, window_seconds=0.2, hop_seconds=0.02, max_iter=50).fit([x], [y],
                                                                                                      progress=False)
    llr = det.log_ratio(x)
    half = 5  # 10 frames: the window [t-5, t+4], cut at the ends
    expected = np.stack([llr[max(0, t - half):t + half].sum(axis=0) > 0 for t in range(T)])
    assert np.array_equal(det.predict(x) > 0.5, expected)
    assert (det.predict(x)[120:230, 0] > 0.5).mean() > 0.9 and (det.predict(x)[300:, 0] > 0.5).mean() < 0.1
    assert GMMDetector(["a", "b"]).n_parameters(59) == 2 * 3808  # 16 components, as the paper counts


def test_gmm_trains_and_is_recorded(synth_dir, tmp_path):
    from mlflow.tracking import MlflowClient

    cfg = train_cfg(synth_dir, tmp_path, "model=gmm", "model.n_components=2", "model.max_iter=20",
                    "model.max_frames=2000")
    assert cfg.features.kind == "mfcc"
    metrics = trained(cfg, tmp_path, "gmm")
    assert metrics["n_params"] == 16 * 2 * 2 * 119
    assert metrics["macs_per_10s"] == 500 * 16 * 2 * 2 * 2 * 59  # per frame: each component's square and weighting
    assert metrics["energy_train_kwh"] > 0 and metrics["energy_test_kwh"] > 0 and metrics["energy_method"]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["family"] == "gmm"
    assert run.data.metrics["test/f1_frm"] == pytest.approx(metrics["test/f1_frm"])
    for key in ("test/f1_event", "test/psds1", "test/psds2", "test/f1_frm_pp", "test/f1_event_pp"):
        assert run.data.metrics[key] == pytest.approx(metrics[key])  # the baseline is scored like the networks
    # its bundle holds the fitted mixtures as arrays: `sedbench evaluate` re-scores it as it does a network
    from sedbench.commands.evaluate import evaluate_run

    results = evaluate_run(run.info.run_id, f"sqlite:///{tmp_path}/mlflow.db", [], progress=False)
    assert results[0]["f1_frm"] == metrics["test/f1_frm"] and results[0]["er_1sec"] == metrics["test/er_1sec"]
    assert "activity.npz" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_vggish_rnn_keeps_every_frame_and_pools_frequency():
    cfg = compose_cfg("model=vggish_rnn")
    assert cfg.features.kind == "stft"
    net = build_model(cfg.model, n_in=883, n_classes=16)  # 44.1 kHz, 40 ms: N_FFT 1764 -> 883 bins
    assert len([m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]) == 7
    assert all(m.kernel_size == (3, 3) for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert net(torch.randn(2, 50, 883)).shape == (2, 50, 16)
    with pytest.raises(ValueError, match="leave no frequency bins"):
        build_model(cfg.model, n_in=40, n_classes=16)


def test_vggish_rnn_trains_and_summarizes_classes(synth_dir, tmp_path, capsys):
    cfg = train_cfg(synth_dir, tmp_path, "model=vggish_rnn", "model.channels=[4,4,8,8,8,8,8]", "model.hidden=16",
                    "trainer.max_epochs=1")
    metrics = trained(cfg, tmp_path, "vggish_rnn")
    out = capsys.readouterr().out
    assert "class (test, frames)" in out and "glass smash" in out
    assert len(metrics["class_wise_test_precision"]) == 16


def test_attention_models_logmel_equals_the_cached_features():
    import numpy as np

    from sedbench.data.features import FeatureParams, extract
    from sedbench.models.attention import CRNNAttention

    sr = 16000
    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal(sr * 2)).astype(np.float32)
    wave = extract(y, sr, FeatureParams(kind="waveform"))
    assert wave.shape == (100, 320) and np.array_equal(wave.reshape(-1), y)
    net = CRNNAttention(320, 5, maps=8, heads=2).eval()
    ours = net.logmel(torch.from_numpy(wave)[None])[0].numpy()
    ref = extract(y, sr, FeatureParams(kind="logmel"))
    assert np.allclose(ours[2:-2], ref[2:-2], atol=1e-3)  # inside the sequence; the ends see zeros
    assert net(torch.from_numpy(wave)[None], torch.ones(1, 100)).shape == (1, 100, 5)
    with pytest.raises(ValueError, match="features=waveform"):
        CRNNAttention(40, 5)


def test_crnn_attention_trains_from_raw_audio(synth_dir, tmp_path):
    cfg = train_cfg(synth_dir, tmp_path, "model=crnn_attention", "model.maps=8", "model.heads=2",
                    "trainer.max_epochs=1")
    assert cfg.features.kind == "waveform"
    trained(cfg, tmp_path, "crnn_attention")


def test_clip_segments_overlap_by_half_and_average_back_to_clips():
    import numpy as np

    from sedbench.data.sequences import ClipSequences

    feats = [np.ones((435, 4), np.float32), np.ones((100, 4), np.float32)]
    tags = [np.array([1.0, 0.0]), np.array([0.0, 1.0])]
    seqs = ClipSequences(feats, tags, 128, overlap=0.5)
    assert [s for c, s in seqs.segments if c == 0] == [0, 64, 128, 192, 256, 307]  # the last one ends at 435
    assert [s for c, s in seqs.segments if c == 1] == [0] and seqs[len(seqs) - 1]["mask"].sum() == 100
    scores = np.array([[1.0, 0.0]] * 6 + [[0.2, 0.4]])
    assert np.allclose(seqs.per_clip(scores), [[1.0, 0.0], [0.2, 0.4]])
    assert len(ClipSequences(feats, tags, 128)) == 2  # no overlap: the first seq_len frames of each clip


def test_acrnn_has_the_seed_layers():
    cfg = compose_cfg("model=acrnn")
    assert cfg.features.kind == "gammatone" and cfg.data.name == "esc10" and cfg.data.segment_overlap == 0.5
    net = build_model(cfg.model, n_in=256, n_classes=10)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [32, 32, 64, 64, 128, 128, 256, 256]
    assert [m.kernel_size for m in convs[::2]] == [(5, 3), (1, 3), (5, 1), (3, 3)]  # (time, freq) in torch
    assert net.gru.num_layers == 2 and net.gru.bidirectional and net.gru.hidden_size == 256
    x, mask = torch.randn(2, 128, 256), torch.ones(2, 128)
    mask[1, 64:] = 0
    net.eval()
    out = net(x, mask)
    assert out.shape == (2, 10)
    x2 = x.clone()
    x2[1, 120:] = 5.0  # masked frames beyond the convolutions' reach into valid ones: no effect
    assert torch.allclose(net(x2, mask)[1], out[1], atol=1e-5)
    x2[0, 120:] = 5.0  # the same frames of an unmasked clip do count
    assert not torch.allclose(net(x2, mask)[0], out[0], atol=1e-5)


def test_acrnn_trains_on_esc10_and_reports_accuracy(tmp_path):
    from helpers import esc10_or_skip

    root = esc10_or_skip()
    cfg = train_cfg(root, tmp_path, "model=acrnn", "data=esc10", f"data.root={root}",
                    "model.blocks=[{maps:4,kernel:[3,5],pool:[4,3]},{maps:4,kernel:[3,1],pool:[4,1]},"
                    "{maps:4,kernel:[1,5],pool:[1,3]},{maps:8,kernel:[3,3],pool:[2,2]}]",
                    "model.rnn_units=8", "model.rnn_layers=1", "trainer.max_epochs=1", "data.batch_size=64")
    best = train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["family"] == "acrnn" and metrics["val/f1_clip"] == best
    assert 0 <= metrics["test/accuracy"] <= 1 and len(metrics["class_wise_test_eer"]) == 10
    assert metrics["run_name"].endswith("-esc10-fold1-seed0")  # cross-validated data: the fold in the name


def test_augmented_copies_stretch_audio_and_events(synth_dir, tmp_path):
    import numpy as np

    from sedbench.data.datamodule import Augment, split_features
    from sedbench.data.features import FeatureCache, FeatureParams
    from sedbench.data.layouts import load_dataset

    ds = load_dataset("folder", root=synth_dir)
    aug = Augment(copies=1, time_stretch=(0.8, 1.3), pitch_shift=(-3.5, 3.5))
    assert aug.variants(0, 3) == aug.variants(0, 3) != aug.variants(1, 3)
    cache = FeatureCache(tmp_path / "cache")
    plain, _ = split_features(ds, "train", FeatureParams(), cache, progress=False)
    feats, targets = split_features(ds, "train", FeatureParams(), cache, progress=False, augment=aug)
    assert len(feats) == 2 * len(plain) and np.array_equal(feats[0], plain[0])
    (rate, _), = aug.variants(0, 0)
    assert abs(len(feats[1]) - len(plain[0]) / rate) <= 2  # the copy is stretched...
    active, active_copy = targets[0].sum(), targets[1].sum()
    assert abs(active_copy - active / rate) <= 2 * targets[0].shape[1] * 20  # ...and so are its events
    assert len(split_features(ds, "test", FeatureParams(), cache, progress=False, augment=aug)[0]) == len(
        ds.recordings("test"))  # only training files are augmented


def test_energy_off_records_none(synth_dir, tmp_path):
    cfg = train_cfg(synth_dir, tmp_path, "model=gmm", "model.n_components=2", "model.max_iter=5",
                    "model.max_frames=500", "energy.enabled=false")
    metrics = trained(cfg, tmp_path, "gmm")
    assert not {"energy_train_kwh", "energy_test_kwh", "energy_method"} & set(metrics)
