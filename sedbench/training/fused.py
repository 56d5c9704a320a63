"""Seeds of one configuration trained together as one computation: ``train_group(cfg)`` (issue 37).

A sweep's cells that differ only in ``seed`` (``sweep.fuse=auto``) run as one trial process whose members are
those seeds. The members train as one :class:`sedbench.models.fused.FusedCRNN` (each member's own conv blocks,
block-diagonal recurrent layers, grouped dense layers), each on its own batches, and everything else stays each
member's own, as its solo run (``sedbench.training.train``) has it:

* its initial weights: built under its seed exactly as the solo run builds them (bit for bit);
* its batches: its own sampler (the order drawn from its seed and the epoch), and its own random generator, which
  starts where the solo run's global generator is after building the network and makes the same draws in the same
  order: each data-loader iterator's base seed (one draw per training epoch, and per validation when the loader's
  workers are not persistent) and every dropout mask;
* its early stopping (after the warm-up), best weights, validation curve, pruning, divergence check and wall-clock
  guard, decided as Lightning's callbacks decide them for a solo run;
* its records: MLflow run, run folder, metrics.json, file_counts.csv, tested and recorded by the very code a solo
  run uses (``test_and_record``), with one tag more: ``fused_group``; and its Optuna trial, told its end by this
  process the moment the member is recorded (``sedbench.studies.tell_member``).

A member that stops (early stopping, pruning, divergence) leaves the group: the others are fused again without it
(their weights, batch-norm statistics, optimizer state and random generators carried on), so it costs nothing
more. Each member's share of the wall time is recorded as its ``fit_seconds`` and ``time/*`` (every step's time
split equally among the members in it), so a study's summed trial times stay the machine time it took.

**Exactness.** Block-diagonal and grouped products sum in another order than the solo kernels: a member's training
losses follow its solo run's to the 6 decimals MLflow keeps over the epochs measured, its validation scores within
a few 1e-4 (rounding noise in the conv biases' gradients, which Adam turns into small steps; tests/
test_fused_training.py states and measures the tolerance).

Not fused (``sedbench.models.fused.fuse_reason`` says why, the sweep's console shows it, and those seeds run
solo): architectures other than the CRNN family (the GMM, the attention and VGGish models), bidirectional
recurrent layers, temporal pooling and clip labels, training copies (``data.augment``: they depend on the seed),
``trainer.lr_plateau`` (one learning rate per member), precisions other than 32 and bf16-mixed, more than one
device, and on the CPU models wider than 48 maps or units (``sedbench.models.fused.FUSE_ON_CPU_MAX_MAPS``: there
the block-diagonal layers' wasted products outweigh what fusing saves; measured widths and ratios beside it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from sedbench import tracking

log = logging.getLogger(__name__)

def member_config(cfg: DictConfig, number: int | None, seed: int) -> DictConfig:
    """The configuration of member ``seed`` (trial ``number``): the group's, with its own seed and trial."""
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(out):
        out.seed = int(seed)
        if number is not None:
            out.trial.number = int(number)
        if "members" in (out.get("trial") or {}):
            out.trial.members = None
    return out


@dataclass
class Member:
    """One seed of a group: its configuration, records, network, data order and random generator, and where its
    training stands."""
    number: int | None
    seed: int
    cfg: DictConfig
    run_dir: Path
    logger: object = None
    net: object = None                # its solo network: its best weights are loaded into it for the test
    costs: dict = field(default_factory=dict)  # its architecture's n_params and macs_per_10s (train.model_costs)
    energy: tuple | None = None       # its share of the group's training energy (kWh, method); None: not measured
    gen: object = None                # its CPU generator (data loaders' draws; dropout on the CPU)
    cuda_state: object = None         # its CUDA generator state (dropout on CUDA)
    loader: object = None
    pruning: object = None            # its Optuna trial's reporter (sweep.pruner)
    outcome: str = "training"         # training | done | failed | pruned
    error: BaseException | None = None
    best: np.float32 | None = None    # the best monitored score, decided as the best checkpoint decides it
    best_weights: dict | None = None
    best_val: np.ndarray | None = None
    stop_best: float | None = None    # early stopping's own best (after the warm-up) and its patience count
    wait: int = 0
    stopped_epoch: int = 0
    truncated: bool = False
    epochs: int = 0
    steps: int = 0
    points: list = field(default_factory=list)
    seconds: dict = field(default_factory=lambda: {"steps": 0.0, "data": 0.0, "validation": 0.0, "fit_other": 0.0})
    loss_sum: float = 0.0
    loss_n: int = 0
    iter: object = None
    closed: bool = False              # its records final (and, in a sweep, its trial told)

    @property
    def training(self) -> bool:
        return self.outcome == "training"

    def result(self) -> dict:
        """What the sweep tells this member's trial (``hydra_plugins.sedbench_sweeper``)."""
        if self.outcome == "done":
            return {"state": "complete", "value": float(self.best) if self.best is not None else float("nan"),
                    "output_dir": str(self.run_dir)}
        error = f"{type(self.error).__name__}: {self.error}"[:2000] if self.error else "unknown error"
        return {"state": "pruned" if self.outcome == "pruned" else "failed", "error": error,
                "output_dir": str(self.run_dir)}


def member_dirs(job_dir: Path, numbers: list[int | None], seeds: list[int]) -> list[Path]:
    """Each member's run folder: in a sweep, beside the group's job folder (named by its first trial), named by
    its own trial as a solo trial's is; else one folder per seed inside ``job_dir``."""
    if numbers[0] is not None and job_dir.name == str(numbers[0]):
        return [job_dir.parent / str(n) for n in numbers]
    return [job_dir / f"seed{s}" for s in seeds]


def group_name(cfg: DictConfig, numbers: list[int | None], seeds: list[int]) -> str:
    """The ``fused_group`` tag: the study and trial numbers of the group, or the seeds outside a sweep."""
    trial = cfg.get("trial") or {}
    if numbers[0] is not None:
        return f"{trial.get('study')}/trials {','.join(str(n) for n in numbers)}"
    return f"seeds {','.join(str(s) for s in seeds)}"


def train_group(cfg: DictConfig, seeds: list[int] | None = None) -> dict:
    """Train the members of ``cfg.trial.members`` (``[[trial number, seed], ...]``, set by the sweep) or, outside
    a sweep, ``seeds``, together; returns ``{trial number or seed: result}`` (``Member.result``). A member that
    fails or is pruned is recorded so and the others go on; an error before training (data, configuration)
    fails the whole group."""
    from sedbench.console import quiet_libraries, trial_output
    from sedbench.hardware import check_precision, reset_peak_memory
    from sedbench.training.device import configure_numerics
    from sedbench.training.train import output_dir, run_name

    t_enter = time.perf_counter()
    trial = cfg.get("trial") or {}
    pairs = [(int(n), int(s)) for n, s in trial.members] if trial.get("members") else \
        [(None, int(s)) for s in (seeds if seeds is not None else [cfg.seed])]
    numbers, seeds = [n for n, _ in pairs], [s for _, s in pairs]
    full = str((cfg.get("sweep") or {}).get("console", "trials")) == "full"
    quiet_libraries(verbose=full)
    check_precision(cfg.trainer)
    numerics = configure_numerics(cfg.trainer)
    reset_peak_memory()  # the group's peak from here, recorded by each member
    job_dir = output_dir(cfg)
    dirs = member_dirs(job_dir, numbers, seeds)
    members = [Member(n, s, member_config(cfg, n, s), d) for (n, s), d in zip(pairs, dirs, strict=True)]
    for m in members:
        m.run_dir.mkdir(parents=True, exist_ok=True)
    in_sweep = numbers[0] is not None
    log_path = None
    try:
        with trial_output(dirs[0], capture=in_sweep and not full) as log_path:
            import torch

            if cfg.trainer.get("num_threads"):
                torch.set_num_threads(int(cfg.trainer.num_threads))
            for m in members:
                m.logger = tracking.make_logger(m.cfg, run_name(m.cfg))
            try:
                _train_group(cfg, members, t_enter, numerics, group_name(cfg, numbers, seeds))
            except BaseException as exc:  # before or around training: every member not yet told fails with it
                for m in members:
                    if not m.closed and m.logger is not None:
                        m.outcome, m.error = "failed", exc
                        _close(m)
                if isinstance(exc, KeyboardInterrupt) or not any(m.outcome == "done" for m in members):
                    raise
    finally:
        _share_log(members, log_path)
    return {(m.number if m.number is not None else m.seed): m.result() for m in members}


def train_job(cfg: DictConfig):
    """What ``sedbench train`` and a sweep's trial process run: the seeds of ``trial.members`` together
    (:func:`train_group`), or one run (:func:`sedbench.training.train.train`)."""
    if (cfg.get("trial") or {}).get("members"):
        return train_group(cfg)
    from sedbench.training.train import train

    return train(cfg)


def _close(m: Member) -> None:
    """The member's records are final: a failure recorded as a solo run's is (a success is recorded by
    ``test_and_record``); in a sweep, its trial is told its end at once (``sedbench.studies.tell_member``), so that
    a group killed later keeps it."""
    if m.outcome != "done":
        tracking.record_failure(m.logger, m.run_dir, m.error)
    m.closed = True
    trial = m.cfg.get("trial") or {}
    if m.number is None or not trial.get("storage"):
        return
    from sedbench.provenance import differences
    from sedbench.studies import tell_member

    try:
        tell_member(str(trial.storage), str(trial.study), m.number, m.result(), compare=differences)
    except Exception as exc:  # the sweep records it when the group returns
        log.warning("could not record trial %s in the study (%s); the sweep will", m.number, exc)


def _share_log(members: list[Member], log_path: Path | None) -> None:
    """The group's log is every member's ``trial.log`` (their one process wrote it), also in each MLflow run."""
    if log_path is None or not Path(log_path).is_file():
        return
    import shutil

    from sedbench.console import TRIAL_LOG

    for m in members:
        target = m.run_dir / TRIAL_LOG
        try:
            if target != Path(log_path):
                shutil.copyfile(log_path, target)
            if m.logger is not None:
                tracking.log_artifact(m.logger, target)
        except Exception as exc:  # tracking must not fail members that trained
            log.warning("could not keep %s for %s (%s)", log_path, m.run_dir, exc)


def _train_group(cfg: DictConfig, members: list[Member], t_enter: float, numerics: dict, group: str) -> None:
    import functools

    import pytorch_lightning as pl
    import torch

    from sedbench.data.sequences import ShiftedStartSampler, TrainSequences
    from sedbench.metrics import registry
    from sedbench.models.families import build_model
    from sedbench.models.fused import fusable, fuse_reason
    from sedbench.training.scoring import SplitScorer, psds_mode
    from sedbench.training.train import energy_meter, load_data, model_costs

    psds = psds_mode((cfg.get("evaluation") or {}).get("psds", True))
    accelerator = str(cfg.trainer.accelerator)
    reason = fuse_reason(cfg, on_cpu=False)  # what cannot fuse; the CPU width rule is the sweep's choice of speed
    pl.seed_everything(members[0].seed, workers=True)
    # setting the data up reads features only: no draw from torch's generators (tested)
    dm, hardware, provenance = load_data(cfg, numerics, members[0].logger, members[0].seed)
    for m in members[1:]:
        tracking.tag_provenance(m.logger, provenance)
    device = _device(accelerator)
    for m in members:  # each network built under its seed as its solo run builds it; the generators right after
        pl.seed_everything(m.seed, workers=True)
        m.net = build_model(cfg.model, n_in=dm.n_features, n_classes=len(dm.classes))
        if hasattr(m.net, "init_output_bias") and not dm.ds.weak:
            m.net.init_output_bias(dm.sets["train"].y)
        m.gen = torch.Generator()
        m.gen.set_state(torch.get_rng_state())
        if device.type == "cuda":
            m.cuda_state = torch.cuda.get_rng_state(device)
        m.costs = members[0].costs or model_costs(cfg, m.net, dm.n_features)  # one architecture: counted once
        m.logger.log_hyperparams(m.costs)
        m.logger.experiment.set_tag(m.logger.run_id, "fused_group", group)
    reason = reason or fusable(members[0].net) or ("clip labels have no fused form yet" if dm.ds.weak else None) \
        or (None if isinstance(dm.sets["train"], TrainSequences) else "these training sequences have no fused form")
    if reason:
        raise_unfusable(reason)
    objective = registry.objective(cfg.optimized_metric, weak=dm.ds.weak)
    scorer = SplitScorer.for_datamodule(dm, cfg.threshold)
    for m in members:
        sampler = ShiftedStartSampler(len(dm.sets["train"]), dm.seq_len, True, m.seed)
        # in this process (a member's batch is a slice of memory-mapped frames): K loaders with worker processes
        # each would start K x 4 processes on a GPU. Its base-seed draws are made by GroupFit, as the solo run's
        # loader makes them, from the member's generator; this loader's own go to a scratch generator.
        m.loader = torch.utils.data.DataLoader(dm.sets["train"], batch_size=dm.batch_size, sampler=sampler,
                                               pin_memory=dm.pin_memory, generator=torch.Generator())
        trial = m.cfg.get("trial") or {}
        if trial.get("number") is not None and cfg.sweep.pruner != "none":
            from sedbench.studies import TrialReporter

            m.pruning = TrialReporter(trial.study, trial.storage, int(trial.number), cfg.sweep.pruner)
    t0 = time.perf_counter()
    startup = (t0 - t_enter) / len(members)
    meter = energy_meter(cfg)
    GroupFit(cfg, members, dm, objective, functools.partial(scorer, "validation"), device).run()
    fit_wall = time.perf_counter() - t0
    if meter:  # the group's, shared among its members by their shares of its time
        kwh, how = meter.stop()
        total = sum(sum(m.seconds.values()) for m in members) or 1.0
        for m in members:
            m.energy = (kwh * sum(m.seconds.values()) / total,
                        f"{how}; the group's, shared among its {len(members)} seeds by their time")
    print(f"group {group}: {len(members)} seeds trained together in {fit_wall:.0f} s "
          f"({', '.join(f'seed {m.seed} {m.outcome}' for m in members)})", flush=True)
    for m in members:
        _finish_member(m, cfg, dm, scorer, objective, psds, hardware, provenance, startup, group)


def raise_unfusable(reason: str):
    from sedbench.errors import ConfigError

    raise ConfigError(f"these seeds cannot train fused: {reason}. Fix: sweep.fuse=off (each seed its own trial)")


def _device(accelerator: str):
    import torch

    from sedbench.hardware import runs_on_cpu

    return torch.device("cpu" if runs_on_cpu(accelerator) else "cuda")


def _finish_member(m: Member, cfg, dm, scorer, objective, psds, hardware, provenance, startup, group) -> None:
    """Test and record a member as its solo run is tested and recorded (``test_and_record``), or record its
    failure."""
    from sedbench.training.module import SEDModule
    from sedbench.training.train import Fitted, Run, make_trainer, test_and_record

    if m.outcome != "done":
        _close(m)
        return
    try:
        m.net.load_state_dict(m.best_weights)
        _save_checkpoint(m)
        module = SEDModule(m.net, weak=dm.ds.weak, monitor=f"val/{objective.name}", mode=objective.mode)
        # no logger for the prediction: Lightning would finalize the member's MLflow run at its end, and a group
        # killed while recording it would leave a FINISHED run whose trial is retried (its run is ended below)
        trainer = make_trainer(m.cfg.trainer, [], False, m.run_dir, f"val/{objective.name}", objective.sign)
        share = dict(m.seconds)
        fit_seconds = sum(share.values())
        fit = Fitted(best=float(m.best) if m.best is not None else float("nan"), best_path=None, points=m.points,
                     stopped_early=m.stopped_epoch > 0, budget="truncated" if m.truncated else "complete",
                     epochs=m.epochs, steps=m.steps, fit_seconds=fit_seconds,
                     timing={"startup": startup, **{k: round(v, 3) for k, v in share.items()}},
                     val_outputs=lambda: m.best_val, energy=m.energy)
        run = Run(m.cfg, m.run_dir, m.logger, dm, m.net, m.costs, hardware, provenance, group=group)
        test_and_record(run, module, trainer, scorer, objective, psds, fit, startup + fit_seconds)
        m.logger.finalize("success")
    except BaseException as exc:
        m.outcome, m.error = "failed", exc
        _close(m)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return
    _close(m)


def _save_checkpoint(m: Member) -> None:
    """The best weights where a solo run keeps its best checkpoint (``checkpoints/best.ckpt``, as Lightning
    names the module's network: ``net.<name>``)."""
    import torch

    path = m.run_dir / "checkpoints" / "best.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"net.{k}": v for k, v in m.best_weights.items()}, "epoch": m.epochs,
                "global_step": m.steps}, path)


class GroupFit:
    """The fused training loop: Lightning's fit loop as a solo run goes through it (epochs of the member's own
    batches, validation after each full epoch, the best checkpoint, early stopping after the warm-up, pruning,
    the step budget and the wall-clock guard), for every member at once."""

    def __init__(self, cfg: DictConfig, members: list[Member], dm, objective, validate, device):
        self.cfg, self.t, self.members, self.dm = cfg, cfg.trainer, members, dm
        self.objective, self.validate, self.device = objective, validate, device
        self.monitor = f"val/{objective.name}"
        self.weak = dm.ds.weak
        self.step = 0
        self.val_loader = dm.val_dataloader()
        # the solo run's loaders keep their workers across epochs when it has any (persistent_workers): then each
        # draws its base seed once, at its first iterator, else at every one (torch's DataLoader)
        self.persistent = dm.num_workers > 0
        self.val_draws = 0
        max_time = _seconds(self.t.get("max_time"))
        # each member is allowed the wall time its solo run would be: the group's guard is their sum
        self.deadline = None if max_time is None else time.perf_counter() + max_time * len(members)
        self.precision = str(self.t.precision)

    # ------------------------------------------------------------------ the group's network
    def _fuse(self, previous=None, optimizer=None):
        import torch

        from sedbench.models.fused import FusedCRNN, MemberRNG, regroup

        live = [m for m in self.members if m.training]
        if previous is None:
            rng = MemberRNG(generators=[m.gen for m in live]) if self.device.type == "cpu" else \
                MemberRNG(cuda_states=[m.cuda_state for m in live], device=self.device)
            net = FusedCRNN([m.net for m in live], rng).to(self.device)
            opt = torch.optim.Adam(net.parameters(), weight_decay=float(self.cfg.model.get("weight_decay", 0.0)))
        else:
            keep = [i for i, m in enumerate(self.live) if m.training]
            net, opt = regroup(previous, keep, [m.net for m in live], optimizer)
        self.live = live
        return net, opt

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        net, opt = self._fuse()
        max_epochs = int(self.t.max_epochs) if self.t.get("max_epochs") not in (None, -1) else None
        max_steps = int(self.t.get("max_steps") or 0) or None
        epoch = 0
        while self.live and (max_epochs is None or epoch < max_epochs):
            n_batches = _epoch_batches(len(self.live[0].loader), self.t.get("limit_train_batches"))
            for m in self.live:
                m.loader.sampler.set_epoch(epoch)
                m.iter = iter(m.loader)
                if epoch == 0 or not self.persistent:  # the solo run's training loader's base seed
                    _draw_base_seed(m.gen)
                m.loss_sum, m.loss_n = 0.0, 0
            net.train()
            stop_now = False
            t_mark = time.perf_counter()
            for b in range(n_batches):
                batches = [_to(next(m.iter), self.device) for m in self.live]
                t_step = time.perf_counter()
                self._share("data", t_step - t_mark)
                stepped = list(self.live)
                net, opt, losses = self._step(net, opt, batches, epoch)
                self.step += 1
                t_mark = time.perf_counter()
                self._share("steps", t_mark - t_step, members=stepped)
                for m, loss in zip(self.live, losses, strict=True):
                    m.steps, m.epochs = self.step, epoch + 1
                    m.loss_sum, m.loss_n = m.loss_sum + loss * len(batches[0]["x"]), m.loss_n + len(batches[0]["x"])
                if not self.live:
                    break
                if self.deadline is not None and time.perf_counter() >= self.deadline:
                    for m in self.live:
                        m.truncated = True
                    stop_now = True  # as Lightning's Timer: validate now, then stop
                    break
                if max_steps is not None and self.step >= max_steps and b < n_batches - 1:
                    break  # the step budget ends an epoch mid-way: no validation (as Lightning)
            if not self.live:
                break
            for m in self.live:
                m.logger.log_metrics({"train/loss": m.loss_sum / max(1, m.loss_n), "epoch": epoch}, step=self.step - 1)
            ended_by_steps = max_steps is not None and self.step >= max_steps
            if stop_now or not ended_by_steps or b == n_batches - 1:
                t_val = time.perf_counter()
                self._validate(net, epoch)
                self._share("validation", time.perf_counter() - t_val, members=self.live)
            if stop_now or ended_by_steps:
                for m in self.live:
                    m.outcome = "done"
            self._keep_final(net)
            changed = any(not m.training for m in self.live)
            if changed and any(m.training for m in self.live):
                t_re = time.perf_counter()
                net, opt = self._fuse(net, opt)
                self._share("fit_other", time.perf_counter() - t_re)
            elif changed:
                self.live = []
            epoch += 1
        for m in self.live:  # the epoch budget is spent
            if m.training:
                m.outcome = "done"
        self._keep_final(net)

    def _keep_final(self, net) -> None:
        """A member done without a validation (the step budget ended its first epoch) tests its last weights, as
        a solo run without a best checkpoint does."""
        for i, m in enumerate(self.live):
            if m.outcome == "done" and m.best_weights is None:
                m.best_weights = net.member(i)

    def _share(self, part: str, seconds: float, members=None) -> None:
        """``seconds`` of the group's wall time, split equally among the members it was spent on."""
        members = members if members is not None else self.live
        if members:
            for m in members:
                m.seconds[part] += seconds / len(members)

    def _loss(self, logits, batch):
        from sedbench.training.module import sed_loss

        return sed_loss(logits, batch, self.weak)

    def _autocast(self):
        """bf16 autocast for ``trainer.precision=bf16-mixed`` (as Lightning's precision plugin), else nothing."""
        import contextlib

        import torch

        if self.precision == "bf16-mixed":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _step(self, net, opt, batches, epoch):
        """One optimizer step of every live member (``batches`` in their order); returns the network, optimizer
        and the members' losses. A member whose loss is not finite fails alone, as its solo run stops there, and
        the step is taken again for the others without it (a NaN of one member would reach the others through the
        block-diagonal recurrent layers: their losses of this step are computed again, their statistics and
        generators restored)."""
        import torch

        rng = [self._rng_state(net, i) for i in range(len(self.live))]
        buffers = {name: b.clone() for name, b in net.named_buffers()}
        x = torch.stack([b["x"] for b in batches], dim=1)          # (B, K, T, F)
        opt.zero_grad(set_to_none=True)
        with self._autocast():
            logits = net(x)                                         # (K, B, T, C)
        losses = [self._loss(logits[k].float(), b) for k, b in enumerate(batches)]
        values = torch.stack([v.detach() for v in losses]).float().cpu()  # one look per step (see above)
        if bool(torch.isfinite(values).all()):
            torch.stack(losses).sum().backward()
            opt.step()
            return net, opt, values.tolist()
        with torch.no_grad():
            for name, b in net.named_buffers():
                b.copy_(buffers[name])
        for i in range(len(self.live)):
            self._set_rng_state(net, i, rng[i])
        before = list(self.live)
        for i, m in enumerate(before):
            own = self._solo_loss(net, i, batches[i])
            if not np.isfinite(own):
                m.outcome, m.error = "failed", _diverged(own, epoch, self.step)
                print(f"seed {m.seed}: {m.error}", flush=True)
        if all(m.training for m in before):  # the fused losses only were not finite: no member to blame
            for i, m in enumerate(before):
                if not np.isfinite(values[i]):
                    m.outcome, m.error = "failed", _diverged(float(values[i]), epoch, self.step)
        if not any(m.training for m in before):
            self.live = []
            return net, opt, []
        net, opt = self._fuse(net, opt)
        return self._step(net, opt, [b for b, m in zip(batches, before, strict=True) if m.training], epoch)

    def _solo_loss(self, net, i: int, batch: dict) -> float:
        """Member ``i``'s loss on ``batch`` computed by its solo network (its current weights and statistics, its
        own draws), without changing anything of the group."""
        import copy

        import torch

        solo = copy.deepcopy(self.live[i].net)
        solo.load_state_dict(net.member(i))
        solo.train()
        cuda = self.device.type == "cuda"
        saved = torch.cuda.get_rng_state(self.device) if cuda else torch.get_rng_state()
        state = self._rng_state(net, i)
        (torch.cuda.set_rng_state(state, self.device) if cuda else torch.set_rng_state(state))
        try:
            with torch.no_grad(), self._autocast():
                logits = solo.to(self.device)(batch["x"], batch["mask"])
            return float(self._loss(logits.float(), batch))
        finally:
            (torch.cuda.set_rng_state(saved, self.device) if cuda else torch.set_rng_state(saved))

    def _rng_state(self, net, i: int):
        """Member ``i``'s generator state where its dropout draws (the CPU generator it shares with its loader, or
        its CUDA state)."""
        return net.rng.cuda_states[i].clone() if self.device.type == "cuda" else self.live[i].gen.get_state()

    def _set_rng_state(self, net, i: int, state) -> None:
        if self.device.type == "cuda":
            net.rng.cuda_states[i] = state
        else:
            self.live[i].gen.set_state(state)

    def _validate(self, net, epoch: int) -> None:
        """Every live member's validation on the whole validation split at once (the same batches for all),
        then each member's best checkpoint, curve, early stopping and pruning, as its solo run's callbacks decide
        them after a validation."""
        import torch

        from sedbench.metrics.registry import metrics

        live, loader = self.live, self.val_loader
        if self.val_draws == 0 or not self.persistent:
            for m in live:  # the solo run's validation loader draws its base seed from the global generator
                _draw_base_seed(m.gen)
        self.val_draws += 1
        net.eval()
        outputs, loss_sum, n = [[] for _ in live], [0.0] * len(live), 0
        with torch.no_grad():
            for batch in loader:
                batch = _to(batch, self.device)
                x = batch["x"].unsqueeze(1).expand(-1, len(live), -1, -1).contiguous()
                with self._autocast():
                    logits = net(x)
                for k in range(len(live)):
                    loss_sum[k] += float(self._loss(logits[k].float(), batch)) * len(batch["x"])
                    outputs[k].append(torch.sigmoid(logits[k]).float().cpu().numpy())
                n += len(batch["x"])
        net.train()
        shown = []
        for k, m in enumerate(live):
            out = np.concatenate(outputs[k])
            scores = self.validate(out)
            logged = {f"val/{x.name}": float(scores[x.name]) for x in metrics(validation=True) if x.name in scores}
            logged.update({"val/loss": loss_sum[k] / max(1, n), "epoch": epoch})
            m.logger.log_metrics(logged, step=self.step)
            value = np.float32(scores[self.objective.name])
            self._after_validation(m, k, net, value, out, epoch)
            shown.append(f"seed {m.seed} {float(value):.3f} (best {float(m.best):.3f})")
        print(f"epoch {epoch:>4}  step {self.step:>6}  {self.monitor}: {', '.join(shown)}", flush=True)

    def _after_validation(self, m: Member, k: int, net, value: np.float32, outputs, epoch: int) -> None:
        from sedbench.training.module import improves

        m.points.append((self.step, round(float(value), 6)))
        better, m.best = improves(m.best, value, self.objective.mode)
        if better:  # the best checkpoint: this member's weights and statistics now, and its validation outputs
            m.best_weights, m.best_val = net.member(k), outputs
        warmup = int(self.t.get("warmup_epochs") or 0)
        if epoch + 1 >= warmup and self._early_stop(m, value):
            m.outcome, m.stopped_epoch = "done", epoch
        if m.pruning is not None and m.training:
            import optuna

            m.pruning.report(float(value), step=epoch)
            if m.pruning.should_prune():
                m.outcome = "pruned"
                m.error = optuna.TrialPruned(f"pruned at epoch {epoch} ({self.monitor} = {float(value):.4f})")

    def _early_stop(self, m: Member, value: np.float32) -> bool:
        """Lightning's EarlyStopping (min_delta 0, check_finite): stop on a non-finite score, or when ``patience``
        validations in a row have not been strictly better than the best since the warm-up (never, with patience
        null)."""
        if not np.isfinite(value):
            return True
        sign = 1 if self.objective.mode == "max" else -1
        if m.stop_best is None or sign * (float(value) - m.stop_best) > 0:
            m.stop_best, m.wait = float(value), 0
            return False
        m.wait += 1
        return self.t.patience is not None and m.wait >= int(self.t.patience)  # null: no stop on patience


def _draw_base_seed(gen) -> None:
    """What creating a DataLoader iterator draws from the generator (its workers' base seed)."""
    import torch

    torch.empty((), dtype=torch.int64).random_(generator=gen)


def _diverged(value: float, epoch: int, step: int):
    from sedbench.training.module import diverged

    return diverged(f"training loss is {value}", epoch, step)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if hasattr(v, "to") else v for k, v in batch.items()}


def _epoch_batches(n: int, limit) -> int:
    """Training batches per epoch under ``trainer.limit_train_batches`` (an int: a count; a float: a fraction of
    the epoch, at least one batch), as Lightning counts them."""
    if limit is None:
        return n
    if isinstance(limit, int):
        return min(n, limit)
    return max(1, int(n * float(limit))) if float(limit) > 0 else 0


def _seconds(max_time) -> float | None:
    """``trainer.max_time`` (``DD:HH:MM:SS``, or null) in seconds."""
    if not max_time:
        return None
    days, hours, minutes, seconds = (int(x) for x in str(max_time).split(":"))
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)
