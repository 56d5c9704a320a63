"""A throwaway one-node SLURM cluster on 127.0.0.1 for the tests, from Debian's packages (``make slurm`` installs
them as root): its own munge daemon and key, a MariaDB server in a temporary folder, slurmdbd (so that ``sacct``
answers, as on any real cluster: submitit learns a cancelled job's end from it), slurmctld and slurmd, all on
free ports, with configuration, state and logs in that folder. ``SLURM_CONF`` in :attr:`SlurmCluster.env` points
the client commands (sbatch, squeue, scancel, sacct) at it. It needs root (slurmd runs jobs as their users);
where something is missing it skips and says what.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers.postgres import free_port

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
WHERE = {"munged": "/usr/sbin/munged", "mariadbd": "/usr/sbin/mariadbd", "slurmdbd": "/usr/sbin/slurmdbd",
         "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd"}


def missing() -> str | None:
    """Why the cluster cannot start here, or None."""
    if os.geteuid() != 0:
        return "the SLURM cluster needs root (slurmd runs jobs as their users); run make test-full as root"
    absent = [d for d in DAEMONS if not Path(WHERE[d]).exists()] + \
             [c for c in ("sbatch", "scancel", "sacct", "sacctmgr", "mariadb-install-db") if shutil.which(c) is None]
    if absent:
        return (f"{', '.join(absent)} not found: `make slurm` installs munge, slurmctld, slurmd, slurm-client, "
                "slurmdbd and mariadb-server (Debian) as root")
    for user in ("munge", "mysql"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"no '{user}' user (Debian's munge and mariadb-server packages create it)"
    return None


class SlurmCluster:
    def __init__(self, cpus: int = 2):
        why = missing()
        if why:
            pytest.skip(why)
        self.dir = Path(tempfile.mkdtemp(prefix="sedbench-slurm-"))
        os.chmod(self.dir, 0o755)
        self.host = socket.gethostname().split(".")[0]
        self.cpus = cpus
        self.ports = {k: free_port() for k in ("ctld", "slurmd", "dbd", "mysql")}
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.dir / "slurm.conf")}

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        try:
            self._munge()
            self._mariadb()
            self._write_confs()
            self._daemon("slurmdbd", [WHERE["slurmdbd"], "-D"])
            self._wait(self._cluster_added, "slurmdbd to answer", "slurmdbd")
            self._daemon("slurmctld", [WHERE["slurmctld"], "-D", "-i"])
            self._daemon("slurmd", [WHERE["slurmd"], "-D", "-N", self.host])
            self._wait(self._node_idle, f"node {self.host} to be idle", "slurmd")
        except BaseException:
            self.stop()
            raise

    def _munge(self) -> None:
        munge = pwd.getpwnam("munge")
        mdir = self.dir / "munge"
        mdir.mkdir()
        os.chmod(mdir, 0o711)  # the socket is reachable by every user; the key stays the munge user's
        key = mdir / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        for path in (mdir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        self.munge_socket = mdir / "munge.sock"
        self._daemon("munged", [WHERE["munged"], "--foreground", f"--socket={self.munge_socket}",
                                f"--key-file={key}", f"--pid-file={mdir}/munged.pid", f"--log-file={mdir}/munged.log",
                                f"--seed-file={mdir}/munged.seed"], user=munge)
        self._wait(self.munge_socket.exists, "munged's socket", "munged")

    def _mariadb(self) -> None:
        mysql = pwd.getpwnam("mysql")
        db = self.dir / "mariadb"
        db.mkdir()
        os.chown(db, mysql.pw_uid, mysql.pw_gid)
        r = subprocess.run(["mariadb-install-db", "--user=mysql", f"--datadir={db}/data", "--skip-test-db",
                            "--auth-root-authentication-method=socket"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {(r.stderr or r.stdout)[-1500:]}")
        self.mysql_socket = db / "mysqld.sock"
        self._daemon("mariadbd", [WHERE["mariadbd"], "--no-defaults", "--user=mysql", f"--datadir={db}/data",
                                  f"--socket={self.mysql_socket}", f"--port={self.ports['mysql']}",
                                  "--bind-address=127.0.0.1", f"--pid-file={db}/mysqld.pid",
                                  "--innodb-buffer-pool-size=32M", "--skip-log-bin"])
        self._wait(self.mysql_socket.exists, "MariaDB's socket", "mariadbd")
        self.db_password = secrets.token_hex(12)
        sql = (f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}'; "
               "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;")
        r = subprocess.run(["mariadb", f"--socket={self.mysql_socket}", "-u", "root", "-e", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"MariaDB: could not create the slurm user: {r.stderr[-800:]}")

    def _write_confs(self) -> None:
        d, p = self.dir, self.ports
        for sub in ("state", "spool"):
            (d / sub).mkdir()
        auth = f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket}\n"
        dbd = d / "slurmdbd.conf"
        dbd.write_text(f"{auth}DbdHost=localhost\nDbdAddr=127.0.0.1\nDbdPort={p['dbd']}\nSlurmUser=root\n"
                       "StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\n"
                       f"StoragePort={p['mysql']}\nStorageUser=slurm\nStoragePass={self.db_password}\n"
                       f"StorageLoc=slurm_acct_db\nLogFile={d}/slurmdbd.log\nPidFile={d}/slurmdbd.pid\n")
        dbd.chmod(0o600)
        (d / "slurm.conf").write_text(
            f"ClusterName=sedbench\nSlurmctldHost={self.host}(127.0.0.1)\nSlurmctldPort={p['ctld']}\n"
            f"SlurmdPort={p['slurmd']}\nSlurmUser=root\nSlurmdUser=root\n{auth}"
            f"StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n"
            f"SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n"
            f"SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nMpiDefault=none\n"
            "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\nReturnToService=2\n"
            # KillWait: SIGKILL 5 s after a cancelled job's SIGTERM (30 s by default); submitit's jobs ignore SIGTERM
            "SchedulerParameters=sched_interval=1\nMinJobAge=600\nKillWait=5\n"
            f"AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\n"
            f"AccountingStoragePort={p['dbd']}\nAccountingStoragePass={self.munge_socket}\n"  # munge to slurmdbd
            "JobAcctGatherType=jobacct_gather/none\n"
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN\n"
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4\n")

    def _daemon(self, name: str, cmd: list[str], user=None) -> None:
        def demote():
            if user is not None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        log = open(self.dir / f"{name}.out", "w")  # noqa: SIM115 (closed with the process)
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            preexec_fn=demote, start_new_session=True, cwd=self.dir)

    def _wait(self, ready, what: str, daemon: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.procs[daemon].poll() is not None:
                raise RuntimeError(f"{daemon} exited {self.procs[daemon].returncode} waiting for {what}: "
                                   f"{self.log(daemon)}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}: {self.log(daemon)}")

    def _cluster_added(self) -> bool:
        r = self._run("sacctmgr", "-i", "add", "cluster", "sedbench")
        return r.returncode == 0 or "already exists" in r.stdout

    def _node_idle(self) -> bool:
        r = self._run("sinfo", "-h", "-N", "-o", "%t")
        return r.returncode == 0 and r.stdout.strip() == "idle"

    # ------------------------------------------------------------------ use
    def _run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True, env=self.env, timeout=timeout)

    def run(self, *cmd: str, timeout: float = 60) -> str:
        r = self._run(*cmd, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr[-800:]}")
        return r.stdout

    def running_jobs(self) -> list[str]:
        """The ids of the jobs (array tasks as ``JOB_TASK``) now running."""
        return self.run("squeue", "-h", "-t", "RUNNING", "-o", "%i").split()

    def log(self, name: str) -> str:
        for path in (self.dir / f"{name}.log", self.dir / f"{name}.out", self.dir / "munge" / f"{name}.log"):
            if path.is_file() and path.stat().st_size:
                return path.read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        subprocess.run(["scancel", "--full", "--user=root"], capture_output=True, env=self.env, timeout=60)
        for name in reversed(DAEMONS):  # slurmd first, munged last
            p = self.procs.pop(name, None)
            if p is None:
                continue
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait(timeout=30)
