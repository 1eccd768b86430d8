"""docker-compose.yml's Airflow wiring, read back for tests and run natively where no Docker engine exists.

There is one source of truth for how the stack is wired: docker-compose.yml (plus .env.example for its
variables). `compose_config()` asks docker-compose itself to resolve it (`docker-compose config`, which
needs no engine), and `native_environment()` turns one service's resolved environment into the
environment of the same Airflow component started on this host. The translation is deliberately small
and explicit; everything not listed here reaches the native process unchanged:

1. Hosts. In compose, services reach each other by service name (airflow-postgres:5432,
   warehouse-postgres:5432, airflow-apiserver:8080). Natively, one private PostgreSQL cluster on
   127.0.0.1 stands in for both database services, with each one's role, password and database created
   exactly as the postgres image creates them from POSTGRES_USER/PASSWORD/DB (`provision_postgres`),
   and the api-server listens on a free port. Only `host:port` changes in a URL; users, passwords,
   database names and drivers are compose's own. A URL naming a service with no native stand-in fails.
2. Executor. There is no Redis or Celery worker here, so CeleryExecutor becomes LocalExecutor and the
   AIRFLOW__CELERY__* settings are dropped. LocalExecutor runs tasks as children of the scheduler, so the
   scheduler gets the Celery worker's environment as well (the pipeline's CRM_* settings): natively the
   scheduler process *is* the worker.
3. Paths. /opt/crm (the project inside the image, with ./dags and ./config bind-mounted into it) is this
   checkout; /srv/crm (the crm-lake volume, CRM_HOME) is a directory the caller chooses. The bind
   mounts are checked against that mapping.
4. Host-only settings. AIRFLOW_HOME (the image's is /opt/airflow), and the ports a container has to
   itself but a shared CI host does not: api-server, scheduler health check and task log server.

What this does not exercise: the image build, Redis, the Celery worker and triggerer processes, and
container networking. `docker-compose config` validates the file's syntax and interpolation only.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
CONTAINER_PROJECT = "/opt/crm"
CONTAINER_LAKE = "/srv/crm"
LAKE_VOLUME = "crm-lake"
POSTGRES_SERVICES = ("airflow-postgres", "warehouse-postgres")
API_SERVICE = "airflow-apiserver"
WORKER_SERVICE = "airflow-worker"
INSTALL_HINT = "install Debian's docker-compose package (scripts/install_system_deps.sh docker-compose)"


class ComposeError(RuntimeError):
    pass


# -- the compose file, resolved by docker-compose --------------------------------------------------


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if not path:
        raise ComposeError(f"docker-compose not found on PATH; {INSTALL_HINT}")
    return path


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose env file; comments and blank lines skipped, no quoting rules."""
    values = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise ComposeError(f"{path}: not KEY=VALUE: {line!r}")
            values[key.strip()] = value.strip()
    return values


def required_secrets(example: Path = ENV_EXAMPLE) -> list[str]:
    """The variables .env.example leaves empty: the secrets every deployment must supply."""
    return [key for key, value in read_env_file(example).items() if not value]


def new_secret(name: str) -> str:
    if name == "AIRFLOW_FERNET_KEY":  # Fernet wants urlsafe base64 of 32 random bytes
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return secrets.token_urlsafe(32)  # URL-safe: it goes into connection URLs unescaped


def write_env_file(path: Path, overrides: dict[str, str] | None = None, *, example: Path = ENV_EXAMPLE) -> Path:
    """.env.example with a fresh random value for each secret, then `overrides` (a value of None
    removes the variable). What `cp .env.example .env` plus filling in the secrets gives a user."""
    values = read_env_file(example)
    values.update({key: new_secret(key) for key, value in values.items() if not value})
    for key, value in (overrides or {}).items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    path = Path(path)
    path.touch(mode=0o600)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")
    return path


def run_compose(env_file: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """docker-compose on this repo's file with only `env_file` for interpolation: docker-compose lets
    the process environment override the env file, so the caller's environment is not passed on."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "LANG": "C.UTF-8", "COMPOSE_PROJECT_NAME": "crm"}
    return subprocess.run(
        [docker_compose(), "--env-file", str(env_file), "--project-directory", str(PROJECT_ROOT),
         "-f", str(COMPOSE_FILE), *args],
        env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


def compose_config(env_file: Path) -> dict:
    """The file as docker-compose resolves it: anchors merged, variables substituted, paths absolute."""
    proc = run_compose(env_file, "config")
    if proc.returncode:
        raise ComposeError(f"docker-compose config failed ({proc.returncode}):\n{proc.stderr}")
    return yaml.safe_load(proc.stdout)


def command_of(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def environment_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# -- compose wiring -> native environment ---------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bind_mounts(service: dict) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            mounts.append((parts[0], parts[1]))
        else:
            mounts.append((str(volume.get("source")), str(volume.get("target"))))
    return mounts


def native_environment(config: dict, service: str, *, postgres_port: int, api_port: int, crm_home: Path,
                       airflow_home: Path, host_ports: dict[str, int] | None = None) -> dict[str, str]:
    """`service`'s compose environment as the environment of the same component run on this host
    (the rules are in this module's docstring). `host_ports` overrides the scheduler health check and
    log server ports; free ones are picked otherwise."""
    services = config["services"]
    env = environment_of(services[service])
    if service == "airflow-scheduler":
        worker = environment_of(services[WORKER_SERVICE])
        clash = {k for k in env.keys() & worker.keys() if env[k] != worker[k]}
        if clash:
            raise ComposeError(f"scheduler and worker disagree on {sorted(clash)}")
        env = worker | env
        env.pop("DUMB_INIT_SETSID", None)  # a container init setting, not Airflow's

    if env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
        raise ComposeError(f"{service}: expected the CeleryExecutor in compose, got {env.get('AIRFLOW__CORE__EXECUTOR')!r}")
    env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW__CELERY__")}

    hosts = {f"{name}:5432": f"127.0.0.1:{postgres_port}" for name in POSTGRES_SERVICES}
    hosts[f"{API_SERVICE}:8080"] = f"127.0.0.1:{api_port}"
    paths = {CONTAINER_LAKE: str(crm_home), CONTAINER_PROJECT: str(PROJECT_ROOT)}
    for source, target in _bind_mounts(services[service]):
        native = _translate_path(target, paths)
        if source.startswith("/") and native != target and Path(native).resolve() != Path(source).resolve():
            raise ComposeError(f"{service}: {source} is mounted at {target}, which maps to {native} natively")
    unmapped = re.compile(r"(?<=[@/])(" + "|".join(map(re.escape, services)) + r")(?=[:/]|$)")
    for key, value in env.items():
        for host, native in hosts.items():
            value = re.sub(rf"(?<=[@/]){re.escape(host)}(?=[/?]|$)", native, value)
        value = _translate_path(value, paths)
        if unmapped.search(value):
            raise ComposeError(f"{service}: {key} names a compose service with no native stand-in: {value!r}")
        env[key] = value

    ports = {"AIRFLOW__API__PORT": api_port,
             "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": free_port(),
             "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": free_port()} | (host_ports or {})
    return env | {"AIRFLOW_HOME": str(airflow_home), "AIRFLOW__API__HOST": "127.0.0.1"} | {
        k: str(v) for k, v in ports.items()}


def _translate_path(value: str, paths: dict[str, str]) -> str:
    for container, native in paths.items():
        if value == container or value.startswith(container + "/"):
            return native + value[len(container):]
    return value


def provision_postgres(config: dict, *, port: int, admin_user: str, admin_password: str) -> None:
    """On the private cluster, what the postgres image's entrypoint does on first start for each database
    service: POSTGRES_USER as a superuser with POSTGRES_PASSWORD, and POSTGRES_DB owned by it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(host="127.0.0.1", port=port, user=admin_user, password=admin_password,
                         dbname="postgres", autocommit=True, connect_timeout=10) as conn:
        for name in POSTGRES_SERVICES:
            env = environment_of(config["services"][name])
            user, password, db = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env.get("POSTGRES_DB") or env["POSTGRES_USER"]
            role = sql.Identifier(user)
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone():
                conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN SUPERUSER PASSWORD {}").format(role, sql.Literal(password)))
            else:
                conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN SUPERUSER PASSWORD {}").format(role, sql.Literal(password)))
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(db), role))
            else:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), role))


# -- native processes -----------------------------------------------------------------------------


def scrubbed_environ() -> dict[str, str]:
    """This process's environment without Airflow, pipeline or libpq settings that could leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CRM_", "PG", "_AIRFLOW"))}


def airflow_argv(command: list[str]) -> list[str]:
    """A compose `command:` as run natively: the image's entrypoint prefixes `airflow` the same way."""
    if command[:1] == ["airflow"]:
        command = command[1:]
    return [sys.executable, "-m", "airflow", *command]


class NativeStack:
    """Long-running Airflow components in their own sessions, each logging to a file under `logdir`;
    `stop()` ends them and every descendant, however it was left."""

    def __init__(self, logdir: Path):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.logdir / f"{name}.log").open("ab")
        try:
            proc = subprocess.Popen(argv, env=scrubbed_environ() | env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
        """A one-off command (db migrate, unpause, backfill create); its output is kept with the logs."""
        started = time.monotonic()
        proc = subprocess.run(argv, env=scrubbed_environ() | env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        with (self.logdir / f"{name}.log").open("a") as log:
            log.write(f"$ {shlex.join(argv[2:])}  -> exit {proc.returncode} in {time.monotonic() - started:.1f}s\n")
            log.write(proc.stdout + proc.stderr)
        if proc.returncode:
            raise ComposeError(f"{shlex.join(argv[2:])} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
        return proc

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise ComposeError(f"component(s) exited early: {dead}")

    def stop(self, grace: float = 15) -> None:
        _terminate(list(self.procs.values()), grace)

    def restart(self, name: str, argv: list[str], env: dict[str, str], grace: float = 15) -> subprocess.Popen:
        """Stops one component (and its children) and starts it again, e.g. with other settings."""
        _terminate([self.procs.pop(name)], grace)
        return self.start(name, argv, env)

    def log_tails(self, lines: int = 60) -> str:
        out = []
        for path in sorted(self.logdir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()
            noise = ("graphviz", "pip install graphviz", "You might need to install", "HTTPXDeprecation")
            kept = [line for line in text if not any(n in line for n in noise)]
            out.append(f"--- {path.name} (last {lines} of {len(kept)} lines) ---\n" + "\n".join(kept[-lines:]))
        return "\n".join(out)


def _terminate(procs: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM to each process group and every descendant, SIGKILL to what is left after `grace`."""
    import psutil

    victims: dict[int, psutil.Process] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(proc.pid)
            victims[parent.pid] = parent
            victims.update({c.pid: c for c in parent.children(recursive=True)})
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
    for p in victims.values():  # children that moved to a session of their own
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(list(victims.values()), timeout=grace)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def task_log_summary(airflow_home: Path, dag_id: str, run_ids_tasks: list[tuple[str, str]], lines: int = 25) -> str:
    """The error lines of the given task instances' logs (Airflow 3 writes JSON lines)."""
    out = []
    for run_id, task_id in run_ids_tasks:
        base = Path(airflow_home) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        for path in sorted(base.glob("attempt=*.log")):
            picked = []
            for raw in path.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(raw)
                except ValueError:
                    picked.append(raw)
                    continue
                if rec.get("level") in ("error", "critical", "warning") or rec.get("error_detail"):
                    text = f"{rec.get('level')}: {rec.get('event')}"
                    for err in rec.get("error_detail") or []:
                        frames = err.get("frames") or []
                        where = f" at {frames[-1].get('filename')}:{frames[-1].get('lineno')}" if frames else ""
                        text += f"\n    {err.get('exc_type')}: {str(err.get('exc_value'))[:1500]}{where}"
                    picked.append(text)
            out.append(f"--- task log {path.relative_to(airflow_home)} ---\n" + "\n".join(picked[-lines:]))
    return "\n".join(out) or "(no task logs)"
