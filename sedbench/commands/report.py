"""``sedbench report NAME``: the sweep's tables and figures (sedbench.report.write), its parser and handler."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    from sedbench.commands.options import add_storage, add_tracking

    rep = sub.add_parser("report", help="tables and plots of a sweep: results/NAME/index.md and index.html",
                         description="The paper's tables and figures from a sweep's Optuna study and MLflow runs: "
                                     "Markdown and PNG (for papers) and index.html (one self-contained page whose "
                                     "figures show each trial on hover and open its MLflow run on click). The "
                                     "report is also logged to the sweep's parent MLflow run.")
    rep.add_argument("name", help="the sweep (Optuna study) name, e.g. demo")
    add_storage(rep)
    add_tracking(rep)
    rep.add_argument("--out", type=Path, help="output folder (default results/NAME)")
    rep.add_argument("--html", action="store_true", help="accepted for clarity: index.html is always written")
    rep.add_argument("--allow-mixed", action="store_true",
                     help="decide claims across runs that read different copies of the dataset (their fingerprints "
                          "differ); without it such a claim gets no verdict")
    rep.add_argument("--energy-reference", metavar="OVERRIDES",
                     help='the configuration costs.md weights energies against (DCASE\'s energy-weighted score), e.g. '
                          '"model=crnn model.maps=16"; default: the study\'s sweep.energy_reference, else the '
                          'configuration with the best mean validation score')
    rep.add_argument("--mlflow-url", default="http://127.0.0.1:5000",
                     help="address of the MLflow UI the page links runs to (default: `sedbench dashboard`'s)")
    rep.set_defaults(handler=run)


def run(args) -> None:
    from sedbench.preflight import check_writable
    from sedbench.report.write import write_report
    from sedbench.tracking import tracking_uri

    folder = args.out or Path("results") / args.name
    if args.out is not None:  # the default folder is checked once the sweep is known to exist
        check_writable(folder, "report", "--out")
    if args.energy_reference is not None:
        from sedbench.errors import SedbenchError
        from sedbench.report.costs import parse_reference

        try:
            parse_reference(args.energy_reference)
        except ValueError as exc:
            raise SedbenchError(f"--energy-reference: {exc}") from None
    out = write_report(args.name, args.storage, tracking_uri(args.tracking), folder, args.mlflow_url,
                       args.allow_mixed, args.energy_reference)
    print(f"report: {out / 'index.md'} (Markdown and PNG), {out / 'index.html'} (one page, interactive figures)")
