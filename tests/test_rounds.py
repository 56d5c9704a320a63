"""The studies of issue 38: Table IV's and Fig. 4's declared claims, and seeds added in rounds (which claims each
look decides, which configurations get more seeds), on sweeps made up by hand."""

import pytest
from helpers import write_file_counts

from sedbench.report.claims import FIG4, TABLE4, claim_set, evaluate_claims, run_readers
from sedbench.report.collect import TrialRow
from sedbench.report.rounds import config_of, first_seeds, replay, study_claims
from sedbench.stats import look_levels


def made_up(tmp_path, plan: dict, seeds=3):
    """Rows of a sweep: ``plan`` maps a configuration's parameters (a tuple of key=value) to (parameters count,
    files hit of 20); each seed hits one file more or fewer than the one before (seed noise)."""
    rows, files = [], {}
    for params, (n_params, hits) in plan.items():
        for seed in range(seeds if isinstance(seeds, int) else seeds[params]):
            n = len(rows)
            k = min(20, max(0, hits + (-1) ** seed * (seed % 2)))
            path = tmp_path / f"run{n}.csv"
            write_file_counts(path, k)
            files[f"run{n}"] = path
            p = dict(kv.split("=", 1) for kv in params) | {"seed": str(seed)}
            rows.append(TrialRow(n, "COMPLETE", p["model"], p, {"mlflow_run_id": f"run{n}", "n_params": n_params},
                                 metrics={"val/f1_frm": k / 20, "test/f1_frm": k / 20}))
    return rows, run_readers(lambda run_id, path: files.get(run_id) if path == "file_counts.csv" else None)


def fig4_plan(crnn=16, deep_wide=16, others=(6, 5, 8, 8)):
    """Two sizes of Fig. 4 (parameter counts of sweeps/fig4.yaml), the CRNN hitting ``crnn`` files at both, the
    CNN and RNN ``others``; and the one-layer CRNN at ~15k hitting ``deep_wide`` files."""
    cnn1, rnn1, cnn2, rnn2 = others
    return {("model=crnn", "model.maps=5"): (1696, crnn), ("model=cnn", "model.maps=5"): (1736, cnn1),
            ("model=rnn", "model.maps=6"): (1588, rnn1), ("model=crnn", "model.maps=16"): (15248, crnn),
            ("model=cnn", "model.maps=16"): (15552, cnn2), ("model=rnn", "model.maps=26"): (15668, rnn2),
            ("model=crnn", "model.maps=46", "model.pool=[40]"): (15012, deep_wide)}


def by_name(results):
    return {r.claim.name: r for r in results}


def test_fig4_decides_each_size_and_depth_against_width_two_sided(tmp_path):
    rows, readers = made_up(tmp_path, fig4_plan(crnn=16, deep_wide=8))
    results = by_name(evaluate_claims(rows, **readers, claims=FIG4))
    primary = results["CRNN beats CNN and RNN at every size"]
    assert primary.verdict == "holds"
    assert [t.label for t in primary.tests] == ["at 1.7k: CRNN − CNN", "at 1.7k: CRNN − RNN",
                                                "at 15k: CRNN − CNN", "at 15k: CRNN − RNN"]
    depth = results["CRNNs of equal parameter count but different depth and width differ"]
    assert depth.verdict == "holds" and depth.tests[0].two_sided  # the one-layer CRNN is 8 files worse
    assert depth.tests[0].comparison.difference < 0 and depth.tests[0].label.startswith("pool (40), 46 maps − 16")
    rows, readers = made_up(tmp_path, fig4_plan(crnn=16, deep_wide=16))
    depth = by_name(evaluate_claims(rows, **readers, claims=FIG4))[depth.claim.name]
    assert depth.verdict == "inconclusive"  # equal: "differ" is not shown, and two-sided it is never contradicted


def test_fig4_leaves_out_a_size_without_a_match_within_15_percent(tmp_path):
    plan = fig4_plan()
    plan[("model=rnn", "model.maps=6")] = (2400, 5)  # 41 % more than the 1.7k CRNN
    rows, readers = made_up(tmp_path, plan)
    primary = by_name(evaluate_claims(rows, **readers, claims=FIG4))["CRNN beats CNN and RNN at every size"]
    assert primary.todo.startswith("needs CRNN, CNN and RNN configurations at two or more sizes")


def table4_plan():
    shapes = {"[5,5]": (15248, 20), "[1,5]": (4688, 0), "[5,1]": (4688, 12), "[3,3]": (6800, 12)}
    plan = {("model=crnn", "model.maps=16", f"model.kernel={k}"): v for k, v in shapes.items()}
    plan[("model=crnn", "model.maps=30", "model.kernel=[1,5]")] = (15496, 6)     # capacity controls
    plan[("model=crnn", "model.maps=24", "model.kernel=[3,3]")] = (14800, 17)
    plan[("model=crnn", "model.maps=8", "model.kernel=[3,3]")] = (2000, 10)      # not a control: 87 % fewer
    return plan


def test_table4_claims_and_the_capacity_control(tmp_path):
    rows, readers = made_up(tmp_path, table4_plan())
    results = by_name(evaluate_claims(rows, **readers, claims=TABLE4))
    assert results["CRNN: filter shape (1,5) is the worst"].verdict == "holds"
    assert results["CRNN: filter shape (5,5) is among the best"].verdict == "holds"
    three = results["CRNN: filter shape (3,3) is among the best"]  # (5,5) is 8 files ahead: below the margin at
    assert three.tests[0].comparison.high < -0.02 and three.verdict == "inconclusive"  # 95 %, not at Holm's level
    matched = results["CRNN: (1,5) is the worst at matched parameter counts"]
    assert [t.label for t in matched.tests] == ["(3,3) at 14,800 − (1,5) at 15,496 params",
                                                "(5,5) at 15,248 − (1,5) at 15,496 params"]
    assert matched.verdict == "holds"


def test_an_unknown_claim_set_is_one_clear_error():
    from sedbench.errors import ConfigError

    assert claim_set("fig4") is FIG4
    with pytest.raises(ConfigError, match="sweep.claims=fig5: no such set of claims. Fix: one of claims, table4"):
        claim_set("fig5")


def test_first_seeds_are_each_configurations_smallest():
    rows = [TrialRow(i, "COMPLETE", "crnn", {"model": "crnn", "seed": str(s)}, {}) for i, s in enumerate([4, 0, 2, 1])]
    assert sorted(int(r.params["seed"]) for r in first_seeds(rows, 3)) == [0, 1, 2]
    assert config_of({"model.kernel": "[5, 5]", "seed": "3", "model": "crnn"}) == "model=crnn model.kernel=[5,5]"


def test_a_clear_study_is_decided_at_its_first_look_and_stops(tmp_path):
    rows, readers = made_up(tmp_path, fig4_plan(crnn=20, deep_wide=0, others=(0, 0, 0, 0)), seeds=3)
    state = replay(rows, FIG4, readers, [3, 5, 8], "obrien_fleming")
    assert state.done and state.looks_taken == 1
    assert [r.verdict for r in state.results] == ["holds", "holds"]
    assert all(r.look == (1, 3, 3) and r.level == pytest.approx(look_levels([3, 5, 8], kind="obrien_fleming")[0])
               for r in state.results)
    assert set(state.wanted.values()) == {3} and state.describe() == "rounds: done after look 1 of 3"


def test_undecided_claims_get_the_next_rounds_seeds_and_decided_ones_keep_their_verdict(tmp_path):
    """The primary claim holds at look 1; the depth-against-width claim (equal CRNNs) stays open, so only its two
    configurations grow to 5 seeds and then 8; at the last look it is inconclusive and the study is done."""
    plan = fig4_plan(crnn=20, deep_wide=20, others=(0, 0, 0, 0))
    deep, wide = ("model=crnn", "model.maps=16"), ("model=crnn", "model.maps=46", "model.pool=[40]")
    expected = {config_of(dict(kv.split("=", 1) for kv in p)) for p in plan}
    rows, readers = made_up(tmp_path, plan, seeds=3)
    state = replay(rows, FIG4, readers, [3, 5, 8], "obrien_fleming", expected=expected)
    assert not state.done and state.looks_taken == 1 and state.describe() == "round 2 of 3: 5 seeds for 2 " \
        "configurations (after look 1)"
    grow = {config_of(dict(kv.split("=", 1) for kv in p)) for p in (deep, wide)}
    assert {c for c, n in state.wanted.items() if n == 5} == grow and len(state.wanted) == 7
    primary, depth = state.results
    assert primary.verdict == "holds" and primary.look == (1, 3, 3)
    assert depth.verdict == "inconclusive" and depth.look == (1, 3, 3)
    seeds = {p: (8 if p in (deep, wide) else 3) for p in plan}
    rows, readers = made_up(tmp_path, plan, seeds=seeds)
    state = replay(rows, FIG4, readers, [3, 5, 8], "obrien_fleming", expected=expected)
    assert state.done and state.looks_taken == 3
    assert state.results[0].look == (1, 3, 3) and state.results[1].look == (3, 3, 8)
    assert state.results[1].verdict == "inconclusive"
    assert state.results[1].tests[0].comparison.n_seeds == (8, 8)


def test_a_round_still_training_is_not_looked_at(tmp_path):
    """A configuration missing seeds of the running round: no look at it yet; the report shows the last look."""
    plan = fig4_plan(crnn=18, deep_wide=18)
    seeds = {p: 3 for p in plan} | {("model=crnn", "model.maps=16"): 4, ("model=crnn", "model.maps=46",
                                                                        "model.pool=[40]"): 5}
    rows, readers = made_up(tmp_path, plan, seeds=seeds)
    state = replay(rows, FIG4, readers, [3, 5, 8], "obrien_fleming")
    assert state.looks_taken == 1 and not state.done and state.results[1].look == (1, 3, 3)


def test_the_report_decides_as_the_study_declared(tmp_path):
    rows, _ = made_up(tmp_path, fig4_plan(crnn=20, deep_wide=0, others=(0, 0, 0, 0)))
    fetch = lambda run_id, path: tmp_path / f"{run_id}.csv" if path == "file_counts.csv" else None  # noqa: E731
    results, notes = study_claims(rows, {"claims": "fig4", "rounds": {"seeds": [3, 5, 8],
                                                                     "spending": "obrien_fleming"}}, fetch)
    assert [r.look for r in results] == [(1, 3, 3), (1, 3, 3)] and "Seeds added in rounds" in notes[0]
    results, notes = study_claims(rows, {"claims": "fig4"}, fetch)
    assert notes == [] and all(r.look is None and r.level == 0.95 for r in results[:1])
