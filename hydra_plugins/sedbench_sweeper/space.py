"""What a sweep covers: the command line's grid and base overrides, every cell composed and checked before
anything runs, the objective all cells share, the fixed grid and base of a resumed study, and the search
space's define-by-run suggestions."""

from __future__ import annotations

import logging

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("sedbench.sweep")


class SearchSpace:
    """The sweep's cells and search space (a mixin of the
    sweeper, ``hydra_plugins.sedbench_sweeper.sweeper.SedbenchSweeper``, whose state it reads)."""

    def _split(self, arguments: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        base, grid = [], {}
        for o in parser.parse_overrides(arguments):
            key = o.get_key_element()
            if o.is_sweep_override():
                if not o.is_discrete_sweep():
                    from sedbench.errors import ConfigError

                    raise ConfigError(f"{key}: only lists of values (a,b,c) can be swept on the command line")
                grid[key] = [str(v) for v in o.sweep_string_iterator()]
            else:
                base.append(f"{key}={o.get_value_element_as_str()}")
        return base, grid

    def _preflight(self, base: list[str], cells) -> tuple[list, object]:
        """Compose every cell (or, for a search, the base) and check what they share (sedbench.preflight):
        the composed configs and the objective they share."""
        from sedbench.errors import ConfigError
        from sedbench.preflight import check_sweep

        loader, composed = self.hydra_context.config_loader, []
        for cell in cells or [()]:
            try:
                composed.append((cell, loader.load_sweep_config(self.config, [*base, *cell])))
            except Exception as exc:  # Hydra's composition errors: bad key, unknown group option, bad value
                reason = " ".join(str(exc).split("Config search path")[0].split())
                raise ConfigError(f"sweep cell {' '.join(cell) or '(the base configuration)'} does not compose: "
                                  f"{reason}. Fix: correct the grid (sweeps/*.yaml or the command line)") from None
        objective = check_sweep(composed, self.config.sweep.storage)
        check = getattr(self.launcher, "check", None)  # the engine is there (sedbench's launchers: .launchers)
        if check is not None:
            check()
        return [c for _, c in composed], objective

    # overrides that change where or how fast a sweep runs, not what its trials compute (paths may differ
    # between the machines of one sweep)
    NEUTRAL = ("hydra.", "hydra/", "sweep.", "tracking.", "trial.", "trainer.num_threads=", "data.num_workers=",
               "data.root=", "features.cache_dir=")

    def _check_base(self, study, name: str, base: list[str]) -> None:
        """A study's cells mean the same thing on every run: its result-relevant overrides are fixed."""
        from sedbench.errors import ConfigError

        relevant = sorted(o for o in base if not o.startswith(self.NEUTRAL))
        recorded = study.user_attrs.get("base_overrides")
        if recorded is None:
            study.set_user_attr("base_overrides", relevant)
        elif recorded != relevant:
            raise ConfigError(f"sweep {name}: started with overrides {recorded}, now {relevant}; its finished cells "
                              "would not mean the same. Fix: pass the same overrides, or a new sweep.name")

    def _check_reference(self, name: str, cells) -> None:
        """``sweep.energy_reference`` names one configuration of the grid (overrides, as ``sedbench compare``
        takes them): checked before anything runs, not when the report finds it missing."""
        from sedbench.errors import ConfigError
        from sedbench.report.costs import parse_reference

        named = self.config.sweep.get("energy_reference")
        if not named:
            return
        try:
            wanted = parse_reference(str(named))
        except ValueError as exc:
            raise ConfigError(f"sweep {name}: sweep.energy_reference: {exc}") from None
        if cells and not any(wanted.items() <= dict(o.split("=", 1) for o in cell).items() for cell in cells):
            raise ConfigError(f"sweep {name}: sweep.energy_reference {named!r} matches no cell of the grid. Fix: "
                              f"name a configuration the grid trains, e.g. {' '.join(cells[0])!r} without its seed")

    def _check_grid(self, study, name: str) -> None:
        """A study keeps one grid: Optuna's categorical parameters cannot change their choices."""
        from sedbench.errors import ConfigError

        choices = self.grid_choices
        recorded = study.user_attrs.get("grid_choices")
        if recorded is None:
            study.set_user_attr("grid_choices", choices)
        elif recorded != choices:
            changed = sorted(k for k in set(recorded) | set(choices) if recorded.get(k) != choices.get(k))
            raise ConfigError(f"sweep {name}: the grid differs from the one this study was started with "
                              f"(keys {changed}). Fix: give the new grid its own sweep.name, or restore the grid")

    def _rounds(self, name: str, grid) -> tuple[int, ...] | None:
        """``sweep.rounds`` checked against the grid before anything runs (and ``sweep.claims`` named right):
        every configuration must list at least the last round's seeds. None without rounds."""
        from sedbench import sweep as sw
        from sedbench.errors import ConfigError
        from sedbench.report.claims import claim_set
        from sedbench.report.rounds import config_of
        from sedbench.stats import SPENDING, look_levels

        cfg = self.config.sweep
        claim_set(str(cfg.get("claims") or "claims"))
        rounds = cfg.get("rounds")
        if rounds is None:
            return None
        rounds = tuple(OmegaConf.to_container(rounds) if not isinstance(rounds, (int, str)) else [rounds])
        if cfg.sampler != "grid" or not grid:
            raise ConfigError(f"sweep {name}: sweep.rounds needs a grid sweep whose cells list seeds. Fix: "
                              "sweep.sampler=grid with seed in the grid, or sweep.rounds=null")
        if str(cfg.pruner) != "none":
            raise ConfigError(f"sweep {name}: sweep.rounds looks at every seed's test score, and a pruned trial has "
                              "none. Fix: sweep.pruner=none, or sweep.rounds=null")
        if str(cfg.spending) not in SPENDING:
            raise ConfigError(f"sweep.spending={cfg.spending}: one of {', '.join(SPENDING)}. "
                              "Fix: sweep.spending=obrien_fleming")
        try:
            look_levels([int(n) for n in rounds])
        except (TypeError, ValueError):
            raise ConfigError(f"sweep.rounds={list(rounds)}: increasing seed counts, the first at least 2. Fix: "
                              "e.g. sweep.rounds=[3,5,8]") from None
        seeds: dict[str, int] = {}
        for cell in grid:
            params = sw.cell_params(cell)
            if "seed" not in params:
                raise ConfigError(f"sweep {name}: sweep.rounds adds seeds, but cell {' '.join(cell)} has no seed. "
                                  "Fix: give every grid block a seed list, or sweep.rounds=null")
            seeds[config_of(params)] = seeds.get(config_of(params), 0) + 1
        short = sorted(c for c, n in seeds.items() if n < int(rounds[-1]))
        if short:
            raise ConfigError(f"sweep {name}: sweep.rounds ends at {rounds[-1]} seeds but {len(short)} "
                              f"configuration(s) list fewer (e.g. {short[0]}). Fix: list at least {rounds[-1]} "
                              "seeds in every grid block")
        return tuple(int(n) for n in rounds)

    def _round_cells(self, study, name: str, grid, rounds: tuple[int, ...]) -> list:
        """The grid's cells that the study's ``rounds`` (:meth:`_rounds`) reach now (sedbench.report.rounds): each
        configuration's first seeds, as many as its round wants, decided from the finished trials; one header
        line says where the rounds stand."""
        import tempfile
        from pathlib import Path

        from sedbench import sweep as sw
        from sedbench.report.claims import claim_set, run_readers
        from sedbench.report.collect import rows_from_study
        from sedbench.report.rounds import config_of, replay
        from sedbench.report.write import artifact_fetcher

        cfg = self.config.sweep
        uri = self.config.tracking.uri
        rows = rows_from_study(study, uri)
        with tempfile.TemporaryDirectory(prefix="sedbench-rounds-") as tmp:
            readers = run_readers(artifact_fetcher(uri, Path(tmp)))
            state = replay(rows, claim_set(str(cfg.get("claims") or "claims")), readers, rounds, str(cfg.spending),
                           expected={config_of(sw.cell_params(c)) for c in grid})
        decided = [f"{r.claim.name}: {r.verdict} at look {r.look[0]}" for r in state.results
                   if r.verdict in ("holds", "contradicted") and r.look]
        untested = sum(1 for r in state.results if r.todo) if state.looks_taken else 0
        self._say(f"sweep {name}: {state.describe()}" + (f"; decided: {'; '.join(decided)}" if decided else "")
                  + (f"; {untested} of {len(state.results)} claims cannot be tested on these trials, so no seeds "
                     f"are added for them (`sedbench report {name}` says what each needs)" if untested else ""))
        order: dict[str, list[int]] = {}
        for cell in grid:
            params = sw.cell_params(cell)
            order.setdefault(config_of(params), []).append(int(params["seed"]))
        return [c for c in grid if sorted(order[config_of(sw.cell_params(c))]).index(
            int(sw.cell_params(c)["seed"])) < state.wanted.get(config_of(sw.cell_params(c)), 0)]

    @staticmethod
    def _choices(cells) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for cell in cells:
            for c in cell:
                k, v = c.split("=", 1)
                if v not in out.setdefault(k, []):
                    out[k].append(v)
        return out

    @staticmethod
    def _suggest(trial, space) -> list[str]:
        """Define-by-run suggestion: a parameter with ``when`` is drawn only if its condition holds."""
        from sedbench.sweep import format_value

        chosen: dict[str, str] = {}
        for key, spec in (space or {}).items():
            spec = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else dict(spec)
            cond = spec.get("when") or {}
            if any(chosen.get(k) not in [format_value(v) for v in vals] for k, vals in cond.items()):
                continue
            if "choices" in spec:
                value = trial.suggest_categorical(key, [format_value(c) for c in spec["choices"]])
            elif spec.get("int"):
                value = trial.suggest_int(key, spec["low"], spec["high"], log=spec.get("log", False))
            else:
                value = trial.suggest_float(key, spec["low"], spec["high"], log=spec.get("log", False))
            chosen[key] = format_value(value)
        return [f"{k}={v}" for k, v in chosen.items()]
