"""What produced a run: code state, library versions, dataset fingerprint; sweeps that mark trials run on other
code; the report, status, claims and compare that say so, and refuse a verdict across two copies of a dataset."""

import csv
import json
import subprocess

import pytest
from helpers import load_study, run_app, tiny_folder_dataset

from sedbench.commands.cli import main
from sedbench.metrics.segment import FILE_COUNTS
from sedbench.provenance import code, code_id, differences, libraries

GIT = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]


def checkout(root):
    """A git checkout with one tracked file, committed."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run([*GIT, "init", "-q", str(root)], check=True)
    (root / "code.py").write_text("x = 1\n")
    subprocess.run([*GIT, "-C", str(root), "add", "code.py"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-q", "-m", "first"], check=True)
    return root


def test_the_code_state_commit_dirty_and_its_diff(tmp_path):
    root = checkout(tmp_path / "repo")
    clean = code(root)
    assert clean["checkout"] and len(clean["commit"]) == 40 and clean["dirty"] is False and clean["changed"] == []
    (root / "code.py").write_text("x = 2\n")
    (root / "untracked.txt").write_text("not code\n")   # untracked files are not the code
    dirty = code(root)
    assert dirty["commit"] == clean["commit"] and dirty["dirty"] and dirty["changed"] == ["code.py"]
    (root / "code.py").write_text("x = 3\n")
    again = code(root)
    assert again["diff"] != dirty["diff"] and code_id(again) != code_id(dirty) != code_id(clean)
    assert code_id(clean) == clean["commit"][:7] and code_id(dirty).startswith(clean["commit"][:7] + "+")
    (root / "site-packages").mkdir()   # a package installed inside another project's checkout is not its code
    assert code(root / "site-packages")["checkout"] is False
    outside = code(tmp_path / "not-a-checkout")
    assert outside == {"checkout": False, "commit": None, "dirty": None, "changed": [], "diff": None}
    assert code_id(outside) == "no checkout"


def test_library_versions_and_what_differs():
    libs = libraries()
    assert libs["python"].count(".") == 2 and libs["torch"] != "missing" and libs["sed_eval"] != "missing"
    start = {"code": {"checkout": True, "commit": "a" * 40, "dirty": False}, "libraries": libs,
             "datasets": ["sha256:1"]}
    same = {"code": start["code"], "libraries": libs, "dataset": {"fingerprint": "sha256:1"}}
    assert differences(start, same) == []
    other = {"code": {**start["code"], "dirty": True, "diff": "abc"}, "libraries": {**libs, "optuna": "0"},
             "dataset": {"fingerprint": "sha256:2"}}
    assert differences(start, other) == ["code", "libraries", "dataset"]
    assert differences(None, other) == []


def test_the_dataset_fingerprint_follows_content_and_labels_and_is_read_once(tmp_path):
    from sedbench.data.dataset import read_folder
    from sedbench.data.features import FeatureCache
    from sedbench.data.fingerprint import dataset_fingerprint

    root = tiny_folder_dataset(tmp_path / "data")
    cache = FeatureCache(tmp_path / "cache")
    first = dataset_fingerprint(read_folder(root), cache=cache)
    assert first.startswith("sha256:") and first == dataset_fingerprint(read_folder(root), cache=cache)
    memos = list((tmp_path / "cache" / "files").rglob("*"))
    assert len([m for m in memos if m.is_file()]) == 3   # one content hash per audio file, kept
    tsv = root / "metadata" / "test.tsv"
    tsv.write_text(tsv.read_text().replace("0.6", "0.7"))   # a relabelled event
    relabelled = dataset_fingerprint(read_folder(root), cache=cache)
    assert relabelled != first
    wav = root / "audio" / "test" / "test.wav"
    data = bytearray(wav.read_bytes())
    data[-1] ^= 1                                            # one sample changed, same size
    wav.write_bytes(bytes(data))
    assert dataset_fingerprint(read_folder(root), cache=cache) != relabelled


@pytest.mark.xdist_group("sweeps")
def test_a_trial_after_the_code_changed_is_marked_and_shown(tmp_path, monkeypatch, capsys):
    """Two trials, one after the other; the first changes a tracked file of the code's checkout when it is done.
    The second ran on other code than the sweep started with: its attribute, its console line, `sedbench status`
    and the report say so."""
    root = checkout(tmp_path / "repo")
    monkeypatch.setenv("SEDBENCH_CODE_ROOT", str(root))
    done = run_app(tmp_path, "model.maps=1,2", "+toy.provenance=true", f"+toy.touch={root}/code.py", name="prov")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    study = load_study(tmp_path, "prov")
    start = study.user_attrs["provenance"]
    assert start["code"]["commit"] == code(root)["commit"] and not start["code"]["dirty"]
    assert start["libraries"] == libraries() and len(start["datasets"]) == 1
    first, second = sorted(study.trials, key=lambda t: t.number)
    assert first.user_attrs["provenance_differs"] == [] and second.user_attrs["provenance_differs"] == ["code"]
    assert second.user_attrs["provenance"]["code"]["changed"] == ["code.py"]
    assert first.user_attrs["provenance"]["dataset"]["fingerprint"] == start["datasets"][0]
    assert "ran on other code (!)" in done.stdout + done.stderr
    storage = f"sqlite:///{tmp_path}/optuna.db"
    assert main(["status", "prov", "--storage", storage]) == 0
    status = capsys.readouterr().out
    assert f"other    trial {second.number}" in status and "ran on other code" in status
    assert f"started on code {code_id(start['code'])}" in status
    out = tmp_path / "report"
    assert main(["report", "prov", "--storage", storage, "--tracking", f"sqlite:///{tmp_path}/mlflow.db",
                 "--out", str(out)]) == 0
    index = (out / "index.md").read_text()
    assert f"code `{code_id(start['code'])}` (1 runs)" in index and "tiny " + start["datasets"][0] in index
    assert f"⚠ trial {second.number} (code) ran on other code" in index
    assert f"torch {libraries()['torch']}" in index and "\n\nLibraries: " in index


def _run_folder(path, hits: int, fingerprint: str, **versions):
    path.mkdir(parents=True)
    with open(path / "file_counts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "resolution", *FILE_COUNTS])
        w.writerows([f"f{i}.wav", "frm", *((1, 1, 1, 0, 0, 0) if i < hits else (0, 1, 1, 1, 0, 0))]
                    for i in range(20))
    (path / "metrics.json").write_text(json.dumps({"provenance": {
        "code": {"checkout": True, "commit": "c" * 40, "dirty": False}, "libraries": {**libraries(), **versions},
        "dataset": {"name": "synth", "fingerprint": fingerprint}}}))
    return str(path)


def test_compare_refuses_a_verdict_across_two_copies_of_a_dataset(tmp_path, capsys):
    a = [_run_folder(tmp_path / f"a{i}", h, "sha256:aaaa") for i, h in enumerate((16, 17, 15))]
    b = [_run_folder(tmp_path / f"b{i}", h, "sha256:bbbb") for i, h in enumerate((10, 11, 9))]
    assert main(["compare", *a, "--vs", *b]) == 0
    text = capsys.readouterr().out
    assert "conclusion: no verdict: the runs read different copies of the dataset (fingerprints A: sha256:aaaa; " \
           "B: sha256:bbbb)" in text and "note: the runs differ in dataset" in text
    assert "difference A - B: +30.0 points" in text                       # the numbers are still shown
    assert main(["compare", *a, "--vs", *b, "--allow-mixed"]) == 0
    assert "conclusion: A is better on F1" in capsys.readouterr().out
    same = [_run_folder(tmp_path / f"c{i}", h, "sha256:aaaa") for i, h in enumerate((10, 11, 9))]
    assert main(["compare", *a, "--vs", *same, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mixed"] == {}
    newer = [_run_folder(tmp_path / f"d{i}", h, "sha256:aaaa", optuna="9.9") for i, h in enumerate((10, 11, 9))]
    assert main(["compare", *a, "--vs", *newer]) == 0
    text = capsys.readouterr().out
    assert f"note: the runs differ in libraries (A: optuna {libraries()['optuna']}; B: optuna 9.9)" in text
    assert "conclusion: A is better on F1" in text


def test_claims_across_two_copies_of_a_dataset_get_no_verdict_unless_asked(tmp_path):
    from test_claims_report import claims_table, make_rows

    from sedbench.report.rounds import write_sweep_claims

    rows, fetch = make_rows(tmp_path)
    for r in rows:
        r.attrs["provenance"] = {"code": {"checkout": True, "commit": "c" * 40, "dirty": False},
                                 "dataset": {"fingerprint": "sha256:2" if r.family == "cnn" else "sha256:1"}}
    write_sweep_claims(rows, tmp_path, fetch)
    primary = claims_table(tmp_path)["CRNN beats CNN and RNN at matched parameter counts"]
    assert "**no verdict**" in primary
    assert "read different copies of the dataset (sha256:1, sha256:2)" in (tmp_path / "claims.md").read_text()
    write_sweep_claims(rows, tmp_path, fetch, allow_mixed=True)
    primary = claims_table(tmp_path)["CRNN beats CNN and RNN at matched parameter counts"]
    assert "**holds**" in primary
    rows[0].attrs["provenance"]["code"] = {"checkout": True, "commit": "d" * 40, "dirty": False}
    for r in rows:
        r.attrs["provenance"]["dataset"] = {"fingerprint": "sha256:1"}
    write_sweep_claims(rows, tmp_path, fetch)
    primary = claims_table(tmp_path)["CRNN beats CNN and RNN at matched parameter counts"]
    assert "**holds**" in primary and "⚠ code: 2 versions among the compared runs" in primary
