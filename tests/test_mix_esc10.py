import csv
import re

from helpers import esc10_or_skip

from sedbench.commands.cli import main
from sedbench.data.dataset import read_folder
from sedbench.data.info import split_stats
from sedbench.data.layouts import read_esc


def test_mix_esc10_splits_share_no_source_clip(tmp_path):
    esc = esc10_or_skip()
    out = tmp_path / "esc10_mix"
    assert main(["data", "mix", "--events", str(esc), "--out", str(out), "--minutes-train", "2",
                 "--mixture-seconds", "30", "--quiet"]) == 0
    ds = read_folder(out)  # a valid folder dataset
    assert len(ds.classes) == 10 and set(ds.splits) == {"train", "validation", "test"}
    with open(out / "metadata" / "sources.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    clips = {s: {r["source"] for r in rows if r["split"] == s} for s in ds.splits}
    # the same source clip, and the same original freesound recording, never in two splits
    recording = {s: {re.match(r"(\d+)-(\d+)", c.split("/")[-1]).group(2) for c in v} for s, v in clips.items()}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not clips[a] & clips[b] and not recording[a] & recording[b]
    folds = {s: {int(c.split("/")[-1][0]) for c in v} for s, v in clips.items()}
    assert folds["train"] <= {1, 2, 3} and folds["validation"] == {4} and folds["test"] == {5}
    assert split_stats(ds, "train").mean_polyphony > 1.2
    assert "Creative Commons" in (out / "SOURCE_README.md").read_text()


def test_esc10_clip_classification_folds():
    esc = esc10_or_skip()
    ds = read_esc(esc, fold=2)
    assert ds.weak and len(ds.classes) == 10
    assert {len(ds.recordings(s)) for s in ("validation", "test")} == {80}
    assert len(ds.recordings("train")) == 240
    assert all(r.name.startswith("2-") for r in ds.recordings("test"))
    assert all(r.name.startswith("3-") for r in ds.recordings("validation"))
