"""``sedbench params``: the trainable parameter count of a configured model, without training it."""

from __future__ import annotations

from omegaconf import DictConfig


def params(cfg: DictConfig) -> int:
    """Trainable parameter count of the configured model (``n_classes=K`` or the dataset's classes)."""
    from sedbench.data.features import params_from_config
    from sedbench.errors import SedbenchError
    from sedbench.models.crnn import build_model, count_parameters

    feats, _ = params_from_config(cfg.features)
    n_classes, sr = cfg.get("n_classes"), 44100
    if n_classes is None or feats.kind in ("stft", "waveform"):  # input width depends on the sample rate
        from sedbench.data.layouts import dataset_from_config

        try:
            ds = dataset_from_config(cfg.data)
        except SedbenchError as exc:
            if n_classes is None:
                raise SedbenchError(f"{exc}\n(or pass n_classes=K to count without the dataset)") from None
        else:
            n_classes, sr = n_classes or len(ds.classes), ds.sample_rate
    if cfg.model.get("arch") == "gmm":
        from sedbench.models.gmm import GMMDetector

        n = GMMDetector(range(int(n_classes)), cfg.model.n_components).n_parameters(feats.n_features(sr))
    else:
        n = count_parameters(build_model(cfg.model, feats.n_features(sr), int(n_classes)))
    print(f"{n:,} trainable parameters  ({cfg.model.name}, {n_classes} classes, {feats.n_features(sr)} input features)")
    return n
