"""Pruning measured against a full grid: the replay makes the decisions a real pruned sweep makes."""

import pytest
from helpers import load_study as study
from helpers import run_app

from sedbench.pruning import Curve, curves_from_study, replay


def toy_curves(n: int, epochs: int) -> list[Curve]:
    """What the toy task reports: cell ``model.maps=m`` scores 1/m after every epoch."""
    return [Curve(m - 1, f'["model.maps={m}"]', (1.0 / m,) * epochs, 1.0 / m, 1.0 / m, 2.0) for m in range(1, n + 1)]


@pytest.mark.slow  # end to end and long: make test-full (the replay's figures are checked by hand below)
@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_replay_prunes_what_a_real_sweep_of_the_grid_prunes(tmp_path, pruner):
    r = run_app(tmp_path, "model.maps=1,2,3,4,5,6,7,8", f"sweep.pruner={pruner}", "+toy.epochs=6")
    assert r.returncode == 0, r.stdout + r.stderr
    real = {t.number: t.state.name for t in study(tmp_path).trials}
    result = replay(toy_curves(8, 6), pruner, study_name="s")
    replayed = {n: "PRUNED" if ran < 6 else "COMPLETE" for n, ran in result["epochs_run"].items()}
    assert replayed == real and "PRUNED" in real.values()
    assert result["pruned"] == list(real.values()).count("PRUNED")


def test_replay_figures_by_hand():
    """The median pruner (5 start-up trials, 2 warm-up epochs): trial 5 lies below the median at epoch 3."""
    curves = [Curve(i, f"c{i}", (v,) * 4, v, v - 0.25, 10.0) for i, v in enumerate((0.3, 0.4, 0.5, 0.6, 0.7))]
    curves += [Curve(5, "late", (0.1, 0.1, 0.1, 0.9), 0.9, 0.60, 20.0),
               Curve(6, "steady", (0.65,) * 4, 0.65, 0.5, 10.0)]
    result = replay(curves, "median")
    assert result["epochs_run"] == {0: 4, 1: 4, 2: 4, 3: 4, 4: 4, 5: 3, 6: 4} and result["pruned"] == 1
    assert result["compute_fraction"] == pytest.approx((50 + 15 + 10) / 80)
    # the full grid's best by validation is the late starter (0.9, test 0.60); pruned, trial 4 (0.7, test 0.45)
    assert result["full"]["best_trial"] == 5 and result["pruned_sweep"]["best_trial"] == 4
    assert result["f1_gap_points"] == pytest.approx(100 * (0.60 - 0.45))
    assert result["best_so_far"]["full"][-1] == pytest.approx((80.0, 0.60))
    assert result["best_so_far"]["pruned"][-1] == pytest.approx((75.0, 0.45))


def test_curves_come_from_the_recorded_runs(tiny_sweep):
    curves = curves_from_study(tiny_sweep.name, tiny_sweep.storage, tiny_sweep.tracking)
    assert len(curves) == 3
    for c in curves:
        assert len(c.values) == 1 and c.values[0] == pytest.approx(c.objective)  # one epoch each
        assert 0 <= c.test_f1 <= 1 and c.fit_seconds > 0


def test_a_missing_study_is_a_clear_error(tmp_path):
    from sedbench.errors import SedbenchError

    with pytest.raises(SedbenchError, match="optuna.db: no Optuna storage here .*Fix.*--pruning-storage URL"):
        curves_from_study("nope", f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db")
    assert not (tmp_path / "optuna.db").exists()  # a reading command creates no store
    import optuna

    optuna.create_study(study_name="other", storage=f"sqlite:///{tmp_path}/optuna.db")
    with pytest.raises(SedbenchError, match="no sweep named 'nope' in sqlite:///.*Fix: one of: other"):
        curves_from_study("nope", f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db")
