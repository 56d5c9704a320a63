import logging

import pytest
import yaml
from helpers import write_wav

from sedbench.data.annotations import Event
from sedbench.data.dataset import read_folder
from sedbench.data.layouts import load_dataset
from sedbench.errors import DataError


def make_folder(root, tsv_lines=None, classes=("dog", "rain"), sr=16000):
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"name": "mine", "classes": list(classes), "sample_rate": sr}))
    for split in ("train", "validation", "test"):
        write_wav(root / "audio" / split / "a.wav", seconds=2.0, sr=sr)
        write_wav(root / "audio" / split / "b.wav", seconds=2.0, sr=sr)
        lines = (tsv_lines or {}).get(split, ["a.wav\t0.5\t1.0\tdog", "a.wav\t0.8\t1.5\tdog", "b.wav\t0.0\t2.0\train"])
        header = "filename\tonset\toffset\tevent_label\n"
        (root / "metadata" / f"{split}.tsv").write_text(header + "\n".join(lines) + "\n")
    return root


def test_reads_folder_layout(tmp_path):
    ds = read_folder(make_folder(tmp_path / "d"))
    assert ds.name == "mine" and ds.classes == ("dog", "rain") and ds.sample_rate == 16000
    assert set(ds.splits) == {"train", "validation", "test"}
    a, b = ds.recordings("train")
    assert a.name == "a.wav" and a.events == [Event(0.5, 1.5, "dog")]  # overlaps merged
    assert b.events == [Event(0.0, 2.0, "rain")] and a.duration == pytest.approx(2.0)


def test_file_without_events_is_listed(tmp_path):
    root = make_folder(tmp_path / "d", {"train": ["a.wav\t0.5\t1.0\tdog"]})
    recs = read_folder(root).recordings("train")
    assert [(r.name, len(r.events)) for r in recs] == [("a.wav", 1), ("b.wav", 0)]


def test_missing_audio_file_names_the_tsv_line(tmp_path):
    root = make_folder(tmp_path / "d", {"test": ["a.wav\t0\t1\tdog", "gone.wav\t0\t1\tdog"]})
    with pytest.raises(DataError) as e:
        read_folder(root)
    assert e.value.path == root / "metadata" / "test.tsv" and e.value.line == 3
    assert "'gone.wav' not found" in str(e.value)


def test_events_past_end_are_clipped_with_a_warning(tmp_path, caplog):
    root = make_folder(tmp_path / "d", {"validation": ["a.wav\t1.5\t3.5\tdog"]})
    with caplog.at_level(logging.WARNING):
        ds = read_folder(root)
    assert ds.recordings("validation")[0].events == [Event(1.5, 2.0, "dog")]
    assert "extend past the end of the audio" in caplog.text


def test_unknown_label_in_folder(tmp_path):
    root = make_folder(tmp_path / "d", {"train": ["a.wav\t0\t1\tcat"]})
    with pytest.raises(DataError, match=r"train.tsv:2: unknown label 'cat'"):
        read_folder(root)


def test_missing_dataset_yaml_and_bad_yaml(tmp_path):
    root = make_folder(tmp_path / "d")
    (root / "dataset.yaml").write_text("classes: [dog\n")
    with pytest.raises(DataError, match=r"dataset.yaml:\d+: invalid YAML"):
        read_folder(root)
    (root / "dataset.yaml").unlink()
    with pytest.raises(DataError, match="needs dataset.yaml"):
        read_folder(root)


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataError, match=r"dataset folder not found\. Fix: create it with "
                                        r"`sedbench data generate synth"):
        read_folder(tmp_path / "absent")


def test_load_dataset_by_folder_and_by_name(tmp_path, monkeypatch):
    make_folder(tmp_path / "home" / "synth")
    monkeypatch.setenv("SEDBENCH_DATA", str(tmp_path / "home"))
    assert load_dataset("synth").name == "mine"
    assert load_dataset(str(tmp_path / "home" / "synth")).classes == ("dog", "rain")


def test_weak_folder(tmp_path):
    root = make_folder(tmp_path / "w")
    meta = yaml.safe_load((root / "dataset.yaml").read_text())
    (root / "dataset.yaml").write_text(yaml.safe_dump({**meta, "weak": True}))
    for split in ("train", "validation", "test"):
        (root / "metadata" / f"{split}.tsv").write_text("filename\tevent_labels\na.wav\tdog,rain\nb.wav\t\n")
    ds = read_folder(root)
    assert ds.weak and [r.tags for r in ds.recordings("test")] == [("dog", "rain"), ()]


def test_zero_length_events_in_a_folder_dataset(tmp_path, caplog):
    lines = {"test": ["a.wav\t0.5\t1.0\tdog", "a.wav\t1.25\t1.25\tdog", "b.wav\t0.0\t2.0\train",
                      "b.wav\t0.7\t0.7\tdog"]}
    with caplog.at_level(logging.WARNING):
        ds = read_folder(make_folder(tmp_path / "d", lines))
    a, b = ds.recordings("test")
    assert a.events == [Event(0.5, 1.0, "dog"), Event(1.25, 1.25, "dog")]
    assert b.events == [Event(0.0, 2.0, "rain"), Event(0.7, 0.7, "dog")]
    notes = [r.getMessage() for r in caplog.records if "zero-length" in r.getMessage()]
    assert len(notes) == 1 and "test.tsv: 2 zero-length event(s) (onset = offset; first on line 3)" in notes[0]
    with pytest.raises(DataError, match=r"test.tsv:2: offset 0.4 s is before onset 0.5 s.*Fix: swap the two columns"):
        read_folder(make_folder(tmp_path / "e", {"test": ["a.wav\t0.5\t0.4\tdog"]}))
