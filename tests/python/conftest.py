"""Shared fixtures: a real PostgreSQL for the whole test session.

The session starts its own embedded PostgreSQL in a temporary directory (never the
developer's ``.bqx/``) and stops it at the end. Set ``BQX_TEST_DATABASE_URL`` to an
admin URL of another server (one that may CREATE DATABASE) to use that instead.

Databases. A test that needs isolation asks for ``bqx_env`` (or ``fresh_db``): a new,
empty database. A test that needs the families built on a small sample asks for
``built_env``: its own copy (``CREATE DATABASE ... TEMPLATE``, about a second) of one
database built once per session (``built_template``: two days of the synthetic sample
for eurusd and usdjpy, every per-pair family but correlation_bqx built). Tests may
change their copy as they like.

Every test database of the session has the same name (``session_db_name``), one at a
time: dbt's partial parsing keys its saved manifest on the connection, database name
included, so a new name per test would make each test's first dbt call parse the whole
project again (~16 s on the 2-core machine, against ~3 s with the saved manifest).

Tiers. Tests marked ``scale`` (millions of bars, HistData) are left out of the default
run (``make test``) and run with ``make test-scale`` (``pytest -m scale``); see
docs/testing.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from py_tasks import db

PROJECT = Path(__file__).resolve().parents[2]

# the built template: what it holds (tests that read it rely on these)
BUILT_PAIRS = ("eurusd", "usdjpy")
BUILT_DAYS = 2
BUILT_FAMILIES = ("bqx", "reg_rate", "reg_bqx", "technical", "bollinger")


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("BQX_TEST_DATABASE_URL")
    if external:
        yield external
        return
    # not under pytest's numbered base directory: a second pytest session on the machine
    # removes all but its three newest, this server's data directory among them
    root = Path(tempfile.mkdtemp(prefix="bqx-test-pg-"))
    url = db.start_embedded(root, quiet=True)
    try:
        yield url
    finally:
        db.stop_embedded(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def session_db_name() -> str:
    """The name of every test database of this session (unique to the session)."""
    return f"t_{uuid.uuid4().hex[:12]}"


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@contextlib.contextmanager
def own_database(admin_url: str, name: str, template: str | None = None) -> Iterator[str]:
    """A new database ``name`` (a copy of ``template`` if given) for the duration of the
    block; yields its URL and drops it afterwards. Every test database of the session
    takes the session's name (``session_db_name``), so two holders at once is an error."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        held = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if held:  # two fixtures of one test (or a module fixture and a test) want it
            raise RuntimeError(f"test database {name} is already in use by another fixture")
        conn.execute(f'create database "{name}"' + (f' template "{template}"' if template else ""))
    try:
        yield db.with_dbname(admin_url, name)
    finally:
        _drop(admin_url, name)


@pytest.fixture()
def fresh_db(pg_admin_url: str, session_db_name: str) -> Iterator[str]:
    """URL of a new empty database (named ``session_db_name``), dropped after the test."""
    with own_database(pg_admin_url, session_db_name) as url:
        yield url


@pytest.fixture(scope="session")
def dbt_target_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dbt target/ and log dir for the whole session (keeps partial parsing warm and
    never touches the developer's target/)."""
    return Path(tmp_path_factory.mktemp("dbt_target", numbered=True))


def point_at(mp: pytest.MonkeyPatch, url: str, state: Path, dbt_target_dir: Path) -> None:
    mp.setenv("BQX_DATABASE_URL", url)
    mp.setenv("BQX_STATE_DIR", str(state))
    mp.setenv("BQX_PROJECT_DIR", str(PROJECT))
    mp.setenv("DBT_TARGET_PATH", str(dbt_target_dir / "target"))
    mp.setenv("DBT_LOG_PATH", str(dbt_target_dir / "logs"))
    mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")


@pytest.fixture()
def bqx_env(
    fresh_db: str, tmp_path: Path, dbt_target_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Point the bqx command and in-process dbt at ``fresh_db``; returns its URL."""
    point_at(monkeypatch, fresh_db, tmp_path / "state", dbt_target_dir)
    return fresh_db


@pytest.fixture(scope="session")
def built_template(
    pg_admin_url: str, session_db_name: str, dbt_target_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """Name of a database holding BUILT_DAYS days of the synthetic sample of BUILT_PAIRS
    with BUILT_FAMILIES built (dbt's tests not run), built once per session under the
    session's name and then renamed, so that copies of it keep dbt's saved manifest."""
    from py_tasks import sample
    from py_tasks.dbtcmd import run_dbt
    from py_tasks.load import ensure_raw_table

    template = f"tmpl_{session_db_name}"
    mp = pytest.MonkeyPatch()
    # built under the session's name (a failed build drops it), then renamed
    with own_database(pg_admin_url, session_db_name) as url:
        point_at(mp, url, tmp_path_factory.mktemp("template_state"), dbt_target_dir)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                ensure_raw_table(conn)
                sample.write_sample(conn, days=BUILT_DAYS, pairs=list(BUILT_PAIRS))
            leaves = [f for f in BUILT_FAMILIES if f != "bqx"]
            select = " ".join(f"+{fam}_{p}" for p in BUILT_PAIRS for fam in leaves)
            result = run_dbt(
                ["build", "--select", select, "--exclude-resource-type", "test", "unit_test"], url
            )
            assert result.success, f"building the template failed: {result.exception}"
        finally:
            mp.undo()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (session_db_name,),
            )
            conn.execute(f'alter database "{session_db_name}" rename to "{template}"')
    try:
        yield template
    finally:
        _drop(pg_admin_url, template)


@pytest.fixture()
def built_db(pg_admin_url: str, session_db_name: str, built_template: str) -> Iterator[str]:
    """URL of this test's own copy of ``built_template``, dropped after the test."""
    with own_database(pg_admin_url, session_db_name, template=built_template) as url:
        yield url


@pytest.fixture()
def built_env(
    built_db: str, tmp_path: Path, dbt_target_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """``bqx_env`` on this test's copy of the built template; returns its URL."""
    point_at(monkeypatch, built_db, tmp_path / "state", dbt_target_dir)
    return built_db
