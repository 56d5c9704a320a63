import csv
import hashlib
import json
import os
import time

import numpy as np
import pytest

from sedbench.commands.cli import main
from sedbench.data.dataset import read_folder
from sedbench.data.info import format_info, split_stats
from sedbench.data.mix import MixtureRecipe, detect_activity, write_mixture_dataset
from sedbench.data.synth import CLASSES, LABELS, SynthBank, split_instances
from sedbench.errors import DataError


def test_generate_then_info_16_classes_3_splits_polyphony(synth_dir, capsys):
    assert main(["data", "info", str(synth_dir)]) == 0
    out = capsys.readouterr().out
    assert "classes: 16" in out and "splits: 3 (train, validation, test)" in out
    ds = read_folder(synth_dir)
    assert ds.classes == LABELS and ds.sample_rate == 16000
    for split in ("train", "validation", "test"):
        st = split_stats(ds, split)
        assert st.mean_polyphony > 1.5, (split, st.mean_polyphony)
        assert st.max_polyphony >= 2
    # every class occurs in the training split
    assert all(n > 0 for n in split_stats(ds, "train").events.values())
    assert "mean poly" in format_info(ds)


def test_split_sizes_follow_60_20_20(synth_dir):
    ds = read_folder(synth_dir)
    hours = {s: split_stats(ds, s).hours for s in ds.splits}
    assert hours["train"] == pytest.approx(3 / 60, rel=0.01)
    assert hours["validation"] == pytest.approx(1 / 60, rel=0.01) and hours["test"] == pytest.approx(1 / 60, rel=0.01)


def _sources(root):
    with open(root / "metadata" / "sources.tsv") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_instances_disjoint_across_splits(synth_dir):
    rows = _sources(synth_dir)
    per_split = {s: {r["source"] for r in rows if r["split"] == s} for s in ("train", "validation", "test")}
    assert all(per_split.values())
    assert not (per_split["train"] & per_split["validation"] or per_split["train"] & per_split["test"]
                or per_split["validation"] & per_split["test"])
    assert all(r["source"].startswith(r["split"] + "/") for r in rows)


def test_labels_come_from_energy_not_placement(synth_dir):
    """Impulsive segments are placed for 3-15 s but annotated only where they sound."""
    rows = _sources(synth_dir)
    ds = read_folder(synth_dir)
    placed = sum(float(r["offset"]) - float(r["onset"]) for r in rows if r["event_label"] == "glass smash")
    annotated = sum(e.duration for split in ds.splits for rec in ds.recordings(split)
                    for e in rec.events if e.label == "glass smash")
    assert 0 < annotated < 0.6 * placed


def _digest(root):
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    args = ["--minutes-train", "0.75", "--minutes-validation", "0.25", "--minutes-test", "0.25",
            "--mixture-seconds", "15", "--sample-rate", "8000", "--quiet"]
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert main(["data", "generate", "synth", "--out", str(tmp_path / name), "--seed", seed, *args]) == 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_class_durations_mirror_table_iii():
    """Average annotated durations: within a factor 2 of Table III, and ranked alike."""
    sr, rng = 16000, np.random.default_rng(0)
    bank = SynthBank(0, sr, split_instances(10))
    ours = []
    for c in CLASSES:
        durs = []
        for k in range(10):
            y, _ = bank.segment("train", c.label, f"train/{c.label}/{k % 6:03d}", rng, rng.uniform(3, 15))
            durs += [b - a for a, b in detect_activity(y, sr)]
        ours.append(np.mean(durs))
        assert c.paper_avg_seconds / 2 < ours[-1] < c.paper_avg_seconds * 2, (c.label, ours[-1])
    paper = [c.paper_avg_seconds for c in CLASSES]
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(ours), rank(paper))[0, 1] > 0.7


def test_confusable_pairs_share_pitch_ranges():
    """Cat meowing and baby crying overlap in f0 (the paper's worst confusion)."""
    rng = np.random.default_rng(1)
    cat = [CLASSES[LABELS.index("cat meowing")].draw(rng)["f0"] for _ in range(200)]
    baby = [CLASSES[LABELS.index("baby crying")].draw(rng)["f0"] for _ in range(200)]
    assert max(min(cat), min(baby)) < min(max(cat), max(baby))


def test_activity_detection_bridges_short_gaps_only():
    sr = 8000
    y = np.zeros(sr * 4, np.float32)
    y[0:sr // 2] = 0.5            # 0.0-0.5 s
    y[int(0.8 * sr):sr] = 0.5     # gap 0.3 s: bridged
    y[int(2.0 * sr):int(2.5 * sr)] = 0.5  # gap 1.0 s: a new event
    assert detect_activity(y, sr, min_gap=0.5) == [(0.0, 1.0), (2.0, 2.5)]


def test_refuses_to_overwrite_and_failure_leaves_output_intact(tmp_path, capsys):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(["data", "generate", "synth", "--out", str(out), "--minutes-train", "0.3", "--quiet"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err and (out / "keep.txt").read_text() == "precious"

    class Exploding(SynthBank):
        def segment(self, *a, **k):
            raise RuntimeError("boom")

    bank = Exploding(0, 8000, split_instances(3))
    with pytest.raises(RuntimeError):
        write_mixture_dataset(out, "synth", bank, MixtureRecipe(mixture_seconds=10), {"train": 0.2, "validation": 0.1,
                              "test": 0.1}, 8000, 0, overwrite=True, progress=False)
    assert (out / "keep.txt").read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == ["existing"]


def test_bad_minutes_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "generate", "synth", "--out", str(tmp_path / "x"), "--minutes-train", "0"]) == 2
    assert "argument --minutes-train: 0 is out of range: must be greater than 0" in capsys.readouterr().err


def test_no_instances_is_a_clear_error():
    class Empty(SynthBank):
        def instances(self, split):
            return {}

    from sedbench.data.mix import compose_mixture

    with pytest.raises(DataError, match="no source instances"):
        compose_mixture(Empty(0, 8000, split_instances(3)), "train", MixtureRecipe(), 5.0, 8000,
                        np.random.default_rng(0))


def test_paper_size_is_100_mixtures_566_minutes(tmp_path, monkeypatch):
    """--paper-size asks for the paper's 100 mixtures, 566 min, 60/20/20 (not generated here: 3 GB)."""
    import sedbench.data.mix as mix

    seen = {}

    def capture(out, name, bank, recipe, minutes, sr, seed, **kw):
        seen.update(recipe=recipe, minutes=minutes, bank=bank, sr=sr)
        return out

    monkeypatch.setattr(mix, "write_mixture_dataset", capture)
    assert main(["data", "generate", "synth", "--out", str(tmp_path / "p"), "--paper-size", "--quiet"]) == 0
    total = sum(seen["minutes"].values())
    n_mix = sum(round(m * 60 / seen["recipe"].mixture_seconds) for m in seen["minutes"].values())
    assert total == pytest.approx(566.0) and n_mix == 100 and seen["sr"] == 44100
    assert seen["minutes"]["train"] == pytest.approx(0.6 * 566)
    assert sum(seen["bank"].n_inst.values()) == 62


SMALL = {"seed": 5, "minutes_train": 0.3, "mixture_seconds": 9, "sample_rate": 8000, "instances_per_class": 3}


def data_cfg(root) -> dict:
    return {"name": "synth", "root": str(root), "generate": dict(SMALL)}


def test_the_embedded_dataset_appears_by_itself_in_the_data_home(tmp_path, monkeypatch, caplog):
    from sedbench.data.layouts import dataset_from_config

    monkeypatch.setenv("SEDBENCH_DATA", str(tmp_path / "home"))
    with caplog.at_level("WARNING", logger="sedbench"):
        ds = dataset_from_config(data_cfg(tmp_path / "home" / "synth"))
    assert ds.classes == LABELS and len(ds.recordings("test")) >= 1
    assert f"{tmp_path / 'home' / 'synth'} not found: generating the embedded synth dataset there" in caplog.text
    # the same files as `sedbench data generate synth` with the same arguments
    assert main(["data", "generate", "synth", "--out", str(tmp_path / "cli"), "--seed", "5", "--minutes-train", "0.3",
                 "--mixture-seconds", "9", "--sample-rate", "8000", "--instances-per-class", "3", "--quiet"]) == 0
    assert _digest(tmp_path / "home" / "synth") == _digest(tmp_path / "cli")
    caplog.clear()
    dataset_from_config(data_cfg(tmp_path / "home" / "synth"))  # second use: read, not generated again
    assert "generating" not in caplog.text
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == [".synth.lock", "synth"]  # no staging left


def test_a_root_outside_the_data_home_is_never_generated(tmp_path, monkeypatch):
    from sedbench.data.layouts import dataset_from_config

    monkeypatch.setenv("SEDBENCH_DATA", str(tmp_path / "home"))
    with pytest.raises(DataError, match=r"elsewhere: dataset folder not found\. Fix: create it with `sedbench data "
                                        r"generate synth --out"):
        dataset_from_config(data_cfg(tmp_path / "elsewhere"))
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "home").exists()


def test_two_workers_starting_at_once_generate_it_once(tmp_path):
    """Both processes wait on one start signal, then ask for the missing dataset: one generates it, the
    other waits for it and reads the whole folder."""
    import subprocess
    import sys

    home, go = tmp_path / "home", tmp_path / "go"
    script = ("import json, os, sys, time\n"
              "from pathlib import Path\n"
              "from sedbench.data import synth\n"
              "from sedbench.data.layouts import dataset_from_config\n"
              "made = []\n"
              "real = synth.generate_synth\n"
              "synth.generate_synth = lambda *a, **k: made.append(1) or real(*a, **k)\n"
              f"Path({str(tmp_path)!r}, f'ready-{{os.getpid()}}').touch()\n"
              f"while not Path({str(go)!r}).exists(): time.sleep(0.002)\n"
              f"ds = dataset_from_config(json.loads(sys.argv[1]))\n"
              "print(len(made), sum(len(ds.recordings(s)) for s in ds.splits))\n")
    env = {**os.environ, "SEDBENCH_DATA": str(home)}
    procs = [subprocess.Popen([sys.executable, "-c", script, json.dumps(data_cfg(home / "synth"))], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.time() < deadline:  # both imported and waiting
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    made, files = zip(*(tuple(map(int, out.split())) for out, _ in outs), strict=True)
    assert sorted(made) == [0, 1] and files[0] == files[1] > 0
    assert "another process is generating it; waiting" in outs[made.index(0)][1]


def test_validation_and_test_files_share_no_source_instance(synth_dir, tmp_path):
    """Each validation and test mixture has instances of its own (one per class), so no two of their files share a
    source and comparisons count them as independent; training mixtures draw from the shared training pool.
    --shared-instances gives the earlier layout, in which test files share a pool."""
    rows = _sources(synth_dir)
    for split in ("validation", "test"):
        owners = {}
        for r in rows:
            if r["split"] == split:
                owners.setdefault(r["source"], set()).add(r["filename"])
        assert owners and all(len(files) == 1 for files in owners.values())
    train = {}
    for r in (r for r in rows if r["split"] == "train"):
        train.setdefault(r["source"], set()).add(r["filename"])
    assert any(len(files) > 1 for files in train.values())
    import yaml

    meta = yaml.safe_load((synth_dir / "dataset.yaml").read_text())
    assert "no instance in two of their files" in meta["evaluation_instances"]
    args = ["--minutes-train", "0.5", "--minutes-test", "2", "--mixture-seconds", "10", "--sample-rate", "8000",
            "--instances-per-class", "5", "--quiet", "--shared-instances"]
    assert main(["data", "generate", "synth", "--out", str(tmp_path / "old"), *args]) == 0
    old = [r for r in _sources(tmp_path / "old") if r["split"] == "test"]
    per_source = {}
    for r in old:
        per_source.setdefault(r["source"], set()).add(r["filename"])
    assert any(len(files) > 1 for files in per_source.values())
