"""``bqx export`` against a real S3-compatible server (SeaweedFS on 127.0.0.1).

One module-scoped database holds four days of bars for eurusd and usdjpy from
Friday 2024-06-28, so each pair has two months (2024_06 and 2024_07). dbt builds
bqx and reg_bqx for both pairs and reg_rate for eurusd only (so "family not built"
is a real case). One SeaweedFS server serves the module; each test uses its own
bucket. Objects are read back with pyarrow and compared with rows read from the
database by plain SQL written here (not the export's query).
"""

from __future__ import annotations

import io
import math
import os
import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import own_database, point_at
from s3server import S3Server, seaweedfs

from py_tasks import cli, db
from py_tasks import export as ex
from py_tasks.errors import BqxError

PROJECT = Path(__file__).resolve().parents[2]
PAIRS = ("eurusd", "usdjpy")
MONTHS = ("2024_06", "2024_07")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The families that compute columns of the same names (one macro): prefixed in the export.
PREFIXED = ("reg_rate", "reg_bqx")
REG_TERM = re.compile(r"^w\d+_(quadratic_term|linear_term|constant_term|prediction|residual|r2|rmse)$")


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def warehouse(pg_admin_url: str, session_db_name: str, dbt_target_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database with bars and built families; the bqx environment points at it.
    Named and parsed like every test database (conftest.py), so that dbt's partial
    parsing stays valid."""
    from py_tasks.dbtcmd import run_dbt
    from py_tasks.sample import write_sample

    mp = pytest.MonkeyPatch()
    with own_database(pg_admin_url, session_db_name) as url:
        point_at(mp, url, tmp_path_factory.mktemp("export") / "state", dbt_target_dir)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                write_sample(conn, days=4, pairs=list(PAIRS), start=date(2024, 6, 28))
            select = ("+reg_bqx_eurusd +reg_bqx_usdjpy +reg_rate_eurusd "
                      "+technical_eurusd +bollinger_eurusd")
            result = run_dbt(["build", "--select", select, "--exclude", "test_type:data"], url)
            assert result.success, f"dbt build failed: {result.exception}"
            yield url
        finally:
            mp.undo()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture()
def env(warehouse: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS settings for the test server only (never the developer's ~/.aws)."""
    for key in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AIRTABLE_API_KEY",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return warehouse


@pytest.fixture()
def bucket(s3: S3Server) -> str:
    name = f"bqx-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


def bqx(s3: S3Server, *args: str) -> int:
    return cli.main(["export", "--endpoint-url", s3.endpoint_url, *args])


def state(s3: S3Server, bucket: str) -> dict[str, tuple]:
    """Everything that would show a write: key -> (ETag, size, LastModified)."""
    out = {}
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for page in pages:
        for obj in page.get("Contents", []):
            out[obj["Key"]] = (obj["ETag"], obj["Size"], obj["LastModified"])
    return out


def read_back(s3: S3Server, bucket: str, key: str) -> pa.Table:
    body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body))


# ----------------------------------------------------------------------------- the database
def _micros(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


def db_columns(url: str, pair: str, month: str) -> dict[str, list]:
    """Every exported column of one pair and month, read with plain SQL per source."""
    start, end = ex.month_bounds(month)
    out: dict[str, list] = {}
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select ts_utc, open, high, low, close, volume from raw.m1_bars "
            "where pair = %s and ts_utc >= %s and ts_utc < %s order by ts_utc",
            (pair, start, end),
        ).fetchall()
        stamps = [r[0] for r in rows]
        out["ts_utc"] = [_micros(t) for t in stamps]
        for i, col in enumerate(("open", "high", "low", "close", "volume"), start=1):
            out[col] = [r[i] for r in rows]
        index = dict(
            conn.execute(
                "select ts_utc, rate_index from bqx.rate_index where pair = %s", (pair,)
            ).fetchall()
        )
        out["rate_index"] = [index[t] for t in stamps]
        for family in ex.FAMILIES:
            table = f"{family}_{pair}"
            exists = conn.execute("select to_regclass(%s)", (f"bqx.{table}",)).fetchone()[0]
            if exists is None:
                continue
            cur = conn.execute(f'select * from bqx."{table}"')
            names = [d.name for d in cur.description]
            by_ts = {r[names.index("ts_utc")]: r for r in cur.fetchall()}
            for j, col in enumerate(names):
                name = f"{family}_{col}" if family in PREFIXED and REG_TERM.match(col) else col
                if col == "ts_utc" or name in out:
                    continue
                out[name] = [by_ts[t][j] if t in by_ts else None for t in stamps]
    return out


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def assert_equals_database(table: pa.Table, url: str, pair: str, month: str) -> None:
    expected = db_columns(url, pair, month)
    assert table.num_rows == len(expected["ts_utc"]) > 0
    assert set(table.column_names) == set(expected), set(table.column_names) ^ set(expected)
    for name in table.column_names:
        column = table.column(name)
        got = column.cast(pa.int64()).to_pylist() if name == "ts_utc" else column.to_pylist()
        bad = [
            i for i, (g, e) in enumerate(zip(got, expected[name], strict=True)) if not same(g, e)
        ]
        assert not bad, f"{pair} {month} column {name} differs at rows {bad[:5]}"


# ----------------------------------------------------------------------------- the main path
def test_export_verify_then_rerun_uploads_nothing(
    env: str, s3: S3Server, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bqx(s3, "--bucket", bucket, "--prefix", "features/v1", "--verify") == 0
    out = capsys.readouterr().out
    assert "4 uploaded" in out and "verify passed: 4 object(s)" in out
    first = state(s3, bucket)
    assert sorted(first) == [f"features/v1/{p}/{m}.parquet" for p in PAIRS for m in MONTHS]

    assert bqx(s3, "--bucket", bucket, "--prefix", "features/v1", "--verify") == 0
    out = capsys.readouterr().out
    assert "0 uploaded" in out and "4 unchanged" in out and "verify passed" in out
    assert state(s3, bucket) == first  # nothing was rewritten

    # The objects equal the database, types and metadata exact.
    for pair in PAIRS:
        for month in MONTHS:
            table = read_back(s3, bucket, f"features/v1/{pair}/{month}.parquet")
            assert table.schema.metadata[b"pair"] == pair.encode()
            assert table.schema.metadata[b"year_month"] == month.encode()
            assert table.schema.field("ts_utc").type == pa.timestamp("us", tz="UTC")
            assert table.schema.field("volume").type == pa.int64()
            others = [f for f in table.schema if f.name not in ("ts_utc", "volume")]
            assert all(f.type == pa.float64() for f in others)
            assert_equals_database(table, env, pair, month)


def test_families_columns_and_names(env: str, s3: S3Server, bucket: str) -> None:
    assert bqx(s3, "--bucket", bucket, "--pairs", "eurusd,usdjpy", "--months", "2024_07") == 0
    eur = read_back(s3, bucket, "eurusd/2024_07.parquet")
    jpy = read_back(s3, bucket, "usdjpy/2024_07.parquet")
    assert eur.schema.metadata[b"families"] == b"bqx,reg_rate,reg_bqx,technical,bollinger"
    assert jpy.schema.metadata[b"families"] == b"bqx,reg_bqx"  # reg_rate not built there
    names = eur.column_names
    assert names[:7] == ["ts_utc", "open", "high", "low", "close", "volume", "rate_index"]
    assert names.count("rate_index") == 1 and names.count("w15_bqx_return") == 1
    assert "reg_rate_w60_quadratic_term" in names and "reg_bqx_w60_quadratic_term" in names
    # technical and bollinger compute names of their own: exported as the tables name them
    assert {"sma_10", "rsi_14", "bqx_macd_hist", "bb_rate_20_upper", "bb_bqx_120_pct_b"} <= set(names)
    assert not any(n.startswith(("technical_", "bollinger_")) for n in names)
    # the bar and rate_index, bqx's 5 x 6, reg_rate's and reg_bqx's 6 x 7 each, technical's
    # 53 and bollinger's 4 x 2 x 5
    assert len(names) == len(set(names)) == 7 + 30 + 2 * 42 + 53 + 40
    assert not any(n.startswith("reg_rate_") for n in jpy.column_names)
    assert eur.column("ts_utc").to_pylist() == sorted(eur.column("ts_utc").to_pylist())


def test_hive_layout_and_selection(env: str, s3: S3Server, bucket: str) -> None:
    args = [
        "--bucket",
        bucket,
        "--prefix",
        "/hive/",
        "--layout",
        "hive",
        "--pairs",
        "usdjpy",
        "--months",
        "2024_06",
        "--families",
        "bqx",
        "--workers",
        "1",
    ]
    assert bqx(s3, *args) == 0
    key = "hive/pair=usdjpy/year_month=2024_06/part-0.parquet"
    assert list(state(s3, bucket)) == [key]
    table = read_back(s3, bucket, key)
    assert table.schema.metadata[b"families"] == b"bqx"
    assert not any(n.startswith("reg_") for n in table.column_names)
    expected = db_columns(env, "usdjpy", "2024_06")
    for name in table.column_names:
        got = table.column(name)
        got = got.cast(pa.int64()).to_pylist() if name == "ts_utc" else got.to_pylist()
        assert all(same(g, e) for g, e in zip(got, expected[name], strict=True)), name


def test_changed_rows_are_uploaded_again(
    env: str, s3: S3Server, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bqx(s3, "--bucket", bucket, "--pairs", "eurusd") == 0
    before = state(s3, bucket)
    with psycopg.connect(env, autocommit=True) as conn:
        ts = conn.execute("select max(ts_utc) from bqx.bqx_eurusd").fetchone()[0]
        conn.execute(
            "update bqx.bqx_eurusd set w15_bqx_max = w15_bqx_max + 1 where ts_utc = %s", (ts,)
        )
    try:
        capsys.readouterr()
        assert bqx(s3, "--bucket", bucket, "--pairs", "eurusd", "--verify") == 0
        out = capsys.readouterr().out
        assert "1 uploaded" in out and "1 unchanged" in out
        after = state(s3, bucket)
        assert after["eurusd/2024_06.parquet"] == before["eurusd/2024_06.parquet"]
        assert after["eurusd/2024_07.parquet"] != before["eurusd/2024_07.parquet"]
        assert_equals_database(
            read_back(s3, bucket, "eurusd/2024_07.parquet"), env, "eurusd", "2024_07"
        )
        # A different compression is a different object: rewritten.
        assert bqx(s3, "--bucket", bucket, "--pairs", "eurusd", "--compression", "snappy") == 0
        assert "2 uploaded" in capsys.readouterr().out
    finally:
        with psycopg.connect(env, autocommit=True) as conn:
            conn.execute(
                "update bqx.bqx_eurusd set w15_bqx_max = w15_bqx_max - 1 where ts_utc = %s", (ts,)
            )


def test_verify_catches_an_object_that_differs(
    env: str, s3: S3Server, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bqx(s3, "--bucket", bucket, "--pairs", "usdjpy", "--months", "2024_07") == 0
    key = "usdjpy/2024_07.parquet"
    client = s3.client()
    head = client.head_object(Bucket=bucket, Key=key)
    table = read_back(s3, bucket, key)
    tampered = table.set_column(1, "open", pa.array([1.0] * table.num_rows))
    sink = io.BytesIO()
    pq.write_table(tampered, sink)
    # Same metadata (so the checksum in HEAD still matches) but other rows.
    client.put_object(Bucket=bucket, Key=key, Body=sink.getvalue(), Metadata=head["Metadata"])
    capsys.readouterr()
    code = bqx(s3, "--bucket", bucket, "--pairs", "usdjpy", "--months", "2024_07", "--verify")
    err = capsys.readouterr().err
    assert code != 0
    assert f"verify failed for s3://{bucket}/{key}" in err and "row checksum" in err
    assert "--force" in err
    # --force rewrites it; then it verifies.
    assert (
        bqx(
            s3,
            "--bucket",
            bucket,
            "--pairs",
            "usdjpy",
            "--months",
            "2024_07",
            "--verify",
            "--force",
        )
        == 0
    )
    assert "1 uploaded" in capsys.readouterr().out
    assert_equals_database(read_back(s3, bucket, key), env, "usdjpy", "2024_07")


# ----------------------------------------------------------------------------- errors
ERROR_CASES = {
    "unknown pair": (["--pairs", "eurusd,abcdef"], "unknown pair 'abcdef'"),
    "upper-case pair": (["--pairs", "EURUSD"], "unknown pair 'EURUSD'"),
    "unknown family": (
        ["--families", "bqx,momentum"],
        "unknown family 'momentum': valid families are bqx, reg_rate, reg_bqx, correlation_bqx, "
        "technical, bollinger",
    ),
    "family not built": (
        ["--pairs", "usdjpy", "--families", "reg_rate"],
        "family reg_rate is not built for pair usdjpy: run "
        "`bqx dbt -- build --select +reg_rate_usdjpy`",
    ),
    "correlation not built": (
        ["--families", "correlation_bqx"],
        "family correlation_bqx is not built for pair eurusd",
    ),
    "month without rows": (
        ["--pairs", "eurusd", "--months", "2024_07,2024_08"],
        "pair eurusd has no rows in month 2024_08 (months with rows: 2024_06, 2024_07)",
    ),
    "bad month": (["--months", "2024-07"], "bad month '2024-07': write months as YYYY_MM"),
    "bad workers": (["--workers", "0"], "--workers must be at least 1"),
}


@pytest.fixture()
def full_bucket(env: str, s3: S3Server, bucket: str) -> str:
    """A bucket with an export in it: error cases must leave it exactly as it is."""
    assert bqx(s3, "--bucket", bucket, "--pairs", "usdjpy", "--months", "2024_06") == 0
    return bucket


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_argument_and_database_errors(
    case: str, env: str, s3: S3Server, full_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args, message = ERROR_CASES[case]
    before = state(s3, full_bucket)
    capsys.readouterr()
    assert bqx(s3, "--bucket", full_bucket, *args) != 0
    err = capsys.readouterr().err
    assert err.startswith("bqx: error: ") and message in err, err
    assert state(s3, full_bucket) == before


def test_missing_bucket(env: str, s3: S3Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert bqx(s3, "--bucket", "bqx-no-such-bucket") != 0
    err = capsys.readouterr().err
    assert "bucket 'bqx-no-such-bucket'" in err and "does not exist" in err
    assert "bqx-no-such-bucket" not in [b["Name"] for b in s3.client().list_buckets()["Buckets"]]


def test_missing_credentials(
    env: str,
    s3: S3Server,
    full_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    before = state(s3, full_bucket)
    capsys.readouterr()
    assert bqx(s3, "--bucket", full_bucket) != 0
    err = capsys.readouterr().err
    assert "no AWS credentials found" in err and "AWS_ACCESS_KEY_ID" in err
    assert state(s3, full_bucket) == before


@pytest.mark.parametrize("which", ["secret", "access key"])
def test_wrong_credentials(
    which: str,
    env: str,
    s3: S3Server,
    full_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "W" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY" if which == "secret" else "AWS_ACCESS_KEY_ID", wrong)
    before = state(s3, full_bucket)
    capsys.readouterr()
    assert bqx(s3, "--bucket", full_bucket) != 0
    captured = capsys.readouterr()
    err = captured.err
    assert "rejected the credentials" in err
    assert "AWS_ACCESS_KEY_ID" in err and "AWS_SECRET_ACCESS_KEY" in err
    for secret in (wrong, s3.secret_key):
        assert secret not in captured.err + captured.out
    assert state(s3, full_bucket) == before


def test_unreachable_endpoint(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    from s3server import free_ports

    port = free_ports(1)[0]
    code = cli.main(["export", "--bucket", "b-x-y", "--endpoint-url", f"http://127.0.0.1:{port}"])
    assert code != 0
    assert "cannot reach the S3 endpoint" in capsys.readouterr().err


# ----------------------------------------------------------------------------- partial writes
def test_failed_multipart_upload_leaves_no_object(s3: S3Server, bucket: str) -> None:
    """boto3 aborts a multipart upload when a part fails: nothing becomes visible."""

    class Failing(io.BytesIO):
        def read(self, size: int = -1) -> bytes:
            if self.tell() >= 6 * 1024 * 1024:
                raise OSError("connection to the database lost")
            return super().read(size)

    opts = ex.ExportOptions(
        bucket=bucket, multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
    )
    client = s3.client()
    with pytest.raises(OSError):
        ex.upload_object(
            client,
            bucket,
            "big.parquet",
            Failing(os.urandom(16 * 1024 * 1024)),
            {"bqx-checksum": "x"},
            ex.transfer_config(opts),
        )
    assert state(s3, bucket) == {}
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u for u in uploads if u["Key"] == "big.parquet"] == []
    # The same path succeeds as a multipart upload when nothing fails.
    ex.upload_object(
        client,
        bucket,
        "big.parquet",
        io.BytesIO(b"y" * (12 * 1024 * 1024)),
        {"bqx-checksum": "y"},
        ex.transfer_config(opts),
    )
    head = client.head_object(Bucket=bucket, Key="big.parquet")
    assert head["ContentLength"] == 12 * 1024 * 1024 and head["Metadata"]["bqx-checksum"] == "y"
    assert "-" in head["ETag"]  # a multipart ETag


def test_interrupted_export_resumes(
    env: str,
    s3: S3Server,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from botocore.exceptions import ConnectionClosedError

    real = ex.upload_object

    def flaky(client, bucket_, key, fileobj, metadata, config):
        if key == "usdjpy/2024_07.parquet":
            raise ConnectionClosedError(endpoint_url=s3.endpoint_url)
        return real(client, bucket_, key, fileobj, metadata, config)

    monkeypatch.setattr(ex, "upload_object", flaky)
    assert bqx(s3, "--bucket", bucket, "--workers", "1") != 0
    err = capsys.readouterr().err
    assert "upload of usdjpy/2024_07.parquet" in err and "no partial object is left" in err
    written = state(s3, bucket)
    assert "usdjpy/2024_07.parquet" not in written
    assert set(written) <= {f"{p}/{m}.parquet" for p in PAIRS for m in MONTHS}

    monkeypatch.setattr(ex, "upload_object", real)
    assert bqx(s3, "--bucket", bucket, "--verify") == 0
    out = capsys.readouterr().out
    assert f"{4 - len(written)} uploaded" in out and f"{len(written)} unchanged" in out
    assert "verify passed" in out


def test_airtable_failure_does_not_fail_the_export(
    env: str,
    s3: S3Server,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from py_tasks import airtable

    calls = []

    def broken(code, status, rows=None, duration_s=None, notes=""):
        calls.append((code, status, rows))
        raise BqxError("AirTable rejected the token (401 Unauthorized)")

    monkeypatch.setattr(airtable, "report_stage", broken)
    assert bqx(s3, "--bucket", bucket, "--pairs", "usdjpy", "--months", "2024_06") == 0
    assert calls and calls[0][:2] == ("BQX-2.7", "Done") and calls[0][2] > 0
    assert "AirTable stage BQX-2.7 not reported" in capsys.readouterr().err


# ----------------------------------------------------------------------------- pieces
def test_the_three_readers_agree(env: str) -> None:
    """psycopg2 and psycopg 3 binary COPY parsed with numpy, and ADBC: the same tables."""
    pytest.importorskip("adbc_driver_postgresql")  # in the dev venv, not a package dependency
    opts = ex._check_options(ex.ExportOptions(bucket="b"))
    with db.connect(env, autocommit=True) as conn:
        tasks = ex.tasks_for(ex.plan_export(conn, opts), opts)
    conns = {reader: ex._connect(env, reader) for reader in ex.READERS}
    try:
        assert type(conns["copy"]).__module__.startswith("psycopg2")
        for task in tasks:
            tables = {r: ex.read_table(c, task, r) for r, c in conns.items()}
            first = tables["copy"]
            for reader, table in tables.items():
                assert table.equals(first, check_metadata=True), (task.key, reader)
            assert len({ex.table_checksum(t) for t in tables.values()}) == 1
            if task.month == "2024_06":  # the warm-up: runs of NULLs of every width
                assert first.column("reg_bqx_w630_r2").null_count > 0
    finally:
        for conn in conns.values():
            conn.close()


def test_parse_rejects_what_it_does_not_understand() -> None:
    schema = pa.schema([pa.field("x", pa.float64())])
    header = ex.COPY_SIGNATURE + bytes(8)
    row = (1).to_bytes(2, "big") + (8).to_bytes(4, "big") + bytes(8)
    assert ex.parse_binary_copy(header + row + b"\xff\xff", schema).num_rows == 1
    for bad in (
        b"PGCOPY" + bytes(13) + row + b"\xff\xff",  # signature
        header + row,  # no trailer
        header + row[:-3] + b"\xff\xff",  # truncated row
        header + (1).to_bytes(2, "big") + (4).to_bytes(4, "big") + bytes(4) + b"\xff\xff",
    ):
        with pytest.raises(ex.CopyFormatError):
            ex.parse_binary_copy(bad, schema)


def test_checksum_is_of_the_rows() -> None:
    ts = pa.array([0, 60_000_000, 120_000_000], type=pa.timestamp("us", tz="UTC"))
    base = pa.table({"ts_utc": ts, "x": pa.array([1.0, None, 3.0]), "v": pa.array([1, 2, None])})
    digest = ex.table_checksum(base)
    assert len(digest) == 64
    # Chunking, metadata and a Parquet round trip do not change it.
    chunked = pa.Table.from_batches(base.to_batches(max_chunksize=1))
    assert ex.table_checksum(chunked) == digest
    assert ex.table_checksum(base.replace_schema_metadata({"pair": "eurusd"})) == digest
    sink = io.BytesIO()
    pq.write_table(base, sink, compression="zstd")
    assert ex.table_checksum(pq.read_table(io.BytesIO(sink.getvalue()))) == digest
    # Values, NULL versus NaN or 0, names and order do change it.
    changed = [
        base.set_column(1, "x", pa.array([1.0, None, 3.0000000000000004])),
        base.set_column(1, "x", pa.array([1.0, float("nan"), 3.0])),
        base.set_column(2, "v", pa.array([1, 2, 0])),
        base.rename_columns(["ts_utc", "y", "v"]),
        base.select(["ts_utc", "v", "x"]),
        base.slice(0, 2),
    ]
    assert len({digest, *(ex.table_checksum(t) for t in changed)}) == len(changed) + 1


def test_keys_months_and_options() -> None:
    assert ex.object_key("a/b", "eurusd", "2024_07") == "a/b/eurusd/2024_07.parquet"
    assert (
        ex.object_key("", "eurusd", "2024_07", "hive")
        == "pair=eurusd/year_month=2024_07/part-0.parquet"
    )
    assert ex.month_bounds("2024_12") == (
        datetime(2024, 12, 1, tzinfo=timezone.utc),
        datetime(2025, 1, 1, tzinfo=timezone.utc),
    )
    for bad in ("2024_13", "24_07", "2024-07"):
        with pytest.raises(BqxError, match="YYYY_MM"):
            ex.check_month(bad)
    with pytest.raises(BqxError, match="bucket name, not a path"):
        ex._check_options(ex.ExportOptions(bucket="s3://b/p"))
    assert callable(ex._local_s3_server())  # what benchmark() starts without an endpoint
    tag = ex.ExportOptions(bucket="b").format_tag()
    assert tag != ex.ExportOptions(bucket="b", compression="snappy").format_tag()


def test_benchmark_reports_both_figures(env: str, s3: S3Server, bucket: str) -> None:
    fig = ex.export_benchmark(env, s3.endpoint_url, bucket, client=s3.client(), workers=2)
    assert fig["objects"] == 4 and fig["rows"] > 0
    for key in (
        "export_rows_per_s",
        "export_arrow_mb_per_s",
        "copy_rows_per_s",
        "copy_mb_per_s",
        "ratio",
    ):
        assert fig[key] > 0
    assert state(s3, bucket) == {}  # cleaned up
    text = ex.format_benchmark(fig)
    assert "COPY floor" in text and "rows/s" in text and "MB/s" in text
