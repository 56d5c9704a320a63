"""Every event-list layout sed_eval reads, scored by `sedbench score` and by sed_eval reading the same files.

For each layout the same random reference and system output are written to disk; sedbench reads
them with its own reader and scores them (fast path), sed_eval loads them with
``sed_eval.io.load_event_list`` and scores them with its SegmentBasedMetrics (20 ms and 1 s) and
EventBasedMetrics; every overall and class-wise value must be equal.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from sedbench.commands.score import score_event_files
from sedbench.data.annotations import DEFAULT_LABEL, Event, read_events
from sedbench.errors import DataError
from sedbench.metrics.segment import FILE_COUNTS

LABELS = ["car", "dog", "speech"]
FILES = ["a001.wav", "a002.wav", "b003.wav"]


def _events(rng, labels=LABELS):
    out = []
    for _ in range(int(rng.integers(4, 9))):
        on = round(float(rng.uniform(0, 25)), 3)
        out.append(Event(on, round(on + float(rng.uniform(0.05, 5)), 3), str(rng.choice(labels))))
    return sorted(out)


def _systems(seed, labels=LABELS):
    rng = np.random.default_rng(seed)
    ref = {f: _events(rng, labels) for f in FILES}
    est = {f: _events(rng, labels) for f in FILES}
    est["b003.wav"] = []  # a file without detections
    return ref, est


def _line(sep, *fields):
    return sep.join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in fields)


def _table(path, events, sep="\t", scene=False, header=None, label=True):
    lines = [header] if header else []
    for name, evs in events.items():
        if not evs:
            lines.append(name)
        for e in evs:
            fields = [name, "home"] if scene else [name]
            lines.append(_line(sep, *fields, e.onset, e.offset, *([e.label] if label else [])))
    path.write_text("\n".join(lines) + "\n")
    return path


def _per_file(folder, events, sep="\t", suffix=".ann", label=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name, evs in events.items():
        lines = [_line(sep, e.onset, e.offset, *([e.label] if label else [])) for e in evs]
        (folder / Path(name).with_suffix(suffix).name).write_text("".join(line + "\n" for line in lines))
    return folder


def _sed_eval_read(path: Path, **kwargs) -> dict[str, list[dict]]:
    """Events by file as sed_eval loads them (a folder: its per-file lists by base name)."""
    import sed_eval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = sorted(path.iterdir()) if path.is_dir() else [path]
        out: dict[str, list[dict]] = {}
        for f in files:
            for item in sed_eval.io.load_event_list(str(f), **kwargs):
                name = item.get("filename") or (f.stem if path.is_dir() else "recording")
                events = out.setdefault(name, [])
                if item.get("onset") is not None:
                    events.append({"filename": name, "onset": item["onset"], "offset": item["offset"],
                                   "event_label": item.get("event_label") or DEFAULT_LABEL})
            if path.is_dir():
                out.setdefault(f.stem, [])
    return out


def _sed_eval_scores(ref_path: Path, est_path: Path, **kwargs) -> dict:
    import sed_eval

    ref, est = _sed_eval_read(ref_path, **kwargs), _sed_eval_read(est_path, **kwargs)
    labels = sorted({e["event_label"] for evs in (*ref.values(), *est.values()) for e in evs})
    metrics = {0.02: sed_eval.sound_event.SegmentBasedMetrics(labels, time_resolution=0.02),
               1.0: sed_eval.sound_event.SegmentBasedMetrics(labels, time_resolution=1.0),
               "event": sed_eval.sound_event.EventBasedMetrics(labels, t_collar=0.2, percentage_of_length=0.2)}
    for m in metrics.values():
        for name in sorted(set(ref) | set(est)):
            m.evaluate(ref.get(name, []), est.get(name, []))
    return metrics


def _assert_equal(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for key, m in theirs.items():
        o = m.results_overall_metrics()
        mine_overall, mine_classes = ours[key][0].overall, ours[key][0].class_wise
        for k, v in {**o["f_measure"], **o["error_rate"]}.items():
            assert mine_overall[k] == pytest.approx(v, nan_ok=True, rel=1e-12, abs=1e-12), (key, k)
        theirs_classes = m.results_class_wise_metrics()
        assert set(mine_classes) == set(theirs_classes), key
        for label, r in theirs_classes.items():
            for k, v in {**r["f_measure"], **r["error_rate"]}.items():
                assert mine_classes[label][k] == pytest.approx(v, nan_ok=True, rel=1e-12, abs=1e-12), (key, label, k)


def _write_tables(tmp_path, ref, est, **kw):
    suffix = kw.pop("suffix", ".txt")
    return _table(tmp_path / f"ref{suffix}", ref, **kw), _table(tmp_path / f"est{suffix}", est, **kw)


LAYOUTS = {
    "4 columns, tab, no header (DCASE)": lambda t, r, e: _write_tables(t, r, e),
    "5 columns with scene (DCASE 2016)": lambda t, r, e: _write_tables(t, r, e, scene=True),
    "DESED tsv with header": lambda t, r, e: _write_tables(
        t, r, e, suffix=".tsv", header="filename\tonset\toffset\tevent_label"),
    "csv with header": lambda t, r, e: _write_tables(
        t, r, e, suffix=".csv", sep=",", header="filename,onset,offset,event_label"),
    "4 columns, semicolons": lambda t, r, e: _write_tables(t, r, e, sep=";"),
    "3 columns filename onset offset (one class)": lambda t, r, e: _write_tables(t, r, e, label=False),
    "folders of per-file .ann (TUT-SED)": lambda t, r, e: (_per_file(t / "ref", r), _per_file(t / "est", e)),
    "folders of per-file .txt, spaces": lambda t, r, e: (_per_file(t / "ref", r, " ", ".txt"),
                                                         _per_file(t / "est", e, " ", ".txt")),
    "folders of per-file .txt, commas": lambda t, r, e: (_per_file(t / "ref", r, ",", ".txt"),
                                                         _per_file(t / "est", e, ",", ".txt")),
    "folders of 2-column lists (one class)": lambda t, r, e: (_per_file(t / "ref", r, label=False),
                                                              _per_file(t / "est", e, label=False)),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_scores_as_sed_eval_reads_it(tmp_path, layout):
    ref, est = _systems(len(layout))
    ref_path, est_path = LAYOUTS[layout](tmp_path, ref, est)
    ours = score_event_files(ref_path, est_path)
    # dcase_util's delimiter sniffer misreads a semicolon table with a file-name-only line: it is told
    _assert_equal(ours, _sed_eval_scores(ref_path, est_path, **({"delimiter": ";"} if "semicolon" in layout else {})))
    assert 0 < ours[1.0][0].f1 < 1


def test_two_single_per_file_lists(tmp_path):
    ref, est = _systems(3)
    (tmp_path / "ref.ann").write_text("".join(_line("\t", e.onset, e.offset, e.label) + "\n" for e in ref["a001.wav"]))
    (tmp_path / "sys_out.txt").write_text("".join(_line("\t", e.onset, e.offset, e.label) + "\n"
                                                  for e in est["a001.wav"]))
    ours = score_event_files(tmp_path / "ref.ann", tmp_path / "sys_out.txt")
    _assert_equal(ours, _sed_eval_scores(tmp_path / "ref.ann", tmp_path / "sys_out.txt"))


def test_labels_with_spaces_in_whitespace_lists(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("0.5 1.0 people walking\n2 3 car\n")
    assert [ev for _, _, ev in read_events(p)] == [Event(0.5, 1.0, "people walking"), Event(2, 3, "car")]


@pytest.mark.parametrize("line, problem", [
    ("12\t1.0\t2.0\tdog", "ambiguous line"),            # file named 12, or onset 12 offset 1 label 2.0?
    ("1.0\t2.0\t3.0", "ambiguous line"),                 # onset offset label '3.0', or file '1.0'?
    ("a.wav\t1.0\tdog", "unrecognized line"),
    ("a.wav\thome\tdog\tcar", "expected onset and offset times"),
])
def test_ambiguous_or_unknown_lines_say_how_to_fix_them(tmp_path, line, problem):
    p = tmp_path / "x.txt"
    p.write_text("a.wav\t0\t1\tdog\n" + line + "\n")
    with pytest.raises(DataError, match=problem) as e:
        read_events(p)
    assert e.value.line == 2 and e.value.fix


def test_a_header_settles_the_ambiguity(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text("filename\tonset\toffset\tevent_label\n12\t1.0\t2.0\tdog\n")
    assert read_events(p) == [(2, "12", Event(1.0, 2.0, "dog"))]


def test_per_file_list_against_a_table_is_refused(tmp_path):
    ref, est = _systems(5)
    _table(tmp_path / "ref.txt", ref)
    _per_file(tmp_path / "est", {"x": est["a001.wav"]})
    with pytest.raises(DataError, match="names no file|cannot be scored"):
        score_event_files(tmp_path / "ref.txt", tmp_path / "est" / "x.ann")


def test_folders_that_share_no_file_are_refused(tmp_path):
    ref, est = _systems(6)
    _per_file(tmp_path / "ref", ref)
    _per_file(tmp_path / "est", {"other.wav": est["a001.wav"]})
    with pytest.raises(DataError, match="none of its files is in the reference"):
        score_event_files(tmp_path / "ref", tmp_path / "est")


def test_a_folder_of_lists_pairs_with_a_table_by_base_name(tmp_path):
    ref, est = _systems(7)
    _per_file(tmp_path / "ref", ref)                        # ref/a001.ann ...
    _table(tmp_path / "est.txt", {f"audio/{n}": evs for n, evs in est.items()})  # audio/a001.wav ...
    ours = score_event_files(tmp_path / "ref", tmp_path / "est.txt")
    _per_file(tmp_path / "est", est)                        # the same output as per-file lists
    assert ours[1.0][0].overall == score_event_files(tmp_path / "ref", tmp_path / "est")[1.0][0].overall
    assert ours[1.0][0].files == 3


# A street-scene-like reference (TUT Sound Events 2016 has zero-length lines such as 224.691453 224.691453):
# several files, overlapping events of one class, and zero-length events on segment boundaries (2.0, 221.0:
# 1-s and 20-ms boundaries), between them (224.691453) and a hair either side of one (9.999999, 10.000001), one
# whose 20-ms grid position rounds up in floating point (5.02 / 0.02 = 250.99999999999997), one inside a longer
# event of its class, and one that is a file's last offset (it sets that file's evaluated length).
STREET_REFERENCE = """\
a.wav\t0.000000\t4.500000\tcar
a.wav\t3.200000\t8.750000\tcar
a.wav\t6.000000\t6.000000\tcar
a.wav\t2.000000\t2.000000\tbrakes squeaking
a.wav\t5.020000\t5.020000\tbrakes squeaking
a.wav\t9.999999\t9.999999\tpeople speaking
a.wav\t10.000001\t10.000001\tpeople speaking
a.wav\t12.340000\t14.100000\tpeople speaking
b.wav\t220.000000\t226.500000\tcar
b.wav\t224.691453\t224.691453\tbrakes squeaking
b.wav\t221.000000\t221.000000\tlarge vehicle
b.wav\t223.480000\t223.480000\tlarge vehicle
b.wav\t225.999000\t225.999000\tpeople walking
b.wav\t226.500000\t226.500000\tpeople walking
c.wav\t0.500000\t3.000000\tchildren
c.wav\t1.000000\t1.000000\tchildren
c.wav\t3.000000\t3.000000\tchildren
c.wav\t7.000000\t7.000000\tcar
"""


def _perturbed(reference: str, seed: int) -> str:
    """A system output: the reference's events moved by up to ~0.3 s, some dropped, relabelled, lengthened or
    made zero-length, and a few insertions (zero-length ones among them)."""
    rng = np.random.default_rng(seed)
    labels = sorted({line.split("\t")[3] for line in reference.splitlines()})
    lines = []
    for line in reference.splitlines():
        name, on, off, label = line.split("\t")
        on, off = float(on), float(off)
        zero = on == off
        u = rng.uniform()
        if u < 0.15:
            continue                                            # a deletion
        if u < 0.25:
            label = str(rng.choice(labels))                     # a substitution, perhaps
        on = max(0.0, on + float(rng.normal(0, 0.12)))
        # a zero-length reference event is found as one half of the time, as a short event otherwise
        off = on if zero and rng.uniform() < 0.5 else max(on, off + float(rng.normal(0, 0.3)))
        lines.append(f"{name}\t{on:.6f}\t{off:.6f}\t{label}")
    for name, end in (("a.wav", 14.0), ("b.wav", 226.0), ("c.wav", 7.0)):
        for zero in (True, False):
            on = float(rng.uniform(0, end))
            lines.append(f"{name}\t{on:.6f}\t{on if zero else on + float(rng.uniform(0.1, 1.5)):.6f}\t"
                         f"{rng.choice(labels)}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("engine", ["fast", "sed_eval"])
def test_zero_length_events_score_as_sed_eval_reads_them(tmp_path, seed, engine, caplog):
    import sed_eval

    ref_path, est_path = tmp_path / "ref.txt", tmp_path / "est.txt"
    ref_path.write_text(STREET_REFERENCE)
    est_path.write_text(_perturbed(STREET_REFERENCE, seed))
    with caplog.at_level("WARNING"):
        ours = score_event_files(ref_path, est_path, engine=engine)
    notes = [r.getMessage() for r in caplog.records if "ref.txt" in r.getMessage()]
    assert notes == [f"{ref_path}: 13 zero-length event(s) (onset = offset; first on line 3), read and scored as "
                     "sed_eval does: each marks the segment that contains its instant"]
    theirs = _sed_eval_scores(ref_path, est_path)
    _assert_equal(ours, theirs)  # every overall and class-wise value at 20 ms, 1 s and on events

    # the zero-length events count: 'large vehicle' (only zero-length events) has reference segments where its
    # instant is not on a boundary (223.48 s) and none where it is (221.0 s); on events, both are reference events
    assert ours[1.0][0].class_wise["large vehicle"]["Nref"] == 1
    assert ours["event"][0].class_wise["large vehicle"]["Nref"] == 2
    # per-file counts (what intervals over files resample) are sed_eval's file by file, and add up to the total
    ref, est = _sed_eval_read(ref_path), _sed_eval_read(est_path)
    labels = sorted({e["event_label"] for evs in (*ref.values(), *est.values()) for e in evs})
    metrics = {0.02: (lambda: sed_eval.sound_event.SegmentBasedMetrics(labels, time_resolution=0.02), FILE_COUNTS),
               1.0: (lambda: sed_eval.sound_event.SegmentBasedMetrics(labels, time_resolution=1.0), FILE_COUNTS),
               "event": (lambda: sed_eval.sound_event.EventBasedMetrics(labels, t_collar=0.2, percentage_of_length=0.2),
                         ("Ntp", "Nref", "Nsys", "Nsubs", "Nfn", "Nfp"))}
    names = sorted(set(ref) | set(est))
    for key, (make, keys) in metrics.items():
        theirs_per_file = []
        for name in names:
            m = make()
            m.evaluate(ref.get(name, []), est.get(name, []))
            theirs_per_file.append(tuple(int(m.overall[k]) for k in keys))
        assert ours[key][0].file_counts == theirs_per_file, key
        assert [sum(col) for col in zip(*theirs_per_file, strict=True)] == [int(theirs[key].overall[k]) for k in keys]
