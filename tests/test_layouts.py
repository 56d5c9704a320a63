"""Each reader on a tiny fixture written in that dataset's published layout."""

import numpy as np
import pytest
import soundfile as sf
from helpers import urban, write_wav

from sedbench.data.annotations import Event
from sedbench.data.layouts import LAYOUTS, detect_layout, load_dataset
from sedbench.errors import DataError


def tut_synth(root):
    root = root / "TUT-SED-synthetic-2016"  # the archives extract into this folder
    names = [f"TUT-SED-synthetic-2016-mix-{i}" for i in range(1, 6)]
    for i, n in enumerate(names):
        write_wav(root / "audio" / f"{n}.wav", seconds=3.0, sr=8000, seed=i)
        (root / "meta" / f"{n}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / "meta" / f"{n}.txt").write_text("0.5\t1.5\tdog barking\n1.0\t2.5\train\n"
                                                f"{0.1 + i / 20}\t0.4\tgun shot\n"
                                                if i != 4 else "0.0\t3.0\tbus\n")
    setup = root / "evaluation_setup"
    setup.mkdir()
    (setup / "train+validate.txt").write_text("".join(f"audio/{n}.wav\n" for n in names[:3]))
    (setup / "validate.txt").write_text(f"audio/{names[2]}.wav\n")
    (setup / "test.txt").write_text("".join(f"audio/{n}.wav\n" for n in names[3:]))
    (setup / "evaluate.txt").write_text(f"audio/{names[3]}.wav\t0.5\t1.5\tdog barking\n")
    return root.parent


def test_tut_sed_synth_2016(tmp_path):
    ds = load_dataset("tut_sed_synth_2016", root=tut_synth(tmp_path))
    assert ds.classes == ("bus", "dog barking", "gun shot", "rain")
    assert [len(ds.recordings(s)) for s in ("train", "validation", "test")] == [2, 1, 2]
    assert Event(0.5, 1.5, "dog barking") in ds.recordings("train")[0].events
    assert detect_layout(tmp_path) == "tut_sed_synth_2016"


def tut2016(root):
    root = root / "TUT-sound-events-2016-development"
    scenes = {"home": ["a001", "a002", "a003", "a004"], "residential_area": ["b001", "b002", "b003", "b004"]}
    for scene, files in scenes.items():
        for i, f in enumerate(files):
            write_wav(root / "audio" / scene / f"{f}.wav", seconds=2.0, sr=8000, channels=2, seed=i)  # binaural
            ann = root / "meta" / scene / f"{f}.ann"
            ann.parent.mkdir(parents=True, exist_ok=True)
            label = "(object) rustling" if scene == "home" else "bird singing"
            ann.write_text(f"0.100000\t0.900000\t{label}\n1.000000\t2.500000\tpeople walking\n")
        setup = root / "evaluation_setup"
        setup.mkdir(exist_ok=True)
        for k in range(1, 5):
            test = files[k - 1]
            (setup / f"{scene}_fold{k}_train.txt").write_text(
                "".join(f"audio/{scene}/{f}.wav\t{scene}\t0.1\t0.9\tx\n" for f in files if f != test))
            (setup / f"{scene}_fold{k}_evaluate.txt").write_text(f"audio/{scene}/{test}.wav\t{scene}\t0.1\t0.9\tx\n")
            (setup / f"{scene}_fold{k}_test.txt").write_text(f"audio/{scene}/{test}.wav\n")
    return root


def test_tut_sed_2016_folds_and_clipping(tmp_path, caplog):
    root = tut2016(tmp_path)
    ds = load_dataset(str(tmp_path), fold=2)
    assert ds.name == "tut_sed_2016" and ds.classes == ("(object) rustling", "bird singing", "people walking")
    assert sorted(r.name for r in ds.recordings("test")) == ["a002.wav", "b002.wav"]
    assert sorted(r.name for r in ds.recordings("validation")) == ["a003.wav", "b003.wav"]
    assert sorted(r.name for r in ds.recordings("train")) == ["a001.wav", "a004.wav", "b001.wav", "b004.wav"]
    rec = ds.recordings("test")[0]
    assert rec.events[-1] == Event(1.0, 2.0, "people walking")  # clipped to the 2-s audio
    assert "extend past the end" in caplog.text
    assert detect_layout(root) == "tut_sed_2016"


def test_tut_sed_2016_reads_zero_length_events(tmp_path, caplog):
    """The published street-scene annotations have lines such as 224.691453 224.691453 brakes squeaking."""
    from sedbench.data.features import frame_targets

    root = tut2016(tmp_path)
    ann = root / "meta" / "residential_area" / "b001.ann"
    ann.write_text(ann.read_text() + "0.951234\t0.951234\tbird singing\n1.300000\t1.300000\tpeople walking\n")
    with caplog.at_level("WARNING"):
        ds = load_dataset("tut_sed_2016", root=root, fold=1)
    rec = next(r for r in ds.recordings("test") if r.name == "b001.wav")
    # kept as an event of its own; the one at 1.3 s lies inside 'people walking' 1.0-2.0 s and merges into it
    assert rec.events == [Event(0.1, 0.9, "bird singing"), Event(0.951234, 0.951234, "bird singing"),
                          Event(1.0, 2.0, "people walking")]
    notes = [r.getMessage() for r in caplog.records if "zero-length" in r.getMessage()]
    assert len(notes) == 1 and "b001.ann: 2 zero-length event(s)" in notes[0]
    targets = frame_targets(rec.events, ds.classes, 100, 0.02)
    bird = np.flatnonzero(targets[:, ds.classes.index("bird singing")]).tolist()
    assert bird == [*range(5, 45), 47]  # 0.1-0.9 s, and frame 47 ([0.94, 0.96) s) for 0.951234 s


def test_tut_sed_2016_binaural_is_mixed_to_mono(tmp_path):
    from sedbench.data.audio import load_audio

    ds = load_dataset("tut_sed_2016", root=tut2016(tmp_path))
    y, sr = load_audio(ds.recordings("train")[0].audio, ds.sample_rate)
    assert y.ndim == 1 and sr == 44100


def chime(root):
    root = root / "chime_home"
    chunks = ["CR_lounge_220110_0731.s0_chunk0", "CR_lounge_220110_0731.s0_chunk1", "CR_kitchen_200110_1502.s1_chunk3",
              "CR_kitchen_200110_1502.s1_chunk4", "CR_lounge_200110_1700.s2_chunk2"]
    codes = ["cmS", "fv", "pbo", "S", "U"]
    for c, code in zip(chunks, codes, strict=True):
        write_wav(root / "chunks" / f"{c}.16kHz.wav", seconds=4.0, sr=16000)
        write_wav(root / "chunks" / f"{c}.48kHz.wav", seconds=4.0, sr=48000)
        (root / "chunks" / f"{c}.csv").write_text(f"segmentname,{c}\nchunknumber,0\nannotation1,{code}\n"
                                                  f"majorityvote,{code}\n")
    (root / "development_chunks_refined_crossval_dcase2016.csv").write_text(
        "".join(f"{i},{c},{i}\n" for i, c in enumerate(chunks)))
    return root


def test_chime_home_weak_labels(tmp_path):
    ds = load_dataset("chime_home", root=chime(tmp_path), fold=1)
    assert ds.weak and ds.sample_rate == 16000 and len(ds.classes) == 7
    (test,) = ds.recordings("test")
    assert test.tags == ("adult male speech", "child speech")
    assert ds.recordings("validation")[0].tags == ("adult female speech", "video game/tv")
    assert {r.tags for r in ds.recordings("train")} == {("broadband noise", "other", "percussive sound"), ()}


def test_chime_home_bad_tag_code(tmp_path):
    root = chime(tmp_path)
    (root / "chunks" / "CR_lounge_220110_0731.s0_chunk1.csv").write_text("majorityvote,fxz\n")
    with pytest.raises(DataError, match=r"chunk1.csv:1: unknown tag code\(s\) \['x', 'z'\]"):
        load_dataset("chime_home", root=root)


def test_urban_sed(tmp_path):
    ds = load_dataset(str(urban(tmp_path)))
    assert ds.name == "urban_sed" and len(ds.classes) == 10
    assert [len(ds.recordings(s)) for s in ("train", "validation", "test")] == [2, 2, 2]
    assert ds.recordings("test")[1].events == [Event(0.25, 1.5, "dog_bark"), Event(1.0, 2.9, "siren")]


def test_urban_sed_unknown_label(tmp_path):
    root = urban(tmp_path)
    (root / "annotations" / "test" / "soundscape_test_bimodal0.txt").write_text("0\t1\tdog_bark\n0\t1\tlion\n")
    with pytest.raises(DataError, match=r"bimodal0.txt:2: unknown label 'lion'"):
        load_dataset("urban_sed", root=root)


def desed(root):
    root = root / "DESED"
    from sedbench.data.layouts import DESED_SUBSETS

    for i, (audio_dir, tsv) in enumerate(DESED_SUBSETS.values()):
        write_wav(root / audio_dir / f"{i}.wav", seconds=10.0, sr=16000)
        (root / tsv).parent.mkdir(parents=True, exist_ok=True)
        (root / tsv).write_text(f"filename\tonset\toffset\tevent_label\n{i}.wav\t0.0\t2.5\tSpeech\n"
                                f"{i}.wav\t3\t9.5\tBlender\n")
    return root


def test_desed(tmp_path):
    root = desed(tmp_path)
    ds = load_dataset("desed", root=root)
    assert len(ds.classes) == 10 and ds.sample_rate == 16000
    assert ds.recordings("validation")[0].events == [Event(0.0, 2.5, "Speech"), Event(3.0, 9.5, "Blender")]
    assert detect_layout(root) == "desed"


def esc10(root):
    root = root / "ESC-10-master"
    for c, name in ((1, "Dog bark"), (2, "Rain")):
        for fold in range(1, 6):
            p = root / f"{c:03d} - {name}" / f"{fold}-{1000 * c + fold}-A.ogg"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(p), 0.1 * __import__("numpy").ones(8000), 44100, format="OGG", subtype="VORBIS")
    return root


def test_esc10_layout(tmp_path):
    ds = load_dataset(str(esc10(tmp_path)), fold=5)
    assert ds.name == "esc10" and ds.classes == ("Dog bark", "Rain") and ds.weak
    assert [r.name for r in ds.recordings("test")] == ["5-1005-A.ogg", "5-2005-A.ogg"]
    assert [r.name for r in ds.recordings("validation")] == ["1-1001-A.ogg", "1-2001-A.ogg"]


def test_esc50_layout(tmp_path):
    root = tmp_path / "ESC-50-master"
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, cat, is10 in ((0, "dog", "True"), (5, "cat", "False")):
            name = f"{fold}-{100 + fold}-A-{target}.wav"
            write_wav(root / "audio" / name, seconds=0.5, sr=44100)
            rows.append(f"{name},{fold},{target},{cat},{is10},{100 + fold},A")
    (root / "meta").mkdir()
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    assert load_dataset("esc50", root=root).classes == ("cat", "dog")
    ds10 = load_dataset("esc10", root=root, fold=1)
    assert ds10.classes == ("dog",) and [r.tags for r in ds10.recordings("test")] == [("dog",)]


def test_unknown_layout_and_not_a_layout_folder(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unknown dataset layout"):
        load_dataset(str(tmp_path / "junk"))
    with pytest.raises(DataError, match=r"not a urban_sed folder.*sedbench data prepare urban_sed"):
        load_dataset("urban_sed", root=tmp_path / "junk")


def test_every_downloadable_layout_names_its_archives():
    for name in ("tut_sed_synth_2016", "tut_sed_2016", "chime_home"):
        assert LAYOUTS[name].archives and all(a.md5 and len(a.md5) == 32 for a in LAYOUTS[name].archives)


def test_data_folds_chooses_the_folds_that_take_part(tmp_path):
    from sedbench.data.layouts import dataset_from_config

    root = esc10(tmp_path)
    every = dataset_from_config({"name": "esc10", "root": str(root), "fold": 1, "folds": [1, 2, 3, 4, 5]})
    three = dataset_from_config({"name": "esc10", "root": str(root), "fold": 1, "folds": [1, 3, 5]})
    names = lambda ds, split: sorted(r.name.split("-")[0] for r in ds.recordings(split))  # noqa: E731
    assert (names(every, "test"), names(every, "validation"), sorted(set(names(every, "train")))) == \
        (["1", "1"], ["2", "2"], ["3", "4", "5"])
    assert (names(three, "test"), names(three, "validation"), names(three, "train")) == \
        (["1", "1"], ["3", "3"], ["5", "5"])  # validation: the next listed fold; folds 2 and 4 left out
    wrapped = dataset_from_config({"name": "esc10", "root": str(root), "fold": 5, "folds": [1, 3, 5]})
    assert names(wrapped, "validation") == ["1", "1"]  # cyclically
    with pytest.raises(DataError, match=r"data.fold=2 is not one of data.folds \[1, 3, 5\]"):
        dataset_from_config({"name": "esc10", "root": str(root), "fold": 2, "folds": [1, 3, 5]})
    with pytest.raises(DataError, match=r"fold\(s\) \[7\] not found"):
        dataset_from_config({"name": "esc10", "root": str(root), "fold": 1, "folds": [1, 2, 7]})
    with pytest.raises(DataError, match="at least three distinct folds"):
        dataset_from_config({"name": "esc10", "root": str(root), "fold": 1, "folds": [1, 2]})


def test_tut_sed_2016_folds_leave_out_the_unlisted_folds(tmp_path):
    root = tut2016(tmp_path)
    ds = load_dataset("tut_sed_2016", root=root, fold=1, folds=[1, 2, 4])
    assert sorted(r.name for r in ds.recordings("test")) == ["a001.wav", "b001.wav"]
    assert sorted(r.name for r in ds.recordings("validation")) == ["a002.wav", "b002.wav"]
    assert sorted(r.name for r in ds.recordings("train")) == ["a004.wav", "b004.wav"]  # fold 3's files unused


def test_reader_options_are_checked_and_passed_on(tmp_path):
    from sedbench.data.layouts import dataset_from_config, reader_options
    from sedbench.errors import ConfigError

    assert reader_options("esc10") == ["fold", "folds"] and reader_options("desed") == ["subsets", "classes",
                                                                                        "sample_rate"]
    assert reader_options("synth") == []
    with pytest.raises(ConfigError, match=r"data.folds is not a setting of the synth layout .* no folds"):
        dataset_from_config({"name": "synth", "root": str(tmp_path), "folds": [1, 2, 3]})
    # data.subsets reaches the DESED reader: its own folders are read, and a missing one is named
    with pytest.raises(DataError, match="my/train.tsv: DESED metadata for split 'train' not found"):
        dataset_from_config({"name": "desed", "root": str(tmp_path),
                             "subsets": {"train": ["my/audio", "my/train.tsv"]}})
    # a config stored by an older sedbench (fold on a dataset without folds) still loads when not strict
    from helpers import tiny_folder_dataset

    old = {"name": "synth", "layout": "synth", "root": str(tiny_folder_dataset(tmp_path / "old")), "fold": 1}
    with pytest.raises(ConfigError, match="data.fold is not a setting of the synth layout"):
        dataset_from_config(old)
    assert dataset_from_config(old, strict=False).splits
