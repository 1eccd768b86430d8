"""Private, throwaway PostgreSQL clusters for integration tests.

    with PostgresCluster() as pg:
        engine = sqlalchemy.create_engine(pg.url)

Needs the Debian ``postgresql`` server binaries (scripts/install_system_deps.sh).
Run ``python -m tests.support.pg_cluster`` for a cluster to poke at by hand.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

INSTALL_HINT = "run scripts/install_system_deps.sh to install the PostgreSQL server"
_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")


class PostgresClusterError(RuntimeError):
    pass


def find_bindir() -> Path:
    """Directory holding initdb, pg_ctl and postgres; highest Debian version wins."""

    def version(d: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(d).parent.name))

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        # realpath: pg_ctl looks for `postgres` next to its real location anyway.
        candidates.append(os.path.dirname(os.path.realpath(which)))
    for d in candidates:
        if all(os.access(os.path.join(d, b), os.X_OK) for b in _SERVER_BINARIES):
            return Path(d)
    raise PostgresClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in "
        f"/usr/lib/postgresql/*/bin or PATH; {INSTALL_HINT}"
    )


def pid_alive(pid: int) -> bool:
    """True if pid runs. Zombies count as dead: the daemonised postmaster is
    reparented to PID 1, which in some containers never reaps it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # Field after the parenthesised comm is the state.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _traversable_by_others(path: str) -> bool:
    p = Path(path).resolve()
    return all(os.stat(d).st_mode & stat.S_IXOTH for d in (p, *p.parents))


class PostgresCluster:
    """A PostgreSQL server in a temp dir on 127.0.0.1:<free port>, with a
    random superuser password and a database ``dbname`` (default ``crm``)."""

    def __init__(self, dbname: str = "crm", user: str = "postgres", start_timeout: int = 60):
        self.dbname = dbname
        self.user = user
        self.start_timeout = start_timeout
        self.password = secrets.token_urlsafe(24)
        self.port: int | None = None
        self.pid: int | None = None
        self.tmpdir: Path | None = None
        self.bindir = find_bindir()
        self._as_root = os.geteuid() == 0
        self._run_as: list[str] = []
        if self._as_root:
            # postgres refuses to run as root; the Debian package creates this user.
            try:
                self._owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresClusterError(f"running as root but no 'postgres' OS user; {INSTALL_HINT}") from None
            self._run_as = ["runuser", "-u", "postgres", "--"]
        # Stray PG* variables (PGHOST, PGSSLMODE, ...) would leak into pg_ctl's readiness probe.
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    # -- paths / urls -------------------------------------------------------

    @property
    def datadir(self) -> Path:
        return self.tmpdir / "data"

    @property
    def logfile(self) -> Path:
        return self.tmpdir / "postgres.log"

    def admin_url(self, dbname: str = "postgres") -> str:
        return (
            f"postgresql+psycopg://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(dbname, safe='')}"
        )

    @property
    def url(self) -> str:
        return self.admin_url(self.dbname)

    # -- lifecycle ----------------------------------------------------------

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> PostgresCluster:
        if self.tmpdir is not None:
            raise PostgresClusterError("cluster already started")
        base = tempfile.gettempdir()
        # The socket lives in the temp dir: unix socket paths are capped at 107 bytes.
        if len(base) > 64 or (self._as_root and not _traversable_by_others(base)):
            base = "/tmp"
        self.tmpdir = Path(tempfile.mkdtemp(prefix="pgcluster-", dir=base))
        self._owner_pid = os.getpid()
        atexit.register(self._atexit)
        try:
            if self._as_root:
                os.chown(self.tmpdir, self._owner.pw_uid, self._owner.pw_gid)
            self._initdb()
            self._start_server(new_port=True)
            self.create_database(self.dbname)
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> None:
        """Stop and start again on the same data dir and port (for fault tests)."""
        self._stop_server()
        self._start_server(new_port=False)

    def crash(self) -> None:
        """Stops the server as a crash would (``pg_ctl stop -m immediate``: every backend killed, no
        checkpoint, open transactions gone); ``start_again`` then recovers from the WAL."""
        self._stop_server(mode="immediate")

    def start_again(self) -> None:
        """Starts a stopped or crashed server on the same data dir and port."""
        if self.pid is not None and pid_alive(self.pid):
            raise PostgresClusterError("the server is running")
        self._start_server(new_port=False)

    def stop(self) -> None:
        """Stop the server and delete its files. Idempotent."""
        if self.tmpdir is None:
            return
        try:
            self._stop_server()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
            atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        # A forked child exiting normally must not tear down the parent's cluster.
        if os.getpid() == self._owner_pid:
            self.stop()

    def create_database(self, name: str, template: str | None = None) -> None:
        import psycopg
        from psycopg import sql

        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, password=self.password,
            dbname="postgres", autocommit=True, connect_timeout=10,
        ) as conn:
            conn.execute(statement)

    def new_database(self, prefix: str, template: str | None = None) -> str:
        """A fresh, uniquely named database (a copy of the database `template` names, given its URL
        or name, which nobody may be connected to); returns its SQLAlchemy URL."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        self.create_database(name, template=template.rsplit("/", 1)[-1] if template else None)
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    # -- internals ----------------------------------------------------------

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            self._run_as + args, cwd=self.tmpdir, env=self._env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )

    def _initdb(self) -> None:
        pwfile = self.tmpdir / "pwfile"
        pwfile.touch(mode=0o600)
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        try:
            r = self._run(
                [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                 "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                 # C.UTF-8: always present on Debian, and does not depend on the host's LANG.
                 "--locale=C.UTF-8", "--no-sync"],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if r.returncode:
            raise PostgresClusterError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    def _start_server(self, new_port: bool) -> None:
        # The free port can be grabbed by someone else before postgres binds it.
        for attempt in range(3):
            if new_port or self.port is None:
                self.port = _free_port()
            opts = (
                f"-p {self.port} -k {shlex.quote(str(self.tmpdir))} -c listen_addresses=127.0.0.1"
                " -c fsync=off -c full_page_writes=off"
            )
            r = self._run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                 "-w", "-t", str(self.start_timeout), "-o", opts, "start"],
                timeout=self.start_timeout + 30,
            )
            self.pid = self._read_pid()
            if r.returncode == 0 and self.pid:
                return
            log = self._log_tail()
            self._stop_server()
            if new_port and attempt < 2 and "already in use" in log:
                continue
            raise PostgresClusterError(
                f"pg_ctl start failed ({r.returncode}): {r.stdout}{r.stderr}\n"
                f"--- postgres.log (tail) ---\n{log}"
            )

    def _read_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _stop_server(self, mode: str = "fast") -> None:
        pid = self.pid or self._read_pid()
        if pid is None:
            return
        try:
            r = self._run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "30", "stop"],
                timeout=40,
            )
            ok = r.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        # pg_ctl returns once postmaster.pid is gone, slightly before the process exits.
        if not (ok and self._wait_gone(pid, 10)):
            for sig, wait in ((signal.SIGQUIT, 5), (signal.SIGKILL, 5)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                if self._wait_gone(pid, wait):
                    break
            else:
                raise PostgresClusterError(f"postmaster {pid} survived SIGKILL")
        self.pid = None

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _raise_interrupt(*_) -> None:
    # atexit handlers do not run on SIGTERM; route it through the Ctrl-C path.
    raise KeyboardInterrupt


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Start a throwaway PostgreSQL cluster until Ctrl-C.")
    ap.add_argument("--dbname", default="crm")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)  # even if started with SIGINT ignored (`cmd &`)
    t0 = time.monotonic()
    with PostgresCluster(dbname=args.dbname) as pg:
        print(f"PostgreSQL {pg.bindir} started in {time.monotonic() - t0:.1f}s (pid {pg.pid}, dir {pg.tmpdir})")
        print(f"DATABASE_URL={pg.url}", flush=True)
        print("Ctrl-C to stop and delete it.", flush=True)
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:
            print("\nstopping...")


if __name__ == "__main__":
    main()
