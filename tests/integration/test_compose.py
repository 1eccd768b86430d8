"""docker-compose.yml validates with Debian's docker-compose (1.29; no engine needed) and is wired as
docs/operations.md says: CeleryExecutor, separate metadata and warehouse PostgreSQL, Redis, secrets
required from .env, one shared lake volume, examples off, the DAGs mounted."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support.compose_stack import (
    COMPOSE_FILE, CONTAINER_LAKE, CONTAINER_PROJECT, ENV_EXAMPLE, LAKE_VOLUME, PROJECT_ROOT, command_of,
    compose_config, environment_of, native_environment, read_env_file, required_secrets, run_compose,
    write_env_file,
)

AIRFLOW_SERVICES = ["airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-worker", "airflow-triggerer"]
EXPECTED_SERVICES = {*AIRFLOW_SERVICES, "airflow-postgres", "warehouse-postgres", "redis"}
SECRETS = {"AIRFLOW_DB_PASSWORD", "WAREHOUSE_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
           "AIRFLOW_API_SECRET_KEY", "CRM_PII_SALT"}
# Files this setup commits; none may hold a literal `scheme://user:password@host`.
COMMITTED = [COMPOSE_FILE, ENV_EXAMPLE, PROJECT_ROOT / "Dockerfile", PROJECT_ROOT / ".dockerignore",
             PROJECT_ROOT / "docs" / "operations.md"]
CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@]+:([^\s/@]+)@", re.I)


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    return write_env_file(tmp_path_factory.mktemp("compose") / "compose.env")


@pytest.fixture(scope="module")
def config(env_file) -> dict:
    return compose_config(env_file)


def test_config_validates_quietly(env_file):
    proc = run_compose(env_file, "config", "-q")
    assert proc.returncode == 0, proc.stderr
    services = run_compose(env_file, "config", "--services")
    assert services.returncode == 0, services.stderr
    assert EXPECTED_SERVICES <= set(services.stdout.split())


def test_every_secret_is_required_not_defaulted(tmp_path):
    assert set(required_secrets()) == SECRETS
    for secret in sorted(SECRETS):
        env_file = write_env_file(tmp_path / f"without-{secret}.env", {secret: None})
        proc = run_compose(env_file, "config", "-q")
        assert proc.returncode != 0 and secret in proc.stderr, (secret, proc.stderr)
    proc = run_compose(ENV_EXAMPLE, "config", "-q")  # .env.example as committed: secrets still empty
    assert proc.returncode != 0


def test_airflow_services_share_one_celery_wiring(config, env_file):
    services = config["services"]
    values = read_env_file(env_file)
    assert EXPECTED_SERVICES <= services.keys()
    envs = {name: environment_of(services[name]) for name in AIRFLOW_SERVICES}
    common = envs["airflow-scheduler"]
    for name, env in envs.items():
        # The x-airflow-common anchor: every component sees the same settings and secrets.
        assert {k: env.get(k) for k in common} == common, name
    meta_url = common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert meta_url == (f"postgresql+psycopg://{values['AIRFLOW_DB_USER']}:{values['AIRFLOW_DB_PASSWORD']}"
                        f"@airflow-postgres:5432/{values['AIRFLOW_DB_NAME']}")
    assert common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == meta_url
    assert common["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + meta_url
    assert common["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert common["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert common["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert common["AIRFLOW__CORE__DAGS_FOLDER"] == f"{CONTAINER_PROJECT}/dags"
    assert int(common["AIRFLOW__CORE__PARALLELISM"]) <= 8
    assert common["AIRFLOW__API_AUTH__JWT_SECRET"] == values["AIRFLOW_JWT_SECRET"]
    assert common["AIRFLOW__API__SECRET_KEY"] == values["AIRFLOW_API_SECRET_KEY"]
    assert common["AIRFLOW__CORE__FERNET_KEY"] == values["AIRFLOW_FERNET_KEY"]
    assert [command_of(services[n]) for n in AIRFLOW_SERVICES] == [
        ["db", "migrate"], ["api-server"], ["scheduler"], ["dag-processor"], ["celery", "worker"], ["triggerer"]]


def test_metadata_and_warehouse_are_separate_postgres_services(config, env_file):
    services = config["services"]
    values = read_env_file(env_file)
    meta, warehouse = environment_of(services["airflow-postgres"]), environment_of(services["warehouse-postgres"])
    assert services["airflow-postgres"]["image"] == services["warehouse-postgres"]["image"]
    assert services["airflow-postgres"]["image"].startswith("postgres:15")
    assert (meta["POSTGRES_USER"], meta["POSTGRES_PASSWORD"], meta["POSTGRES_DB"]) == (
        values["AIRFLOW_DB_USER"], values["AIRFLOW_DB_PASSWORD"], values["AIRFLOW_DB_NAME"])
    assert (warehouse["POSTGRES_USER"], warehouse["POSTGRES_PASSWORD"], warehouse["POSTGRES_DB"]) == (
        values["WAREHOUSE_DB_USER"], values["WAREHOUSE_DB_PASSWORD"], values["WAREHOUSE_DB_NAME"])
    worker = environment_of(services["airflow-worker"])
    assert worker["CRM_WAREHOUSE_URL"] == (
        f"postgresql+psycopg://{values['WAREHOUSE_DB_USER']}:{values['WAREHOUSE_DB_PASSWORD']}"
        f"@warehouse-postgres:5432/{values['WAREHOUSE_DB_NAME']}")
    assert worker["CRM_PII_SALT"] == values["CRM_PII_SALT"]
    deps = services["airflow-worker"]["depends_on"]
    assert {"airflow-postgres", "warehouse-postgres", "redis", "airflow-apiserver", "airflow-init"} <= deps.keys()
    assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    for name in ("airflow-postgres", "warehouse-postgres", "redis"):
        assert "healthcheck" in services[name], name


def test_pipeline_settings_go_to_the_worker_and_the_lake_is_shared(config):
    services = config["services"]
    worker = environment_of(services["airflow-worker"])
    assert worker["CRM_HOME"] == CONTAINER_LAKE
    assert worker["CRM_SOURCES"].startswith(f"{CONTAINER_PROJECT}/config/")
    # Components that run no pipeline code do not get the warehouse password or the PII salt.
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert not {k for k in environment_of(services[name]) if k.startswith("CRM_")}, name
    # Every Airflow service mounts the same named lake volume at CRM_HOME, the DAGs and config read-only.
    for name in AIRFLOW_SERVICES:
        volumes = services[name]["volumes"]
        assert f"{LAKE_VOLUME}:{CONTAINER_LAKE}:rw" in volumes, (name, volumes)
        assert f"{PROJECT_ROOT / 'dags'}:{CONTAINER_PROJECT}/dags:ro" in volumes, (name, volumes)
        assert f"{PROJECT_ROOT / 'config'}:{CONTAINER_PROJECT}/config:ro" in volumes, (name, volumes)
        assert services[name]["build"]["context"] == str(PROJECT_ROOT)
    assert LAKE_VOLUME in config["volumes"]


def test_native_translation_changes_only_hosts_executor_and_paths(config, tmp_path):
    """What test_scheduler_backfill.py runs: compose's wiring with the documented substitutions only."""
    env = native_environment(config, "airflow-scheduler", postgres_port=6543, api_port=18080,
                             crm_home=tmp_path / "lake", airflow_home=tmp_path / "airflow")
    worker = environment_of(config["services"]["airflow-worker"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert not [k for k in env if k.startswith("AIRFLOW__CELERY__")]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == worker["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace(
        "@airflow-postgres:5432/", "@127.0.0.1:6543/")
    assert env["CRM_WAREHOUSE_URL"] == worker["CRM_WAREHOUSE_URL"].replace("@warehouse-postgres:5432/", "@127.0.0.1:6543/")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(PROJECT_ROOT / "dags")
    assert env["CRM_HOME"] == str(tmp_path / "lake")
    changed = {k for k in worker if k in env and env[k] != worker[k]}
    assert changed == {"AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                       "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", "CRM_WAREHOUSE_URL",
                       "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CORE__DAGS_FOLDER", "CRM_HOME", "CRM_SOURCES"}
    added = env.keys() - worker.keys()
    assert added == {"AIRFLOW_HOME", "AIRFLOW__API__HOST", "AIRFLOW__API__PORT",
                     "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT", "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"}


def test_no_literal_credentials_in_committed_files():
    for path in COMMITTED:
        for match in CREDENTIAL_URL.finditer(path.read_text(encoding="utf-8")):
            assert match.group(1).startswith("${"), f"{path.name}: literal credentials in {match.group(0)!r}"


def test_dockerfile_pins_the_base_image_and_installs_from_the_lock():
    text = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG AIRFLOW_BASE_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"apache/airflow:(slim-)?3\.3\.\d+-python3\.11", base), base
    assert "-c /opt/crm/requirements.lock" in text and "pip check" in text
    lock = dict(line.split("==") for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert f"apache-airflow=={lock['apache-airflow']}" in text and base.endswith(f"{lock['apache-airflow']}-python3.11")
    ignored = (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".venv", "var", ".git"} <= set(ignored)


def test_compose_file_parses_as_plain_yaml_with_the_common_anchor():
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert "x-airflow-common" in raw and "version" not in raw
    assert raw["x-airflow-common"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
