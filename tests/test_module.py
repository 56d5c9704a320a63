import pytest
import torch

from sedbench.models.crnn import CRNN
from sedbench.training.module import SEDModule


def test_nan_loss_raises_so_the_trial_fails_instead_of_training_on():
    module = SEDModule(CRNN(40, 3, maps=4, pool=[5, 4, 2]))
    batch = {"x": torch.full((2, 16, 40), float("nan")), "y": torch.zeros(2, 16, 3), "mask": torch.ones(2, 16)}
    with pytest.raises(FloatingPointError, match="training loss is nan"):
        module.training_step(batch, 0)


def test_padding_is_masked_out_of_the_loss():
    module = SEDModule(CRNN(40, 2, maps=4, pool=[5, 4, 2]))
    module.eval()
    with torch.no_grad():
        logits = module(torch.randn(1, 8, 40))
    y = torch.zeros(1, 8, 2)
    full = module._loss(logits, {"y": y, "mask": torch.ones(1, 8)}).item()
    y_bad = y.clone()
    y_bad[0, 4:] = 1.0  # garbage targets on padded frames
    masked = module._loss(logits, {"y": y_bad, "mask": torch.tensor([[1.0] * 4 + [0.0] * 4])}).item()
    first_half = module._loss(logits[:, :4], {"y": y[:, :4], "mask": torch.ones(1, 4)}).item()
    assert masked == pytest.approx(first_half) and full != pytest.approx(masked)


def test_split_scorer_stitches_and_scores_what_the_module_collected():
    """The module hands its per-batch outputs, in loader order, to the scorer the training code passed in."""
    import numpy as np

    from sedbench.data.sequences import ClipSequences, EvalSequences
    from sedbench.metrics.segment import frames_to_events
    from sedbench.training.scoring import SplitScorer

    rng = np.random.default_rng(0)
    truth = [(rng.random((n, 2)) > 0.6).astype(np.float32) for n in (10, 7)]
    seqs = EvalSequences([np.zeros((len(t), 3), np.float32) for t in truth], truth, seq_len=4)
    refs = [frames_to_events(t, ["a", "b"], 0.02) for t in truth]
    scorer = SplitScorer({"validation": seqs}, ["a", "b"], hop=0.02, references={"validation": refs})
    perfect = np.stack([seqs[i]["y"] for i in range(len(seqs))])  # (pieces, 4, 2), padded
    assert [f.shape for f in scorer.files("validation", perfect)] == [(10, 2), (7, 2)]
    assert scorer("validation", perfect)["f1_frm"] == 1.0 and scorer("validation", 1 - perfect)["f1_frm"] == 0.0

    module = SEDModule(CRNN(3, 2, maps=2, pool=[]), validate=lambda outputs: scorer("validation", outputs))
    logged = {}
    module.log = lambda key, value, **_: logged.__setitem__(key, value)
    module.on_validation_epoch_start()
    module._outputs += [perfect[:2], perfect[2:]]  # two batches
    module.on_validation_epoch_end()
    assert logged == {"val/f1_frm": 1.0, "val/er_frm": 0.0} and module._outputs == []

    clips = ClipSequences([np.zeros((6, 3), np.float32)] * 2, [np.array([1, 0.0]), np.array([0, 1.0])], 4, 0.5)
    weak = SplitScorer({"test": clips}, ["a", "b"], hop=0.02, clip_targets={"test": np.stack(clips.tags)})
    segments = np.where(clips.clip_of[:, None] == 0, [0.9, 0.1], [0.2, 0.7])  # each clip's segments agree
    scores = weak("test", segments)
    assert scores["f1_clip"] == 1.0 and scores["accuracy"] == 1.0


def test_off_the_cpu_the_loss_is_checked_every_n_steps_without_a_sync_and_names_the_first_bad_step(monkeypatch):
    """On a GPU each look at the loss waits for the device: the first non-finite step is kept on the device and
    looked at every check_every steps (and at each epoch's end), then reported with its step."""
    from sedbench.training.device import check_every

    assert check_every("cpu") == 1 and check_every("gpu") > 1
    module = SEDModule(CRNN(40, 3, maps=4, pool=[5, 4, 2]), check_every=3)
    monkeypatch.setattr(SEDModule, "log", lambda *_, **__: None)  # no Trainer here to log to
    step = {"n": 0}
    monkeypatch.setattr(SEDModule, "global_step", property(lambda self: step["n"]))
    good = {"x": torch.randn(2, 16, 40), "y": torch.zeros(2, 16, 3), "mask": torch.ones(2, 16)}
    bad = {**good, "x": torch.full((2, 16, 40), float("inf"))}
    synced = []
    real_item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: synced.append(1) or real_item(t))
    module.training_step(good, 0)
    step["n"] = 1
    module.training_step(bad, 1)  # not looked at yet
    assert synced == []
    step["n"] = 2
    with pytest.raises(FloatingPointError, match="step 1"):
        module.training_step(good, 2)
    module2 = SEDModule(CRNN(40, 3, maps=4, pool=[5, 4, 2]), check_every=50)
    step["n"] = 0
    module2.training_step(bad, 0)
    with pytest.raises(FloatingPointError, match="not finite .* step 0"):
        module2.on_train_epoch_end()  # an epoch's end looks too
