"""``train(cfg)``: one configuration, trained and scored the paper's way, recorded in MLflow.

Reads top to bottom: seed, data, model, callbacks, logger, trainer, fit, test on the best
weights, record, return the optimized metric (validation F1_frm) for sweeps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def run_name(cfg: DictConfig) -> str:
    """A name derived from the hyperparameters, so a re-run of a cell lands under the same name."""
    m = cfg.model
    if m.get("arch", "crnn") != "crnn":
        knobs = "-".join(f"{k}{'.'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                         for k, v in OmegaConf.to_container(m, resolve=True).items()
                         if k not in ("name", "family", "arch", "dropout", "class_summary", "hop_seconds",
                                      "frame_seconds", "blocks", "weight_decay"))
        return f"{m.name}-{knobs}-seq{cfg.data.seq_len}-{_data_tag(cfg)}-seed{cfg.seed}"
    pool = ".".join(str(p) for p in m.pool) or "none"
    kernel = "x".join(str(k) for k in m.kernel)
    return (f"{m.name}-maps{m.maps}-pool{pool}-rnn{m.rnn_layers}{m.cell if m.rnn_layers else ''}"
            f"-fnn{m.fnn_layers}-k{kernel}-seq{cfg.data.seq_len}-{_data_tag(cfg)}-seed{cfg.seed}")


def _data_tag(cfg: DictConfig) -> str:
    """The dataset's name, with the fold for cross-validated datasets (``data.folds`` set)."""
    return f"{cfg.data.name}-fold{cfg.data.fold}" if cfg.data.get("folds") else str(cfg.data.name)


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


def output_dir(cfg: DictConfig) -> Path:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.get("run_dir") or Path("results/runs") / run_name(cfg))


def train(cfg: DictConfig) -> float:
    import pytorch_lightning as pl
    import torch

    from sedbench.hardware import check_precision

    check_precision(cfg.trainer)  # before any record: bf16 emulated on this CPU is refused with the fix
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    run_dir = output_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    logger = make_logger(cfg)
    try:
        return _train(cfg, run_dir, logger)
    except BaseException as exc:  # recorded, then raised: a sweep marks the trial failed (or pruned) and goes on
        record_failure(logger, run_dir, exc)
        raise


def _train(cfg: DictConfig, run_dir: Path, logger) -> float:
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from sedbench.data.datamodule import build_datamodule
    from sedbench.models.crnn import build_model, count_parameters
    from sedbench.training.module import SEDModule

    if cfg.model.get("arch") == "gmm":
        return _train_gmm(cfg, run_dir, logger)
    dm = build_datamodule(cfg.data, cfg.features, seed=cfg.seed)
    dm.setup("fit")
    net = build_model(cfg.model, n_in=dm.n_features, n_classes=len(dm.classes))
    n_params = count_parameters(net)
    logger.log_hyperparams({"n_params": n_params})
    module = SEDModule(net, dm.classes, hop=dm.params.hop_seconds, threshold=cfg.threshold, weak=dm.ds.weak,
                       weight_decay=float(cfg.model.get("weight_decay", 0.0)))
    monitor = "val/f1_clip" if dm.ds.weak else cfg.optimized_metric

    callbacks = []
    trial = cfg.get("trial") or {}
    if trial.get("number") is not None and cfg.sweep.pruner != "none":
        from sedbench.training.callbacks import OptunaPruning

        callbacks.append(OptunaPruning(trial.study, trial.storage, int(trial.number), cfg.sweep.pruner, monitor))
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode="max",
                                 save_top_k=1, save_last=False)
    stopper = EarlyStopping(monitor=monitor, mode="max", patience=cfg.trainer.patience)
    return _fit_and_test(cfg, dm, module, monitor, [checkpoint, stopper, *callbacks], checkpoint, logger, run_dir,
                         n_params)


def _fit_and_test(cfg, dm, module, monitor, callbacks, checkpoint, logger, run_dir, n_params) -> float:
    import pytorch_lightning as pl

    t = cfg.trainer
    trainer = pl.Trainer(accelerator=t.accelerator, devices=t.devices, precision=t.precision,
                         max_epochs=t.max_epochs, max_time=t.max_time, deterministic=t.deterministic,
                         limit_train_batches=t.limit_train_batches,  # validation always covers every file
                         log_every_n_steps=t.log_every_n_steps, num_sanity_val_steps=0,
                         callbacks=callbacks, logger=logger, default_root_dir=str(run_dir),
                         enable_model_summary=False)
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    fit_seconds = time.perf_counter() - t0
    score_best_checkpoint(trainer, module, dm, checkpoint.best_model_path or None)

    test = module.scores["test"]
    best = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else float("nan")
    metrics = run_metrics(cfg, logger, {monitor: best}, test, dm.ds.weak, n_params, fit_seconds,
                          trainer.current_epoch)
    record(logger, cfg, metrics, run_dir)
    if cfg.tracking.get("log_model", True):
        log_model(logger, cfg, dm, module, run_dir)
    print(summary(cfg, metrics, run_dir, logger))
    return best


def score_best_checkpoint(trainer, module, dm, best_path: str | None) -> None:
    """Test with the best checkpoint's weights, loaded with ``weights_only=True``: a checkpoint file that
    holds anything but tensors and plain values (a pickled object could run code) is refused."""
    import pickle

    from sedbench.errors import DataError

    try:
        trainer.test(module, datamodule=dm, ckpt_path=best_path, verbose=False, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DataError(best_path, f"refused to load this checkpoint: it holds more than weights "
                                   f"({str(exc).splitlines()[0][:200]})",
                        "delete it and train again; never load checkpoints from an untrusted source") from None


def log_model(logger, cfg: DictConfig, dm, module, run_dir: Path) -> None:
    """The best weights as a bundle (``model/model.pt``) and, for strong labels, the test excerpt the report
    plots (``activity.npz``), so that evaluation and reports need only MLflow."""
    from sedbench.training.artifacts import (
        ACTIVITY_PATH,
        BUNDLE_PATH,
        bundle_from_training,
        write_activity,
    )

    client, run_id = logger.experiment, logger.run_id
    path = bundle_from_training(module.net, cfg, dm).save(run_dir / BUNDLE_PATH)
    client.log_artifact(run_id, str(path), artifact_path=str(Path(BUNDLE_PATH).parent))
    if module.test_probs and not dm.ds.weak:
        test = dm.sets["test"]
        names = [rec.name for rec in dm.ds.recordings("test")]
        write_activity(run_dir / ACTIVITY_PATH, names, test.features, test.targets, module.test_probs,
                       list(dm.classes), dm.params.hop_seconds)
        client.log_artifact(run_id, str(run_dir / ACTIVITY_PATH))


def _train_gmm(cfg: DictConfig, run_dir: Path, logger) -> float:
    """The GMM baseline: EM on the training frames, scored like the networks, recorded alike (no Lightning)."""
    from sedbench.data.datamodule import split_features
    from sedbench.data.features import FeatureCache, params_from_config
    from sedbench.data.layouts import dataset_from_config
    from sedbench.errors import ConfigError
    from sedbench.metrics.segment import score_activity
    from sedbench.models.crnn import model_config
    from sedbench.models.gmm import GMMDetector

    model_config(cfg.model)  # every key known
    ds = dataset_from_config(cfg.data)
    if ds.weak:
        raise ConfigError(f"model=gmm needs frame-level (strong) labels; {ds.name} has clip labels. Fix: a strongly "
                          "labelled dataset (synth, tut_sed_*, urban_sed, desed, folder)")
    params, cache_dir = params_from_config(cfg.features)
    cache = FeatureCache(cache_dir)
    m = cfg.model
    gmm = GMMDetector(ds.classes, m.n_components, m.window_seconds, params.hop_seconds, m.get("max_frames"),
                      m.max_iter, cfg.seed)
    n_params = gmm.n_parameters(params.n_features(ds.sample_rate))
    logger.log_hyperparams({"n_params": n_params})
    train_features = split_features(ds, "train", params, cache)
    t0 = time.perf_counter()
    gmm.fit(*train_features)
    fit_seconds = time.perf_counter() - t0
    scores = {}
    for split in ("validation", "test"):
        feats, _ = split_features(ds, split, params, cache)
        probs = [gmm.predict(f) for f in feats]
        scores[split] = score_activity([r.events for r in ds.recordings(split)], probs, ds.classes,
                                       params.hop_seconds, cfg.threshold, (1.0,) if split == "test" else ())
    val = scores["validation"]["f1_frm"]
    logger.log_metrics({"val/f1_frm": val, "val/er_frm": scores["validation"]["er_frm"]}, step=0)
    metrics = run_metrics(cfg, logger, {"val/f1_frm": val}, scores["test"], False, n_params, fit_seconds, 0)
    record(logger, cfg, metrics, run_dir)
    logger.finalize("success")
    print(summary(cfg, metrics, run_dir, logger))
    return val


def make_logger(cfg: DictConfig):
    from pytorch_lightning.loggers import MLFlowLogger

    from sedbench.sweep import make_sqlite_folder

    uri = cfg.tracking.uri
    make_sqlite_folder(uri)
    tags = {"family": cfg.model.family, "model": cfg.model.name, "dataset": cfg.data.name, "seed": str(cfg.seed)}
    trial = cfg.get("trial") or {}
    if trial.get("number") is not None:
        tags.update({"sweep": str(trial.study), "trial": str(trial.number)})
        if trial.get("parent_run_id"):
            tags["mlflow.parentRunId"] = str(trial.parent_run_id)  # nests the trial under its sweep in the UI
    logger = MLFlowLogger(experiment_name=cfg.tracking.experiment, tracking_uri=uri, tags=tags,
                          run_name=cfg.tracking.run_name or run_name(cfg), artifact_location=artifact_location(cfg.tracking))
    logger.log_hyperparams(flatten(OmegaConf.to_container(cfg, resolve=True)))
    return logger


def artifact_location(tracking) -> str | None:
    """Where a new experiment keeps its artifacts: the project's folder with a local store; with a
    tracking server (http/https), the server's own artifact store (``mlflow server --artifacts-destination``),
    so that workers on other machines need no shared file system."""
    if str(tracking.uri).startswith(("http://", "https://")):
        return None
    return Path(tracking.get("artifacts") or "results/mlartifacts").resolve().as_uri()


def ensure_experiment(client, tracking) -> str:
    """The experiment id of ``tracking.experiment``, created with the project's artifact folder."""
    exp = client.get_experiment_by_name(tracking.experiment)
    if exp is not None:
        return exp.experiment_id
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(tracking.experiment, artifact_location=artifact_location(tracking))
    except MlflowException:  # created by another worker meanwhile
        return client.get_experiment_by_name(tracking.experiment).experiment_id


def record_failure(logger, run_dir: Path, exc: BaseException) -> None:
    """Keep the traceback as an MLflow artifact and mark the run failed (killed when pruned or interrupted)."""
    import traceback

    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        (run_dir / "traceback.txt").write_text(text)
        client, run_id = logger.experiment, logger.run_id
        client.log_artifact(run_id, str(run_dir / "traceback.txt"))
        pruned = type(exc).__name__ == "TrialPruned"
        client.set_tag(run_id, "outcome", "pruned" if pruned else type(exc).__name__)
        client.set_terminated(run_id, "KILLED" if pruned or isinstance(exc, KeyboardInterrupt) else "FAILED")
    except Exception:  # recording must never hide the original error
        pass


# metrics.json key of a class-wise dict -> MLflow metric prefix (one metric per class)
CLASS_METRICS = {"class_wise_test_f1": "test/f1_frm", "class_wise_test_precision": "test/precision_frm",
                 "class_wise_test_recall": "test/recall_frm", "class_wise_test_eer": "test/eer"}


def run_metrics(cfg: DictConfig, logger, validation: dict, test: dict, weak: bool, n_params: int,
                fit_seconds: float, epochs: int) -> dict:
    """What a finished run records (metrics.json, MLflow, the sweep's trial attributes)."""
    return {**validation, **scores_as_metrics(test, weak), "n_params": n_params, "fit_seconds": round(fit_seconds, 2),
            "epochs": epochs, "family": cfg.model.family, "run_name": run_name(cfg), "mlflow_run_id": logger.run_id}


def scores_as_metrics(test: dict, weak: bool) -> dict:
    """Test scores as metrics.json keys: overall figures as ``test/<name>``, class-wise dicts by name."""
    out = {f"test/{k}": v for k, v in test.items() if not isinstance(v, dict)}
    if weak:
        out["class_wise_test_eer"] = test["class_wise"]
    else:
        out.update(class_wise_test_f1=test["class_wise"], class_wise_test_precision=test["class_precision"],
                   class_wise_test_recall=test["class_recall"])
    return out


def record(logger, cfg: DictConfig, metrics: dict, run_dir: Path) -> None:
    """metrics.json and the resolved config in the run folder; final metrics and artifacts in MLflow."""
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    from mlflow.entities import Metric

    client, run_id = logger.experiment, logger.run_id
    now, batch = int(time.time() * 1000), []
    for key, value in metrics.items():
        if isinstance(value, str):
            continue
        if isinstance(value, dict):
            batch += [Metric(f"{CLASS_METRICS[key]}/{label}", float(v), now, 0) for label, v in value.items()]
        elif isinstance(value, (int, float)):  # the best validation score beside its per-epoch curve
            batch.append(Metric(f"{key}_best" if key.startswith("val/") else key, float(value), now, 0))
    for i in range(0, len(batch), 1000):  # one request per 1000 metrics (MLflow's limit), not one per metric
        client.log_batch(run_id, metrics=batch[i:i + 1000])
    client.log_artifact(run_id, str(run_dir / "config.yaml"))
    client.log_artifact(run_id, str(run_dir / "metrics.json"))


def summary(cfg: DictConfig, metrics: dict, run_dir: Path, logger) -> str:
    keys = [k for k in ("val/f1_frm", "val/f1_clip", "test/f1_frm", "test/er_frm", "test/f1_1sec", "test/er_1sec",
                        "test/f1_clip", "test/eer", "test/accuracy") if k in metrics]
    lines = [f"\n{run_name(cfg)}  ({metrics['n_params']:,} parameters, {metrics['epochs']} epochs, "
             f"{metrics['fit_seconds']:.0f} s fit)"]
    lines += [f"  {k:<14}{metrics[k]:.4f}" for k in keys]
    if cfg.model.get("class_summary") and "class_wise_test_precision" in metrics:
        lines.append(f"  {'class (test, frames)':<28}{'P %':>7}{'R %':>7}{'F1 %':>7}")
        for c, f1 in metrics["class_wise_test_f1"].items():
            lines.append(f"  {c:<28}{100 * metrics['class_wise_test_precision'][c]:>7.1f}"
                         f"{100 * metrics['class_wise_test_recall'][c]:>7.1f}{100 * f1:>7.1f}")
    lines.append(f"  run folder: {run_dir}   MLflow run: {logger.run_id} ({cfg.tracking.uri})")
    return "\n".join(lines)


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
