"""``train(cfg)``: one configuration, trained and scored the paper's way, recorded in MLflow.

Reads top to bottom: seed, data, model, callbacks, logger, trainer, fit, test on the best
weights, record, return the optimized metric (validation F1_frm) for sweeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sedbench import tracking
from sedbench.hardware import peak_memory
from sedbench.metrics import registry

tracking.register_resolver()  # also in launcher processes, which compose nothing themselves


def run_name(cfg: DictConfig) -> str:
    """A name derived from the hyperparameters, so a re-run of a cell lands under the same name: the model's
    part comes from its architecture (sedbench.models.families)."""
    from sedbench.models.families import name_part

    batch = f"-bf{cfg.data.batch_frames}" if cfg.data.get("batch_frames") else ""
    return (f"{cfg.model.name}-{name_part(OmegaConf.to_container(cfg.model, resolve=True))}-seq{cfg.data.seq_len}"
            f"{batch}-{_data_tag(cfg)}-seed{cfg.seed}")


def _data_tag(cfg: DictConfig) -> str:
    """The dataset's name, with the fold for cross-validated datasets (``data.folds`` set)."""
    return f"{cfg.data.name}-fold{cfg.data.fold}" if cfg.data.get("folds") else str(cfg.data.name)


def output_dir(cfg: DictConfig) -> Path:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.get("run_dir") or Path("results/runs") / run_name(cfg))


def train(cfg: DictConfig) -> float:
    """One run. In a sweep (``trial.number`` set), everything it prints goes to ``trial.log`` in its run folder,
    also logged to its MLflow run, unless ``sweep.console=full``; the sweep's console shows one line for it.
    (Seeds a sweep trains together, ``trial.members``: :func:`sedbench.training.fused.train_job`.)"""
    t_enter = time.perf_counter()
    from sedbench.console import quiet_libraries, trial_output
    from sedbench.hardware import check_precision, reset_peak_memory

    full = str((cfg.get("sweep") or {}).get("console", "trials")) == "full"
    quiet_libraries(verbose=full)
    check_precision(cfg.trainer)  # before any record: bf16 emulated on this CPU is refused with the fix
    from sedbench.training.device import configure_numerics

    numerics = configure_numerics(cfg.trainer)  # determinism and the float32 policy, before anything uses CUDA
    reset_peak_memory()  # the run's own peak from here (a sweep's worker trains trials in turn)
    run_dir = output_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    in_sweep = (cfg.get("trial") or {}).get("number") is not None
    log_path = logger = None
    try:
        with trial_output(run_dir, capture=in_sweep and not full) as log_path:
            import pytorch_lightning as pl
            import torch

            pl.seed_everything(cfg.seed, workers=True)
            if cfg.trainer.get("num_threads"):
                torch.set_num_threads(int(cfg.trainer.num_threads))
            logger = tracking.make_logger(cfg, run_name(cfg))
            try:
                return _train(cfg, run_dir, logger, t_enter, numerics)
            except BaseException as exc:  # recorded, then raised: a sweep marks the trial failed and goes on
                tracking.record_failure(logger, run_dir, exc)
                raise
    finally:  # the log once complete (the traceback included), beside the run's other artifacts
        if log_path is not None and logger is not None:
            try:
                tracking.log_artifact(logger, log_path)
            except Exception as exc:  # tracking must not fail a trial that trained
                import logging

                logging.getLogger(__name__).warning("could not log %s to MLflow (%s)", log_path, exc)


def fit_interruptibly(trainer, module, datamodule) -> None:
    """``trainer.fit``, with Ctrl-C (or SIGTERM) raised as it came: Lightning answers a KeyboardInterrupt with its
    own shutdown message and ``sys.exit(1)``, which would record the run FAILED and end the command silently."""
    import logging

    class Quiet(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "Detected KeyboardInterrupt" not in record.getMessage()

    quiet = Quiet()
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning.trainer.call", "lightning.pytorch.trainer.call",
                                               "pytorch_lightning.utilities.rank_zero")]
    for lg in loggers:
        lg.addFilter(quiet)
    try:
        trainer.fit(module, datamodule=datamodule)
    except SystemExit as exc:
        if trainer.interrupted:  # the interrupt Lightning caught (Ctrl-C, or SIGTERM: sedbench.errors.Terminated)
            cause = exc.__context__
            raise (cause if isinstance(cause, KeyboardInterrupt) else KeyboardInterrupt()) from None
        raise
    finally:
        for lg in loggers:
            lg.removeFilter(quiet)


def _train(cfg: DictConfig, run_dir: Path, logger, t_enter: float, numerics: dict) -> float:
    import functools

    from sedbench.models.families import FRAMES, arch_of, build_model
    from sedbench.training.callbacks import TrialClock
    from sedbench.training.device import check_every
    from sedbench.training.module import SEDModule
    from sedbench.training.scoring import SplitScorer, psds_mode

    psds = psds_mode((cfg.get("evaluation") or {}).get("psds", True))  # a bad value fails before any training
    if arch_of(cfg.model).trains == FRAMES:  # fit/predict on whole files' frames, no Lightning (the GMM)
        return _train_frames(cfg, run_dir, logger, psds, machine("cpu", numerics))
    accelerator = str(cfg.trainer.accelerator)
    dm, hardware, provenance = load_data(cfg, numerics, logger, cfg.seed)
    net = build_model(cfg.model, n_in=dm.n_features, n_classes=len(dm.classes))
    if hasattr(net, "init_output_bias") and not dm.ds.weak:
        net.init_output_bias(dm.sets["train"].y)  # model.output_bias=prior: the training split's class priors
    costs = model_costs(cfg, net, dm.n_features)
    logger.log_hyperparams(costs)
    scorer = SplitScorer.for_datamodule(dm, cfg.threshold)
    objective = registry.objective(cfg.optimized_metric, weak=dm.ds.weak)  # refused here if the labels cannot
    monitor, mode = f"val/{objective.name}", objective.mode
    plateau = cfg.trainer.get("lr_plateau")
    module = SEDModule(net, weak=dm.ds.weak, weight_decay=float(cfg.model.get("weight_decay", 0.0)),
                       validate=functools.partial(scorer, "validation"), monitor=monitor, mode=mode,
                       lr_plateau=OmegaConf.to_container(plateau) if plateau else None,
                       check_every=check_every(accelerator))

    callbacks = []
    trial = cfg.get("trial") or {}
    if trial.get("number") is not None and cfg.sweep.pruner != "none":
        from sedbench.training.callbacks import OptunaPruning

        callbacks.append(OptunaPruning(trial.study, trial.storage, int(trial.number), cfg.sweep.pruner, monitor))
    checkpoint, stopper, curve = watchers(cfg.trainer, objective, run_dir)
    clock = TrialClock()  # first: a checkpoint written at a validation's end is not validation time
    trainer = make_trainer(cfg.trainer, [clock, curve, checkpoint, stopper, *callbacks], logger, run_dir, monitor,
                           objective.sign)
    t0 = time.perf_counter()
    meter = energy_meter(cfg)
    fit_interruptibly(trainer, module, dm)
    fit_seconds = time.perf_counter() - t0
    best = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else float("nan")
    fit = Fitted(best=best, best_path=checkpoint.best_model_path or None, points=curve.points,
                 stopped_early=stopper.stopped_epoch > 0,  # now: loading a checkpoint restores callbacks' states
                 budget=budget_status(trainer), epochs=trainer.current_epoch, steps=trainer.global_step,
                 fit_seconds=fit_seconds, timing={"startup": t0 - t_enter, **clock.split()},
                 val_outputs=lambda: best_validation_outputs(trainer, module, dm, checkpoint),
                 energy=meter.stop() if meter else None)
    run = Run(cfg, run_dir, logger, dm, net, costs, hardware, provenance)
    return test_and_record(run, module, trainer, scorer, objective, psds, fit, time.perf_counter() - t_enter)


@dataclass
class Run:
    """One run's configuration, folder, MLflow logger, data, network and what it records about itself."""
    cfg: DictConfig
    run_dir: Path
    logger: object
    dm: object
    net: object
    costs: dict                  # what the architecture costs: n_params, macs_per_10s (model_costs)
    hardware: dict
    provenance: dict
    group: str | None = None     # seeds trained together (sedbench.training.fused): the group's name


@dataclass
class Fitted:
    """What a finished fit leaves for testing and recording: a solo run's Lightning fit, or one member of seeds
    trained together (sedbench.training.fused)."""
    best: float                  # the best monitored validation score (nan: no validation)
    best_path: str | None        # a Lightning checkpoint of the best weights; None: the module's net holds them
    points: list                 # the validation curve, (step, value)
    stopped_early: bool
    budget: str                  # complete | truncated (sedbench.training.train.budget_status)
    epochs: int
    steps: int
    fit_seconds: float
    timing: dict                 # seconds: startup, steps, data, validation, fit_other
    val_outputs: Callable[[], object]  # the best epoch's validation outputs, for the post-processing's tuning
    energy: tuple[float, str] | None = None  # the fit's kWh and how they were obtained (energy_meter); None: off


def test_and_record(run: Run, module, trainer, scorer, objective, psds: str, fit: Fitted, wall_before: float) -> float:
    """Test the best weights, score them (segment, event-based, PSDS, post-processed), record everything
    (metrics.json, MLflow, artifacts) and print the run's summary; returns the best validation score.
    ``wall_before``: the run's seconds before this (its wall time goes on from there)."""
    from sedbench.training.callbacks import convergence

    cfg, run_dir, logger, dm = run.cfg, run.run_dir, run.logger, run.dm
    t_start = t_test = time.perf_counter()
    timing = dict(fit.timing)
    meter = energy_meter(cfg) if fit.energy else None
    outputs = predict_best(trainer, module, dm.test_dataloader(), fit.best_path)
    energy = energy_record(fit.energy, meter.stop() if meter else None)
    test = scorer("test", outputs, resolutions=(1.0,))
    timing["test"] = time.perf_counter() - t_test
    if not dm.ds.weak:  # event-based, PSDS, and all again after median filters tuned on validation
        t0 = time.perf_counter()
        ev = cfg.get("evaluation") or {}
        val_outputs = fit.val_outputs() if ev.get("postprocess", True) else None
        test.update(scorer.detection(outputs, val_outputs, psds=psds == "every"))
        test["detection_seconds"] = round(time.perf_counter() - t0, 3)
        timing["detection"] = test["detection_seconds"]
    monitor = f"val/{objective.name}"
    metrics = run_metrics(cfg, logger.run_id, {monitor: fit.best}, test, run.costs, fit.fit_seconds,
                          fit.epochs, dm.params.hop_seconds)
    metrics.update(budget=fit.budget, steps=fit.steps, hardware=run.hardware, provenance=run.provenance,
                   **peak_memory(), **energy)  # seeds trained together: their group's peak
    max_steps = cfg.trainer.get("max_steps") or 0
    metrics.update(convergence(fit.points, max_steps if max_steps > 0 else fit.steps,
                               stopped_early=fit.stopped_early, truncated=fit.budget == "truncated",
                               sign=objective.sign))
    metrics["val_curve"] = [list(p) for p in fit.points]
    if run.group:  # seeds trained together (sedbench.training.fused): the group's name, also an MLflow tag
        metrics["fused_group"] = run.group
    t_record = time.perf_counter()
    if "file_counts" in test:
        _log_file_counts(logger, run_dir, dm.ds, test)
    test_files = None if dm.ds.weak else scorer.files("test", outputs)
    if cfg.tracking.get("log_model", True):
        log_model(logger, cfg, dm, run.net, test_files, run_dir)
    if psds == "report" and test_files is not None:
        _keep_test_scores(logger, run_dir, test_files, scorer.references["test"], list(dm.classes),
                          dm.params.hop_seconds, test.get("median_filter_s"))
    timing["recording"] = time.perf_counter() - t_record  # the artifacts; metrics.json and its MLflow batch follow
    metrics.update(trial_timing(timing, wall_before + time.perf_counter() - t_start))
    tracking.record(logger, cfg, metrics, run_dir)
    print(summary(cfg, metrics, run_dir, logger))
    return fit.best


def energy_meter(cfg: DictConfig):
    """A started :class:`sedbench.energy.EnergyMeter` for the run's device, or None with ``energy.enabled=false``."""
    settings = cfg.get("energy") or {}
    if not settings.get("enabled", True):
        return None
    from sedbench.energy import EnergyMeter

    return EnergyMeter(float(settings.get("cpu_watts_per_core") or 10), nvml_index(str(cfg.trainer.accelerator))
                       ).start()


def nvml_index(accelerator: str) -> int | None:
    """The NVML index of the GPU this process uses (``CUDA_VISIBLE_DEVICES`` renumbers torch's); None on the CPU."""
    import os

    from sedbench.hardware import runs_on_cpu

    if runs_on_cpu(accelerator):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    current = torch.cuda.current_device()
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return int(visible[current]) if current < len(visible) and visible[current].isdigit() else current


def energy_record(train: tuple[float, str] | None, test: tuple[float, str] | None) -> dict:
    """What a run records of its energy: kWh of its training and of its test inference, and how they were obtained
    (one method when both were obtained alike)."""
    if train is None or test is None:
        return {}
    method = train[1] if train[1] == test[1] else f"training: {train[1]}; test: {test[1]}"
    return {"energy_train_kwh": round(train[0], 9), "energy_test_kwh": round(test[0], 9), "energy_method": method}


def watchers(trainer_cfg: DictConfig, objective, run_dir: Path) -> tuple:
    """What watches the objective (a :class:`sedbench.metrics.registry.Metric`, ``val/<name>``) after every
    validation, each in its direction: the best checkpoint, early stopping (after ``trainer.warmup_epochs``) and
    the validation curve."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    from sedbench.training.callbacks import ValidationCurve, WarmupEarlyStopping

    monitor = f"val/{objective.name}"
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=monitor,
                                 mode=objective.mode, save_top_k=1, save_last=False)
    stopper = WarmupEarlyStopping(trainer_cfg.get("warmup_epochs"), monitor=monitor, mode=objective.mode,
                                  patience=trainer_cfg.patience)
    return checkpoint, stopper, ValidationCurve(monitor)


def trial_timing(parts: dict, wall: float) -> dict:
    """A run's wall time by part, as ``time/<part>`` seconds (``sedbench.training.callbacks.TrialClock``):
    ``startup`` (data set-up, model, MLflow run; a process's first run also imports torch and Lightning here), the fit's
    ``steps``, ``data``, ``validation`` and ``fit_other``, ``test`` (prediction and segment scores),
    ``detection`` (event-based, PSDS, post-processing), ``recording`` (artifacts), ``wall`` (all of them, from
    ``train()``'s start to just before metrics.json is written), and ``outside_steps_share``, the share of that
    wall time not spent in training steps."""
    out = {f"time/{k}": round(float(v), 3) for k, v in parts.items()}
    out["time/wall"] = round(wall, 3)
    out["time/outside_steps_share"] = round(1.0 - parts.get("steps", 0.0) / wall, 4) if wall > 0 else None
    return out


def make_trainer(t: DictConfig, callbacks: list, logger, run_dir: Path, monitor: str = "val/f1_frm", sign: int = 1):
    """The Lightning Trainer of a ``trainer`` config (validation always covers every file). On a terminal,
    Lightning's progress bar; elsewhere (a trial's log file, a pipe), one line per epoch (``sign``: -1 when a
    smaller ``monitor`` is better)."""
    import sys

    import pytorch_lightning as pl

    from sedbench.training.callbacks import EpochLines

    bar = sys.stderr.isatty()
    if bar:
        from pytorch_lightning.callbacks import TQDMProgressBar

        from sedbench.training.device import bar_refresh

        callbacks = [*callbacks, TQDMProgressBar(refresh_rate=bar_refresh(t.accelerator))]
    else:
        callbacks = [*callbacks, EpochLines(monitor, sign=sign)]
    return pl.Trainer(enable_progress_bar=bar, accelerator=t.accelerator, devices=t.devices, precision=t.precision,
                      max_epochs=t.max_epochs, max_steps=t.get("max_steps") or -1,
                      max_time=t.max_time,
                      deterministic=t.deterministic,
                      limit_train_batches=t.limit_train_batches, log_every_n_steps=t.log_every_n_steps,
                      num_sanity_val_steps=0, callbacks=callbacks, logger=logger, default_root_dir=str(run_dir),
                      enable_model_summary=False)


def load_data(cfg: DictConfig, numerics: dict, logger, seed: int) -> tuple:
    """A run's data module, set up (features of every split, normalized), with the loader settings of its device;
    what it records about where it runs (``hardware``) and what produced it (``provenance``, tagged on its MLflow
    run at once). ``seed``: the training sampler's and the training copies' seed."""
    from sedbench.data.datamodule import build_datamodule
    from sedbench.hardware import release_freed_memory
    from sedbench.training.device import loader_options

    accelerator = str(cfg.trainer.accelerator)
    hardware = machine(accelerator, numerics)
    loader = loader_options(cfg.data.get("num_workers", "auto"), accelerator, cfg.trainer.get("num_threads"))
    hardware.update(loader_workers=loader["num_workers"], pin_memory=loader["pin_memory"])
    dm = build_datamodule(cfg.data, cfg.features, seed=seed, loader=loader)
    dm.setup("fit")
    release_freed_memory()  # what extracting the features freed: not held through training
    return dm, hardware, _provenance(logger, dm.ds, cfg.features.get("cache_dir"))


def _provenance(logger, ds, cache_dir: str | None) -> dict:
    """What produced this run (sedbench.provenance): its code, libraries and dataset fingerprint, tagged on its
    MLflow run at once and kept for metrics.json and the sweep's trial."""
    from sedbench.provenance import run_provenance

    provenance = run_provenance(ds, cache_dir)
    tracking.tag_provenance(logger, provenance)
    return provenance


def budget_status(trainer) -> str:
    """``truncated`` when the wall-clock guard (``trainer.max_time``) ended training before the step or epoch
    budget or early stopping did, else ``complete``: a truncated trial's scores depend on the machine's speed."""
    from pytorch_lightning.callbacks import Timer

    for callback in trainer.callbacks:
        if isinstance(callback, Timer):
            remaining = callback.time_remaining("train")
            if remaining is not None and remaining <= 0:
                return "truncated"
    return "complete"


def _keep_test_scores(logger, run_dir: Path, probs, references, classes, hop, filters) -> None:
    """For ``evaluation.psds=report``: the test probabilities (and what else PSDS needs) as an artifact, for
    ``sedbench report`` to compute PSDS from for the trials its tables show."""
    from sedbench.training.artifacts import TEST_SCORES_PATH, write_test_scores

    path = write_test_scores(run_dir / TEST_SCORES_PATH, probs, references, classes, hop, filters)
    tracking.log_artifact(logger, path, artifact_path=str(Path(TEST_SCORES_PATH).parent))


def _log_file_counts(logger, run_dir: Path, ds, test: dict) -> None:
    from sedbench.training.artifacts import write_file_counts

    names = [r.name for r in ds.recordings("test")]
    tracking.log_artifact(logger, write_file_counts(run_dir, names, test["file_counts"], sources=ds.sources("test")))


def predict_best(trainer, module, loader, best_path: str | None):
    """The model's outputs on ``loader`` (in loader order) with the best checkpoint's weights, loaded with
    ``weights_only=True``: a checkpoint file that holds anything but tensors and plain values (a pickled
    object could run code) is refused."""
    import pickle

    import numpy as np

    from sedbench.errors import DataError

    try:
        batches = trainer.predict(module, dataloaders=loader, ckpt_path=best_path, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DataError(best_path, f"refused to load this checkpoint: it holds more than weights "
                                   f"({str(exc).splitlines()[0][:200]})",
                        "delete it and train again; never load checkpoints from an untrusted source") from None
    return np.concatenate(batches)


def best_validation_outputs(trainer, module, dm, checkpoint):
    """The validation outputs of the best checkpoint's epoch: kept by the module when that validation scored
    them (the same weights, batches and ops as predicting again, so the same numbers: tests/test_train.py),
    else predicted again with the best checkpoint's weights. Predicting a paper-size validation split again
    took about as long as the test's prediction."""
    import numpy as np

    kept = module.best_val_outputs
    best = checkpoint.best_model_score
    if kept is not None and best is not None and np.float32(best.item()) == module._best_monitored:
        return kept
    return predict_best(trainer, module, dm.val_dataloader(), checkpoint.best_model_path or None)


def log_model(logger, cfg: DictConfig, dm, net, test_files, run_dir: Path) -> None:
    """The best weights as a bundle (``model/model.pt``) and, for strong labels, the test excerpt the report
    plots (``activity.npz``), so that evaluation and reports need only MLflow."""
    from sedbench.training.artifacts import (
        ACTIVITY_PATH,
        BUNDLE_PATH,
        bundle_from_training,
        write_activity,
    )

    path = bundle_from_training(net, cfg, dm).save(run_dir / BUNDLE_PATH)
    tracking.log_artifact(logger, path, artifact_path=str(Path(BUNDLE_PATH).parent))
    if test_files:
        test = dm.sets["test"]
        names = [rec.name for rec in dm.ds.recordings("test")]
        write_activity(run_dir / ACTIVITY_PATH, names, test.features, test.targets, test_files,
                       list(dm.classes), dm.params.hop_seconds)
        tracking.log_artifact(logger, run_dir / ACTIVITY_PATH)


def machine(accelerator: str, numerics: dict) -> dict:
    """What a run records about where it ran (metrics.json ``hardware``, MLflow tags ``hardware.*``): the device,
    the CPU, and on CUDA the GPU, CUDA, cuDNN and driver (sedbench.hardware), with the numerics policy."""
    from sedbench.hardware import run_hardware

    return {**run_hardware(accelerator), **numerics}


def _train_frames(cfg: DictConfig, run_dir: Path, logger, psds: str, hardware: dict) -> float:
    """A frames model (sedbench.models.families, e.g. the GMM baseline): ``fit`` on the training files' frames,
    ``predict`` on each validation and test file, scored like the networks and recorded alike (no Lightning)."""
    from sedbench.data.datamodule import split_features
    from sedbench.data.features import FeatureCache, params_from_config
    from sedbench.data.layouts import dataset_from_config
    from sedbench.errors import ConfigError
    from sedbench.models.families import build_model
    from sedbench.training.scoring import SplitScorer, detection_metrics

    ds = dataset_from_config(cfg.data)
    provenance = _provenance(logger, ds, cfg.features.get("cache_dir"))
    if ds.weak:
        raise ConfigError(f"model={cfg.model.name} needs frame-level (strong) labels; {ds.name} has clip labels. Fix: "
                          "a strongly labelled dataset (synth, tut_sed_*, urban_sed, desed, folder)")
    objective = registry.objective(cfg.optimized_metric, weak=False)  # before the fit: refused at once
    params, cache_dir = params_from_config(cfg.features)
    cache = FeatureCache(cache_dir)
    n_features = params.n_features(ds.sample_rate)
    model = build_model(cfg.model, n_features, len(ds.classes), classes=list(ds.classes),
                        hop_seconds=params.hop_seconds, seed=cfg.seed)
    costs = model_costs(cfg, model, n_features)
    logger.log_hyperparams(costs)
    train_features = split_features(ds, "train", params, cache)
    t0 = time.perf_counter()
    meter = energy_meter(cfg)
    model.fit(*train_features)
    fit_seconds = time.perf_counter() - t0
    train_energy = meter.stop() if meter else None
    refs = {split: [r.events for r in ds.recordings(split)] for split in ("validation", "test")}
    scorer = SplitScorer({}, ds.classes, params.hop_seconds, cfg.threshold, references=refs)
    scores, probs, feats = {}, {}, {}
    for split in ("validation", "test"):
        feats[split] = split_features(ds, split, params, cache)
        meter = energy_meter(cfg) if split == "test" and train_energy else None
        probs[split] = [model.predict(f) for f in feats[split][0]]
        test_energy = meter.stop() if meter else None
        scores[split] = scorer.score_files(split, probs[split], (1.0,) if split == "test" else ())
    t0 = time.perf_counter()
    ev = cfg.get("evaluation") or {}
    scores["test"].update(detection_metrics(refs["validation"], probs["validation"], refs["test"], probs["test"],
                                            ds.classes, params.hop_seconds, cfg.threshold,
                                            psds == "every", ev.get("postprocess", True)))
    scores["test"]["detection_seconds"] = round(time.perf_counter() - t0, 3)
    val = scores["validation"][objective.name]
    logger.log_metrics({f"val/{m.name}": scores["validation"][m.name] for m in registry.metrics(validation=True)
                        if m.name in scores["validation"]}, step=0)
    metrics = run_metrics(cfg, logger.run_id, {f"val/{objective.name}": val}, scores["test"], costs, fit_seconds,
                          0, params.hop_seconds)
    # EM to convergence (max_iter), no clock; on the CPU
    metrics.update(budget="complete", hardware=hardware, provenance=provenance, **peak_memory(),
                   **energy_record(train_energy, test_energy))
    tracking.record(logger, cfg, metrics, run_dir)
    _log_file_counts(logger, run_dir, ds, scores["test"])
    if cfg.tracking.get("log_model", True):  # the same bundle and test excerpt as a network's
        _log_frames_model(logger, cfg, model, ds, params, feats["test"], probs["test"], run_dir)
    if psds == "report":
        _keep_test_scores(logger, run_dir, probs["test"], refs["test"], list(ds.classes), params.hop_seconds,
                          scores["test"].get("median_filter_s"))
    logger.finalize("success")
    print(summary(cfg, metrics, run_dir, logger))
    return val


def _log_frames_model(logger, cfg: DictConfig, model, ds, params, test, probs, run_dir: Path) -> None:
    """A frames model's bundle (its fitted state as arrays, raw features: an identity normalizer) and test
    excerpt, so that ``evaluate`` and the report read it as they read a network's."""
    from sedbench.data.features import Normalizer
    from sedbench.training.artifacts import ACTIVITY_PATH, BUNDLE_PATH, Bundle, write_activity

    n = params.n_features(ds.sample_rate)
    bundle = Bundle(model, OmegaConf.to_container(cfg.model, resolve=True), params, Normalizer.identity(n),
                    list(ds.classes), ds.sample_rate, int(cfg.data.seq_len), float(cfg.threshold),
                    OmegaConf.to_container(cfg.data, resolve=True))
    path = bundle.save(run_dir / BUNDLE_PATH)
    tracking.log_artifact(logger, path, artifact_path=str(Path(BUNDLE_PATH).parent))
    names = [rec.name for rec in ds.recordings("test")]
    write_activity(run_dir / ACTIVITY_PATH, names, test[0], test[1], probs, list(ds.classes), params.hop_seconds)
    tracking.log_artifact(logger, run_dir / ACTIVITY_PATH)


def model_costs(cfg: DictConfig, net, n_features: int) -> dict:
    """What the run's architecture costs, recorded wherever its parameter count goes: ``n_params`` and
    ``macs_per_10s``, its multiply-accumulates per 10 s of audio at the run's frame rate, evaluated sequence by
    sequence of ``data.seq_len`` frames (:mod:`sedbench.models.macs`; feature extraction not counted)."""
    from sedbench.data.features import params_from_config
    from sedbench.models.families import count_parameters
    from sedbench.models.macs import count_macs

    hop = params_from_config(cfg.features)[0].hop_seconds
    return {"n_params": count_parameters(net, n_features),
            "macs_per_10s": count_macs(net, n_features, int(cfg.data.seq_len), hop)}


def run_metrics(cfg: DictConfig, run_id: str, validation: dict, test: dict, costs: dict,
                fit_seconds: float, epochs: int, hop_seconds: float) -> dict:
    """What a finished run records (metrics.json, MLflow, the sweep's trial attributes); ``costs``: its
    :func:`model_costs`; ``hop_seconds``, the features' frame hop, turns frame counts (sequence lengths) into
    seconds in the reports."""
    return {**validation, **registry.as_record(test, RUN_FIGURES), **costs,
            "fit_seconds": round(fit_seconds, 2), "epochs": epochs, "family": cfg.model.family,
            "run_name": run_name(cfg), "mlflow_run_id": run_id, "hop_seconds": hop_seconds}


# figures of a test evaluation that are not scores: the tuned median filter lengths, the seconds it all took
RUN_FIGURES = ("median_filter_s", "detection_seconds")


def summary(cfg: DictConfig, metrics: dict, run_dir: Path, logger) -> str:
    keys = [k for k in metrics if k.startswith("val/")]  # the objective
    keys += [f"test/{m.name}" for m in registry.metrics(summary=True) if f"test/{m.name}" in metrics]
    lines = [f"\n{run_name(cfg)}  ({metrics['n_params']:,} parameters, {metrics['epochs']} epochs, "
             f"{metrics['fit_seconds']:.0f} s fit)"]
    width = max(len(k) for k in keys) + 2 if keys else 0
    lines += [f"  {k:<{width}}{metrics[k]:.4f}" for k in keys]
    if cfg.model.get("class_summary") and "class_wise_test_precision" in metrics:
        lines.append(f"  {'class (test, frames)':<28}{'P %':>7}{'R %':>7}{'F1 %':>7}")
        for c, f1 in metrics["class_wise_test_f1"].items():
            lines.append(f"  {c:<28}{100 * metrics['class_wise_test_precision'][c]:>7.1f}"
                         f"{100 * metrics['class_wise_test_recall'][c]:>7.1f}{100 * f1:>7.1f}")
    lines.append(f"  run folder: {run_dir}   MLflow run: {logger.run_id} ({cfg.tracking.uri})")
    return "\n".join(lines)
