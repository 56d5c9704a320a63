"""Every model sedbench trains, in one place: its architecture (the class a ``model`` config builds, the config
keys it takes, how it trains, how it counts its parameters, the parts of its runs' names) and its family (the
label, colour and marker every table, figure and page shows it with).

* An **architecture** (``model.arch``) is a class. A ``network`` (a torch module, ``(x, mask) -> logits``) trains
  through the Lightning module by gradient descent; a ``frames`` model has ``fit(features, targets)`` and
  ``predict(features) -> (frames, K)`` probabilities on whole files and ``n_parameters(n_features)`` (the paper's
  GMM baseline). Its constructor's keyword arguments are the config keys it takes.
* A **family** (``model.family``) is what the report compares: the paper's CRNN, CNN and RNN are one
  architecture with different settings, each its own family.

Both are added with one ``register`` call (and a ``conf/model/NAME.yaml`` that names them); the training code,
``sedbench params``, ``evaluate``, the sweep's preflight and the report read them from here and never branch on a
model's name.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from sedbench.errors import ConfigError

NETWORK, FRAMES = "network", "frames"  # how an architecture trains


@dataclass(frozen=True)
class Architecture:
    name: str                                   # model.arch
    target: str | type                          # the class, or "module:Class" (imported when first used)
    trains: str = NETWORK                       # NETWORK (Lightning) or FRAMES (fit/predict on files' frames)
    configured: tuple[str, ...] = ()            # keys the training code would supply that are model settings here
    name_parts: Callable[[dict], str] | None = None  # the run name's model part (default: every setting)

    def __post_init__(self):
        if self.trains not in (NETWORK, FRAMES):
            raise ValueError(f"architecture {self.name}: trains must be {NETWORK!r} or {FRAMES!r}")

    @property
    def cls(self) -> type:
        if isinstance(self.target, type):
            return self.target
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Family:
    name: str                     # model.family
    color: str                    # in the PNG figures and the HTML page alike
    marker: str                   # matplotlib marker
    config: str = ""              # its option of the model config group, conf/model/<config>.yaml (default: name)

    @property
    def group_option(self) -> str:
        """``model=<this>`` selects the family's preset."""
        return self.config or self.name


ARCHITECTURES: dict[str, Architecture] = {}
FAMILIES: dict[str, Family] = {}
OTHER_STYLE = ("#ff7f0e", "v")  # a family without its own entry (older runs)


def register_architecture(arch: Architecture, replace: bool = False) -> Architecture:
    if arch.name in ARCHITECTURES and not replace:
        raise ValueError(f"an architecture named {arch.name!r} is already registered")
    ARCHITECTURES[arch.name] = arch
    _parameters.cache_clear()
    return arch


def register_family(family: Family, replace: bool = False) -> Family:
    if family.name in FAMILIES and not replace:
        raise ValueError(f"a family named {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def _crnn_name(m: dict) -> str:
    """The CRNN's run-name part: maps, pooling, recurrent and feedforward layers, kernel, and the recipe's
    deviations when not the default."""
    pool = ".".join(str(p) for p in m.get("pool") or []) or "none"
    kernel = "x".join(str(k) for k in m.get("kernel", [5, 5]))
    init = "".join(f"-{tag}{m.get(key)}" for key, tag, default in (("output_bias", "bias", "zero"),
                                                                     ("rnn_init", "rinit", "he"),
                                                                     ("output_dropout", "outdrop", True))
                   if m.get(key, default) != default)
    rnn = m.get("rnn_layers", 1)
    return (f"maps{m.get('maps')}-pool{pool}-rnn{rnn}{m.get('cell', 'gru') if rnn else ''}"
            f"-fnn{m.get('fnn_layers', 0)}-k{kernel}{init}")


# settings left out of the default run name: labels, and options that rarely differ between a sweep's cells
NAME_SKIPS = ("name", "family", "arch", "dropout", "class_summary", "hop_seconds", "frame_seconds", "blocks",
              "weight_decay")


def name_part(model: dict) -> str:
    """The model's part of a run name (``sedbench.training.train.run_name``)."""
    arch = architecture(model.get("arch", "crnn"))
    if arch.name_parts is not None:
        return arch.name_parts(model)
    return "-".join(f"{k}{'.'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                    for k, v in model.items() if k not in NAME_SKIPS)


def style(family: str) -> tuple[str, str]:
    """A family's colour and marker (another colour for a family without an entry)."""
    f = FAMILIES.get(family)
    return (f.color, f.marker) if f else OTHER_STYLE


# ------------------------------------------------------------------------------------------- building a model
# what the training code passes itself (inputs, classes, frame hop of the features, seed), not the config
SUPPLIED = ("n_in", "n_classes", "classes", "hop_seconds", "seed")
# keys every model config may hold besides its architecture's: labels and training options read by train.py
COMMON_KEYS = ("name", "family", "arch", "class_summary", "weight_decay")


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ConfigError(f"model.arch={name!r} is not a model sedbench knows. Fix: one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def arch_of(model_cfg) -> Architecture:
    return architecture(_as_dict(model_cfg).get("arch", "crnn"))


def arch_class(arch: str) -> type:
    return architecture(arch).cls


@functools.cache
def _parameters(arch: str) -> dict:
    """The constructor parameters of ``arch``'s class (read once per architecture)."""
    import inspect

    return dict(inspect.signature(arch_class(arch)).parameters)


def arch_keys(arch: str) -> tuple[str, ...]:
    """The config keys of ``arch``: its class's constructor arguments but those the training code supplies
    (unless the architecture takes one as its own setting: the attention CRNN's front-end ``hop_seconds``)."""
    supplied = [k for k in SUPPLIED if k not in architecture(arch).configured]
    return tuple(k for k in _parameters(arch) if k not in supplied)


def _as_dict(model_cfg) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(model_cfg, resolve=True) if OmegaConf.is_config(model_cfg) else dict(model_cfg)


def model_config(model_cfg) -> dict:
    """A ``model`` config mapping (Hydra or dict) as a plain dict whose keys are all known to its ``arch``:
    a misspelt key (``+model.poool=[4]``) is an error that names it, never silently dropped."""
    cfg = _as_dict(model_cfg)
    arch = cfg.get("arch", "crnn")
    known = arch_keys(arch)
    unknown = sorted(set(cfg) - set(known) - set(COMMON_KEYS))
    if unknown:
        raise ConfigError(f"model.{unknown[0]} is not a setting of model.arch={arch} ({cfg.get('name', arch)}). "
                          f"Fix: remove it or use one of {', '.join(sorted((*known, *COMMON_KEYS)))}")
    _check_types(arch, cfg)
    return cfg


def _check_types(arch: str, cfg: dict) -> None:
    """A value of the wrong kind for its constructor default (``model.maps=abc``) is an error naming it."""
    kinds = {bool: "true or false", int: "a whole number", float: "a number", str: "a word"}
    for name, p in _parameters(arch).items():
        value, default = cfg.get(name), p.default
        if name not in cfg or value is None or type(default) not in kinds:
            continue
        ok = (isinstance(value, bool) if isinstance(default, bool) else
              isinstance(value, int) and not isinstance(value, bool) if isinstance(default, int) else
              isinstance(value, (int, float)) and not isinstance(value, bool) if isinstance(default, float) else
              isinstance(value, str))
        if not ok:
            example = str(default).lower() if isinstance(default, bool) else default
            raise ConfigError(f"model.{name}={value!r}: expected {kinds[type(default)]} (default {default!r}). "
                              f"Fix: e.g. model.{name}={example}")


def model_kwargs(model_cfg, strict: bool = True) -> dict:
    """The constructor's keyword arguments from a ``model`` config (``strict=False``: unknown keys dropped)."""
    cfg = model_config(model_cfg) if strict else _as_dict(model_cfg)
    keys = arch_keys(cfg.get("arch", "crnn"))
    return {k: cfg[k] for k in keys if k in cfg}


def build_model(model_cfg, n_in: int, n_classes: int, strict: bool = True, **supplied):
    """The model of a ``model`` config mapping (Hydra or dict); ``arch`` picks the class (default crnn).
    ``supplied``: what the training code knows beyond the input width and class count (``classes``,
    ``hop_seconds``, ``seed``), passed to the constructors that take it. ``strict=False`` ignores keys the
    architecture does not take (a bundle saved by an older sedbench)."""
    arch = arch_of(model_cfg)
    offered = {"n_in": n_in, "n_classes": n_classes, "classes": [str(k) for k in range(n_classes)], **supplied}
    params = _parameters(arch.name)
    own = {k: v for k, v in offered.items() if k in params and k not in arch.configured}
    return arch.cls(**own, **model_kwargs(model_cfg, strict))


def count_parameters(model, n_features: int | None = None) -> int:
    """Trainable parameters of a built model: a network's trainable tensors' elements, or a frames model's own
    count for ``n_features`` inputs (``n_parameters``)."""
    if hasattr(model, "n_parameters"):
        return int(model.n_parameters(n_features))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------------------- the built-ins
for _arch in (Architecture("crnn", "sedbench.models.crnn:CRNN", name_parts=_crnn_name),
              Architecture("crnn_attention", "sedbench.models.attention:CRNNAttention", configured=("hop_seconds",)),
              Architecture("acrnn", "sedbench.models.acrnn:ACRNN"),
              Architecture("fnn", "sedbench.models.fnn:FNN"),
              Architecture("vggish", "sedbench.models.vggish:VGGishRNN"),
              Architecture("gmm", "sedbench.models.gmm:GMMDetector", trains=FRAMES)):
    register_architecture(_arch)
# one colour and marker per family (matplotlib's tab10)
for _fam in (Family("crnn", "#d62728", "o"), Family("cnn", "#1f77b4", "s"), Family("rnn", "#2ca02c", "^"),
             Family("fnn", "#9467bd", "D"), Family("gmm", "#7f7f7f", "X"), Family("vggish_rnn", "#8c564b", "P"),
             Family("crnn_attention", "#e377c2", "*"), Family("acrnn", "#bcbd22", "h")):
    register_family(_fam)
