"""``sedbench data ...``: generate, mix, inspect, prepare and featurize datasets (arguments parsed by
:mod:`sedbench.commands.cli`)."""

from __future__ import annotations

import time
from pathlib import Path


def _out(args, name: str) -> Path:
    from sedbench.data.layouts import data_home

    return args.out if args.out is not None else data_home() / name


def generate(args) -> None:
    from sedbench.data.synth import generate_synth

    out, t0 = _out(args, "synth"), time.perf_counter()
    minutes = generate_synth(out, seed=args.seed, minutes_train=args.minutes_train,
                             minutes_validation=args.minutes_validation, minutes_test=args.minutes_test,
                             mixture_seconds=args.mixture_seconds, tracks=args.tracks,
                             instances_per_class=args.instances_per_class, sample_rate=args.sample_rate,
                             paper_size=args.paper_size, overwrite=args.overwrite, progress=not args.quiet)
    secs, wall = 60 * sum(minutes.values()), time.perf_counter() - t0
    print(f"wrote {out}: {secs / 60:.1f} min of audio in {wall:.1f} s ({secs / wall:.0f}x real time)")


def mix(args) -> None:
    from sedbench.data.mix import mix_folder

    out, t0 = _out(args, args.name), time.perf_counter()
    mix_folder(args.events, out, args.name, seed=args.seed, minutes_train=args.minutes_train,
               minutes_validation=args.minutes_validation, minutes_test=args.minutes_test,
               mixture_seconds=args.mixture_seconds, tracks=args.tracks, overwrite=args.overwrite,
               progress=not args.quiet)
    print(f"wrote {out} from {args.events} in {time.perf_counter() - t0:.1f} s")


def info(args) -> None:
    from sedbench.data.info import format_info
    from sedbench.data.layouts import load_dataset

    options = {} if args.fold is None else {"fold": args.fold}
    print(format_info(load_dataset(args.dataset, layout=args.layout, **options)))


def prepare(args) -> None:
    from sedbench.data.layouts import data_home, load_dataset
    from sedbench.data.prepare import prepare as download

    root = download(args.name, args.root or data_home() / args.name)
    print(f"{args.name} ready in {root}")
    if args.features:
        _featurize(load_dataset(args.name, root=root), "logmel", None)


def features(args) -> None:
    from sedbench.data.layouts import load_dataset

    _featurize(load_dataset(args.dataset), args.kind, args.cache)


def _featurize(ds, kind: str, cache: Path | None) -> None:
    """Features as conf/features/KIND.yaml sets them (the cache folder: --cache, else the config's)."""
    from sedbench.commands.launch import compose
    from sedbench.data.datamodule import featurize
    from sedbench.data.features import params_from_config

    params, cache_dir = params_from_config(compose([f"features={kind}"]).features)
    print(featurize(ds, params, cache or cache_dir))


COMMANDS = {"generate": generate, "mix": mix, "info": info, "prepare": prepare, "features": features}
