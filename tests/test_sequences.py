import numpy as np
import pytest

from sedbench.data.sequences import (
    SHIFT,
    ClipSequences,
    EvalSequences,
    ShiftedStartSampler,
    TrainSequences,
)


def test_start_shifts_by_73_frames_per_epoch():
    s = ShiftedStartSampler(stream_len=1000, seq_len=100, shuffle=False)
    assert list(s)[:3] == [0, 100, 200] and len(s) == 10
    s.set_epoch(1)
    assert list(s)[:3] == [73, 173, 273]
    s.set_epoch(2)
    assert list(s)[0] == 46  # 146 mod 100
    assert SHIFT == 73


def test_shuffled_starts_are_the_same_set_and_reproducible():
    a, b = ShiftedStartSampler(1000, 100, seed=1), ShiftedStartSampler(1000, 100, seed=1)
    a.set_epoch(3), b.set_epoch(3)
    assert list(a) == list(b) and sorted(a) == sorted((219 % 100 + np.arange(10) * 100) % 1000)


def test_train_sequences_wrap_around():
    x = [np.arange(10, dtype=np.float32)[:, None], np.arange(10, 15, dtype=np.float32)[:, None]]
    y = [np.zeros((10, 2)), np.ones((5, 2))]
    ts = TrainSequences(x, y, seq_len=4)
    item = ts[13]
    assert item["x"][:, 0].tolist() == [13, 14, 0, 1] and item["y"][:, 0].tolist() == [1, 1, 0, 0]
    tiny = TrainSequences([np.ones((3, 1))], [np.zeros((3, 1))], seq_len=8)
    assert tiny[0]["x"].shape == (8, 1)


def test_eval_sequences_cover_each_file_once_and_stitch_back():
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((n, 3)).astype(np.float32) for n in (10, 4, 8)]
    targets = [rng.integers(0, 2, (len(f), 2)).astype(np.float32) for f in feats]
    es = EvalSequences(feats, targets, seq_len=4)
    assert [(p.file, p.start, p.length) for p in es.pieces] == [(0, 0, 4), (0, 4, 4), (0, 8, 2), (1, 0, 4),
                                                                (2, 0, 4), (2, 4, 4)]
    last = es[2]
    assert last["mask"].tolist() == [1, 1, 0, 0] and np.all(last["x"][2:] == 0)
    back = es.stitch([es[i]["y"] for i in range(len(es))])
    assert all(np.array_equal(a, b) for a, b in zip(back, targets, strict=True))
    with pytest.raises(ValueError):
        es.stitch([])


def test_clip_sequences_pad_and_cut():
    cs = ClipSequences([np.ones((5, 2)), np.ones((20, 2))], [np.array([1, 0.0]), np.array([0, 1.0])], seq_len=8)
    assert cs[0]["mask"].sum() == 5 and cs[1]["mask"].sum() == 8 and cs[1]["y"].tolist() == [0, 1]


def test_frame_file_reads_any_rows_exactly(tmp_path):
    from sedbench.data.frames import FrameFile

    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(n, 7)).astype(np.float32) for n in (1, 300, 4097, 2)]
    ff = FrameFile(iter(blocks), 7, tmp_path)
    whole = np.concatenate(blocks)
    assert len(ff) == len(whole) and not list(tmp_path.iterdir())  # an unnamed file: nothing to clean up
    for a, b in [(0, 1), (0, len(whole)), (299, 302), (1000, 3000), (len(whole) - 1, len(whole) + 5), (5, 5)]:
        assert np.array_equal(ff[a:b], whole[a:b]), (a, b)
    part = ff.part(2, 4097)
    assert part.shape == (4097, 7) and np.array_equal(part[10:20], blocks[2][10:20])
    assert np.array_equal(np.asarray(part), blocks[2])


def test_training_stream_on_disk_wraps_like_in_memory(tmp_path):
    from sedbench.data.frames import FrameFile

    x = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    y = (np.arange(50 * 2).reshape(50, 2) % 3 == 0).astype(np.float32)
    for seq_len in (16, 120):  # 120 > 50 frames: the window wraps more than once
        memory = TrainSequences([x], [y], seq_len)
        disk = TrainSequences.on_disk(FrameFile([x], 3, tmp_path), y.astype(np.uint8), seq_len)
        for start in (0, 40, 49):
            a, b = memory[start], disk[start]
            assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"]) and len(b["x"]) == seq_len
            idx = (start + np.arange(seq_len)) % 50
            assert np.array_equal(b["x"], x[idx])
