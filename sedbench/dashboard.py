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


def serve(tracking_uri: str, port: int, artifacts: Path, storage: str | None = None, optuna_port: int = 8080,
          workers: int = 1, log: Path | None = None, host: str = HOST) -> int:
    """Run the dashboards until Ctrl-C (or SIGTERM); returns the exit code."""
    check_store(tracking_uri, "MLflow store", "run `sedbench train` or `sedbench sweep NAME` first, or pass --tracking")
    check_port(port, "--port", host)
    commands = [("MLflow UI", mlflow_command(tracking_uri, port, artifacts, workers, host), port, "/health")]
    if storage is not None:
        check_store(storage, "Optuna studies", "run `sedbench sweep NAME` first, or pass --storage")
        check_port(optuna_port, "--optuna-port", host)
        commands.append(("Optuna dashboard", optuna_command(storage, optuna_port, host), optuna_port, "/"))
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
            print(f"{s.name}: {s.url}", flush=True)
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
