"""`sedbench report` on a sweep still in progress: files, links, CSVs and PNGs."""

import csv
import re

import pytest
from helpers import run_app
from PIL import Image

from sedbench.commands.cli import main
from sedbench.report.common import figure, finish
from sedbench.report.html import Point, Series, svg_plot
from sedbench.report.items import Figure


class ToyFigure(Figure):
    """A figure added to the report by one class: its data, PNG, SVG and Markdown."""

    file, title = "toy_maps.png", "trials per map count (a toy figure)"

    def data(self, ctx):
        counts = {}
        for r in ctx.rows:
            if r.state == "COMPLETE":
                counts[r.params["model.maps"]] = counts.get(r.params["model.maps"], 0) + 1
        return [{"maps": k, "trials": v} for k, v in sorted(counts.items())]

    def png(self, ctx, records, path):
        plt, fig, ax = figure()
        ax.bar([r["maps"] for r in records], [r["trials"] for r in records], label="trials")
        finish(plt, fig, ax, path, "feature maps", "trials (count)", "Trials per map count", {})

    def svg(self, ctx, records):
        return svg_plot([Series("toy", [Point(float(r["maps"]), r["trials"], "tip") for r in records])], "maps",
                        "trials", title="toy svg")

    def markdown(self, ctx, records):
        return "# Toy table\n\n| maps | trials |\n|---|---:|\n" + "".join(
            f"| {r['maps']} | {r['trials']} |\n" for r in records)


def test_report_of_a_sweep_in_progress(tmp_path, capsys, monkeypatch):
    from sedbench.report import write

    items = write.report_items
    monkeypatch.setattr(write, "report_items", lambda: [*items(), ToyFigure()])
    grid = ["model.maps=1,2,3", "model.kernel=[1,5],[5,5]", "data.seq_len=32,64", "sweep.n_trials=8"]
    assert run_app(tmp_path, *grid, name="rep").returncode == 0  # 8 of 12 cells: 4 still waiting
    out = tmp_path / "report"
    assert main(["report", "rep", "--storage", f"sqlite:///{tmp_path}/optuna.db",
                 "--tracking", f"sqlite:///{tmp_path}/mlflow.db", "--out", str(out)]) == 0
    index = (out / "index.md").read_text()
    assert "8 complete" in index and "4 waiting" in index
    for item in ("trials.csv", "params_vs_f1.png", "macs_vs_f1.png", "energy_vs_f1.png", "costs.md", "best.md",
                 "scores.md", "filter_shape.md", "filter_shape.png", "seq_len.png", "importance.png"):
        assert f"]({item})" in index and (out / item).is_file(), item
    assert "](per_class.md)" not in index and "per_class.md: needs runs with class-wise" in index  # toy trials
    costs = (out / "costs.md").read_text()  # the toy's MACs and energies went through Optuna's attributes
    assert "Reference: TOY `" in costs and "the configuration with the best mean validation score" in costs
    assert "Energy method: `toy`" in costs and costs.count(" (reference) |") == 1
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and {r["state"] for r in rows} == {"COMPLETE", "WAITING"}
    done = [r for r in rows if r["state"] == "COMPLETE"]  # each run's costs, from its Optuna attributes
    assert all(float(r["macs_per_10s"]) > 0 and float(r["energy_train_kwh"]) > 0 and r["energy_method"] == "toy"
               for r in done)
    # the failure rule's decision recorded on every completed run (toy runs: one seed a configuration, none fails)
    assert {r["failed_run"] for r in rows if r["state"] == "COMPLETE"} == {"False"}
    import optuna

    assert optuna.load_study(study_name="rep", storage=f"sqlite:///{tmp_path}/optuna.db").user_attrs[
        "failed_runs"] == {}
    for png in ("params_vs_f1", "filter_shape", "seq_len", "importance"):
        with Image.open(out / f"{png}.png") as im:
            assert im.size[0] > 600 and im.size[1] > 400
        assert (out / f"{png}.csv").read_text().count("\n") >= 2  # its data beside it
    scores = (out / "scores.md").read_text()
    assert "| TOY | 1 |" in scores and "F1_frm" in scores
    page = (out / "index.html").read_text()  # the same report as one page (the browser test renders it)
    assert page.count('<svg class="plot"') >= 3 and page.count("<table>") >= 2 and "[index.html](index.html)" in index
    assert all(f'id="item-{item.replace(".", "-").replace("_", "-")}"' in page for item in ("scores.md", "trials.csv"))
    headings = [h.lower() for h in re.findall(r"<h[1-3]>(.*?)</h[1-3]>", page)]
    assert len(headings) == len(set(headings)) and "scores (table ii)" in headings  # each section titled once
    assert not re.search(r"</h[1-3]>\s*<h[1-3]>", page)  # never a heading right above another
    # the toy figure object alone: its CSV, PNG, Markdown, index line, and its section with its own SVG
    assert "- [toy_maps.png](toy_maps.png) and [toy_maps.md](toy_maps.md): trials per map count" in index
    assert (out / "toy_maps.csv").read_text().splitlines()[0] == "maps,trials" and (out / "toy_maps.png").is_file()
    section = page[page.index('id="item-toy-maps-png"'):]
    assert 'aria-label="toy svg"' in section and "<th>maps</th>" in section and "toy_maps.csv" in section


def test_the_png_figures_and_the_html_page_colour_each_family_alike():
    from sedbench.models.families import FAMILIES
    from sedbench.report.common import style
    from sedbench.report.html import color

    for family in FAMILIES:
        assert color(family.upper(), 0) == style(family)[0], family
    assert style("crnn")[0] != style("cnn")[0]
    assert color("(5,5)", 0) not in {f.color for f in FAMILIES.values()}  # other series: colours of their own


def test_markdown_subset_and_plot_axes():
    from sedbench.report.html import Point, Series, markdown, svg_plot

    page = markdown("# T\n\nSome *text* with `code` and [a table](scores.md).\n\n| a | b |\n|---|---:|\n"
                    "| x | 1.0 |\n| y<br>z | <b>2</b> |\n\n- one\n- two")
    assert "<h2>T</h2>" in page and "<em>text</em>" in page and "<code>code</code>" in page
    assert '<a href="#item-scores-md">a table</a>' in page and "<td>x</td><td>1.0</td>" in page
    assert "<li>one</li><li>two</li>" in page and "---" not in page
    assert "<td>y<br>z</td><td>&lt;b&gt;2&lt;/b&gt;</td>" in page  # a cell's line break; other markup stays text
    svg = svg_plot([Series("CRNN", [Point(4688, 20.0, "trial 1", "http://x/run1"), Point(60272, 41.4, "trial 2")])],
                   "parameters", "F1 (%)", log_x=True)
    assert ">10,000<" in svg and ">parameters<" in svg and ">F1 (%)<" in svg and ">CRNN<" in svg
    assert '<a href="http://x/run1" target="_blank">' in svg and "<title>trial 2</title>" in svg


def test_report_of_an_unknown_sweep(tmp_path, capsys):
    """In a folder where no sweep ran: one line saying so and how to start one; nothing created (issue 39). A
    storage without the sweep: one line naming the sweeps it has."""
    import optuna

    assert main(["report", "nope", "--storage", f"sqlite:///{tmp_path}/o.db", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "o.db: no Optuna storage here (no sweep has run with it). Fix: " in err
    assert "`sedbench sweep demo`" in err and list(tmp_path.iterdir()) == []
    optuna.create_study(study_name="demo", storage=f"sqlite:///{tmp_path}/o.db")
    assert main(["report", "nope", "--storage", f"sqlite:///{tmp_path}/o.db", "--out", str(tmp_path / "r")]) == 2
    assert "no sweep named 'nope' in sqlite:///" in capsys.readouterr().err and not (tmp_path / "r").exists()
    (tmp_path / "bad.db").write_text("not a database")
    assert main(["report", "demo", "--storage", f"sqlite:///{tmp_path}/bad.db", "--out", str(tmp_path / "r")]) == 2
    assert "bad.db: not a readable Optuna storage (file is not a database). Fix:" in capsys.readouterr().err


def test_fig4_draws_each_configuration_at_its_mean_with_its_interval(tmp_path):
    """Fig. 4 (params_vs_f1): one row per configuration (seeds pooled): mean, std and 95 % t interval over its
    seeds, its trials; one seed alone has no interval; the page's figure draws the interval as an error bar."""
    import csv

    from sedbench.report.collect import TrialRow
    from sedbench.report.costs import PARAMS, CostVsF1
    from sedbench.report.items import Context

    rows, n = [], 0
    for fam, maps, params, scores in (("crnn", 16, 15248, [0.40, 0.44, 0.42]), ("cnn", 16, 15552, [0.30, 0.34]),
                                      ("rnn", 26, 15668, [0.2])):
        for seed, f1 in enumerate(scores):
            rows.append(TrialRow(n, "COMPLETE", fam, {"model": fam, "model.maps": str(maps), "seed": str(seed)},
                                 {"n_params": params}, {"test/f1_frm": f1}))
            n += 1
    ctx = Context("x", rows, None, tmp_path)
    item = CostVsF1(PARAMS)
    assert set(item.write(ctx)) == {"params_vs_f1.png", "params_vs_f1.csv"}
    table = {r["family"]: r for r in csv.DictReader((tmp_path / "params_vs_f1.csv").open())}
    crnn = table["crnn"]
    assert crnn["trials"] == "3" and float(crnn["mean_test_f1_frm"]) == pytest.approx(0.42)
    assert float(crnn["low"]) < 0.42 < float(crnn["high"]) and crnn["trial_numbers"] == "0 1 2"
    assert float(crnn["high"]) - 0.42 == pytest.approx(4.303 * 0.02 / 3 ** 0.5, rel=1e-3)  # t(2) x s / sqrt(n)
    assert table["rnn"]["low"] == "" and table["rnn"]["trials"] == "1"
    svg = item.svg(ctx, item.records)
    assert "test F1_frm 42.0 % [" in svg and "over 3 seed(s) (trials 0 1 2)" in svg and "over 1 seed(s)" in svg
    assert svg.count('stroke-width="1.5"/>') == 2  # the CRNN's and the CNN's error bars; the lone RNN seed has none


def test_table4_shows_each_shape_beside_its_capacity_control(tmp_path):
    """Table IV (filter_shape): the shapes compared all else equal, and beside them each shape at the maps whose
    parameter count is within 5 % of the (5,5) model's (a shape at other maps that do not match is left out)."""
    import csv

    from sedbench.report.collect import TrialRow
    from sedbench.report.items import Context
    from sedbench.report.write import FilterShape

    rows, n = [], 0
    for kernel, maps, params, f1 in (("[5,5]", 16, 15248, 0.40), ("[1,5]", 16, 4688, 0.30), ("[3,3]", 16, 6800, 0.38),
                                     ("[1,5]", 30, 15496, 0.36), ("[3,3]", 24, 14000, 0.5)):
        for seed in range(3):
            rows.append(TrialRow(n, "COMPLETE", "crnn", {"model.kernel": kernel, "model.maps": str(maps),
                                                         "seed": str(seed)}, {"n_params": params},
                                 {"test/f1_frm": f1 + 0.01 * seed}))
            n += 1
    ctx = Context("x", rows, None, tmp_path)
    item = FilterShape()
    assert "filter_shape.md" in item.write(ctx)
    table = list(csv.DictReader((tmp_path / "filter_shape.csv").open()))
    controls = [r for r in table if r["capacity_control"] == "True"]
    assert [(r["kernel_freq_time"], r["maps"], r["n_params"]) for r in controls] == [("[1,5]", "30", "15496")]
    assert {r["kernel_freq_time"] for r in table if r["capacity_control"] == "False"} == {"[5,5]", "[1,5]", "[3,3]"}
    text = (tmp_path / "filter_shape.md").read_text()
    assert "| filter (freq, time) | CRNN | CRNN at the (5,5) model's parameters |" in text
    assert "| (1,5) | 31.0 ± 1.0 [28.5, 33.5] (n = 3) | 37.0 ± 1.0 [34.5, 39.5] (n = 3; 30 maps, 15,496 parameters) |" \
        in text
    assert "| (3,3) | 39.0 ± 1.0 [36.5, 41.5] (n = 3) | – |" in text  # 24 maps, 14,000: not within 5 %
    assert "CRNN at the (5,5) model&#x27;s parameters" in item.svg(ctx, item.records)


def test_fig4_joins_a_familys_size_series_and_leaves_its_other_configurations_unjoined(tmp_path):
    """sweeps/fig4.yaml's CRNNs: 5, 16 and 28 maps (a series differing only in maps) on the CRNN's line; the
    one-conv-layer CRNN of 46 maps a point of its own, in its own legend entry."""
    import csv

    from sedbench.report.collect import TrialRow
    from sedbench.report.costs import PARAMS, CostVsF1
    from sedbench.report.items import Context

    rows = []
    for params, n_params in (({"model.maps": "5"}, 1696), ({"model.maps": "16"}, 15248),
                             ({"model.maps": "28"}, 45488), ({"model.maps": "46", "model.pool": "[40]"}, 15012)):
        for seed in range(2):
            rows.append(TrialRow(len(rows), "COMPLETE", "crnn", {"model": "crnn", **params, "seed": str(seed)},
                                 {"n_params": n_params}, {"test/f1_frm": 0.4 + 0.01 * seed}))
    ctx = Context("x", rows, None, tmp_path)
    item = CostVsF1(PARAMS)
    item.write(ctx)
    series = {r["n_params"]: r["series"] for r in csv.DictReader((tmp_path / "params_vs_f1.csv").open())}
    assert series == {"1696": "True", "15248": "True", "45488": "True", "15012": "False"}
    svg = item.svg(ctx, item.records)
    assert "CRNN, other configurations" in svg and ">CRNN<" in svg


def _cost_rows():
    """Two CRNN sizes and a CNN, three seeds each, with their MACs and each seed's training energy."""
    from sedbench.report.collect import TrialRow

    rows = []
    for fam, maps, params, macs, kwh, f1 in (("crnn", 8, 4000, 2.0e6, 0.010, 0.40),
                                             ("crnn", 16, 15248, 6.0e6, 0.020, 0.44),
                                             ("cnn", 16, 15552, 9.0e6, 0.040, 0.30)):
        for seed in range(3):
            params_of = {"model": fam, "model.maps": str(maps), "seed": str(seed)}
            attrs = {"n_params": params, "macs_per_10s": macs, "energy_train_kwh": kwh * (1 + 0.1 * seed),
                     "energy_test_kwh": kwh / 10, "energy_method": "cpu time estimate", "peak_rss_gb": 0.5}
            rows.append(TrialRow(len(rows), "COMPLETE", fam, params_of, attrs,
                                 {"test/f1_frm": f1 + 0.01 * seed, "val/f1_frm": f1 + 0.01 * seed}))
    return rows


def test_accuracy_against_macs_and_against_training_energy(tmp_path):
    """F1 against MACs per 10 s (the architecture's: one value per configuration) and against training energy (per
    run: the seeds' mean with its own interval, drawn as a horizontal bar), a line per family through its sizes."""
    import csv

    from sedbench.report.costs import ENERGY, MACS, CostVsF1
    from sedbench.report.items import Context

    ctx = Context("x", _cost_rows(), None, tmp_path)
    macs, energy = CostVsF1(MACS), CostVsF1(ENERGY)
    assert set(macs.write(ctx)) == {"macs_vs_f1.png", "macs_vs_f1.csv"}
    assert set(energy.write(ctx)) == {"energy_vs_f1.png", "energy_vs_f1.csv"}
    by_macs = {r["macs_per_10s"]: r for r in csv.DictReader((tmp_path / "macs_vs_f1.csv").open())}
    assert set(by_macs) == {"2000000", "6000000", "9000000"} and by_macs["6000000"]["trials"] == "3"
    rows = {r["family"] + r["config"]: r for r in csv.DictReader((tmp_path / "energy_vs_f1.csv").open())}
    big = rows["crnnmodel=crnn model.maps=16"]
    assert float(big["energy_train_kwh"]) == pytest.approx(0.022)  # mean of 0.020, 0.022, 0.024
    assert float(big["energy_train_kwh_low"]) < 0.022 < float(big["energy_train_kwh_high"])
    assert Image.open(tmp_path / "energy_vs_f1.png").size[0] > 500
    svg = energy.svg(ctx, energy.records)
    assert "22 Wh training energy (mean over seeds)" in svg and "training energy (log scale)" in svg
    assert "6.0 M MACs per 10 s" in macs.svg(ctx, macs.records)
    rows[next(iter(rows))]["x"] = 1  # records of runs without energy: no figure, the index says why
    bare = [r for r in _cost_rows()]
    for r in bare:
        r.attrs.pop("energy_train_kwh")
    assert CostVsF1(ENERGY).write(Context("x", bare, None, tmp_path / "none")) == []


def test_costs_table_weights_f1_by_the_reference_energy(tmp_path):
    """costs.md: each configuration's costs, and DCASE's energy-weighted F1 = F1 x E_ref / E against the named
    reference; the reference's own weighted score is its F1; a name that matches no configuration is said."""
    from sedbench.report.costs import write_costs
    from sedbench.report.items import Context

    ctx = Context("x", _cost_rows(), None, tmp_path)
    assert write_costs(ctx, "model=crnn model.maps=16") == "costs.md"
    text = (tmp_path / "costs.md").read_text()
    assert "Reference: CRNN `model=crnn model.maps=16`, 22 Wh of training on average: the reference named" in text
    lines = {line.split("|")[2].strip(): line for line in text.splitlines() if line.startswith("| C")}
    cells = lambda key: [c.strip() for c in lines[key].split("|")]  # noqa: E731
    assert cells("`model=crnn model.maps=16`")[-2] == "45.0"  # its own F1: E_ref / E = 1
    assert cells("`model=crnn model.maps=8`")[-2] == f"{100 * 0.41 * 0.022 / 0.011:.1f}"  # half the energy: 2x
    assert cells("`model=cnn model.maps=16`")[-2] == f"{100 * 0.31 * 0.022 / 0.044:.1f}"
    assert cells("`model=crnn model.maps=16`")[4:6] == ["15,248", "6.00 M"]
    assert "Energy method: `cpu time estimate`" in text
    assert "Seeds trained together" not in text
    fused = _cost_rows()
    fused[0].attrs["fused_group"] = "g"
    write_costs(Context("x", fused, None, tmp_path), "model=cnn")
    assert "Seeds trained together (`sweep.fuse`) share their group's training energy" in \
        (tmp_path / "costs.md").read_text()
    write_costs(ctx, "model=rnn")
    assert "No energy-weighted score: the energy reference `model=rnn` matches no configuration" in \
        (tmp_path / "costs.md").read_text()
    write_costs(ctx, "model=crnn")
    assert "matches 2 configurations" in (tmp_path / "costs.md").read_text()
    write_costs(ctx)  # none named: the best by validation score (the 16-map CRNN)
    assert "Reference: CRNN `model=crnn model.maps=16`" in (tmp_path / "costs.md").read_text()
    study = type("Study", (), {"user_attrs": {"energy_reference": "model=cnn"}})()  # the sweep's setting
    write_costs(Context("x", _cost_rows(), study, tmp_path))
    assert "Reference: CNN `model=cnn model.maps=16`, 44 Wh of training on average: the reference named" in \
        (tmp_path / "costs.md").read_text()
