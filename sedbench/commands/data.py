"""``sedbench data ...``: generate, mix, inspect, prepare and featurize datasets (its parser and handlers)."""

from __future__ import annotations

import argparse
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
                             paper_size=args.paper_size, overwrite=args.overwrite, progress=not args.quiet,
                             shared_instances=args.shared_instances)
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


def run(args) -> int | None:
    if args.data_command is None:
        args.data_parser.print_help()
        return 0
    if getattr(args, "out", None) is not None:  # before any work: a folder that can be written
        from sedbench.preflight import check_writable

        check_writable(args.out, "dataset", "--out")
    return COMMANDS[args.data_command](args)


def _add_mixture_args(p: argparse.ArgumentParser, minutes_train: float) -> None:
    from sedbench.commands.options import number

    minutes = number(float, 0, above=True)
    p.add_argument("--out", type=Path, help="output folder (default: $SEDBENCH_DATA/NAME or ./data/NAME)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same dataset (default 0)")
    p.add_argument("--minutes-train", type=minutes, default=minutes_train,
                   help=f"training audio, minutes (default {minutes_train:g})")
    p.add_argument("--minutes-validation", type=minutes, help="validation audio, minutes (default: train / 3)")
    p.add_argument("--minutes-test", type=minutes, help="test audio, minutes (default: train / 3)")
    p.add_argument("--mixture-seconds", type=number(float, 0, above=True), default=60.0,
                   help="length of one mixture file, s (default 60)")
    p.add_argument("--tracks", type=number(int, 1), default=3, help="simultaneous layers of events (default 3)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def feature_kinds() -> list[str]:
    """The feature configs of conf/features (``data features --kind``)."""
    from sedbench.commands.launch import conf_dir

    return sorted(p.stem for p in (conf_dir() / "features").glob("*.yaml"))


def add_parser(sub) -> None:
    from sedbench.commands.options import number

    data = sub.add_parser("data", help="generate, mix, inspect, prepare and featurize datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")

    gen = dsub.add_parser("generate", help="write the embedded synthetic dataset (no download)",
                          description="Polyphonic mixtures of 16 synthesized classes, built like TUT-SED "
                                      "Synthetic 2016.")
    gen.add_argument("name", choices=["synth"], help="dataset to generate")
    _add_mixture_args(gen, 12.0)
    gen.add_argument("--instances-per-class", type=number(int, 1), default=20,
                     help="distinct training sources per class: 60 %% of it train (default 20; paper: 994/16 = 62); "
                          "each validation and test mixture has instances of its own, one per class")
    gen.add_argument("--shared-instances", action="store_true",
                     help="validation and test mixtures share pools of 20 %% of --instances-per-class each (sedbench's "
                          "layout before December 2026: their files then share sources)")
    gen.add_argument("--sample-rate", type=number(int, 1000), default=44100, help="Hz (default 44100, as the paper)")
    gen.add_argument("--paper-size", action="store_true",
                     help="the paper's size: 100 mixtures, about 566 minutes, 62 instances per class")

    mix = dsub.add_parser("mix", help="build mixtures from a folder of isolated events (one subfolder per class)")
    mix.add_argument("--events", type=Path, required=True, help="folder of class subfolders, e.g. ESC-10")
    mix.add_argument("--name", default="esc10_mix", help="dataset name (default esc10_mix)")
    _add_mixture_args(mix, 12.0)

    info = dsub.add_parser("info", help="classes, hours per split, events per class, polyphony")
    info.add_argument("dataset", help="a dataset folder or a registered name (under $SEDBENCH_DATA or ./data)")
    info.add_argument("--layout", help="force a layout (default: detected)")
    info.add_argument("--fold", type=number(int, 1), help="test fold of a cross-validated dataset (default 1)")

    prep = dsub.add_parser("prepare", help="download, verify (md5) and extract a public dataset")
    prep.add_argument("name", help="tut_sed_synth_2016, tut_sed_2016, chime_home, urban_sed, esc10, esc50")
    prep.add_argument("--root", type=Path, help="destination (default: $SEDBENCH_DATA/NAME or ./data/NAME)")
    prep.add_argument("--features", action="store_true", help="also compute and cache log-mel features")

    feat = dsub.add_parser("features", help="compute (or load from cache) the features of every file")
    feat.add_argument("dataset", help="a dataset folder or a registered name")
    feat.add_argument("--kind", default="logmel", choices=feature_kinds(),
                      help="a feature config of conf/features, with its settings (default logmel)")
    feat.add_argument("--cache", type=Path, help="cache folder (default: the config's, $SEDBENCH_CACHE or "
                                                  "~/.cache/sedbench/features)")
    data.set_defaults(handler=run, data_parser=data)
