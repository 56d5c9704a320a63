"""The data stage end to end: a generated dataset through a real Lightning loop."""

import numpy as np
import pytorch_lightning as pl
import torch

from sedbench.data.datamodule import SEDDataModule
from sedbench.data.dataset import read_folder
from sedbench.data.features import FeatureParams


class Probe(pl.LightningModule):
    """Records what the trainer feeds it."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.lin = torch.nn.Linear(n_in, n_out)
        self.starts = {}

    def training_step(self, batch, _):
        self.starts.setdefault(self.current_epoch, []).extend(batch["start"].tolist())
        return torch.nn.functional.binary_cross_entropy_with_logits(self.lin(batch["x"]), batch["y"])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


def test_datamodule_with_lightning(synth_dir, tmp_path):
    ds = read_folder(synth_dir)
    dm = SEDDataModule(ds, FeatureParams(), seq_len=64, batch_size=4, cache_dir=tmp_path / "c", progress=False)
    dm.setup("fit")
    b = next(iter(dm.val_dataloader()))
    assert b["x"].shape == (4, 64, 40) and b["y"].shape == (4, 64, 16) and b["mask"].shape == (4, 64)
    # normalized with training statistics
    train_x = dm.sets["train"].x[:]  # on disk (FrameFile): a slice reads it
    assert np.allclose(train_x.mean(0), 0, atol=1e-3) and np.allclose(train_x.std(0), 1, atol=1e-2)
    # every validation frame is covered exactly once
    n_frames = sum(len(f) for f in dm.sets["validation"].features)
    assert sum(p.length for p in dm.sets["validation"].pieces) == n_frames

    model = Probe(40, 16)
    pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, limit_val_batches=0, deterministic=True).fit(model, datamodule=dm)
    # Lightning called set_epoch on the sampler: epoch 1 starts 73 frames later; each epoch sees every sequence once
    n_seq = len(train_x) // 64
    assert sorted(model.starts[0]) == [k * 64 for k in range(n_seq)]
    assert sorted(model.starts[1]) == [73 % 64 + k * 64 for k in range(n_seq)]  # boundaries moved by 73 frames
    assert dm.cache.misses == sum(len(ds.recordings(s)) for s in ("train", "validation", "test"))


def test_build_from_config(synth_dir, tmp_path):
    from sedbench.data.datamodule import build_datamodule

    dm = build_datamodule({"name": "folder", "layout": "folder", "root": str(synth_dir), "seq_len": 32,
                           "batch_size": 2}, {"kind": "logmel", "n_mels": 40, "cache_dir": str(tmp_path / "c")},
                          progress=False)
    assert dm.n_features == 40 and dm.classes[0] == "glass smash" and dm.seq_len == 32


def test_features_live_on_disk_and_read_back_exactly(synth_dir, tmp_path):
    """The DataModule's sequences come from unnamed files through memory maps; they equal sequences
    built in memory from the same normalized features, frame for frame."""
    from sedbench.data.datamodule import split_features
    from sedbench.data.frames import FrameFile, MappedFrames
    from sedbench.data.sequences import EvalSequences, TrainSequences

    ds = read_folder(synth_dir)
    dm = SEDDataModule(ds, FeatureParams(), seq_len=64, batch_size=4, cache_dir=tmp_path / "c", progress=False)
    dm.setup("fit")
    assert isinstance(dm.sets["train"].x, FrameFile) and dm.sets["train"].y.dtype == np.uint8
    assert all(isinstance(f, MappedFrames) for f in dm.sets["test"].features)
    for split, kind in (("train", TrainSequences), ("test", EvalSequences)):
        feats, targets = split_features(ds, split, FeatureParams(), dm.cache, progress=False)
        memory = kind([dm.normalizer(f) for f in feats], targets, 64)
        on_disk = dm.sets[split]
        for i in [0, 1, len(on_disk) // 2, len(on_disk) - 1]:  # train: i is a start frame (the last wraps)
            a, b = memory[i], on_disk[i]
            assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"]), (split, i)


def test_worker_processes_give_identical_batches(synth_dir, tmp_path):
    """DataLoader workers (data.num_workers, on CUDA by default) only read: every batch of every split, in
    order, is the one the main process makes, two epochs (the training sampler's shift) included."""
    from sedbench.data.datamodule import build_datamodule

    def batches(workers: int, pin: bool) -> dict:
        dm = build_datamodule({"name": "folder", "layout": "folder", "root": str(synth_dir), "seq_len": 48,
                               "batch_size": 3, "num_workers": "auto"},
                              {"kind": "logmel", "n_mels": 40, "cache_dir": str(tmp_path / "c")}, seed=3,
                              progress=False, loader={"num_workers": workers, "pin_memory": pin})
        dm.setup("fit")
        out = {}
        for epoch in (0, 1):
            loader = dm.train_dataloader()
            loader.sampler.set_epoch(epoch)
            out[f"train{epoch}"] = list(loader)
        out["validation"], out["test"] = list(dm.val_dataloader()), list(dm.test_dataloader())
        assert dm.train_dataloader().persistent_workers == (workers > 0)
        return out

    plain, workers = batches(0, False), batches(2, False)
    assert plain.keys() == workers.keys()
    for split in plain:
        assert len(plain[split]) == len(workers[split]) > 0
        for a, b in zip(plain[split], workers[split], strict=True):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), split
