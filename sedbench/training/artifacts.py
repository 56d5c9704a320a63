"""What a run leaves in MLflow beside its metrics, so that later stages need nothing else.

- ``model/model.pt``, a :class:`Bundle`: the best weights with the architecture, the feature
  settings, the training set's normalization and the class list. ``sedbench evaluate``
  re-scores it on new (e.g. pitch-shifted) audio; the report's filter figure reads its weights.
- ``activity.npz``: input features, ground truth and the model's event probabilities on one
  test excerpt, the same excerpt for every run on the same test data (paper Figs. 3 and 6).
- ``file_counts.csv``: each test file's segment counts per resolution, from which F1 and ER add up
  again and a bootstrap over files resamples (sedbench.stats).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sedbench.data.features import FeatureParams, Normalizer

BUNDLE_PATH = "model/model.pt"
ACTIVITY_PATH = "activity.npz"
FILE_COUNTS_PATH = "file_counts.csv"
TEST_SCORES_PATH = "scores/test_scores.npz"  # evaluation.psds=report: what the report computes PSDS from
PITCH_SHIFT_COUNTS_PATH = "pitch_shift_counts.csv"   # from `sedbench evaluate --pitch-shift`, tags "frm@+1"
EXCERPT_SECONDS = 30.0


@dataclass
class Bundle:
    net: object                  # a network in eval mode, or a frames model (sedbench.models.families)
    model_cfg: dict
    features: FeatureParams
    normalizer: Normalizer
    classes: list[str]
    sample_rate: int
    seq_len: int
    threshold: float
    data_cfg: dict
    accelerator: str = "cpu"     # what the run trained on (trainer.accelerator): evaluate uses it when present
    device: str = "cpu"          # where predict runs (:meth:`to`)

    def to(self, device: str) -> Bundle:
        """Predict on ``device`` (``cpu`` or ``cuda``) from now on; a frames model stays on the CPU."""
        self.device = str(device)
        if hasattr(self.net, "to"):
            self.net.to(self.device)
        return self

    def save(self, path: str | Path) -> Path:
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": 1, "state_dict": self.net.state_dict(), "model": self.model_cfg,
                    "n_in": self.features.n_features(self.sample_rate), "features": asdict(self.features),
                    "mean": torch.from_numpy(self.normalizer.mean), "std": torch.from_numpy(self.normalizer.std),
                    "classes": list(self.classes), "sample_rate": self.sample_rate, "seq_len": self.seq_len,
                    "threshold": self.threshold, "data": self.data_cfg, "accelerator": self.accelerator}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        import torch

        from sedbench.errors import DataError
        from sedbench.models.families import build_model

        try:
            d = torch.load(Path(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(path, f"not a sedbench model bundle ({type(exc).__name__}: {exc})",
                            "re-download it from the run's MLflow artifacts (model/model.pt)") from None
        features = FeatureParams(**d["features"])
        net = build_model(d["model"], int(d["n_in"]), len(d["classes"]), strict=False, classes=list(d["classes"]),
                          hop_seconds=features.hop_seconds)
        net.load_state_dict(d["state_dict"])
        net.eval()
        return cls(net, d["model"], features,
                   Normalizer(d["mean"].numpy(), d["std"].numpy()), list(d["classes"]), int(d["sample_rate"]),
                   int(d["seq_len"]), float(d["threshold"]), d["data"], str(d.get("accelerator", "cpu")))

    def predict(self, features: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Raw ``(frames, F)`` features of one file -> ``(frames, K)`` event probabilities.

        Normalized with the training statistics and cut into the same non-overlapping
        ``seq_len`` pieces as validation and test during training, so the outputs are those
        the run was scored on.
        """
        import torch

        from sedbench.data.sequences import EvalSequences
        from sedbench.models.families import FRAMES, arch_of

        if arch_of(self.model_cfg).trains == FRAMES:  # a frames model scores whole files, as in training
            return self.net.predict(self.normalizer(features))
        seqs = EvalSequences([self.normalizer(features)], [np.zeros((len(features), 1), np.float32)], self.seq_len)
        outs = []
        with torch.no_grad():
            for i in range(0, len(seqs), batch_size):
                items = [seqs[j] for j in range(i, min(len(seqs), i + batch_size))]
                x = torch.from_numpy(np.stack([it["x"] for it in items])).to(self.device)
                mask = torch.from_numpy(np.stack([it["mask"] for it in items])).to(self.device)
                outs.extend(torch.sigmoid(self.net(x, mask)).float().cpu().numpy())
        return seqs.stitch(outs)[0]


def bundle_from_training(net, cfg, dm) -> Bundle:
    """The bundle of a trained network and the data module it was trained on."""
    from omegaconf import OmegaConf

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    return Bundle(net, model_cfg, dm.params, dm.normalizer, list(dm.classes), dm.ds.sample_rate, dm.seq_len,
                  float(cfg.threshold), data_cfg, str(cfg.trainer.accelerator))


def pick_excerpt(targets: list[np.ndarray], frames: int) -> tuple[int, int]:
    """``(file, start frame)`` of the ``frames``-long window with the most distinct classes, then the most
    activity; it depends on the ground truth only, so every model on the same test set shows the same one."""
    best, where = (-1, -1.0), (0, 0)
    for i, t in enumerate(targets):
        for start in range(0, max(1, len(t) - frames + 1), max(1, frames // 6)):
            w = t[start:start + frames]
            score = (int((w.sum(axis=0) > 0).sum()), float(w.sum()))
            if score > best:
                best, where = score, (i, start)
    return where


def write_activity(path: Path, names: list[str], features: list[np.ndarray], targets: list[np.ndarray],
                   probs: list[np.ndarray], classes: list[str], hop: float) -> Path:
    """The test excerpt of :func:`pick_excerpt` as ``activity.npz`` (float16 to stay small)."""
    frames = int(round(EXCERPT_SECONDS / hop))
    i, start = pick_excerpt(targets, frames)
    sl = slice(start, start + frames)
    np.savez_compressed(path, filename=np.array(names[i]), start=np.array(start * hop), hop=np.array(hop),
                        classes=np.array(classes), features=features[i][sl].astype(np.float16),
                        truth=targets[i][sl].astype(np.uint8), probs=probs[i][sl].astype(np.float16))
    return path


def write_test_scores(path: Path, probs: list[np.ndarray], references: list, classes: list[str], hop: float,
                      median_filter_s: dict[str, float] | None) -> Path:
    """``scores/test_scores.npz``: a run's test probabilities (float32, as scored), the test reference events,
    the classes, the frame hop and its tuned median filter lengths: all that its PSDS needs
    (``evaluation.psds=report``, :func:`sedbench.training.scoring.deferred_psds`)."""
    events = [(i, e.onset, e.offset, e.label) for i, evs in enumerate(references) for e in evs]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, probabilities=np.concatenate(probs).astype(np.float32),
                        lengths=np.array([len(p) for p in probs]), classes=np.array(classes), hop=np.array(hop),
                        ref_file=np.array([e[0] for e in events], dtype=np.int64),
                        ref_onset=np.array([e[1] for e in events], dtype=np.float64),
                        ref_offset=np.array([e[2] for e in events], dtype=np.float64),
                        ref_label=np.array([e[3] for e in events], dtype=str),
                        filter_seconds=np.array([median_filter_s[c] for c in classes] if median_filter_s else []))
    return path


def read_test_scores(path: str | Path) -> dict:
    """What :func:`write_test_scores` wrote: per-file probabilities and reference events, classes, hop, filters."""
    from sedbench.data.annotations import Event

    with np.load(path) as d:
        lengths = d["lengths"]
        probs = np.split(d["probabilities"], np.cumsum(lengths)[:-1])
        refs: list[list] = [[] for _ in lengths]
        for i, on, off, label in zip(d["ref_file"], d["ref_onset"], d["ref_offset"], d["ref_label"], strict=True):
            refs[int(i)].append(Event(float(on), float(off), str(label)))
        classes = [str(c) for c in d["classes"]]
        filters = dict(zip(classes, map(float, d["filter_seconds"]), strict=True)) if len(d["filter_seconds"]) \
            else None
        return {"probabilities": probs, "references": refs, "classes": classes, "hop": float(d["hop"]),
                "median_filter_s": filters}


def write_file_counts(folder: Path, names: list[str], counts: dict[str, list], name: str = FILE_COUNTS_PATH,
                      sources: list[list[str]] | None = None) -> Path:
    """``file_counts.csv`` (or ``name``) in ``folder``: ``counts`` is ``{resolution tag: per-file FILE_COUNTS
    rows}`` (score_activity's ``file_counts``), one row per file and tag. ``sources``: per file, the source
    instances mixed into it (the dataset's ``metadata/sources.tsv``), written as a ``sources`` column of ids
    joined by ``;`` so that a comparison can account for files that share them."""
    import csv

    from sedbench.metrics.segment import FILE_COUNTS

    path = Path(folder) / name
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "resolution", *FILE_COUNTS, *(["sources"] if sources is not None else [])])
        for tag, rows in counts.items():
            if sources is None:
                w.writerows([name, tag, *row] for name, row in zip(names, rows, strict=True))
            else:
                w.writerows([name, tag, *row, ";".join(s)] for name, row, s in zip(names, rows, sources, strict=True))
    return path


def shift_tag(tag: str, quarter_tones: int) -> str:
    """The resolution tag of counts on test audio pitch-shifted by ``quarter_tones``: ``frm@+1``."""
    return f"{tag}@{quarter_tones:+d}"


def shifted(counts: dict[str, list], tag: str = "frm") -> dict[int, list[list[int]]]:
    """``{quarter tones: per-file counts}`` of resolution ``tag`` from a ``pitch_shift_counts.csv``."""
    out = {}
    for key, rows in counts.items():
        base, _, q = key.partition("@")
        if base == tag and q:
            out[int(q)] = rows
    return dict(sorted(out.items()))


def read_file_sources(path: str | Path) -> list[list[str]] | None:
    """The ``sources`` column of a ``file_counts.csv``, per file of its first resolution; None without one."""
    import csv

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if "sources" not in (reader.fieldnames or []):
            return None
        out, first = [], None
        for r in reader:
            first = first or r["resolution"]
            if r["resolution"] == first:
                out.append([s for s in r["sources"].split(";") if s])
    return out if any(out) else None


def read_file_counts(path: str | Path) -> dict[str, list[list[int]]]:
    """``file_counts.csv`` back as ``{resolution tag: per-file counts}``."""
    import csv

    from sedbench.metrics.segment import FILE_COUNTS

    out: dict[str, list[list[int]]] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["resolution"], []).append([int(r[k]) for k in FILE_COUNTS])
    return out
