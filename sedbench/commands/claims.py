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
    from sedbench.report.claims import (
        FAMILY,
        claim_set,
        evaluate_study,
        on_every_dataset,
        run_readers,
        write_claims_across,
    )
    from sedbench.report.collect import collect, completed
    from sedbench.report.rounds import study_claims
    from sedbench.report.write import artifact_fetcher
    from sedbench.tracking import tracking_uri

    if len(set(args.names)) != len(args.names):
        raise SedbenchError(f"a sweep is named twice in {' '.join(args.names)}. Fix: one sweep per dataset")
    uri = tracking_uri(args.tracking)
    tmp = Path(tempfile.mkdtemp(prefix="sedbench-claims-"))
    datasets, declared = {}, {}
    for name in args.names:
        rows, study = collect(name, args.storage, uri)
        if not completed(rows):
            raise SedbenchError(f"sweep {name!r} has no completed trial. Fix: `sedbench status {name}`, or run it")
        datasets[name] = (rows, artifact_fetcher(uri, tmp / name))
        declared[name] = dict(study.user_attrs)
    sets = {str(a.get("claims") or "claims") for a in declared.values()}
    if len(sets) > 1:
        raise SedbenchError(f"the sweeps declare different claims ({', '.join(sorted(sets))}): one study's sweeps "
                            "decide one set. Fix: name the sweeps of one study (the same sweep file on each dataset)")
    if any(a.get("rounds") for a in declared.values()):  # seeds in rounds: each dataset decided look by look
        if FAMILY != "dataset":
            raise SedbenchError("seeds added in rounds are decided per dataset (sweep.rounds); the declared family "
                                f"is {FAMILY!r}. Fix: decide each sweep with `sedbench report NAME`")
        per = {name: study_claims(rows, declared[name], fetch, args.allow_mixed)[0]
               for name, (rows, fetch) in datasets.items()}
    else:
        per = evaluate_study({name: (rows, run_readers(fetch)) for name, (rows, fetch) in datasets.items()},
                             claims=claim_set(sets.pop()), allow_mixed=args.allow_mixed)
    out = write_claims_across(per, args.out or Path("results") / f"claims_{'+'.join(args.names)}.md", FAMILY)
    for claim, verdict, each in on_every_dataset(per):
        print(f"{claim.name}: {verdict} on every dataset ({'; '.join(each)})")
    for name, results in per.items():
        for r in results:
            if not r.claim.every_dataset:
                print(f"{name}: {r.claim.name}: {r.verdict}")
    print(f"claims: {out}")
    return 0
