"""``bqx export``: unload the features to S3 as Parquet, one object per pair and month.

Each object holds one pair's bars of one UTC calendar month, ordered by ts_utc:
``ts_utc`` (timestamp[us, tz=UTC]), the bar (``open high low close`` float64,
``volume`` int64, nullable), ``rate_index`` (float64) and the columns of every
selected family table (every feature family of the registry, :data:`FAMILIES`),
left-joined on ts_utc. Column naming (docs/export.md):

* a name that repeats across families (``rate_index``, ``w15_bqx_return``: the
  input a family copies from upstream) appears once, from the first source;
* a column that two families compute under one name (the regression terms of
  ``reg_rate`` and ``reg_bqx``: one macro makes both) is prefixed with the family in
  both: ``reg_rate_w60_r2``, ``reg_bqx_w60_r2`` (:func:`column_name`).

The Parquet file carries ``pair``, ``year_month`` and ``families`` as key-value
metadata. Keys: ``PREFIX/{pair}/{YYYY_MM}.parquet`` (layout ``flat``) or
``PREFIX/pair={pair}/year_month={YYYY_MM}/part-0.parquet`` (layout ``hive``).

How it runs:

1. Everything is validated before anything is written: arguments, the database
   (pairs, families built, months with rows) and S3 (credentials, bucket) with one
   cheap ListObjectsV2 call. An error leaves the bucket as it was.
2. ``--workers`` threads, each with its own PostgreSQL connection, read a (pair,
   month) with ``COPY (query) TO STDOUT (FORMAT binary)`` (through psycopg2's C copy
   loop) and turn it into Arrow with numpy (:func:`parse_binary_copy`; measured at a
   third of the ADBC driver's CPU, which is kept as ``reader="adbc"``), compute the
   row checksum (:func:`table_checksum`), HEAD the object and skip it when its
   ``bqx-checksum``, ``bqx-rows`` and ``bqx-format`` metadata match; otherwise write
   Parquet with pyarrow and upload with boto3.
3. Uploads are atomic: a single PUT below the multipart threshold (64 MiB); above
   it a multipart upload, which S3 shows only once completed and which boto3 aborts
   when any part fails. A failed or interrupted export leaves complete objects or
   none, and re-running resumes (unchanged objects are skipped).
4. ``--verify`` downloads every object, reads it with pyarrow and compares its row
   count, checksum and pair/month metadata with this run's database read.

Credentials and region come from boto3's usual chain (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/config, ...); the endpoint from
``--endpoint-url`` or AWS_ENDPOINT_URL(_S3). Secrets never appear in messages.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from . import db, families
from .config import all_pairs, check_pair, schema
from .errors import BqxError

# Every per-pair feature family of the registry (py_tasks/families.py), in its order.
FAMILIES = families.names(families.features())
LAYOUTS = ("flat", "hive")
COMPRESSIONS = ("zstd", "snappy", "lz4", "gzip", "brotli", "none")
MONTH_RE = re.compile(r"^(\d{4})_(0[1-9]|1[0-2])$")
BAR_COLUMNS = ("open", "high", "low", "close", "volume")

DEFAULT_WORKERS = 4
DEFAULT_COMPRESSION = "zstd"
DEFAULT_ROW_GROUP_SIZE = 131_072  # rows; a month of M1 bars (~32k) is one row group
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNKSIZE = 16 * 1024 * 1024
STAGE_CODE = "BQX-2.7"

CHECKSUM_NAME = "sha256-rows-v1"
META_CHECKSUM = "bqx-checksum"  # sent as x-amz-meta-bqx-checksum
META_ROWS = "bqx-rows"
META_FORMAT = "bqx-format"
CONTENT_TYPE = "application/vnd.apache.parquet"

# PostgreSQL type -> (SQL cast applied in the query, Arrow type of the result).
_CASTS: dict[str, tuple[str, str]] = {
    "float8": ("{}", "float64"),
    "float4": ("{}::double precision", "float64"),
    "numeric": ("{}::double precision", "float64"),
    "int8": ("{}", "int64"),
    "int4": ("{}::bigint", "int64"),
    "int2": ("{}::bigint", "int64"),
    "timestamptz": ("{}", "timestamp"),
    "timestamp": ("({} at time zone 'UTC')", "timestamp"),
}


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class ExportOptions:
    """What to export and where; see ``bqx export --help``."""

    bucket: str
    prefix: str = ""
    pairs: Sequence[str] | None = None  # None: every pair with a built family
    months: Sequence[str] | None = None  # None: every month with rows, per pair
    families: Sequence[str] | None = None  # None: every family built, per pair
    workers: int = DEFAULT_WORKERS
    endpoint_url: str | None = None
    layout: str = "flat"
    verify: bool = False
    compression: str = DEFAULT_COMPRESSION
    compression_level: int | None = None
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE
    multipart_threshold: int = MULTIPART_THRESHOLD
    multipart_chunksize: int = MULTIPART_CHUNKSIZE
    reader: str = "copy"  # or "psycopg", "adbc" (see read_table)
    force: bool = False  # upload even when the object's checksum matches

    def format_tag(self) -> str:
        """What, besides the rows, decides an object's bytes: stored as ``bqx-format``
        so that changing e.g. the compression rewrites the objects."""
        level = "" if self.compression_level is None else str(self.compression_level)
        return f"v1;{self.compression}{level and ':' + level};rg={self.row_group_size}"


@dataclass(frozen=True)
class OutColumn:
    name: str  # in the Parquet file
    source: str  # SQL expression, already cast
    arrow: str  # float64 | int64 | timestamp


@dataclass(frozen=True)
class PairPlan:
    pair: str
    families: tuple[str, ...]
    months: tuple[str, ...]
    columns: tuple[OutColumn, ...]


class ExportFailed(BqxError):
    """A failure after validation, while objects were being written or verified."""


@dataclass(frozen=True)
class Task:
    pair: str
    month: str
    key: str
    query: str
    plan: PairPlan


@dataclass
class ObjectResult:
    pair: str
    month: str
    key: str
    rows: int
    checksum: str
    action: str  # uploaded | unchanged
    arrow_bytes: int = 0
    parquet_bytes: int = 0  # 0 when unchanged (not written)
    verified: bool | None = None


@dataclass
class ExportResult:
    bucket: str
    prefix: str
    objects: list[ObjectResult] = field(default_factory=list)
    seconds: float = 0.0  # validation + export, without --verify
    verify_seconds: float = 0.0
    verified: bool = False

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.objects)

    @property
    def uploaded(self) -> int:
        return sum(o.action == "uploaded" for o in self.objects)

    @property
    def unchanged(self) -> int:
        return sum(o.action == "unchanged" for o in self.objects)


# ----------------------------------------------------------------------------- arguments
def _split(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in ("", "all"):
            return None
        return [v for v in re.split(r"[,\s]+", value.strip()) if v]
    return [str(v).strip() for v in value if str(v).strip()]


def _computed_twice() -> dict[str, set[str]]:
    """family -> the columns it computes under a name another feature family also
    computes (copies of an upstream column do not count), from the families' YAML."""
    own = {f: set(families.own_columns(f)) for f in FAMILIES}
    return {f: {c for c in cols if any(c in own[g] for g in FAMILIES if g != f)}
            for f, cols in own.items()}


_CLASHES: dict[str, set[str]] | None = None


def column_name(family: str, column: str) -> str:
    """The exported name of a family table's column: prefixed with the family when
    another feature family computes a column of the same name (reg_rate_w60_r2,
    reg_bqx_w60_r2), else the column's own name. It never depends on the selection."""
    global _CLASHES
    if _CLASHES is None:
        _CLASHES = _computed_twice()
    return f"{family}_{column}" if column in _CLASHES.get(family, ()) else column


def check_family(name: str) -> str:
    if name not in FAMILIES:
        raise BqxError(f"unknown family '{name}': valid families are {', '.join(FAMILIES)}")
    return name


def check_month(value: str) -> str:
    if not MONTH_RE.match(value):
        raise BqxError(f"bad month '{value}': write months as YYYY_MM, e.g. 2024_07")
    return value


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a YYYY_MM month in UTC."""
    match = MONTH_RE.match(month)
    if not match:
        raise BqxError(f"bad month '{month}': write months as YYYY_MM, e.g. 2024_07")
    year, mon = int(match.group(1)), int(match.group(2))
    start = datetime(year, mon, 1, tzinfo=timezone.utc)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


def clean_prefix(prefix: str | None) -> str:
    text = (prefix or "").strip().strip("/")
    if "//" in text:
        raise BqxError(f"bad --prefix '{prefix}': it has an empty path segment (//)")
    return text


def object_key(prefix: str, pair: str, month: str, layout: str = "flat") -> str:
    """The object key of one pair and month."""
    if layout == "flat":
        tail = f"{pair}/{month}.parquet"
    elif layout == "hive":
        tail = f"pair={pair}/year_month={month}/part-0.parquet"
    else:
        raise BqxError(f"unknown layout '{layout}': use flat or hive")
    prefix = clean_prefix(prefix)
    return f"{prefix}/{tail}" if prefix else tail


def _check_options(opts: ExportOptions) -> ExportOptions:
    bucket = (opts.bucket or "").strip()
    if not bucket:
        raise BqxError("give the bucket: --bucket NAME")
    if "/" in bucket or bucket.startswith("s3:"):
        raise BqxError(
            f"--bucket takes a bucket name, not a path: '{bucket}' (put paths in --prefix)"
        )
    if opts.layout not in LAYOUTS:
        raise BqxError(f"unknown layout '{opts.layout}': use flat or hive")
    if opts.workers < 1:
        raise BqxError(f"--workers must be at least 1, got {opts.workers}")
    if opts.compression not in COMPRESSIONS:
        raise BqxError(
            f"unknown compression '{opts.compression}': use one of {', '.join(COMPRESSIONS)}"
        )
    if opts.reader not in READERS:
        raise BqxError(f"unknown reader '{opts.reader}': use {' or '.join(READERS)}")
    if opts.row_group_size < 1:
        raise BqxError(f"--row-group-size must be at least 1, got {opts.row_group_size}")
    pairs = _split(opts.pairs)
    families = _split(opts.families)
    months = _split(opts.months)
    return replace(
        opts,
        bucket=bucket,
        prefix=clean_prefix(opts.prefix),
        pairs=None if pairs is None else list(dict.fromkeys(check_pair(p) for p in pairs)),
        families=None
        if families is None
        else list(dict.fromkeys(check_family(f) for f in families)),
        months=None if months is None else sorted(dict.fromkeys(check_month(m) for m in months)),
    )


# ----------------------------------------------------------------------------- database plan
def _ident(*parts: str) -> str:
    from psycopg import sql

    return sql.Identifier(*parts).as_string()


def _literal(value: Any) -> str:
    from psycopg import sql

    return sql.Literal(value).as_string()


def _relations(conn: Any, names: Iterable[str]) -> set[str]:
    rows = conn.execute(
        """
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %s and c.relname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'f')
        """,
        (schema(), list(names)),
    ).fetchall()
    return {r[0] for r in rows}


def _columns(conn: Any, relation: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        """
        select a.attname, t.typname from pg_attribute a join pg_type t on t.oid = a.atttypid
        where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
        order by a.attnum
        """,
        (_ident(schema(), relation),),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _out_column(relation: str, alias: str, column: str, pgtype: str, name: str) -> OutColumn:
    if pgtype not in _CASTS:
        raise BqxError(
            f"column {column} of {schema()}.{relation} has type {pgtype}, which bqx export "
            f"does not write; supported: {', '.join(_CASTS)}"
        )
    expr, arrow = _CASTS[pgtype]
    return OutColumn(name=name, source=expr.format(f"{alias}.{_ident(column)}"), arrow=arrow)


def _pair_months(conn: Any, pair: str) -> list[str]:
    """The UTC months holding at least one bar of ``pair`` (an index probe per month)."""
    stg = _ident(schema(), "stg_m1_bars")
    rows = conn.execute(
        f"""
        with bounds as (select min(ts_utc) as lo, max(ts_utc) as hi from {stg} where pair = %(p)s)
        select to_char(m, 'YYYY_MM')
        from bounds,
             generate_series(date_trunc('month', lo at time zone 'UTC'), hi at time zone 'UTC',
                             interval '1 month') as m
        where exists (
            select 1 from {stg} b
            where b.pair = %(p)s and b.ts_utc >= (m at time zone 'UTC')
              and b.ts_utc < ((m + interval '1 month') at time zone 'UTC')
        )
        order by m
        """,
        {"p": pair},
    ).fetchall()
    return [r[0] for r in rows]


def _build_hint(family: str, pair: str) -> str:
    return f"run `bqx dbt -- build --select +{family}_{pair}`"


def plan_export(conn: Any, opts: ExportOptions) -> list[PairPlan]:
    """Check the database side of an export and return what to read, per pair.

    Raises BqxError for a missing model, a family not built, a pair without bars or
    a requested month without rows. ``opts`` must have passed :func:`_check_options`.
    """
    base = _relations(conn, ["stg_m1_bars", "rate_index"])
    for needed in ("stg_m1_bars", "rate_index"):
        if needed not in base:
            raise BqxError(
                f"model {schema()}.{needed} is not built: "
                "run `bqx dbt -- build --select +rate_index`"
            )
    built = _relations(conn, [f"{f}_{p}" for p in all_pairs() for f in FAMILIES])
    if opts.pairs is not None:
        candidates = list(opts.pairs)
    else:  # by default, every pair with at least one family built
        candidates = [p for p in all_pairs() if any(f"{f}_{p}" in built for f in FAMILIES)]
    wanted = list(opts.families) if opts.families is not None else list(FAMILIES)

    bar_cols = dict(_columns(conn, "stg_m1_bars"))
    index_cols = dict(_columns(conn, "rate_index"))
    base_columns = [_out_column("stg_m1_bars", "b", "ts_utc", bar_cols["ts_utc"], "ts_utc")]
    base_columns += [_out_column("stg_m1_bars", "b", c, bar_cols[c], c) for c in BAR_COLUMNS]
    base_columns.append(
        _out_column("rate_index", "r", "rate_index", index_cols["rate_index"], "rate_index")
    )

    plans: list[PairPlan] = []
    for pair in candidates:
        families = [f for f in wanted if f"{f}_{pair}" in built]
        missing = [f for f in wanted if f"{f}_{pair}" not in built]
        if opts.families is not None and missing:
            fam = missing[0]
            raise BqxError(
                f"family {fam} is not built for pair {pair}: {_build_hint(fam, pair)} "
                f"(there is no table {schema()}.{fam}_{pair})"
            )
        if not families:
            raise BqxError(
                f"no feature family is built for pair {pair} (families: {', '.join(FAMILIES)}): "
                f"{_build_hint(families.one_with_flag(families.BUILD_HINT).name, pair)}"
            )
        months = _pair_months(conn, pair)
        if not months:
            if opts.pairs is None:
                continue
            raise BqxError(
                f"pair {pair} has no bars in {schema()}.stg_m1_bars: load or sample them first"
            )
        if opts.months is not None:
            absent = [m for m in opts.months if m not in months]
            if absent:
                raise BqxError(
                    f"pair {pair} has no rows in month {absent[0]} "
                    f"(months with rows: {', '.join(months)})"
                )
            months = list(opts.months)
        columns = list(base_columns)
        seen = {c.name for c in columns}
        for i, fam in enumerate(families):
            for col, pgtype in _columns(conn, f"{fam}_{pair}"):
                if col in ("ts_utc", "pair"):
                    continue
                name = column_name(fam, col)
                if name in seen:
                    continue  # a copy of an upstream column (rate_index, w15_bqx_return)
                seen.add(name)
                columns.append(_out_column(f"{fam}_{pair}", f"f{i}", col, pgtype, name))
        plans.append(PairPlan(pair, tuple(families), tuple(months), tuple(columns)))
    if not plans:
        raise BqxError(
            "nothing to export: no pair has a built feature family with bars; "
            "run `bqx dbt -- build` (or `bqx demo`) first"
        )
    return plans


def export_query(plan: PairPlan, month: str) -> str:
    """The SELECT of one object: bars + rate index + family columns, joined on ts_utc.

    Literal values only (a pair matches ^[a-z]{6}$, bounds are made here), so it can
    run inside COPY (...) TO STDOUT; the range is repeated on every relation so each is
    read by index range, not in full."""
    start, end = month_bounds(month)
    lo, hi = _literal(start), _literal(end)
    sch = schema()
    select = ",\n    ".join(f"{c.source} as {_ident(c.name)}" for c in plan.columns)
    joins = [
        f"join {_ident(sch, 'rate_index')} r on r.pair = b.pair and r.ts_utc = b.ts_utc "
        f"and r.ts_utc >= {lo} and r.ts_utc < {hi}"
    ]
    for i, fam in enumerate(plan.families):
        joins.append(
            f"left join {_ident(sch, f'{fam}_{plan.pair}')} f{i} on f{i}.ts_utc = b.ts_utc "
            f"and f{i}.ts_utc >= {lo} and f{i}.ts_utc < {hi}"
        )
    return (
        f"select\n    {select}\nfrom {_ident(sch, 'stg_m1_bars')} b\n"
        + "\n".join(joins)
        + f"\nwhere b.pair = {_literal(plan.pair)} and b.ts_utc >= {lo} and b.ts_utc < {hi}"
        + "\norder by b.ts_utc"
    )


def arrow_schema(plan: PairPlan, month: str | None = None) -> Any:
    import pyarrow as pa

    types = {
        "float64": pa.float64(),
        "int64": pa.int64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    fields = [pa.field(c.name, types[c.arrow], nullable=c.name != "ts_utc") for c in plan.columns]
    metadata = None
    if month is not None:
        metadata = {"pair": plan.pair, "year_month": month, "families": ",".join(plan.families)}
    return pa.schema(fields, metadata=metadata)


def tasks_for(plans: Sequence[PairPlan], opts: ExportOptions) -> list[Task]:
    return [
        Task(p.pair, m, object_key(opts.prefix, p.pair, m, opts.layout), export_query(p, m), p)
        for p in plans
        for m in p.months
    ]


# ----------------------------------------------------------------------------- checksum
def table_checksum(table: Any) -> str:
    """SHA-256 of a canonical byte form of the rows (``sha256-rows-v1``).

    Independent of chunking, of the Parquet writer and of pyarrow's version: for
    each column in order its name, Arrow type, length and null count; then, when it
    has NULLs, one byte per row (1 = NULL); then the values as little-endian 64-bit
    words (floats bit for bit, timestamps as microseconds, NULL slots as 0). Key-value
    and field metadata are not part of it.
    """
    import numpy as np
    import pyarrow as pa

    digest = hashlib.sha256(CHECKSUM_NAME.encode() + b"\0")
    digest.update(f"rows={table.num_rows};cols={table.num_columns}\0".encode())
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        digest.update(f"{name}\0{kind}\0{len(column)}\0{column.null_count}\0".encode())
        if not (
            pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_timestamp(kind)
        ):
            raise BqxError(f"cannot checksum column {name} of type {kind}")
        if kind.bit_width != 64:
            raise BqxError(f"cannot checksum column {name} of type {kind} (64-bit types only)")
        chunks = column.chunks
        if column.null_count:
            for chunk in chunks:
                digest.update(np.asarray(chunk.is_null(), dtype=np.uint8).tobytes())
        for chunk in chunks:
            words = chunk.view(pa.int64())
            if words.null_count:
                words = words.fill_null(0)
            values = np.asarray(words.to_numpy(zero_copy_only=False), dtype="<i8")
            digest.update(memoryview(np.ascontiguousarray(values)).cast("B"))
    return digest.hexdigest()


# ----------------------------------------------------------------------------- S3
def _s3_client(endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=32,
        s3={"addressing_style": "path"} if endpoint_url else {},
    )
    try:
        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, config=config
        )
    except ValueError as exc:  # e.g. a malformed endpoint URL
        raise BqxError(f"bad --endpoint-url '{db.redact(endpoint_url or '')}': {exc}") from None
    except Exception as exc:  # botocore's profile/config errors
        raise BqxError(f"cannot set up the S3 client: {type(exc).__name__}: {exc}") from None


def _where(client: Any, bucket: str) -> str:
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "AWS S3"
    return f"bucket '{bucket}' at {db.redact(endpoint)}"


def s3_error(exc: BaseException, client: Any, bucket: str, action: str) -> BqxError:
    """One clear message for a failed S3 call (never the key values)."""
    from botocore import exceptions as bx

    where = _where(client, bucket)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return BqxError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE with ~/.aws/credentials) for the S3 store"
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return BqxError(
            f"cannot reach the S3 endpoint for {where} ({action}): check --endpoint-url "
            "(or AWS_ENDPOINT_URL) and that the store is running"
        )
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(
            err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        )
        if code in (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "InvalidToken",
            "ExpiredToken",
            "InvalidClientTokenId",
            "AuthorizationHeaderMalformed",
        ):
            return BqxError(
                f"the S3 store rejected the credentials for {where} ({code}): check "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(and AWS_SESSION_TOKEN or the profile in use)"
            )
        if code in ("NoSuchBucket", "404"):
            return BqxError(
                f"{where} does not exist: create it first (bqx export never creates buckets)"
            )
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return BqxError(
                f"access denied to {where} ({action}, {code}): "
                "the credentials in AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY need s3:ListBucket, s3:GetObject and s3:PutObject on it"
            )
        if code in ("PermanentRedirect", "301", "IllegalLocationConstraintException"):
            return BqxError(
                f"{where} is in another region: set AWS_REGION (or AWS_DEFAULT_REGION) to it"
            )
        message = str(err.get("Message") or "").strip()
        return BqxError(
            f"S3 {action} failed for {where}: {code}{': ' + message if message else ''}"
        )
    if isinstance(exc, bx.BotoCoreError):
        return BqxError(f"S3 {action} failed for {where}: {type(exc).__name__}: {exc}")
    return BqxError(f"S3 {action} failed for {where}: {type(exc).__name__}: {exc}")


def check_bucket(client: Any, bucket: str, prefix: str = "") -> None:
    """Credentials and bucket, with one cheap read (ListObjectsV2, at most one key)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except (BotoCoreError, ClientError) as exc:
        raise s3_error(exc, client, bucket, "list") from None


def _head_metadata(client: Any, bucket: str, key: str) -> dict[str, str] | None:
    from botocore.exceptions import ClientError

    try:
        return client.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def transfer_config(opts: ExportOptions) -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=opts.multipart_threshold,
        multipart_chunksize=opts.multipart_chunksize,
        max_concurrency=4,
        use_threads=True,
        preferred_transfer_client="classic",
    )


def upload_object(
    client: Any, bucket: str, key: str, fileobj: Any, metadata: dict[str, str], config: Any
) -> None:
    """PUT (or multipart-upload, aborted on failure) one object; atomic either way."""
    client.upload_fileobj(
        fileobj,
        bucket,
        key,
        ExtraArgs={"Metadata": metadata, "ContentType": CONTENT_TYPE},
        Config=config,
    )


def read_object(client: Any, bucket: str, key: str) -> Any:
    """An exported object as a pyarrow Table (with its key-value metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.read_table(pa.BufferReader(body))


# ----------------------------------------------------------------------------- reading
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 00:00 UTC in Unix microseconds
READERS = ("copy", "psycopg", "adbc")


class CopyFormatError(ValueError):
    """Binary COPY data that this reader does not understand."""


def _row_layout(raw: Any, pos: int, ncols: int, end: int) -> tuple[tuple[bool, ...], int]:
    """Which fields of the row at ``pos`` are NULL, and the row's length in bytes."""
    if pos + 2 > end or int.from_bytes(raw[pos : pos + 2], "big") != ncols:
        raise CopyFormatError(f"expected a row of {ncols} fields at byte {pos}")
    p = pos + 2
    nulls = []
    for _ in range(ncols):
        n = int.from_bytes(raw[p : p + 4], "big", signed=True)
        if n == -1:
            nulls.append(True)
            p += 4
        elif n == 8:
            nulls.append(False)
            p += 12
        else:
            raise CopyFormatError(f"a field of {n} bytes at byte {p}: only 8-byte types are read")
    if p > end:
        raise CopyFormatError("the last row is truncated")
    return tuple(nulls), p - pos


_WORD_VALUE = int.from_bytes((8).to_bytes(4, "big"), "little")  # length word 8, read as <u4
_WORD_NULL = 0xFFFFFFFF  # length word -1


@dataclass(frozen=True)
class _Segment:
    """Consecutive fields of a row layout that are all NULL or all 8-byte values."""

    first: int  # index of the first field
    count: int
    offset: int  # byte offset of the first field's length word in the row
    null: bool

    @property
    def stride(self) -> int:
        return 4 if self.null else 12


def _segments(nulls: Sequence[bool]) -> list[_Segment]:
    out: list[_Segment] = []
    offset = 2
    for i, null in enumerate(nulls):
        if out and out[-1].null == null:
            last = out[-1]
            out[-1] = _Segment(last.first, last.count + 1, last.offset, null)
        else:
            out.append(_Segment(i, 1, offset, null))
        offset += 4 if null else 12
    return out


def _matching_rows(
    data: bytes, start: int, n: int, rowlen: int, ncols: int, segments: Sequence[_Segment]
) -> int:
    """How many of the ``n`` rows from byte ``start`` (each ``rowlen`` long) have the
    framing of ``segments``: the field count and every field's length word."""
    import numpy as np

    ok = np.ndarray((n,), dtype=">u2", buffer=data, offset=start, strides=(rowlen,)) == ncols
    for seg in segments:
        words = np.ndarray(
            (n, seg.count),
            dtype="<u4",
            buffer=data,
            offset=start + seg.offset,
            strides=(rowlen, seg.stride),
        )
        ok &= (words == (_WORD_NULL if seg.null else _WORD_VALUE)).all(axis=1)
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.size else n


def parse_binary_copy(data: bytes, schema: Any) -> Any:
    """Turn ``COPY ... TO STDOUT (FORMAT binary)`` output into an Arrow table.

    Every field must be an 8-byte type (float8, int8, timestamptz), which is what the
    export query casts to. A row is 2 bytes + 12 per value + 4 per NULL, so rows with
    the same NULL pattern have the same length and layout. The parser reads one row's
    pattern in Python, checks with numpy how many following rows repeat it (their
    field count and length words match), and copies such a run with one strided,
    byte-swapping numpy copy per block of non-NULL columns. Patterns change only where
    NULLs start or stop (warm-up, flat stretches), so the work is vectorised; framing
    that does not match raises CopyFormatError.
    """
    import numpy as np
    import pyarrow as pa

    if bytes(data[:11]) != COPY_SIGNATURE:
        raise CopyFormatError("not binary COPY data (bad signature)")
    pos = 19 + int.from_bytes(data[15:19], "big")  # signature, flags, header extension
    end = len(data) - 2
    if bytes(data[end:]) != b"\xff\xff":
        raise CopyFormatError("binary COPY data without its trailer")
    ncols = len(schema)
    runs: list[tuple[int, int, int, list[_Segment]]] = []  # start, rows, row length, layout
    total = 0
    while pos < end:
        nulls, rowlen = _row_layout(data, pos, ncols, end)
        segments = _segments(nulls)
        count, nxt, chunk = 1, pos + rowlen, 256
        while nxt < end:
            n = min(chunk, (end - nxt) // rowlen)
            if n == 0:
                break
            good = _matching_rows(data, nxt, n, rowlen, ncols, segments)
            count, nxt = count + good, nxt + good * rowlen
            if good < n:
                break
            chunk *= 4
        runs.append((pos, count, rowlen, segments))
        total += count
        pos = nxt
    if pos != end:
        raise CopyFormatError("rows run past the COPY trailer")
    words = np.empty((ncols, total), dtype=np.int64)  # every value as a native 64-bit word
    valid = np.ones((ncols, total), dtype=bool)
    r0 = 0
    for start, count, rowlen, segments in runs:
        for seg in segments:
            rows = slice(r0, r0 + count)
            cols = slice(seg.first, seg.first + seg.count)
            if seg.null:
                words[cols, rows] = 0
                valid[cols, rows] = False
            else:
                words[cols, rows] = np.ndarray(
                    (count, seg.count),
                    dtype=">i8",
                    buffer=data,
                    offset=start + seg.offset + 4,
                    strides=(rowlen, 12),
                ).T
        r0 += count
    columns = []
    for c, fld in enumerate(schema):
        values = words[c]
        if pa.types.is_timestamp(fld.type):
            values += PG_EPOCH_US
        elif pa.types.is_floating(fld.type):
            values = values.view(np.float64)
        mask = None if valid[c].all() else ~valid[c]
        columns.append(pa.array(values, type=fld.type, mask=mask))
    return pa.Table.from_arrays(columns, schema=schema)


def _secretless(url: str, text: str) -> str:
    password = db.parse_url(url).password
    return text.replace(password, "***") if password else text


def adbc_connect(url: str) -> Any:
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc

    try:
        return adbc.connect(url, autocommit=True)
    except adbc_driver_manager.Error as exc:
        message = _secretless(url, str(exc))
        raise BqxError(f"cannot connect to {db.redact(url)} (ADBC): {message}") from None


def _have_psycopg2() -> bool:
    try:
        import psycopg2  # noqa: F401  (dbt-postgres depends on it)
    except ImportError:
        return False
    return True


def _connect(url: str, reader: str) -> Any:
    """A connection for ``reader``: ``copy`` uses psycopg2 when it is installed (it
    always is with dbt-postgres), else psycopg 3 like ``psycopg``; ``adbc`` ADBC."""
    if reader == "adbc":
        return adbc_connect(url)
    if reader == "copy" and _have_psycopg2():
        import psycopg2

        try:
            conn = psycopg2.connect(url)
        except psycopg2.Error as exc:
            message = _secretless(url, str(exc)).strip()
            raise BqxError(f"cannot connect to {db.redact(url)}: {message}") from None
        conn.autocommit = True
        return conn
    return db.connect(url, autocommit=True)


class _Connections:
    """One database connection per worker thread (closed together at the end)."""

    def __init__(self, url: str, reader: str = "copy") -> None:
        self.url = url
        self.reader = reader
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def get(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.url, self.reader)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(Exception):
                    conn.close()
            self._all.clear()


def copy_bytes(conn: Any, query: str) -> Any:
    """``COPY (query) TO STDOUT (FORMAT binary)``: all of its bytes, as one buffer.

    PostgreSQL sends one message per row. psycopg2's ``copy_expert`` takes them in C
    (the GIL released while it waits) and appends to a BytesIO: about half the CPU
    of psycopg 3's per-row Python iteration, used when ``conn`` is a psycopg2 one."""
    statement = f"copy ({query}) to stdout (format binary)"
    if type(conn).__module__.startswith("psycopg2"):
        sink = io.BytesIO()
        with conn.cursor() as cur:
            cur.copy_expert(statement, sink, size=1 << 20)
        return sink.getbuffer()
    with conn.cursor() as cur, cur.copy(statement) as copy:
        return b"".join(copy)


def read_table(conn: Any, task: Task, reader: str = "copy") -> Any:
    """One task's rows as an Arrow table with the exact export schema.

    ``copy`` (the default) and ``psycopg``: binary COPY (through psycopg2, or psycopg
    3), parsed with numpy (:func:`parse_binary_copy`). ``adbc``: the ADBC PostgreSQL
    driver (also binary COPY, parsed field by field in C). Measurements and the
    choice: docs/export.md.
    """
    import pyarrow as pa

    target = arrow_schema(task.plan, task.month)
    if reader in ("copy", "psycopg"):
        return parse_binary_copy(copy_bytes(conn, task.query), target)
    cur = conn.cursor()
    try:
        cur.execute(task.query)
        raw = cur.fetch_arrow_table()
    finally:
        cur.close()
    columns = [
        col if col.type == fld.type else col.cast(fld.type)
        for fld, col in zip(target, raw.columns, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=target)


def to_parquet(table: Any, opts: ExportOptions) -> Any:
    """Parquet bytes (a pyarrow Buffer). Dictionary encoding is off: it never pays
    for float features and costs a third of the write time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression=opts.compression,
        compression_level=opts.compression_level,
        row_group_size=opts.row_group_size,
        use_dictionary=False,
        write_statistics=True,
    )
    return sink.getvalue()


# ----------------------------------------------------------------------------- export
@dataclass
class _Context:
    opts: ExportOptions
    client: Any
    readers: _Connections
    transfer: Any
    fmt: str


def _export_one(ctx: _Context, task: Task) -> ObjectResult:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        table = read_table(ctx.readers.get(), task, ctx.opts.reader)
    except (*_db_errors(), CopyFormatError) as exc:
        raise BqxError(
            f"reading {task.pair} {task.month} from the database failed: "
            f"{_secretless(ctx.readers.url, str(exc)).strip()}"
        ) from None
    if table.num_rows == 0:
        raise BqxError(f"pair {task.pair} has no rows in month {task.month}")
    checksum = table_checksum(table)
    result = ObjectResult(
        task.pair,
        task.month,
        task.key,
        table.num_rows,
        checksum,
        "uploaded",
        arrow_bytes=table.nbytes,
    )
    bucket = ctx.opts.bucket
    try:
        meta = _head_metadata(ctx.client, bucket, task.key)
        if (
            not ctx.opts.force
            and meta is not None
            and meta.get(META_CHECKSUM) == checksum
            and meta.get(META_FORMAT) == ctx.fmt
            and meta.get(META_ROWS) == str(table.num_rows)
        ):
            result.action = "unchanged"
            return result
        data = to_parquet(table, ctx.opts)
        del table
        result.parquet_bytes = data.size
        metadata = {
            META_CHECKSUM: checksum,
            META_ROWS: str(result.rows),
            META_FORMAT: ctx.fmt,
            "bqx-pair": task.pair,
            "bqx-year-month": task.month,
        }
        upload_object(ctx.client, bucket, task.key, _reader(data), metadata, ctx.transfer)
    except (BotoCoreError, ClientError) as exc:
        raise s3_error(exc, ctx.client, bucket, f"upload of {task.key}") from None
    return result


def _reader(buffer: Any) -> io.BytesIO:
    return io.BytesIO(memoryview(buffer))


def _verify_one(ctx: _Context, result: ObjectResult) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        table = read_object(ctx.client, ctx.opts.bucket, result.key)
    except (BotoCoreError, ClientError) as exc:
        raise s3_error(exc, ctx.client, ctx.opts.bucket, f"download of {result.key}") from None
    meta = table.schema.metadata or {}
    problems = []
    if (
        meta.get(b"pair") != result.pair.encode()
        or meta.get(b"year_month") != result.month.encode()
    ):
        problems.append(
            f"metadata pair/year_month {meta.get(b'pair')!r}/{meta.get(b'year_month')!r}"
        )
    if table.num_rows != result.rows:
        problems.append(f"{table.num_rows} rows, the database has {result.rows}")
    checksum = table_checksum(table)
    if checksum != result.checksum:
        problems.append(
            f"row checksum {checksum[:12]}..., the database gives {result.checksum[:12]}..."
        )
    if problems:
        result.verified = False
        raise ExportFailed(
            f"verify failed for s3://{ctx.opts.bucket}/{result.key}: {'; '.join(problems)}; "
            "run the export again with --force to rewrite the objects"
        )
    result.verified = True


def _run_pool(
    workers: int,
    items: Sequence[Any],
    fn: Callable[[Any], Any],
    on_done: Callable[[Any, Any], None],
) -> list[Any]:
    """Run ``fn`` over ``items`` on ``workers`` threads; on the first error cancel what
    has not started, wait for what has, and raise that error."""
    results: list[Any] = [None] * len(items)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        futures: dict[Future, int] = {pool.submit(fn, item): i for i, item in enumerate(items)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    exc = fut.exception()
                    if exc is not None:
                        for other in pending:
                            other.cancel()
                        wait(pending)
                        raise exc
                    results[futures[fut]] = fut.result()
                    on_done(items[futures[fut]], results[futures[fut]])
        except KeyboardInterrupt:
            for other in pending:
                other.cancel()
            raise
    return results


def _db_errors() -> tuple[type[BaseException], ...]:
    import psycopg

    errors: list[type[BaseException]] = [psycopg.Error]
    with contextlib.suppress(ImportError):
        import adbc_driver_manager

        errors.append(adbc_driver_manager.Error)
    with contextlib.suppress(ImportError):
        import psycopg2

        errors.append(psycopg2.Error)
    return tuple(errors)


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, flush=True)


def export(
    opts: ExportOptions, url: str | None = None, *, client: Any = None, quiet: bool = False
) -> ExportResult:
    """Export (and optionally verify); see the module docstring. ``client`` overrides
    the boto3 S3 client (else one from the usual AWS environment and ``endpoint_url``)."""
    started = time.perf_counter()
    opts = _check_options(opts)
    url = url or db.database_url(start=True)
    with db.connect(url, autocommit=True) as conn:
        plans = plan_export(conn, opts)
    tasks = tasks_for(plans, opts)
    client = client or _s3_client(opts.endpoint_url)
    check_bucket(client, opts.bucket, opts.prefix)

    where = f"s3://{opts.bucket}/{opts.prefix + '/' if opts.prefix else ''}"
    _say(
        f"bqx export: {len(tasks)} object(s) for {len(plans)} pair(s) to {where} "
        f"({opts.workers} worker(s), {opts.compression}, layout {opts.layout})",
        quiet,
    )
    ctx = _Context(
        opts, client, _Connections(url, opts.reader), transfer_config(opts), opts.format_tag()
    )
    result = ExportResult(bucket=opts.bucket, prefix=opts.prefix)
    counter = {"n": 0}

    def progress(task: Task, res: ObjectResult) -> None:
        counter["n"] += 1
        size = f"{res.parquet_bytes / 1e6:8.2f} MB" if res.parquet_bytes else " " * 11
        _say(
            f"  [{counter['n']}/{len(tasks)}] {task.pair} {task.month} {res.rows:>9,} rows "
            f"{size}  {res.action:<9} {task.key}",
            quiet,
        )

    try:
        try:
            result.objects = _run_pool(opts.workers, tasks, lambda t: _export_one(ctx, t), progress)
        except Exception as exc:
            message = (
                exc.message
                if isinstance(exc, BqxError)
                else _secretless(url, f"export failed: {type(exc).__name__}: {exc}")
            )
            raise ExportFailed(
                f"{message} (no partial object is left: {counter['n']} of {len(tasks)} "
                "object(s) were complete before the failure; run the export again to finish, "
                "unchanged objects are skipped)"
            ) from None
        result.seconds = time.perf_counter() - started
        if opts.verify:
            _say(f"bqx export: verifying {len(tasks)} object(s)", quiet)
            try:
                _run_pool(
                    opts.workers, result.objects, lambda r: _verify_one(ctx, r), lambda *_: None
                )
            except ExportFailed:
                raise
            except Exception as exc:
                message = (
                    exc.message if isinstance(exc, BqxError) else f"{type(exc).__name__}: {exc}"
                )
                raise ExportFailed(f"verify failed: {message}") from None
            result.verified = True
            result.verify_seconds = time.perf_counter() - started - result.seconds
    finally:
        ctx.readers.close()
    return result


def summary(result: ExportResult) -> str:
    mb = sum(o.parquet_bytes for o in result.objects) / 1e6
    text = (
        f"bqx export: {len(result.objects)} object(s), {result.rows:,} rows: "
        f"{result.uploaded} uploaded ({mb:.1f} MB), {result.unchanged} unchanged, "
        f"in {result.seconds:.1f} s"
    )
    if result.verified:
        text += (
            f"\nbqx export: verify passed: {len(result.objects)} object(s) match the database "
            f"(row count and row checksum), in {result.verify_seconds:.1f} s"
        )
    return text


def _report(status: str, rows: int | None, seconds: float, notes: str) -> None:
    from .airtable import report_stage

    try:
        report_stage(STAGE_CODE, status, rows=rows, duration_s=seconds, notes=notes)
    except BqxError as exc:
        print(
            f"bqx: warning: AirTable stage {STAGE_CODE} not reported: {exc.message}",
            file=sys.stderr,
        )


# ----------------------------------------------------------------------------- benchmark
class _Counter(io.RawIOBase):
    """A write-only sink that counts bytes (the floor's /dev/null)."""

    def __init__(self) -> None:
        self.nbytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = len(data)
        self.nbytes += n
        return n


def copy_floor(url: str, tasks: Sequence[Task], workers: int) -> tuple[float, int, int]:
    """Seconds, bytes and rows of ``COPY (query) TO STDOUT (FORMAT binary)`` of every
    task into a sink that keeps nothing, on ``workers`` threads with one connection
    each, through the same client path as the export's reader: the floor."""
    connections = _Connections(url, "copy")

    def one(task: Task) -> tuple[int, int]:
        conn = connections.get()
        statement = f"copy ({task.query}) to stdout (format binary)"
        with conn.cursor() as cur:
            if type(conn).__module__.startswith("psycopg2"):
                sink = _Counter()
                cur.copy_expert(statement, sink, size=1 << 20)
                return sink.nbytes, cur.rowcount
            nbytes = 0
            with cur.copy(statement) as copy:
                for data in copy:
                    nbytes += len(data)
            return nbytes, cur.rowcount  # the "COPY n" command tag

    started = time.perf_counter()
    try:
        out = _run_pool(workers, tasks, one, lambda *_: None)
    finally:
        connections.close()
    seconds = time.perf_counter() - started
    return seconds, sum(b for b, _ in out), sum(r for _, r in out)


def _process_cpu(pid: int | None) -> float | None:
    """CPU seconds used so far by process ``pid`` (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def compare_readers(url: str, tasks: Sequence[Task]) -> dict[str, dict[str, float]]:
    """Read every task once with each reader on one connection: wall and CPU seconds
    of this process (the measurement behind the choice of the binary-COPY reader)."""
    out: dict[str, dict[str, float]] = {}
    for reader in READERS:
        conn = _connect(url, reader)
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            for task in tasks:
                read_table(conn, task, reader)
            out[reader] = {
                "wall_s": time.perf_counter() - wall,
                "cpu_s": time.process_time() - cpu,
            }
        finally:
            conn.close()
    return out


def export_benchmark(
    url: str,
    endpoint_url: str,
    bucket: str,
    *,
    client: Any = None,
    pairs: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    workers: int = DEFAULT_WORKERS,
    compression: str = DEFAULT_COMPRESSION,
    prefix: str | None = None,
    cleanup: bool = True,
    readers: bool = False,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Time an export of every built pair x month to ``bucket`` next to the COPY floor.

    The floor is ``COPY (the export's query) TO STDOUT (FORMAT binary)`` of the same
    rows into /dev/null: once on one connection (``copy1_*``) and, before and after the
    export, on ``workers`` connections like the export (``copy_*``, the lower kept).
    The export writes to a fresh prefix so every object is uploaded; the objects are
    deleted afterwards unless ``cleanup`` is False. ``readers`` adds a read-only
    comparison of the two readers; ``server_pid`` (a local S3 server) adds the CPU
    seconds that server spent during the export. Returns the figures (see
    :func:`format_benchmark`).
    """
    prefix = prefix or f"bench-{uuid.uuid4().hex[:10]}"
    opts = _check_options(
        ExportOptions(
            bucket=bucket,
            prefix=prefix,
            pairs=pairs,
            families=families,
            workers=workers,
            endpoint_url=endpoint_url,
            compression=compression,
        )
    )
    client = client or _s3_client(endpoint_url)
    with db.connect(url, autocommit=True) as conn:
        tasks = tasks_for(plan_export(conn, opts), opts)
    floor_1 = copy_floor(url, tasks, 1)
    floor_a = copy_floor(url, tasks, workers)
    server_cpu = _process_cpu(server_pid)
    cpu = time.process_time()
    result = export(opts, url, client=client, quiet=True)
    cpu = time.process_time() - cpu
    if server_cpu is not None:
        after = _process_cpu(server_pid)
        server_cpu = None if after is None else after - server_cpu
    floor_b = copy_floor(url, tasks, workers)
    floor_s, copy_nbytes, copy_rows = min(floor_a, floor_b)
    if copy_rows != result.rows or floor_1[2] != result.rows:
        raise BqxError(f"benchmark: COPY read {copy_rows} rows, the export {result.rows}")
    if cleanup:
        keys = [o.key for o in result.objects]
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            client.delete_objects(Bucket=bucket, Delete={"Objects": batch})
    arrow_bytes = sum(o.arrow_bytes for o in result.objects)
    parquet_bytes = sum(o.parquet_bytes for o in result.objects)
    mb = 1e6
    fig: dict[str, Any] = {
        "objects": len(result.objects),
        "pairs": len({o.pair for o in result.objects}),
        "rows": result.rows,
        "columns": len(tasks[0].plan.columns) if tasks else 0,
        "workers": workers,
        "compression": compression,
        "cores": os.cpu_count(),
        "export_s": result.seconds,
        "export_cpu_s": cpu,
        "export_rows_per_s": result.rows / result.seconds,
        "export_arrow_mb_per_s": arrow_bytes / mb / result.seconds,
        "export_parquet_mb_per_s": parquet_bytes / mb / result.seconds,
        "arrow_mb": arrow_bytes / mb,
        "parquet_mb": parquet_bytes / mb,
        "copy_mb": copy_nbytes / mb,
        "copy_s": floor_s,
        "copy_runs_s": [floor_a[0], floor_b[0]],
        "copy_rows_per_s": copy_rows / floor_s,
        "copy_mb_per_s": copy_nbytes / mb / floor_s,
        "ratio": result.seconds / floor_s,
        "copy1_s": floor_1[0],
        "copy1_rows_per_s": copy_rows / floor_1[0],
        "copy1_mb_per_s": copy_nbytes / mb / floor_1[0],
        "ratio1": result.seconds / floor_1[0],
        "s3_server_cpu_s": server_cpu,
    }
    if readers:
        fig["readers"] = compare_readers(url, tasks)
    return fig


def format_benchmark(fig: dict[str, Any]) -> str:
    lines = [
        f"export benchmark: {fig['pairs']} pair(s), {fig['objects']} object(s), "
        f"{fig['rows']:,} rows x {fig['columns']} columns, {fig['workers']} worker(s), "
        f"{fig['compression']}, {fig['cores']} core(s)",
        f"  COPY floor, 1 connection   {fig['copy1_s']:7.2f} s  "
        f"{fig['copy1_rows_per_s']:>10,.0f} rows/s  {fig['copy1_mb_per_s']:7.1f} MB/s",
        f"  COPY floor, {fig['workers']} connections  {fig['copy_s']:7.2f} s  "
        f"{fig['copy_rows_per_s']:>10,.0f} rows/s  {fig['copy_mb_per_s']:7.1f} MB/s "
        f"(binary COPY, {fig['copy_mb']:.1f} MB)",
        f"  export                     {fig['export_s']:7.2f} s  "
        f"{fig['export_rows_per_s']:>10,.0f} rows/s  {fig['export_arrow_mb_per_s']:7.1f} MB/s "
        f"Arrow ({fig['arrow_mb']:.1f} MB), {fig['export_parquet_mb_per_s']:.1f} MB/s Parquet "
        f"({fig['parquet_mb']:.1f} MB)",
        f"  export / COPY floor: {fig['ratio1']:.2f}x (1 connection), {fig['ratio']:.2f}x "
        f"({fig['workers']} connections); target <= 2x",
    ]
    cpu = f"  CPU during the export: bqx {fig['export_cpu_s']:.1f} s"
    if fig.get("s3_server_cpu_s") is not None:
        cpu += f", the local S3 server {fig['s3_server_cpu_s']:.1f} s (same cores)"
    lines.append(cpu)
    for reader, figures in (fig.get("readers") or {}).items():
        lines.append(
            f"  reader {reader:<5} (read only, 1 connection): {figures['wall_s']:6.2f} s wall, "
            f"{figures['cpu_s']:6.2f} s CPU in bqx"
        )
    return "\n".join(lines)


def _local_s3_server() -> Any:
    """tests/python/s3server.py's SeaweedFS context manager (loaded by path)."""
    import importlib.util

    from .config import project_dir

    path = project_dir() / "tests" / "python" / "s3server.py"
    spec = importlib.util.spec_from_file_location("bqx_s3server", path)
    if spec is None or spec.loader is None or not path.exists():
        raise BqxError(f"{path} is missing: give an S3 endpoint for the benchmark")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bqx_s3server", module)
    spec.loader.exec_module(module)
    return module.seaweedfs


def benchmark(
    url: str | None = None,
    endpoint_url: str | None = None,
    bucket: str | None = None,
    *,
    workers: int = DEFAULT_WORKERS,
    pairs: Sequence[str] | None = None,
    readers: bool = True,
    quiet: bool = False,
) -> dict[str, Any]:
    """CLI-facing benchmark (for ``bqx bench``): without ``endpoint_url`` a local
    SeaweedFS is started on 127.0.0.1 for the run, with a bucket; prints the figures."""
    url = url or db.database_url(start=True)
    if endpoint_url is not None:
        if not bucket:
            raise BqxError("give the bucket to benchmark the export against")
        fig = export_benchmark(
            url, endpoint_url, bucket, workers=workers, pairs=pairs, readers=readers
        )
    else:
        seaweedfs = _local_s3_server()
        with seaweedfs() as server:
            bucket = bucket or "bqx-bench"
            server.create_bucket(bucket)
            server.client().put_object(Bucket=bucket, Key="warm-up", Body=b"")
            fig = export_benchmark(
                url,
                server.endpoint_url,
                bucket,
                client=server.client(),
                workers=workers,
                pairs=pairs,
                readers=readers,
                server_pid=server.process.pid if server.process else None,
            )
    _say(format_benchmark(fig), quiet)
    return fig


# ----------------------------------------------------------------------------- CLI
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export features to S3 as Parquet, one object per pair and month",
        description="Write one Parquet object per pair and UTC month to s3://BUCKET/PREFIX/ "
        "(ts_utc, the bar, rate_index and the columns of every selected family, joined on "
        "ts_utc). Objects whose rows are unchanged are skipped; see docs/export.md. "
        "Credentials and region come from the usual AWS environment and config.",
    )
    parser.add_argument("--bucket", required=True, help="the S3 bucket (must exist)")
    parser.add_argument("--prefix", default="", help="key prefix inside the bucket (default: none)")
    parser.add_argument(
        "--pairs", help="comma-separated pairs (default: every pair with a built family)"
    )
    parser.add_argument(
        "--months", help="comma-separated YYYY_MM UTC months (default: every month with rows)"
    )
    parser.add_argument(
        "--families",
        help=f"comma-separated families from {', '.join(FAMILIES)} "
        "(default: every family built for the pair)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"parallel readers/uploaders, each with its own connection "
        f"(default {DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--endpoint-url", help="S3-compatible endpoint (default: AWS_ENDPOINT_URL or AWS S3)"
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="flat",
        help="flat: PREFIX/{pair}/{YYYY_MM}.parquet; hive: "
        "PREFIX/pair={pair}/year_month={YYYY_MM}/part-0.parquet (default flat)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="read every object back and compare row count and row checksum with the database",
    )
    parser.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default=DEFAULT_COMPRESSION,
        help=f"Parquet compression (default {DEFAULT_COMPRESSION})",
    )
    parser.add_argument("--compression-level", type=int, help="codec level (default: the codec's)")
    parser.add_argument(
        "--row-group-size",
        type=int,
        default=DEFAULT_ROW_GROUP_SIZE,
        help=f"rows per Parquet row group (default {DEFAULT_ROW_GROUP_SIZE})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="upload every object even when its row checksum matches the one in S3",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    opts = ExportOptions(
        bucket=args.bucket,
        prefix=args.prefix,
        pairs=args.pairs,
        months=args.months,
        families=args.families,
        workers=args.workers,
        endpoint_url=args.endpoint_url,
        layout=args.layout,
        verify=args.verify,
        compression=args.compression,
        compression_level=args.compression_level,
        row_group_size=args.row_group_size,
        force=args.force,
    )
    started = time.perf_counter()
    try:
        result = export(opts)
    except ExportFailed as exc:
        _report("Failed", None, time.perf_counter() - started, exc.message)
        raise
    print(summary(result))
    where = f"s3://{result.bucket}/{result.prefix}"
    notes = (
        f"{len(result.objects)} objects to {where}: {result.uploaded} uploaded, "
        f"{result.unchanged} unchanged" + ("; verified" if result.verified else "")
    )
    _report("Done", result.rows, result.seconds, notes)
    return 0


__all__ = [
    "FAMILIES",
    "ExportOptions",
    "ExportResult",
    "ObjectResult",
    "benchmark",
    "check_bucket",
    "column_name",
    "copy_floor",
    "export",
    "export_benchmark",
    "export_query",
    "format_benchmark",
    "object_key",
    "plan_export",
    "read_object",
    "table_checksum",
    "upload_object",
]
