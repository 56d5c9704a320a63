"""claims.md: verdicts from per-file counts of the trials, on a sweep made up by hand."""

import csv

from sedbench.metrics.segment import FILE_COUNTS
from sedbench.report.claims import write_claims
from sedbench.report.collect import TrialRow

HIT, MISS = (1, 1, 1, 0, 0, 0), (0, 1, 1, 1, 0, 0)


def make_rows(tmp_path, plan=None):
    """CRNN clearly beats CNN (18 of 20 files against 2), CNN and RNN score alike with seed noise; the CRNN's
    (1,5) filter is the worst; every run has its file_counts.csv. ``plan``: {(family, kernel[, maps]): hits}."""
    plan = plan or {("crnn", "[5,5]"): 18, ("crnn", "[1,5]"): 4, ("crnn", "[5,1]"): 12, ("cnn", "[5,5]"): 2,
                    ("rnn", "[5,5]"): 2}
    rows, files = [], {}
    for (fam, kernel, *maps), hits in plan.items():
        for seed in range(3):
            n = len(rows)
            k = hits + (seed if fam == "rnn" else 0)  # the RNN's seeds differ
            counts = [HIT] * k + [MISS] * (20 - k)
            path = tmp_path / f"run{n}.csv"
            with open(path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["file", "resolution", *FILE_COUNTS])
                w.writerows([f"f{i}.wav", "frm", *c] for i, c in enumerate(counts))
            files[f"run{n}"] = path
            f1 = sum(c[0] for c in counts) / 20
            params = {"model": fam, "model.kernel": kernel, "seed": str(seed)}
            if maps:
                params["model.maps"] = maps[0]
            rows.append(TrialRow(n, "COMPLETE", fam, params,
                                 {"mlflow_run_id": f"run{n}", "n_params": 1000},
                                 metrics={"val/f1_frm": f1, "test/f1_frm": f1}))
    return rows, lambda run_id, path: files.get(run_id) if path == "file_counts.csv" else None


def test_claims_get_verdicts_with_intervals(tmp_path):
    rows, fetch = make_rows(tmp_path)
    assert write_claims(rows, tmp_path, fetch) == "claims.md"
    table = {line.split(" | ")[0].strip("| "): line for line in (tmp_path / "claims.md").read_text().splitlines()
             if line.startswith("| ")}
    assert "**holds** | +80.0 [" in table["CRNN beats CNN"]
    assert "**holds**" in table["CRNN: filter shape (1,5) is the worst"]
    assert "**holds**" in table["CRNN: filter shape (5,5) is among the best"]
    assert "**not tested**" in table["CNN: filter shape (1,5) is the worst"]  # the CNN never varied its kernel
    text = (tmp_path / "claims.md").read_text()
    assert "CRNN gains from sequences longer than 128 frames: needs CRNN trials at data.seq_len=128" in text
    assert "CRNN loses less F1 under pitch shift than RNN: needs the pitch-shifted scores" in text


def test_a_reversed_claim_is_contradicted_and_missing_counts_say_so(tmp_path):
    rows, fetch = make_rows(tmp_path)
    for r in rows:  # swap the families: now the "CRNN" loses clearly
        r.family = {"crnn": "cnn", "cnn": "crnn"}.get(r.family, r.family)
    write_claims(rows, tmp_path, fetch)
    assert "| CRNN beats CNN | Cakir et al. 2017, Fig. 4 and Table II | **contradicted** |" in \
        (tmp_path / "claims.md").read_text()
    write_claims(rows, tmp_path, lambda run_id, path: None)
    assert "no file_counts.csv artifact" in (tmp_path / "claims.md").read_text()


def test_pitch_shift_claims_from_shifted_counts(tmp_path):
    """The CRNN keeps its hits under every shift, the RNN loses half of its files, the CNN as much as the RNN."""
    rows, fetch = make_rows(tmp_path)
    text = (tmp_path / "claims.md")
    write_claims(rows, tmp_path, fetch)
    assert "`sedbench evaluate --sweep NAME --pitch-shift=-2,-1,1,2`" in text.read_text()  # none evaluated yet
    shifted = {}
    for r in rows:
        base = [HIT] * 10 + [MISS] * 10
        lost = base if r.family == "crnn" else [MISS] * 5 + [HIT] * 5 + [MISS] * 10
        path = tmp_path / f"shift{r.number}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "resolution", *FILE_COUNTS])
            for q, counts in ((0, base), (-1, lost), (1, lost)):
                w.writerows([f"f{i}.wav", f"frm@{q:+d}", *c] for i, c in enumerate(counts))
        shifted[r.attrs["mlflow_run_id"]] = path

    def fetch_both(run_id, path):
        return shifted.get(run_id) if path == "pitch_shift_counts.csv" else fetch(run_id, path)

    write_claims(rows, tmp_path, fetch_both)
    table = {line.split(" | ")[0].strip("| "): line for line in text.read_text().splitlines() if line.startswith("| ")}
    # F1 unshifted 10/20 -> 2*10/(20+20) = 0.5; the RNN's shifted F1 2*5/40 = 0.25: change -0.25 against 0
    assert "**holds** | +25.0 [" in table["CRNN loses less F1 under pitch shift than RNN"]
    assert "**inconclusive** | +0.0 [+0.0, +0.0]" in table["CNN loses less F1 under pitch shift than RNN"]


def test_filter_shapes_are_compared_all_else_equal(tmp_path):
    """A larger (5,5) CRNN scores best overall; the filter-shape claims compare the shapes at the size where they
    were varied, not the larger model against the small (3,3) one."""
    plan = {("crnn", "[5,5]", "16"): 10, ("crnn", "[1,5]", "16"): 4, ("crnn", "[3,3]", "16"): 16,
            ("crnn", "[5,5]", "32"): 19, ("rnn", "[5,5]", "16"): 2}
    rows, fetch = make_rows(tmp_path, plan)
    write_claims(rows, tmp_path, fetch)
    table = {line.split(" | ")[0].strip("| "): line for line in (tmp_path / "claims.md").read_text().splitlines()
             if line.startswith("| ")}
    among = table["CRNN: filter shape (5,5) is among the best"]
    assert "**contradicted**" in among and "model.maps=32" not in among  # (3,3) beats (5,5) at 16 maps
    assert "**holds**" in table["CRNN: filter shape (1,5) is the worst"]
    assert "model.maps=32" in table["CRNN beats RNN"]  # the family claim takes each family's best configuration
