"""A toy task under the real config and sweeper, for orchestration tests.

``model.maps`` identifies the cell. ``+toy.*`` options: ``sleep`` (s per trial), ``fail``
and ``nan`` (lists of maps values that raise or return NaN), ``slow`` (maps values that sleep
``slow_sleep`` s instead), ``log`` (a file where every
started training appends its cell: the tests count trainings per cell), ``epochs`` (reported
to the pruning callback as validation F1 = 1 / maps, so larger maps are worse), ``provenance``
(record what train() records of code, libraries and dataset), ``touch`` (a file to append a line to when
the trial is done: a tracked file of a checkout changed between two trials), ``fail_seeds`` (seeds whose
member fails when seeds train together, ``trial.members``: each member is then trained and recorded in turn, as
sedbench.training.fused does, its trial told the moment it is recorded), ``die_once`` (maps values whose process
exits at once, without a word, the first time they train: a job its engine lost).
"""

import copy
import json
import os
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def toy(cfg):
    if cfg.trial.get("members"):
        return toy_group(cfg)
    return toy_trial(cfg)


def toy_group(cfg) -> dict:
    """Seeds trained together: each member in turn, recorded in its own run folder and told to the study."""
    from omegaconf import open_dict

    from sedbench.studies import tell_member

    toy, results = cfg.get("toy") or {}, {}
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    for number, seed in cfg.trial.members:
        member = copy.deepcopy(cfg)
        with open_dict(member):
            member.seed, member.trial.number, member.trial.members = seed, number, None
        out = job_dir.parent / str(number)
        try:
            value = toy_trial(member, out, group=int(cfg.trial.number))
            if seed in (toy.get("fail_seeds") or []):
                raise RuntimeError(f"toy failure for seed={seed}")
            result = {"state": "complete", "value": value, "output_dir": str(out)}
        except Exception as exc:
            result = {"state": "failed", "error": f"{type(exc).__name__}: {exc}", "output_dir": str(out)}
        tell_member(str(cfg.trial.storage), str(cfg.trial.study), int(number), result)
        results[int(number)] = result
    return results


def toy_trial(cfg, out: Path | None = None, group: int | None = None) -> float:
    toy = cfg.get("toy") or {}
    maps = int(cfg.model.maps)
    if toy.get("log"):  # the cell (maps, and the seed when swept), the process, the job's first trial
        cell = f"{maps}/{cfg.seed}" if toy.get("seeds") else str(maps)
        with open(toy.log, "a") as f:
            f.write(f"{cell} {os.getpid()} {group if group is not None else cfg.trial.number}\n")
    value = 1.0 / maps
    if cfg.trial.number is not None and cfg.sweep.pruner != "none":
        from types import SimpleNamespace

        from sedbench.training.callbacks import OptunaPruning

        cb = OptunaPruning(cfg.trial.study, cfg.trial.storage, int(cfg.trial.number), cfg.sweep.pruner, "val/f1_frm")
        for epoch in range(int(toy.get("epochs", 5))):
            cb.on_validation_end(SimpleNamespace(callback_metrics={"val/f1_frm": value}, current_epoch=epoch,
                                                 sanity_checking=False), None)
    time.sleep(float(toy.get("slow_sleep", 0)) if maps in (toy.get("slow") or []) else float(toy.get("sleep", 0)))
    if maps in (toy.get("die_once") or []) and toy.get("log"):  # the process dies once (an engine loses its job)
        mark = Path(f"{toy.log}.died-{maps}")
        if not mark.exists():
            mark.touch()
            os._exit(137)
    if maps in (toy.get("fail") or []):
        raise RuntimeError(f"toy failure for maps={maps}")
    if maps in (toy.get("nan") or []):
        return float("nan")
    out = out or Path(HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {"val/f1_frm": value, "test/f1_frm": value, "n_params": maps, "fit_seconds": float(toy.get("sleep", 0)),
               "family": "toy", "hop_seconds": 0.02, "macs_per_10s": 1000 * maps,  # what train() records of costs
               "energy_train_kwh": 1e-6 * maps, "energy_test_kwh": 1e-7 * maps, "energy_method": "toy"}
    if toy.get("provenance"):   # what train() records: code, libraries, the dataset's fingerprint
        from sedbench.data.layouts import dataset_from_config
        from sedbench.provenance import run_provenance

        metrics["provenance"] = run_provenance(dataset_from_config(cfg.data))
    (out / "metrics.json").write_text(json.dumps(metrics))
    if toy.get("touch"):   # change a tracked file of the code's checkout once this trial is done
        with open(toy.touch, "a") as f:
            f.write(f"# changed after trial {cfg.trial.number}\n")
    return value


if __name__ == "__main__":
    from sedbench.commands.launch import as_task

    # the task as sedbench runs train(): in a sweep, its process ends with the sweep's (packing.exit_with_sweeper)
    sys.exit(hydra.main(config_path=CONF, config_name="config", version_base="1.3")(as_task(toy))())
