"""``sedbench plan NAME``: seeds a study needs, from a finished pilot or study (sedbench.report.plan)."""

from __future__ import annotations

import json
import math


def add_parser(sub) -> None:
    from sedbench.commands.options import add_storage, add_tracking, number

    p = sub.add_parser(
        "plan", help="power and seeds per claim from a finished pilot or study",
        description="From a finished sweep (a pilot on a dataset the study will not use, or a study): each "
                    "configuration's runs, failures and seed spread; for each declared claim the test files' share "
                    "of the variance, its power at its level for a stated difference and the seeds a side for the "
                    "target power (docs/statistics.md).",
        epilog="Example: sedbench plan claims_pilot --difference 3")
    p.add_argument("name", help="the sweep (Optuna study) name")
    p.add_argument("--difference", type=float, default=None,
                   help="the true difference to plan for, in F1 points (default 5; non-inferiority claims are "
                        "planned for equal shapes)")
    p.add_argument("--target", type=float, default=0.8, help="the power to plan for (default 0.8)")
    p.add_argument("--claims", default=None,
                   help="the set of claims to plan (claims, table4, fig4; default: the one the sweep declared)")
    p.add_argument("--rounds", default=None,
                   help="seeds added in rounds, e.g. 3,5,8: plan each claim at its last look's level (default: the "
                        "sweep's own sweep.rounds, if any)")
    p.add_argument("--spending", default="obrien_fleming", help="with --rounds: obrien_fleming (default) or pocock")
    p.add_argument("--files", type=number(int, 2), default=None, metavar="N",
                   help="plan as if the test split had N files like the pilot's (its files' variance scaled by its "
                        "files / N): what a larger test split buys")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown tables")
    add_storage(p)
    add_tracking(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    import tempfile
    from pathlib import Path

    from sedbench.errors import SedbenchError
    from sedbench.report.claims import ALPHA, DIFFERENCE, claim_set
    from sedbench.report.collect import collect, completed
    from sedbench.report.plan import as_markdown, plan_claims, plan_configurations
    from sedbench.report.write import artifact_fetcher
    from sedbench.stats import look_levels
    from sedbench.tracking import tracking_uri

    difference = DIFFERENCE if args.difference is None else args.difference / 100
    if not 0 < difference < 1:
        raise SedbenchError(f"--difference {args.difference}: a difference in F1 points between 0 and 100 (e.g. 5)")
    if not 0 < args.target < 1:
        raise SedbenchError(f"--target {args.target}: a power between 0 and 1 (e.g. 0.8)")
    uri = tracking_uri(args.tracking)
    rows, study = collect(args.name, args.storage, uri)
    claims_name = args.claims or study.user_attrs.get("claims") or "claims"
    claims = claim_set(claims_name)
    rounds = study.user_attrs.get("rounds") or {}
    seeds, spending = rounds.get("seeds"), rounds.get("spending", args.spending)
    if args.rounds is not None:
        seeds, spending = args.rounds.split(","), args.spending
    alpha = ALPHA
    if seeds:
        try:
            alpha = 1 - look_levels([int(n) for n in seeds], ALPHA, spending)[-1]
        except ValueError as exc:
            raise SedbenchError(f"--rounds {args.rounds} --spending {spending}: {exc}. Fix: e.g. --rounds 3,5,8") \
                from None
    if not completed(rows):
        raise SedbenchError(f"sweep {args.name!r} has no completed trial to plan from. Fix: let it finish "
                            f"(`sedbench status {args.name}`), or run it: `sedbench sweep {args.name}`")
    fetch = artifact_fetcher(uri, Path(tempfile.mkdtemp(prefix="sedbench-plan-")))
    configs = plan_configurations(rows)
    claims = plan_claims(rows, fetch, difference, args.target, claims, alpha, args.files,
                         (int(seeds[-1]),) if seeds else ())
    if args.json:
        def num(v):
            return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v

        print(json.dumps({
            "sweep": args.name, "difference": difference, "target": args.target,
            "configurations": [{"configuration": c.label, "runs": c.runs, "failed": c.failed, "mean": num(c.mean),
                                "std": num(c.std)} for c in configs],
            "claims": [{"claim": p.result.claim.name, "level": num(p.level), "power": num(p.power),
                        "seeds_per_side": p.seeds, "files_share": num(p.files_share), "note": p.note}
                       for p in claims]}, indent=2))
    else:
        looks = (f"; seeds in rounds {','.join(map(str, seeds))} ({spending}): each claim planned at its last "
                 f"look, which spends {100 * alpha:.2f} % of the 5 %" if seeds else "")
        looks += f"; as if the test split had {args.files} files" if args.files else ""
        print(f"# Plan from sweep {args.name}\n\nClaims: `{claims_name}`{looks}.\n\n"
              + as_markdown(configs, claims, difference, args.target))
    return 0
