"""A throwaway PostgreSQL server for the test session (real server, never a mock).

Runs initdb + postgres from /usr/lib/postgresql/*/bin as the ``postgres`` user (via runuser
when the suite runs as root) on a free loopback port with trust auth, and removes it at exit.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass


PREFERRED_VERSION = "15"  # what .ci/run installs and the suite is pinned to


def _bin_dir() -> str:
    """PostgreSQL 15's binaries when present, else the newest installed version's."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[-3]))
    if not dirs:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (run .ci/run)")
    preferred = [d for d in dirs if d.split("/")[-3] == PREFERRED_VERSION]
    return os.path.dirname((preferred or dirs)[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    port: int
    datadir: str
    bindir: str
    user: str = "postgres"
    host: str = "127.0.0.1"

    def connection(self, database: str = "postgres") -> dict:
        """A Baselinr connection mapping for a database on this server."""
        return {"type": "postgres", "host": self.host, "port": self.port, "database": database,
                "username": self.user, "schema": "public"}

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def start(self) -> None:
        self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-l", f"{self.datadir}/server.log", "-w",
                  "-t", "60", "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir} "
                  "-c fsync=off -c max_connections=200", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop", check=False)


def start_server() -> PgServer:
    bindir = _bin_dir()
    root = tempfile.mkdtemp(prefix="baselinr-pg-")
    os.chmod(root, 0o755)
    datadir = os.path.join(root, "data")
    os.mkdir(datadir)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(datadir, pw.pw_uid, pw.pw_gid)
        user = "postgres"
    else:
        user = pwd.getpwuid(os.geteuid()).pw_name
    server = PgServer(port=free_port(), datadir=datadir, bindir=bindir, user=user)
    server._run(f"{bindir}/initdb", "-D", datadir, "-U", user, "--auth=trust", "-E", "UTF8", "--locale=C")
    for attempt in range(5):
        try:
            server.start()
            break
        except subprocess.CalledProcessError:
            if attempt == 4:
                raise
            server.port = free_port()
            time.sleep(0.5)
    return server


def remove_server(server: PgServer) -> None:
    server.stop("immediate")
    shutil.rmtree(os.path.dirname(server.datadir), ignore_errors=True)
