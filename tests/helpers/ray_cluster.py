"""A throwaway Ray cluster on 127.0.0.1 for the tests: a head node and one more worker node, each started with
``ray start --block`` in its own process group (so that the worker node can be stopped alone, as a machine of a
cluster fails), token authentication on (RAY_AUTH_MODE=token, a token of this test session), Ray's files in a
temporary folder. ``make test-full`` installs Ray (``make ray``); where it is missing, the tests skip and say so.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers.postgres import free_port


class RayCluster:
    def __init__(self, cpus_per_node: int = 1):
        pytest.importorskip("ray", reason="Ray is optional: `make ray` (or pip install 'sedbench[ray]') installs it")
        self.dir = Path(tempfile.mkdtemp(prefix="sedbench-ray-"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.cpus = cpus_per_node
        # every process of the cluster and every driver authenticates with this session's token
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.nodes: dict[str, subprocess.Popen] = {}

    def _ray(self) -> str:
        return str(Path(sys.executable).parent / "ray")

    def start_node(self, name: str, head: bool = False) -> None:
        """``ray start --block`` for the head or one more worker node; waits until the cluster counts it."""
        role = (["--head", f"--port={self.port}", f"--temp-dir={self.dir}", "--include-dashboard=false"] if head
                else [f"--address={self.address}"])
        cmd = [self._ray(), "start", "--block", *role, "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}",
               "--disable-usage-stats"]
        log = open(self.dir / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        self.nodes[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)
        self.wait_for_nodes(len(self.nodes))

    def alive_nodes(self) -> int:
        code = (f"import ray; ray.init(address='{self.address}', logging_level='ERROR', log_to_driver=False); "
                "print(sum(n['Alive'] for n in ray.nodes()))")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=self.env, timeout=120)
        return int(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else -1

    def wait_for_nodes(self, n: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, p in self.nodes.items():
                if p.poll() is not None:
                    self.stop()
                    pytest.fail(f"Ray node {name} exited {p.returncode}: {self.log(name)}")
            if self.alive_nodes() == n:
                return
            time.sleep(1)
        self.stop()
        pytest.fail(f"the Ray cluster did not reach {n} nodes in {timeout:.0f} s: {self.log('head')}")

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text()[-2000:] if path.is_file() else ""

    def tasks_on(self, name: str) -> list[int]:
        """The pids of the trial tasks (``ray::_run_on_ray``) running on node ``name``: children of its raylet,
        itself a child of the node's ``ray start --block``."""
        raylets = [pid for pid in _pids() if _ppid(pid) == self.nodes[name].pid]
        return [pid for pid in _pids() if _ppid(pid) in raylets and "_run_on_ray" in _cmdline(pid)]

    def kill_node(self, name: str) -> None:
        """SIGKILL every process of node ``name`` (its raylet, agents and tasks): a machine that fails."""
        tasks = self.tasks_on(name)
        p = self.nodes.pop(name)
        os.killpg(p.pid, signal.SIGKILL)
        for pid in tasks:  # tasks run in sessions of their own; they die with their raylet, and here at once
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait(timeout=30)

    def stop(self) -> None:
        for p in self.nodes.values():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for p in self.nodes.values():
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        self.nodes.clear()  # (not `ray stop`: it would stop every Ray of this machine, not only this cluster)


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
