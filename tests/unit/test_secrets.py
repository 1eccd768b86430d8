"""No secret is committed, and secrets reach the pipeline from the environment only.

The scan reads every file git would commit (`git ls-files --cached --others --exclude-standard`: tracked
files plus new files that are not ignored, so a secret fails the tests before it is committed) and
looks for connection URLs with an embedded password, private keys, well-known token formats, SQL role
passwords and secret-named settings assigned a literal (`password = "…"`, `password: …`,
`PGPASSWORD=…`, `"CRM_PII_SALT": "…"`).

A value is not a secret when it is a placeholder filled in at run time or plainly not a value
(PLACEHOLDER below), when a URL only shows the format (`<scheme>://user:password@host`, every part the
generic word), or when the exact value is in ALLOWED for its file (or folder), each with the reason. The
detection itself is proven on fixture files written at run time: the secrets in them are assembled
from pieces, so that this file never holds one.
"""
from __future__ import annotations

import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.settings import load_settings
from pipeline.sources import SourceConfigError, load_sources

REPO = Path(__file__).resolve().parents[2]

# Names of settings whose value is a secret (case-insensitive, anywhere in the name: DB_PASSWORD,
# AIRFLOW__API__SECRET_KEY, AIRFLOW_FERNET_KEY, CRM_PII_SALT, ...).
_SECRET_NAME = (
    r"[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|fernet[_-]?key|credentials?|pii[_-]?salt)[A-Za-z0-9_.-]*"
)
# A URL's user or password: ${VAR...} substitutions count as one unit, so that ${USER:-crm} is not cut at its colon.
_USERINFO = r"(?:\$\{[^}\s]*\}|[^\s:/?#@'\"`$])"
_URL_PASSWORD = re.compile(
    rf"\b[A-Za-z][A-Za-z0-9+.-]*://{_USERINFO}*:(?P<value>(?:\$\{{[^}}\s]*\}}|[^\s/?#@'\"`])+)@[^\s/?#'\"`]+"
)
# The format itself, as docs and comments write it: user, password and host are the generic words.
_URL_ILLUSTRATION = re.compile(r"(?i)[a-z][a-z0-9+.-]*://(?:user|username):(?:password|pass)@(?:host|hostname)\b")
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_TOKEN = re.compile(
    r"\b(?P<value>(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"
    r"|xox[baprs]-[A-Za-z0-9-]{10,})\b"
)
# name = "value", name: "value", "name": "value", name: str = "value", f(name="value")
_QUOTED = re.compile(
    rf"(?i)(?<![A-Za-z0-9_])(?P<name>{_SECRET_NAME})[\"']?\s*(?::\s*[A-Za-z_][\w\[\]., |]*?)?\s*[:=]\s*[rRbBuU]?"
    r"(?P<q>[\"'])(?P<value>(?!\s).*?)(?P=q)"  # a value does not start with a space: that is a closing quote
)
# os.environ.get("DB_PASSWORD", "<value>"), os.getenv("DB_PASSWORD", "<value>"): a committed default.
_DEFAULT = re.compile(
    rf"(?i)(?:\.get|getenv)\(\s*[\"'](?P<name>{_SECRET_NAME})[\"']\s*,\s*(?P<q>[\"'])(?P<value>(?!\s).*?)(?P=q)"
)
# Unquoted, line by line, in config, env, shell and docs files: password: value, PGPASSWORD=value, ENV X_TOKEN=value.
_UNQUOTED = re.compile(
    rf"(?im)^[ \t]*(?:export[ \t]+|ENV[ \t]+|ARG[ \t]+|-[ \t]+)?(?P<name>{_SECRET_NAME})[ \t]*[:=][ \t]*"
    r"(?P<value>\$\{[^}\n]*\}|\$\([^)\n]*\)|[^\s\"'#][^\s#]*)"
)
# CREATE ROLE ... PASSWORD '<value>', ALTER USER ... IDENTIFIED BY '<value>'
_SQL_PASSWORD = re.compile(r"(?i)\b(?:PASSWORD|IDENTIFIED\s+BY)\s+'(?P<value>[^']*)'")

_CONFIG_SUFFIXES = {".yml", ".yaml", ".env", ".ini", ".cfg", ".conf", ".properties", ".toml", ".sh", ".bash", ".md", ".txt"}
_CONFIG_NAMES = {"Makefile", "Dockerfile"}


def _is_config_like(path: str) -> bool:
    name = Path(path).name
    return Path(path).suffix in _CONFIG_SUFFIXES or name in _CONFIG_NAMES or name.startswith(".env") or "." not in name


CHECKS = [
    ("connection URL with a password", _URL_PASSWORD, lambda path: True),
    ("private key", _PRIVATE_KEY, lambda path: True),
    ("access token", _TOKEN, lambda path: True),
    ("secret-named setting with a literal value", _QUOTED, lambda path: True),
    ("secret-named setting with a literal default", _DEFAULT, lambda path: True),
    ("secret-named setting with a literal value", _UNQUOTED, _is_config_like),
    ("SQL password", _SQL_PASSWORD, lambda path: True),
]

# Values that are not secrets whatever file they are in.
PLACEHOLDER = re.compile(
    r"""
      \$\{\w+(?::?\?[^}]*)?\}                 # ${VAR}, ${VAR:?message}: read from the environment at run time
                                              # (${VAR:-default} is not here: its default is a committed value)
    | \$\w+ | \$\([^)]*\)                     # $VAR, $(VAR), $(command): shell and make expansions
    | \{[^{}]*\}                              # {password}: an f-string or str.format field, filled at run time
    | %\(\w+\)s | %s                          # printf-style fields
    | <[^<>]*>                                # <password>: a documentation placeholder
    | (?:…|\.\.\.)(?:[^…]*(?:…|\.\.\.))?      # an elision: …, ..., or …from your secret store…
    | \*+                                     # a mask
    """,
    re.VERBOSE,
)

# Literal values that are committed on purpose: (file, or folder ending in /; exact value) -> why it is no secret.
ALLOWED = {
    ("tests/integration/test_pg_cluster.py", "not-the-password"):
        "a deliberately wrong password: the test proves the throwaway cluster (random password) refuses it",
    ("tests/", "test-salt"):
        "PII salt of test runs (tests/conftest.py run_crm and tests that start crm themselves): it hashes generated "
        "sample customers in temporary warehouses, never production data",
    ("tests/unit/test_scoring_daily.py", "salt"):
        "PII salt of a unit test's temporary CRM_HOME",
    ("bench/run.py", "bench"):
        "PII salt of benchmark runs on generated data",
    ("tests/integration/test_notify.py", "p%40ss%3Aw%2Frd"):
        "login of the in-test SMTP server (aiosmtpd on loopback, alive for one test): checks percent-decoding",
    ("tests/integration/test_notify.py", "wrong"):
        "a deliberately wrong password: the in-test SMTP server must refuse it",
    ("tests/integration/test_notify.py", "secret"):
        "login of the in-test SMTP server: the test proves it is never sent without STARTTLS",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str
    value: str

    def __str__(self) -> str:
        # Never print the secret itself into a CI log.
        shown = self.value if self.kind == "private key" else self.value[:2] + "*" * max(len(self.value) - 2, 3)
        return f"{self.path}:{self.line}: {self.kind} ({shown})"


def is_allowed(path: str, value: str) -> bool:
    return any(value == allowed and (path == where or (where.endswith("/") and path.startswith(where)))
               for where, allowed in ALLOWED)


def is_placeholder(value: str) -> bool:
    return value.strip() == "" or PLACEHOLDER.fullmatch(value.strip()) is not None


def scan_text(text: str, path: str) -> list[Finding]:
    """Every secret in `text`, the content of the file `path` (relative to the repository)."""
    found = {}
    for kind, pattern, applies in CHECKS:
        if not applies(path):
            continue
        for match in pattern.finditer(text):
            value = match.group("value") if "value" in pattern.groupindex else match.group(0)
            if is_placeholder(value) or is_allowed(path, value) or _URL_ILLUSTRATION.match(match.group(0)):
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.setdefault((line, value), Finding(path, line, kind, value))
    return sorted(found.values(), key=lambda f: f.line)


def scan_file(file: Path, path: str) -> list[Finding]:
    data = file.read_bytes()
    if b"\0" in data[:8192]:
        return []  # binary
    return scan_text(data.decode("utf-8", errors="replace"), path)


def committable_files() -> list[str]:
    """Tracked files and new files that are not ignored: everything a commit could contain."""
    try:
        listing = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True,
        ).stdout.decode("utf-8")
    except (FileNotFoundError, subprocess.CalledProcessError) as error:
        pytest.skip(f"no git work tree to scan: {error}")
    return sorted(p for p in set(listing.split("\0")) if p and (REPO / p).is_file())


# --------------------------------------------------------------------------
# The repository
# --------------------------------------------------------------------------


def test_no_secret_is_committed():
    findings = [f for path in committable_files() for f in scan_file(REPO / path, path)]
    assert not findings, "secrets in files git would commit (move them to the environment):\n" + "\n".join(map(str, findings))


def test_the_scan_reads_the_whole_repository():
    files = committable_files()
    assert len(files) >= 100
    assert {"README.md", "pyproject.toml", "pipeline/settings.py", "tests/support/pg_cluster.py",
            "tests/unit/test_secrets.py", "config/sources/sample.yml"} <= set(files)


# --------------------------------------------------------------------------
# The scanner catches what it must, and only that
# --------------------------------------------------------------------------

LEAK = "hunter" + "2"  # assembled, so that this file holds no secret
WRONG = "not-the-" + "password"  # an allowed value, but only in the file ALLOWED names
TEST_SALT = "test-" + "salt"  # allowed under tests/ only


def test_a_committed_warehouse_url_with_a_password_is_caught(tmp_path):
    url = "postgresql://bi:" + LEAK + "@db/warehouse"
    (tmp_path / "sources.yml").write_text(f"sources:\n  orders:\n    database:\n      url: {url}\n", encoding="utf-8")
    (finding,) = scan_file(tmp_path / "sources.yml", "config/sources/sources.yml")
    assert (finding.line, finding.kind, finding.value) == (4, "connection URL with a password", LEAK)
    assert LEAK not in str(finding)  # the report does not leak it again


LEAKS = {
    "url_in_python": ("pipeline/db.py", f'WAREHOUSE = "postgresql+psycopg://bi:{LEAK}@db.internal:5432/warehouse"\n', LEAK),
    "url_in_docs": ("README.md", f"export CRM_WAREHOUSE_URL='postgresql://bi:{LEAK}@db/warehouse'\n", LEAK),
    "url_with_the_word_password": ("config/prod.yml", "url: postgresql://admin:" + "password" + "@prod-db/crm\n", "password"),
    "url_with_empty_user": ("config/cache.yml", f"broker: redis://:{LEAK}@cache:6379/0\n", LEAK),
    "url_with_a_committed_default": ("docker-compose.yml", "url: postgresql://${USER:-crm}:${PASSWORD:-" + LEAK + "}@db/crm\n",
                                     "${PASSWORD:-" + LEAK + "}"),
    "private_key": ("deploy/id_ed25519", "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
                    "-----BEGIN " + "OPENSSH PRIVATE KEY-----"),
    "rsa_private_key": ("certs/server.pem", "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow\n",
                        "-----BEGIN " + "RSA PRIVATE KEY-----"),
    "python_assignment": ("pipeline/db.py", f'password = "{LEAK}"\n', LEAK),
    "python_annotated": ("pipeline/db.py", f"    db_password: str = '{LEAK}'\n", LEAK),
    "keyword_argument": ("pipeline/db.py", f'psycopg.connect(host="db", password="{LEAK}")\n', LEAK),
    "dict_entry": ("bench/run.py", f'env = {{"CRM_PII_SALT": "{LEAK}"}}\n', LEAK),
    "env_default": ("pipeline/db.py", f'os.environ.get("DB_PASSWORD", "{LEAK}")\n', LEAK),
    "yaml_unquoted": ("config/secrets.yml", f"database:\n  password: {LEAK}\n", LEAK),
    "yaml_quoted": ("config/secrets.yml", f'airflow:\n  fernet_key: "{LEAK}"\n', LEAK),
    "json": ("config/settings.json", f'{{"api_key": "{LEAK}"}}\n', LEAK),
    "shell_export": ("scripts/deploy.sh", f"export PGPASSWORD={LEAK}\n", LEAK),
    "dotenv": (".env", f"CRM_PII_SALT={LEAK}\n", LEAK),
    "dockerfile": ("Dockerfile", f"ENV AIRFLOW__API__SECRET_KEY={LEAK}\n", LEAK),
    "sql_role": ("sql/grants/bi.sql", f"CREATE ROLE bi LOGIN PASSWORD '{LEAK}';\n", LEAK),
    "aws_key": ("config/aws.ini", "aws_access_key_id = " + "AKIA" + "ABCDEFGHIJKLMNOP" + "\n", "AKIA" + "ABCDEFGHIJKLMNOP"),
    "allowed_value_in_another_file": ("tests/unit/test_other.py", f'url.set(password="{WRONG}")\n', WRONG),
    "test_salt_outside_tests": ("pipeline/settings.py", f'SALT = {{"CRM_PII_SALT": "{TEST_SALT}"}}\n', TEST_SALT),
}


@pytest.mark.parametrize("path, content, secret", list(LEAKS.values()), ids=list(LEAKS))
def test_each_kind_of_secret_is_caught(tmp_path, path, content, secret):
    file = tmp_path / "fixture"
    file.write_text(content, encoding="utf-8")
    findings = scan_file(file, path)
    assert [f.value for f in findings] == [secret], [str(f) for f in findings]


NOT_SECRETS = {
    "environment_url": ("config/sources/shop.yml", "database:\n  url: ${SHOP_DB_URL}\n"),
    "environment_password": ("docker-compose.yml",
                             "url: postgresql+psycopg://${USER:-crm}:${PASSWORD}@db:5432/${NAME:-crm}\n"
                             "POSTGRES_PASSWORD: ${PASSWORD:?set PASSWORD in .env (see .env.example)}\n"),
    "elided_password_in_docs": ("README.md",
                                "export CRM_WAREHOUSE_URL='postgresql+psycopg://crm:…@db.internal:5432/warehouse'\n"
                                "export CRM_PII_SALT='…from your secret store…'\n"),
    "format_illustration": ("tests/integration/test_compose.py", "# none may hold a literal `scheme://user:password@host`\n"),
    "angle_placeholder": ("docs/warehouse.md", "psql postgresql://bi:<password>@db/warehouse\n"),
    "sql_placeholder": ("docs/warehouse.md", "CREATE ROLE tableau_reader LOGIN PASSWORD '...';\n"),
    "format_fields": ("tests/support/pg.py", 'url = f"postgresql://{user}:{password}@{host}:{port}/crm"\n'),
    "shell_variable": ("scripts/setup.sh", 'export PGPASSWORD="$WAREHOUSE_DB_PASSWORD"\nPGPASSWORD=$(cat /run/secrets/pg)\n'),
    "read_from_environment": ("pipeline/db.py", 'password = os.environ["DB_PASSWORD"]\nsalt = settings.pii_salt\n'),
    "empty_values": (".env.example", "WAREHOUSE_DB_PASSWORD=\nCRM_PII_SALT=\npassword = ''\n"),
    "generated_at_run_time": ("tests/support/pg.py", "self.password = secrets.token_urlsafe(24)\n"),
    "urls_without_password": ("README.md", "duckdb:///var/warehouse.duckdb postgresql://bi@db/warehouse "
                                           "https://example.com:8080/a@b ssh://git@github.com/x\n"),
    "comparison_and_prose": ("docs/ops.md", "The password is rotated monthly; token refresh is automatic.\n"),
    "allowed_test_value": ("tests/integration/test_pg_cluster.py", f'bad = url.set(password="{WRONG}")\n'),
    "test_salt_in_tests": ("tests/integration/test_new.py", f'env = {{"CRM_PII_SALT": "{TEST_SALT}"}}\n'),
}


@pytest.mark.parametrize("path, content", list(NOT_SECRETS.values()), ids=list(NOT_SECRETS))
def test_placeholders_and_runtime_values_are_not_secrets(tmp_path, path, content):
    file = tmp_path / "fixture"
    file.write_text(content, encoding="utf-8")
    assert scan_file(file, path) == []


def test_every_allowed_value_says_why_and_is_no_placeholder():
    for (path, value), reason in ALLOWED.items():
        assert reason.strip() and value and not is_placeholder(value), (path, value)


# --------------------------------------------------------------------------
# Secrets come from the environment
# --------------------------------------------------------------------------


def test_warehouse_url_and_pii_salt_come_from_the_environment(tmp_path):
    url = "postgresql+psycopg://crm:" + LEAK + "@db.internal:5432/warehouse"
    settings = load_settings({"CRM_HOME": str(tmp_path), "CRM_WAREHOUSE_URL": url, "CRM_PII_SALT": LEAK + "-salt"})
    assert (settings.warehouse_url, settings.pii_salt) == (url, LEAK + "-salt")


def test_a_server_warehouse_without_a_salt_in_the_environment_refuses_to_start(tmp_path):
    with pytest.raises(RuntimeError, match="CRM_PII_SALT must be set"):
        load_settings({"CRM_HOME": str(tmp_path), "CRM_WAREHOUSE_URL": "postgresql+psycopg://crm@db/warehouse"})


def test_the_local_default_has_no_credentials_and_mints_a_private_salt(tmp_path):
    settings = load_settings({"CRM_HOME": str(tmp_path)})
    assert settings.warehouse_url == f"duckdb:///{tmp_path.resolve() / 'warehouse.duckdb'}"
    salt_file = tmp_path.resolve() / ".pii_salt"
    assert salt_file.read_text().strip() == settings.pii_salt and len(settings.pii_salt) >= 32
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600  # readable by its owner only
    assert load_settings({"CRM_HOME": str(tmp_path)}).pii_salt == settings.pii_salt  # minted once


def test_a_database_source_reads_its_url_from_the_environment(tmp_path, monkeypatch):
    config = tmp_path / "sources.yml"
    config.write_text(
        "sources:\n  orders:\n    database: {url: '${SHOP_DB_URL}', table: shop.orders, incremental_column: updated_at}\n",
        encoding="utf-8",
    )
    url = "postgresql+psycopg://shop:" + LEAK + "@shop-db/shop"
    monkeypatch.setenv("SHOP_DB_URL", url)
    assert load_sources(config)["orders"].database.url == url
    monkeypatch.delenv("SHOP_DB_URL")
    with pytest.raises(SourceConfigError, match="environment variable SHOP_DB_URL is not set") as missing:
        load_sources(config)
    assert LEAK not in str(missing.value)
