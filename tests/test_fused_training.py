"""Seeds trained together (sedbench.training.fused.train_group) against the same seeds trained solo (train()).

Tolerance, stated and measured (CRNN of 8 maps, 3 seeds, 3 epochs of 18 steps, on this machine):

* initial weights: bit for bit (each member built under its seed, as the solo run builds it);
* training loss per epoch: within 1e-5 relative (measured: equal to the 6 decimals MLflow keeps). This holds only
  if each member sees its solo run's batches in its order and draws its solo run's dropout masks, epoch after epoch
  (one draw out of place would change every later mask and the losses at the first decimal);
* validation loss per epoch: within 1e-3 relative (measured: 1.4e-4), and validation and test F1 within 0.005
  (measured: 3e-4). The difference comes from the conv layers' biases: a batch norm follows each of them, so their
  gradient is zero but for float32 rounding, which differs between the block-diagonal recurrent layer's backward
  and the solo one's, and Adam turns that noise into steps of the learning rate's size. In training mode the batch
  norm takes each bias out exactly; in evaluation mode its running mean has followed the bias with a lag, so
  validation outputs move by about 1e-4.
"""

import json
import math

import pytest
import torch
from helpers import train_cfg

FAMILY_ARGS = {"crnn": ["model=crnn", "model.maps=8"], "cnn": ["model=cnn", "model.maps=8"],
               "rnn": ["model=rnn", "model.maps=8"]}
SEEDS = (0, 1)


def histories(db, seed: str | None = None) -> dict:
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{db}")
    out = {}
    for run in client.search_runs([client.get_experiment_by_name("sedbench").experiment_id]):
        h = {k: [m.value for m in sorted(client.get_metric_history(run.info.run_id, k), key=lambda m: m.step)]
             for k in ("train/loss", "val/loss", "val/f1_frm")}
        h.update(status=run.info.status, tags=run.data.tags, test=run.data.metrics.get("test/f1_frm"))
        out[run.data.tags["seed"]] = h
    return out


def close(a: list[float], b: list[float], rel: float) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= rel * max(1.0, abs(y)) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("family,workers", [(f, 0) for f in sorted(FAMILY_ARGS)] + [("crnn", 1)])
def test_members_follow_their_solo_runs(family, workers, synth_dir, tmp_path):
    """Also with a loader worker process (persistent: the solo run's loaders then draw their base seed once)."""
    from sedbench.training.fused import train_group
    from sedbench.training.train import train

    args = [*FAMILY_ARGS[family], "trainer.max_epochs=3", "evaluation.psds=false", f"data.num_workers={workers}"]
    for seed in SEEDS:
        train(train_cfg(synth_dir, tmp_path / f"solo{seed}", *args, f"seed={seed}"))
    results = train_group(train_cfg(synth_dir, tmp_path / "group", *args), seeds=list(SEEDS))
    assert [r["state"] for r in results.values()] == ["complete"] * len(SEEDS)
    fused = histories(tmp_path / "group" / "mlflow.db")
    for seed in SEEDS:
        solo = histories(tmp_path / f"solo{seed}" / "mlflow.db")[str(seed)]
        member = fused[str(seed)]
        assert close(member["train/loss"], solo["train/loss"], 1e-5), (family, seed, member, solo)
        assert close(member["val/loss"], solo["val/loss"], 1e-3), (family, seed, member, solo)
        assert close(member["val/f1_frm"], solo["val/f1_frm"], 5e-3), (family, seed)
        assert abs(member["test"] - solo["test"]) <= 5e-3
        assert member["status"] == "FINISHED" and member["tags"]["fused_group"] == "seeds 0,1"
        # its records as a solo run's: the same files and the same metrics.json keys, but the group's name
        solo_dir, member_dir = tmp_path / f"solo{seed}" / "run", tmp_path / "group" / "run" / f"seed{seed}"
        assert {p.name for p in solo_dir.iterdir()} <= {p.name for p in member_dir.iterdir()}
        keys = set(json.loads((member_dir / "metrics.json").read_text()))
        assert keys - set(json.loads((solo_dir / "metrics.json").read_text())) == {"fused_group"}


def test_members_start_from_their_solo_weights_and_loading_data_draws_nothing(synth_dir, tmp_path):
    """What a solo run does before its first step (seed, data module, network) leaves the member's network and its
    generator exactly where the group's member starts."""
    import pytorch_lightning as pl

    from sedbench.data.datamodule import build_datamodule
    from sedbench.models.families import build_model

    cfg = train_cfg(synth_dir, tmp_path, "model.maps=8", "seed=3")
    pl.seed_everything(3)
    state = torch.get_rng_state()
    dm = build_datamodule(cfg.data, cfg.features, seed=3)
    dm.setup("fit")
    assert torch.equal(torch.get_rng_state(), state)  # setting the data up draws nothing from torch
    solo = build_model(cfg.model, n_in=dm.n_features, n_classes=len(dm.classes)).state_dict()
    pl.seed_everything(3)
    again = build_model(cfg.model, n_in=dm.n_features, n_classes=len(dm.classes)).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in solo.items())


def test_a_diverged_member_fails_alone(synth_dir, tmp_path, monkeypatch):
    """Seed 1's conv weights are NaN from the start: its solo run would stop at its first step. In the group its
    NaN reaches the others' outputs through the block-diagonal recurrent layer; the group finds the member whose own
    loss is not finite, fails it alone and takes the step again without it: the others train as a group of two."""
    from sedbench.models import families
    from sedbench.training.fused import train_group

    args = ["model.maps=8", "trainer.max_epochs=2", "evaluation.psds=false"]
    clean = train_group(train_cfg(synth_dir, tmp_path / "clean", *args), seeds=[0, 2])
    real = families.build_model

    def poisoned(*a, **kw):
        net = real(*a, **kw)
        if torch.initial_seed() == 1:
            with torch.no_grad():
                net.conv[0].weight.fill_(math.nan)
        return net

    monkeypatch.setattr(families, "build_model", poisoned)
    results = train_group(train_cfg(synth_dir, tmp_path / "group", *args), seeds=[0, 1, 2])
    assert results[1]["state"] == "failed" and "DivergedError" in results[1]["error"]
    assert "epoch 0, step 0" in results[1]["error"]
    assert results[0]["state"] == results[2]["state"] == "complete"
    group, alone = histories(tmp_path / "group" / "mlflow.db"), histories(tmp_path / "clean" / "mlflow.db")
    assert group["1"]["status"] == "FAILED" and group["1"]["tags"]["outcome"] == "DivergedError"
    for seed in ("0", "2"):
        assert close(group[seed]["train/loss"], alone[seed]["train/loss"], 1e-5)
    assert abs(results[0]["value"] - clean[0]["value"]) <= 5e-3


def test_a_member_that_stops_early_leaves_the_group(synth_dir, tmp_path):
    """Early stopping per member: with patience 1 the members stop at their own epochs, each as its solo run's
    early stopping decides from its own curve (checked against the rule itself), and the others go on."""
    from sedbench.training.fused import train_group

    args = ["model.maps=8", "trainer.max_epochs=6", "trainer.patience=1", "evaluation.psds=false"]
    results = train_group(train_cfg(synth_dir, tmp_path, *args), seeds=[0, 1, 2])
    for seed, r in results.items():
        m = json.loads((tmp_path / "run" / f"seed{seed}" / "metrics.json").read_text())
        values = [v for _, v in m["val_curve"]]
        best, wait, stop = None, 0, None
        for epoch, v in enumerate(values):  # Lightning's EarlyStopping, patience 1
            if best is None or v > best:
                best, wait = v, 0
            else:
                wait += 1
                if wait >= 1:
                    stop = epoch
                    break
        assert r["state"] == "complete" and m["epochs"] == (stop + 1 if stop is not None else 6), (seed, values)
        assert m["convergence"] == ("early_stop" if stop else "plateau" if m["converged"] else "improving")
        assert r["value"] == pytest.approx(max(values), abs=1e-6)


def test_regrouping_carries_weights_statistics_optimizer_and_draws(tmp_path):
    """Members leaving a group: the others, fused again, take the next step exactly as they would have in the
    whole group (weights, batch-norm statistics, Adam's moments and the dropout draws carried over)."""
    from sedbench.models.crnn import CRNN
    from sedbench.models.fused import FusedCRNN, MemberRNG, regroup

    def build():
        nets, states = [], []
        for seed in (0, 1, 2, 3):
            torch.manual_seed(seed)
            nets.append(CRNN(40, 6, maps=8, pool=[5, 4, 2], rnn_layers=1))
            states.append(torch.get_rng_state())
        return nets, FusedCRNN(nets, MemberRNG(states))

    x = torch.randn(3, 4, 16, 40, generator=torch.Generator().manual_seed(0))
    y = (torch.rand(4, 3, 16, 6, generator=torch.Generator().manual_seed(1)) > 0.7).float()

    def step(net, opt, members):
        opt.zero_grad()
        out = net(x[:, members])
        sum(torch.nn.functional.binary_cross_entropy_with_logits(out[i], y[k]) for i, k in enumerate(members)
            ).backward()
        opt.step()

    nets, whole = build()
    opt = torch.optim.Adam(whole.parameters())
    for _ in range(2):
        step(whole, opt, [0, 1, 2, 3])
    keep = [0, 2, 3]
    part, part_opt = regroup(whole, keep, [nets[k] for k in keep], opt)
    draws = [g.get_state() for g in whole.rng.generators]  # the kept members' generators are shared by both
    step(whole, opt, [0, 1, 2, 3])
    for g, state in zip(whole.rng.generators, draws, strict=True):
        g.set_state(state)
    step(part, part_opt, keep)
    for i, k in enumerate(keep):
        a, b = part.member(i), whole.member(k)
        for name in a:
            if name.startswith("conv.") and name.endswith(".bias") and int(name.split(".")[1]) % 5 == 0:
                continue  # the conv biases before a batch norm: rounding noise (tests/test_fused.py)
            assert torch.allclose(a[name].float(), b[name].float(), rtol=1e-5, atol=1e-5), (k, name)


def test_what_cannot_fuse_says_why_and_the_sweep_header_names_it():
    """fuse_reason for each kind of configuration, and the sweep's header line from it: the cells that differ only
    in seed are grouped, the others named with their reason."""
    from helpers import compose_cfg
    from omegaconf import OmegaConf

    from hydra_plugins.sedbench_sweeper.schedule import Scheduling
    from sedbench.models.fused import fuse_reason

    for family in ("crnn", "cnn", "rnn"):
        assert fuse_reason(compose_cfg(f"model={family}", "model.maps=16")) is None
    assert "model.arch=gmm has no fused form" in fuse_reason(compose_cfg("model=gmm"))
    assert "bidirectional" in fuse_reason(compose_cfg("model=crnn", "model.bidirectional=true"))
    assert "lr_plateau" in fuse_reason(compose_cfg("trainer.lr_plateau={factor:0.5}"))
    assert "16-mixed" in fuse_reason(compose_cfg("trainer.precision=16-mixed"))
    assert "augment" in fuse_reason(compose_cfg("+data.augment={copies:1}"))
    assert "wider than 48 maps or units" in fuse_reason(compose_cfg("model=crnn", "model.maps=64"))
    assert fuse_reason(compose_cfg("model=crnn", "model.maps=48")) is None
    assert fuse_reason(compose_cfg("trainer=gpu", "model.maps=256"), on_cpu=False) is None  # on a GPU they fuse

    class Sweeper(Scheduling):
        def __init__(self, fuse):
            self.config, self.lines = OmegaConf.create({"sweep": {"fuse": fuse}}), []

        def _say(self, line):
            self.lines.append(line)

    small, large = ("model=crnn", "model.maps=16"), ("model=crnn", "model.maps=256")
    cells = [(*small, "seed=0"), (*small, "seed=1"), ("model=gmm", "seed=0"), ("model=gmm", "seed=1"),
             ("model=rnn",), (*large, "seed=0"), (*large, "seed=1")]
    composed = [compose_cfg("n_classes=16", *cell) for cell in cells]  # counted without reading a dataset
    s = Sweeper("auto")
    s._plan_fusing("x", cells, composed)
    assert s.lines == ["sweep x: seeds of a configuration train together (sweep.fuse=auto): 2 cells of 1 "
                       "configuration; solo: 2 cells (model.arch=gmm has no fused form (the CRNN, CNN and RNN "
                       "families have one)); 2 cells (on the CPU, models wider than 48 maps or units train faster "
                       "one seed at a time (measured))"]
    assert set(s.fuse_keys.values()) == {small} and s.fuse_max == float("inf")
    off = Sweeper("off")
    off._plan_fusing("x", cells, composed)
    assert off.lines == [] and off.fuse_keys == {}
    three = Sweeper(3)
    three._plan_fusing("x", cells, composed)
    assert three.fuse_max == 3
    import pytest

    from sedbench.errors import ConfigError

    with pytest.raises(ConfigError, match="sweep.fuse=1: must be auto"):
        Sweeper(1)._plan_fusing("x", cells, composed)


def test_members_of_a_sweep_are_told_their_end_and_a_pruned_member_stops_alone(synth_dir, tmp_path, monkeypatch):
    """In a sweep (trial.members), each member reports to its own Optuna trial; the one its pruner stops is told
    PRUNED (its MLflow run KILLED) at once and leaves the group, the other is told COMPLETE with its value, run
    folder and metrics as attributes."""
    import optuna
    from omegaconf import open_dict

    from sedbench import studies
    from sedbench.training.fused import train_group

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    numbers = [study.ask().number for _ in range(2)]
    reports = []
    monkeypatch.setattr(studies.TrialReporter, "report", lambda self, value, step: reports.append((self.trial_id,
                                                                                                   step)))
    pruned_id = studies.trial_id(studies.make_storage(storage), "s", numbers[1])
    monkeypatch.setattr(studies.TrialReporter, "should_prune",
                        lambda self: self.trial_id == pruned_id and sum(r[0] == pruned_id for r in reports) >= 2)
    cfg = train_cfg(synth_dir, tmp_path, "model.maps=8", "trainer.max_epochs=3", "evaluation.psds=false",
                    "sweep.pruner=median")
    with open_dict(cfg):
        cfg.trial.update(number=numbers[0], study="s", storage=storage, members=[[numbers[0], 0], [numbers[1], 1]])
        cfg.run_dir = str(tmp_path / "runs" / str(numbers[0]))
    results = train_group(cfg)
    assert results[numbers[0]]["state"] == "complete" and results[numbers[1]]["state"] == "pruned"
    told = {t.number: t for t in optuna.load_study(study_name="s", storage=storage).trials}
    assert told[numbers[1]].state.name == "PRUNED" and told[numbers[0]].state.name == "COMPLETE"
    assert told[numbers[0]].value == pytest.approx(results[numbers[0]]["value"])
    assert told[numbers[0]].user_attrs["output_dir"] == str(tmp_path / "runs" / str(numbers[0]))
    assert told[numbers[0]].user_attrs["epochs"] == 3 and told[numbers[0]].user_attrs["fused_group"] == \
        f"s/trials {numbers[0]},{numbers[1]}"
    assert sum(r[0] == pruned_id for r in reports) == 2  # it stopped after the validation that pruned it
    runs = histories(tmp_path / "mlflow.db")
    assert runs["1"]["status"] == "KILLED" and runs["0"]["status"] == "FINISHED"
