"""``sedbench dashboard``: the MLflow UI (and the Optuna dashboard) over the project's stores, on 127.0.0.1.

They listen on 127.0.0.1 only unless ``--host`` says otherwise (the stores are not protected by any
login). Each server runs in its own process group, so that stopping it (Ctrl-C, SIGTERM, or one server
exiting on its own) also stops every worker process it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sedbench.errors import SedbenchError

HOST = "127.0.0.1"


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Server:
    name: str
    url: str
    health: str
    proc: subprocess.Popen

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the server leads its own process group


def check_port(port: int, flag: str, host: str = HOST) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            raise SedbenchError(f"port {port} on {host} is in use (another dashboard?). Fix: {flag} with a free port, "
                                "or stop the program holding it") from None


def check_store(uri: str, what: str, fix: str) -> None:
    from sedbench.tracking import sqlite_file

    path = sqlite_file(uri)
    if path is not None and not path.is_file():
        raise SedbenchError(f"{path}: no {what} yet. Fix: {fix}")


def mlflow_command(tracking_uri: str, port: int, artifacts: Path, workers: int, host: str = HOST) -> list[str]:
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri, "--host", host,
            "--port", str(port), "--workers", str(workers), "--default-artifact-root", artifacts.resolve().as_uri(),
            "--no-serve-artifacts"]


def optuna_command(storage: str, port: int, host: str = HOST) -> list[str]:
    exe = Path(sys.executable).with_name("optuna-dashboard")
    if not exe.is_file():
        raise SedbenchError(f"{exe}: optuna-dashboard is not installed. Fix: pip install optuna-dashboard "
                            "(it is a sedbench dependency: `make setup`)")
    return [str(exe), storage, "--host", host, "--port", str(port)]


def start(name: str, cmd: list[str], port: int, health: str, log: Path | None, host: str = HOST) -> Server:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child keeps it open)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no GenAI job workers: runs only
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    return Server(name, f"http://{url_host}:{port}", health, proc)


def wait_ready(server: Server, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SedbenchError(f"the {server.name} exited with code {server.proc.returncode} while starting. "
                                "Fix: see its log (results/dashboard.log)")
        try:
            with urllib.request.urlopen(server.url + server.health, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise SedbenchError(f"the {server.name} did not answer at {server.url} within {timeout:.0f} s. "
                        "Fix: see its log (results/dashboard.log)")


def stop(servers: list[Server], grace: float = 10.0) -> None:
    """SIGTERM to each server's whole process group, SIGKILL to what is left after ``grace`` seconds."""
    for s in servers:
        _signal_group(s.pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for s in servers:
        try:
            s.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for s in servers:
        _signal_group(s.pgid, signal.SIGKILL)  # workers that outlived their parent, if any
        s.proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# MLflow's runs page reads a view (search, sort, columns) from an experiment tag with this prefix when its address
# carries ?viewStateShareKey=KEY (what its "Share" button writes): sedbench writes one per sweep
SHARED_VIEW_TAG = "mlflow.sharedViewState."


def view_metrics() -> list[str]:
    """The runs table's metric columns: the parameter count, each default objective's best validation value, and
    the scores the metric registry shows in a run's summary."""
    from sedbench.metrics.registry import metrics, objective

    return ["n_params", *dict.fromkeys(f"val/{objective('auto', weak).name}_best" for weak in (False, True)),
            *[f"test/{m.name}" for m in metrics(summary=True)]]
NOT_GRID = ("trial.", "tracking.", "sweep.", "data.root", "features.cache_dir", "n_params", "macs_per_10s",
            "energy.")  # params that vary by run, or say nothing of the configuration


@dataclass
class SweepView:
    experiment_id: str
    key: str
    sweep: str | None
    trials: int

    def path(self) -> str:
        """The runs page of the experiment with the view applied (after the server's address)."""
        return f"/#/experiments/{self.experiment_id}/runs?viewStateShareKey={self.key}"


def column(kind: str, name: str) -> str:
    """A runs-table column key as MLflow's UI writes it: ``metrics.`test/f1_frm```."""
    return f"{kind}.`{name}`"


def sweep_view(tracking_uri: str, sweep: str | None = None, experiment: str = "sedbench") -> SweepView | None:
    """Write the view of a sweep (the latest one when ``sweep`` is None) as an experiment tag: its trials listed
    flat, best ``test/f1_frm`` first, with columns for the family, every parameter the trials differ in, the
    parameter count and the scores. None when the store has no such experiment yet."""
    import json

    from sedbench.tracking import RunStore

    store = RunStore(tracking_uri)
    experiment_id = store.experiment_id(experiment)
    if experiment_id is None:
        if sweep:
            raise SedbenchError(f"no experiment {experiment!r} in {tracking_uri}. Fix: run `sedbench sweep {sweep}` "
                                "first, or pass --tracking")
        return None
    parent = store.sweep_parent(sweep, experiment)
    if parent is None and sweep:
        raise SedbenchError(f"no sweep named {sweep!r} in {tracking_uri}. Fix: `sedbench sweep {sweep}` first, or "
                            "name one the store has (the parent runs called 'sweep NAME')")
    state: dict = {"orderByKey": column("metrics", "test/f1_frm"), "orderByAsc": False}
    name = None
    if parent is not None:
        name = parent.data.tags.get("sweep")
        state["searchFilter"] = f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    trials = store.runs(experiment_id, state.get("searchFilter", ""))
    keys = sorted({k for r in trials for k in r.data.params})
    varying = [k for k in keys if not k.startswith(NOT_GRID)
               and len({r.data.params.get(k) for r in trials}) > 1]
    metrics = [m for m in view_metrics() if any(m in r.data.metrics for r in trials)]
    # the scores first (visible beside the run name on a laptop screen), then the family and what the grid varied
    columns = [*[column("metrics", m) for m in metrics], column("tags", "family"),
               *[column("params", k) for k in varying]]
    state.update(selectedColumns=columns, columnOrder=columns, columnWidths={c: 112 for c in columns})
    key = "sedbench-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in (name or "all-runs"))
    store.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, json.dumps(state))
    return SweepView(experiment_id, key, name, len(trials))


def optuna_study_path(storage: str, sweep: str | None, prefer: str | None = None) -> str:
    """The Optuna dashboard's page of the sweep's study: ``sweep`` (which must exist), else ``prefer`` (the sweep
    the MLflow address shows) when the storage has it, else the latest study."""
    import optuna

    from sedbench.studies import read_storage

    db = read_storage(storage)
    summaries = optuna.get_all_study_summaries(db, include_best_trial=False)
    if sweep:
        summaries = [s for s in summaries if s.study_name == sweep]
        if not summaries:
            raise SedbenchError(f"no study named {sweep!r} in {storage}. Fix: `sedbench sweep {sweep}` first, or "
                                "pass --storage")
    summaries = [s for s in summaries if s.study_name == prefer] or summaries
    if not summaries:
        return "/dashboard"
    latest = max(summaries, key=lambda s: (s.datetime_start is not None, s.datetime_start or 0))
    return f"/dashboard/studies/{db.get_study_id_from_name(latest.study_name)}"


def serve(tracking_uri: str, port: int, artifacts: Path, storage: str | None = None, optuna_port: int = 8080,
          workers: int = 1, log: Path | None = None, host: str = HOST, sweep: str | None = None,
          open_browser: bool = False) -> int:
    """Run the dashboards until Ctrl-C (or SIGTERM); returns the exit code. The MLflow address printed (and
    opened with ``open_browser``) lands on the sweep's trials (:func:`sweep_view`), the Optuna one on its study."""
    check_store(tracking_uri, "MLflow store", "run `sedbench train` or `sedbench sweep NAME` first, or pass --tracking")
    check_port(port, "--port", host)
    view = sweep_view(tracking_uri, sweep)
    paths = {"MLflow UI": view.path() if view else ""}
    commands = [("MLflow UI", mlflow_command(tracking_uri, port, artifacts, workers, host), port, "/health")]
    if storage is not None:
        check_store(storage, "Optuna studies", "run `sedbench sweep NAME` first, or pass --storage")
        check_port(optuna_port, "--optuna-port", host)
        commands.append(("Optuna dashboard", optuna_command(storage, optuna_port, host), optuna_port, "/"))
        paths["Optuna dashboard"] = optuna_study_path(storage, sweep, view.sweep if view else None)
    if host not in LOOPBACK:
        print(f"warning: serving on {host}: anyone who can reach this machine can read and change the runs",
              file=sys.stderr)
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for name, cmd, p, health in commands:
            servers.append(start(name, cmd, p, health, log, host))
        for s in servers:
            wait_ready(s)
            print(f"{s.name}: {s.url}{paths.get(s.name, '')}", flush=True)
        if view and view.sweep:
            print(f"sweep {view.sweep}: {view.trials} trials, best test/f1_frm first", flush=True)
        if open_browser:
            import webbrowser

            for s in servers:
                webbrowser.open(s.url + paths.get(s.name, ""))
        print(f"MLflow store {tracking_uri}" + (f", Optuna storage {storage}" if storage else "")
              + ". Ctrl-C stops the server" + ("s." if len(servers) > 1 else "."), flush=True)
        while True:
            for s in servers:
                if s.proc.poll() is not None:
                    print(f"the {s.name} exited with code {s.proc.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping the dashboard", flush=True)
        return 0
    finally:
        stop(servers)
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def add_parser(sub) -> None:
    from sedbench.commands.options import add_storage, add_tracking, number
    from sedbench.tracking import DEFAULT_ARTIFACTS

    dash = sub.add_parser("dashboard", help="the MLflow UI (and --optuna: the Optuna dashboard) on 127.0.0.1",
                          description="Browse runs and sweeps. Serves the project's MLflow store on 127.0.0.1; "
                                      "Ctrl-C stops the servers and every worker process they started.")
    dash.add_argument("--port", type=number(int, 1, 65535), default=5000, help="MLflow UI port (default 5000)")
    dash.add_argument("--sweep", help="the sweep to land on (default: the latest one in the store)")
    dash.add_argument("--open", action="store_true", help="open the printed addresses in the default browser")
    dash.add_argument("--optuna", action="store_true", help="also serve the Optuna dashboard over --storage")
    dash.add_argument("--optuna-port", type=number(int, 1, 65535), default=8080,
                      help="Optuna dashboard port (default 8080)")
    add_tracking(dash)
    add_storage(dash)
    dash.add_argument("--artifacts", type=Path, default=Path(DEFAULT_ARTIFACTS),
                      help=f"artifact folder for experiments created from the UI (default {DEFAULT_ARTIFACTS})")
    dash.add_argument("--workers", type=number(int, 1), default=1, help="MLflow server worker processes (default 1)")
    dash.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine "
                                                         "only; anything else exposes the stores without a login)")
    dash.set_defaults(handler=run)


def run(args) -> int:
    from sedbench.tracking import tracking_uri

    return serve(tracking_uri(args.tracking), args.port, args.artifacts, args.storage if args.optuna else None,
                 args.optuna_port, args.workers, log=Path("results/dashboard.log"), host=args.host, sweep=args.sweep,
                 open_browser=args.open)
