"""Shared fixtures: a real PostgreSQL for the whole test session.

The session starts its own embedded PostgreSQL in a temporary directory (never the
developer's ``.bqx/``) and stops it at the end. Set ``BQX_TEST_DATABASE_URL`` to an
admin URL of another server (one that may CREATE DATABASE) to use that instead.
Each test that needs isolation asks for ``fresh_db``: a new, empty database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from py_tasks import db

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("BQX_TEST_DATABASE_URL")
    if external:
        yield external
        return
    root = Path(tmp_path_factory.mktemp("pg", numbered=True))
    url = db.start_embedded(root, quiet=True)
    try:
        yield url
    finally:
        db.stop_embedded(root)


def _with_dbname(url: str, dbname: str) -> str:
    return db.with_dbname(url, dbname)


@pytest.fixture()
def fresh_db(pg_admin_url: str) -> Iterator[str]:
    """URL of a new empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = _with_dbname(pg_admin_url, name)
    try:
        yield url
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def dbt_target_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dbt target/ and log dir for the whole session (keeps partial parsing warm and
    never touches the developer's target/)."""
    return Path(tmp_path_factory.mktemp("dbt_target", numbered=True))


@pytest.fixture()
def bqx_env(
    fresh_db: str, tmp_path: Path, dbt_target_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Point the bqx command and in-process dbt at ``fresh_db``; returns its URL."""
    monkeypatch.setenv("BQX_DATABASE_URL", fresh_db)
    monkeypatch.setenv("BQX_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BQX_PROJECT_DIR", str(PROJECT))
    monkeypatch.setenv("DBT_TARGET_PATH", str(dbt_target_dir / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(dbt_target_dir / "logs"))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return fresh_db
