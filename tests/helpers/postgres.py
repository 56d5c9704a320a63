"""A throwaway PostgreSQL server for the tests (Debian's ``postgresql`` package; `make test` installs it as root)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


class Postgres:
    """``initdb`` + ``pg_ctl start`` in a temporary folder; as root, the server runs as user ``postgres``."""

    def __init__(self):
        self.bin = pg_bin()
        if self.bin is None:
            pytest.skip("PostgreSQL server binaries not found (Debian: apt-get install postgresql; "
                        "`make test` installs it when run as root)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            pytest.skip("psycopg is not installed (pip install 'sedbench[postgres]')")
        self.user = None
        if os.geteuid() == 0:  # the server refuses to run as root
            import pwd

            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no 'postgres' user to run the server as")
        self.dir = Path(tempfile.mkdtemp(prefix="sedbench-pg-"))
        self.data = self.dir / "data"
        if self.user:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.port = free_port()

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        def demote():
            if self.user:
                os.setgid(self.user.pw_gid)
                os.setuid(self.user.pw_uid)

        return subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                              timeout=timeout, preexec_fn=demote, cwd=self.dir)

    def start(self) -> None:
        steps = [("initdb", "-D", str(self.data), "-A", "trust", "-U", "sedbench", "-E", "UTF8", "--no-sync"),
                 ("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start")]
        for step in steps:
            r = self._run(*step)
            if r.returncode != 0:
                log = (self.dir / "server.log").read_text()[-1500:] if (self.dir / "server.log").is_file() else ""
                self.stop()
                pytest.skip(f"PostgreSQL could not start ({step[0]} exited {r.returncode}): "
                            f"{(r.stderr or r.stdout).strip()[-800:]} {log}")

    def stop(self) -> None:
        if self.data.is_dir():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: str) -> str:
        return f"postgresql://sedbench@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
