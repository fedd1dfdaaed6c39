"""The database selection and the embedded server."""

from __future__ import annotations

import psycopg
import pytest

from py_tasks import db
from py_tasks.cli import main


def test_embedded_server_answers(pg_admin_url: str) -> None:
    with psycopg.connect(pg_admin_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert "host=/" in pg_admin_url  # Unix socket only, no TCP host


def test_redact_hides_password() -> None:
    url = "postgresql://alice:s3cr3t-pw@db.example:5433/warehouse"
    assert "s3cr3t-pw" not in db.redact(url)
    info = db.parse_url(url)
    assert (info.host, info.port, info.user, info.dbname) == (
        "db.example",
        5433,
        "alice",
        "warehouse",
    )
    assert "s3cr3t-pw" not in repr(info)


def test_bad_url_is_one_clear_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv("BQX_DATABASE_URL", "mysql://x@y/z")
    assert main(["db", "url"]) == 1
    err = capsys.readouterr().err
    assert "postgresql://" in err and err.count("\n") == 1


def test_profile_has_no_secret(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BQX_STATE_DIR", str(tmp_path))
    path = db.write_profile(tmp_path)
    text = path.read_text()
    assert "env_var('BQX_PG_PASSWORD'" in text
    env = db.dbt_env("postgresql://u:pw123456@h:1/d")
    assert env["BQX_PG_PASSWORD"] == "pw123456" and "pw123456" not in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # a user named like the database keeps its name (the path alone changes)
        ("postgresql://postgres@db.example:5432/postgres", "postgresql://postgres@db.example:5432/bqx_x"),
        ("postgresql://postgres@/postgres?host=/tmp/s&port=5433", "postgresql://postgres@/bqx_x?host=/tmp/s&port=5433"),
        ("postgresql://u:p%40ss@h/bqx?sslmode=require", "postgresql://u:p%40ss@h/bqx_x?sslmode=require"),
        ("postgresql:///?host=/tmp/s&dbname=postgres&user=postgres", "postgresql:///?host=/tmp/s&dbname=bqx_x&user=postgres"),
        ("postgresql://h", "postgresql://h/bqx_x"),
    ],
)
def test_with_dbname_changes_only_the_database(url: str, expected: str) -> None:
    assert db.with_dbname(url, "bqx_x") == expected
    assert db.parse_url(db.with_dbname(url, "bqx_x")).dbname == "bqx_x"
