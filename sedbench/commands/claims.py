"""``sedbench claims NAME [NAME ...]``: the declared claims decided over one or several sweeps (datasets) of a study,
with the family and gate declared in sedbench.report.claims; the claims declared to hold on every dataset get their
intersection-union verdict."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    from sedbench.commands.options import add_storage, add_tracking

    p = sub.add_parser(
        "claims", help="the paper's claims decided over one or several sweeps (datasets) of a study",
        description="Decide the declared claims (sedbench/report/claims.py) on the completed trials of each sweep "
                    "(one sweep per dataset), with the declared family and serial gate; the claims declared to hold "
                    "on every dataset hold only where they hold on each. Writes one Markdown file and prints the "
                    "verdicts.",
        epilog="Example: sedbench claims claims claims_esc10_mix")
    p.add_argument("names", nargs="+", metavar="NAME", help="sweeps (Optuna studies), one per dataset")
    p.add_argument("--out", type=Path, help="the Markdown file (default results/claims_NAME1+NAME2.md)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="decide claims across runs that read different copies of a dataset (fingerprints differ)")
    add_storage(p)
    add_tracking(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    import tempfile

    from sedbench.errors import SedbenchError
    from sedbench.report.claims import FAMILY, evaluate_study, on_every_dataset, run_readers, write_claims_across
    from sedbench.report.collect import collect, completed
    from sedbench.report.write import artifact_fetcher
    from sedbench.tracking import tracking_uri

    if len(set(args.names)) != len(args.names):
        raise SedbenchError(f"a sweep is named twice in {' '.join(args.names)}. Fix: one sweep per dataset")
    uri = tracking_uri(args.tracking)
    tmp = Path(tempfile.mkdtemp(prefix="sedbench-claims-"))
    datasets = {}
    for name in args.names:
        rows, _ = collect(name, args.storage, uri)
        if not completed(rows):
            raise SedbenchError(f"sweep {name!r} has no completed trial. Fix: `sedbench status {name}`, or run it")
        datasets[name] = (rows, run_readers(artifact_fetcher(uri, tmp / name)))
    per = evaluate_study(datasets, allow_mixed=args.allow_mixed)
    out = write_claims_across(per, args.out or Path("results") / f"claims_{'+'.join(args.names)}.md", FAMILY)
    for claim, verdict, each in on_every_dataset(per):
        print(f"{claim.name}: {verdict} on every dataset ({'; '.join(each)})")
    for name, results in per.items():
        for r in results:
            if not r.claim.every_dataset:
                print(f"{name}: {r.claim.name}: {r.verdict}")
    print(f"claims: {out}")
    return 0
