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
