"""A toy task under the real config and sweeper, for orchestration tests.

``model.maps`` identifies the cell. ``+toy.*`` options: ``sleep`` (s per trial), ``fail``
and ``nan`` (lists of maps values that raise or return NaN), ``slow`` (maps values that sleep
``slow_sleep`` s instead), ``log`` (a file where every
started training appends its cell: the tests count trainings per cell), ``epochs`` (reported
to the pruning callback as validation F1 = 1 / maps, so larger maps are worse), ``provenance``
(record what train() records of code, libraries and dataset), ``touch`` (a file to append a line to when
the trial is done: a tracked file of a checkout changed between two trials).
"""

import json
import os
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def toy(cfg) -> float:
    toy = cfg.get("toy") or {}
    maps = int(cfg.model.maps)
    if toy.get("log"):
        with open(toy.log, "a") as f:
            f.write(f"{maps} {os.getpid()}\n")
    value = 1.0 / maps
    if cfg.trial.number is not None and cfg.sweep.pruner != "none":
        from types import SimpleNamespace

        from sedbench.training.callbacks import OptunaPruning

        cb = OptunaPruning(cfg.trial.study, cfg.trial.storage, int(cfg.trial.number), cfg.sweep.pruner, "val/f1_frm")
        for epoch in range(int(toy.get("epochs", 5))):
            cb.on_validation_end(SimpleNamespace(callback_metrics={"val/f1_frm": value}, current_epoch=epoch,
                                                 sanity_checking=False), None)
    time.sleep(float(toy.get("slow_sleep", 0)) if maps in (toy.get("slow") or []) else float(toy.get("sleep", 0)))
    if maps in (toy.get("fail") or []):
        raise RuntimeError(f"toy failure for maps={maps}")
    if maps in (toy.get("nan") or []):
        return float("nan")
    out = Path(HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {"val/f1_frm": value, "test/f1_frm": value, "n_params": maps, "fit_seconds": float(toy.get("sleep", 0)),
               "family": "toy", "hop_seconds": 0.02}
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
