"""``bqx load``: 1-minute bars from HistData or CSV files into ``raw.m1_bars``.

Formats (detected from the first line unless ``--format`` is given):

* HistData "generic ASCII M1": ``YYYYMMDD HHMMSS;open;high;low;close;volume``
  without a header, timestamps in EST without daylight saving (UTC-5 all year;
  stored as UTC). The pair comes from the file name (``DAT_ASCII_EURUSD_M1_201710.csv``)
  or ``--pair``.
* Plain CSV with the header ``pair,ts_utc,open,high,low,close,volume``: ``ts_utc``
  is ISO 8601 with an offset or ``Z`` (a timestamp without offset is taken as UTC,
  as the column name says); ``volume`` may be empty (stored as NULL).

Either may be gzip-compressed (detected from the content, not the name).

Every line is validated in Python while streaming; the first problem stops that
file with one message naming the file, the line number and the problem, and
nothing of that file is stored. A valid file is written with one binary COPY into
a temporary table and ``insert ... on conflict (pair, ts_utc) do nothing``, in
one transaction per file: a load is all-or-nothing per file and loading the same
file again adds nothing. Several files are loaded in order, each in its own
transaction; the first bad file stops the run (earlier files stay loaded).

``load_bars`` is the shared write path (also used by ``bqx sample``): it takes
numpy arrays of ``BAR_DTYPE`` per pair and returns the rows added per pair.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import re
import sys
import time
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np
from psycopg import sql

from . import db
from .config import all_pairs, check_pair, raw_schema
from .errors import BqxError

# One bar per row: what the parsers produce and load_bars/the sample generator use.
# A negative volume stands for NULL (no volume information).
BAR_DTYPE = np.dtype(
    [
        ("ts_utc", "datetime64[us]"),
        ("open", "f8"),
        ("high", "f8"),
        ("low", "f8"),
        ("close", "f8"),
        ("volume", "i8"),
    ]
)
CSV_HEADER = ("pair", "ts_utc", "open", "high", "low", "close", "volume")
FORMATS = ("auto", "histdata", "csv")
PROGRESS_EVERY = 500_000
EST_OFFSET_S = 5 * 3600  # HistData time is EST without DST: UTC = EST + 5 h
PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
_HISTDATA_LINE = re.compile(r"^\s*\d{8} \d{6};")
_HISTDATA_NAME = re.compile(r"DAT_ASCII_([A-Za-z]{6})_", re.IGNORECASE)
_INF = math.inf


@dataclass(frozen=True)
class LoadResult:
    """What one file contributed."""

    path: str
    fmt: str
    pairs: tuple[str, ...]
    rows_read: int
    rows_added: int
    seconds: float

    @property
    def rows_present(self) -> int:
        """Rows of the file that were already in the table (left unchanged)."""
        return self.rows_read - self.rows_added


class LoadError(BqxError):
    """A file was refused; ``results`` holds the files loaded (and kept) before it."""

    def __init__(self, message: str, results: list[LoadResult]) -> None:
        super().__init__(message)
        self.results = results


class _BadLine(Exception):
    """A problem in one line of one file (turned into a BqxError by the caller)."""


# ----------------------------------------------------------------------------- table
def ensure_raw_table(conn: Any) -> None:
    """Create schema ``raw_schema()`` and table ``m1_bars`` if they are missing
    (nothing is created, so no CREATE privilege is needed, when they exist)."""
    name = raw_schema()
    schema = sql.Identifier(name)
    with conn.transaction():
        found = conn.execute(
            "select 1 from pg_tables where schemaname = %s and tablename = 'm1_bars'", (name,)
        ).fetchone()
        if found:
            return
        conn.execute(sql.SQL("create schema if not exists {}").format(schema))
        conn.execute(
            sql.SQL(
                """
                create table if not exists {}.m1_bars (
                    pair text not null,
                    ts_utc timestamptz not null,
                    open double precision not null,
                    high double precision not null,
                    low double precision not null,
                    close double precision not null,
                    volume bigint null,
                    primary key (pair, ts_utc),
                    constraint m1_bars_pair_check check (pair ~ '^[a-z]{{6}}$')
                )
                """
            ).format(schema)
        )


# ----------------------------------------------------------------------------- write path
def _copy_payload(pairs: np.ndarray, bars: np.ndarray, with_volume: bool) -> bytes:
    """Rows in PostgreSQL's binary COPY format, built with numpy (no Python loop)."""
    fields: list[tuple[str, str]] = [("n", ">i2"), ("l_pair", ">i4"), ("pair", "S6")]
    for name in ("ts_utc", "open", "high", "low", "close"):
        fields += [(f"l_{name}", ">i4"), (name, ">i8" if name == "ts_utc" else ">f8")]
    fields.append(("l_volume", ">i4"))
    if with_volume:
        fields.append(("volume", ">i8"))
    out = np.empty(len(bars), dtype=np.dtype(fields))
    out["n"] = 7
    out["l_pair"] = 6
    out["pair"] = pairs
    for name in ("ts_utc", "open", "high", "low", "close"):
        out[f"l_{name}"] = 8
    out["ts_utc"] = bars["ts_utc"].astype("datetime64[us]").astype(np.int64) - PG_EPOCH_US
    for name in ("open", "high", "low", "close"):
        out[name] = bars[name]
    if with_volume:
        out["l_volume"] = 8
        out["volume"] = bars["volume"]
    else:
        out["l_volume"] = -1  # NULL
    return out.tobytes()


def load_bars(conn: Any, bars: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Store bars (per pair, arrays of ``BAR_DTYPE``) in ``raw.m1_bars``.

    One binary COPY into a temporary table, then ``insert ... on conflict do
    nothing``, inside one transaction (a savepoint if one is already open).
    Negative volumes become NULL. Prices are not checked here (the parsers and the
    generator do). Returns the rows added per pair (0 for rows already present).
    """
    for pair in bars:
        check_pair(pair)
    target = sql.Identifier(raw_schema(), "m1_bars")
    added = {pair: 0 for pair in bars}
    with conn.transaction():
        conn.execute(
            "create temp table bqx_load_stage (pair text, ts_utc timestamptz, "
            "open float8, high float8, low float8, close float8, volume int8) on commit drop"
        )
        with conn.cursor() as cur:
            with cur.copy("copy bqx_load_stage from stdin (format binary)") as copy:
                copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
                for pair, arr in bars.items():
                    if len(arr) == 0:
                        continue
                    name = np.full(len(arr), pair.encode(), dtype="S6")
                    has_volume = arr["volume"] >= 0
                    for mask, with_volume in ((has_volume, True), (~has_volume, False)):
                        if mask.any():
                            copy.write(_copy_payload(name[mask], arr[mask], with_volume))
                copy.write(b"\xff\xff")
            rows = cur.execute(
                sql.SQL(
                    "with ins as (insert into {} (pair, ts_utc, open, high, low, close, volume) "
                    "select pair, ts_utc, open, high, low, close, volume from bqx_load_stage "
                    "order by pair, ts_utc on conflict (pair, ts_utc) do nothing returning pair) "
                    "select pair, count(*) from ins group by pair"
                ).format(target)
            ).fetchall()
        conn.execute("drop table bqx_load_stage")
    for pair, count in rows:
        added[pair] = int(count)
    return added


# ----------------------------------------------------------------------------- reading
def _open_text(path: Path) -> IO[str]:
    """The file as text, gunzipped when it starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    opener: Any = gzip.open if gz else open
    return opener(path, "rt", encoding="utf-8-sig", errors="replace", newline=None)


def detect_format(first_line: str) -> str | None:
    """``histdata`` or ``csv`` from a file's first line, else None."""
    line = first_line.strip()
    if _HISTDATA_LINE.match(line):
        return "histdata"
    if tuple(f.strip().strip('"').lower() for f in line.split(",")) == CSV_HEADER:
        return "csv"
    return None


def pair_from_name(path: Path) -> str | None:
    """The pair a file name names (``DAT_ASCII_EURUSD_M1_...`` or a known pair as a
    word of the name), lower-cased; None when the name names none."""
    match = _HISTDATA_NAME.search(path.name)
    if match:
        return check_pair(match.group(1).lower())
    known = set(all_pairs())
    words = {w.lower() for w in re.split(r"[^A-Za-z]+", path.name)} & known
    return words.pop() if len(words) == 1 else None


def _price(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _BadLine(f"{field} price {text.strip()!r} is not a number") from None
    if not 0.0 < value < _INF:
        raise _BadLine(f"{field} price {text.strip()} is not a positive finite number")
    return value


def _volume(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        if not text.strip():
            return -1
        raise _BadLine(f"volume {text.strip()!r} is not an integer") from None
    if value < 0:
        raise _BadLine(f"volume {value} is negative")
    return value


class _Columns:
    """Growing columns of one pair's bars (compact: array.array, not lists)."""

    def __init__(self) -> None:
        self.ts = array("q")  # Unix microseconds
        self.open, self.high, self.low, self.close = (array("d") for _ in range(4))
        self.volume = array("q")
        self.seen: dict[int, int] = {}  # ts -> line number (duplicate check)

    def to_bars(self) -> np.ndarray:
        out = np.empty(len(self.ts), dtype=BAR_DTYPE)
        out["ts_utc"] = np.frombuffer(self.ts, dtype=np.int64).view("datetime64[us]")
        for name in ("open", "high", "low", "close"):
            out[name] = np.frombuffer(getattr(self, name), dtype=np.float64)
        out["volume"] = np.frombuffer(self.volume, dtype=np.int64)
        return out


def _day_seconds(stamp: str) -> int:
    """Unix seconds of midnight of a ``YYYYMMDD`` day (the EST offset added later)."""
    if not stamp.isdigit() or not stamp.isascii():
        raise ValueError(stamp)
    day = date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]))
    return (day.toordinal() - 719163) * 86400  # 719163 = date(1970, 1, 1).toordinal()


def _time_seconds(stamp: str) -> int:
    if len(stamp) != 6 or not stamp.isdigit() or not stamp.isascii():
        raise ValueError(stamp)
    hh, mm, ss = int(stamp[:2]), int(stamp[2:4]), int(stamp[4:])
    if hh > 23 or mm > 59 or ss > 59:
        raise ValueError(stamp)
    return hh * 3600 + mm * 60 + ss


def _parse_histdata(lines: Iterable[str], pair: str, progress: Any) -> dict[str, _Columns]:
    cols = _Columns()
    ts_a, o_a, h_a, l_a, c_a, v_a = (
        cols.ts.append, cols.open.append, cols.high.append, cols.low.append,
        cols.close.append, cols.volume.append,
    )
    seen = cols.seen
    days: dict[str, int] = {}
    times: dict[str, int] = {}
    lineno = 0
    for lineno, line in enumerate(lines, start=1):
        parts = line.split(";")
        if len(parts) != 6:
            if not line.strip():
                continue
            raise _BadLine(f"expected 6 fields separated by ';', found {len(parts)}", lineno)
        stamp = parts[0]
        try:
            if len(stamp) != 15 or stamp[8] != " ":
                raise ValueError(stamp)
            day = days.get(stamp[:8])
            if day is None:
                day = days[stamp[:8]] = _day_seconds(stamp[:8]) + EST_OFFSET_S
            tod = times.get(stamp[9:])
            if tod is None:
                tod = times[stamp[9:]] = _time_seconds(stamp[9:])
        except ValueError:
            raise _BadLine(f"bad timestamp {stamp.strip()!r} (expected YYYYMMDD HHMMSS)",
                           lineno) from None
        ts = (day + tod) * 1_000_000
        try:
            o = _price(parts[1], "open")
            h = _price(parts[2], "high")
            lo = _price(parts[3], "low")
            c = _price(parts[4], "close")
            if h < lo:
                raise _BadLine(f"high {parts[2].strip()} is below low {parts[3].strip()}")
            v = _volume(parts[5])
        except _BadLine as exc:
            raise _BadLine(exc.args[0], lineno) from None
        if ts in seen:
            raise _BadLine(f"duplicate timestamp {stamp} (also on line {seen[ts]})", lineno)
        seen[ts] = lineno
        ts_a(ts)
        o_a(o)
        h_a(h)
        l_a(lo)
        c_a(c)
        v_a(v)
        if lineno % PROGRESS_EVERY == 0:
            progress(lineno)
    return {pair: cols} if cols.ts else {}


_UTC = timezone.utc
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)


def _iso_us(text: str) -> int:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_UTC)
    delta = stamp - _UNIX_EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _parse_csv(lines: Iterable[str], pair: str | None, progress: Any) -> dict[str, _Columns]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return {}
    if tuple(h.strip().lower() for h in header) != CSV_HEADER:
        raise _BadLine(f"expected the header {','.join(CSV_HEADER)}, found {','.join(header)!r}", 1)
    known = set(all_pairs())
    columns: dict[str, _Columns] = {}
    rows = 0
    for fields in reader:
        lineno = reader.line_num
        if len(fields) != 7:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            raise _BadLine(f"expected 7 fields separated by ',', found {len(fields)}", lineno)
        try:
            name = fields[0].strip()
            if name not in known:
                check_pair(name)  # raises with the list of valid pairs
            if pair is not None and name != pair:
                raise _BadLine(f"pair {name} differs from --pair {pair}")
            try:
                ts = _iso_us(fields[1])
            except ValueError:
                raise _BadLine(f"bad timestamp {fields[1].strip()!r} "
                               "(expected ISO 8601 such as 2024-07-01T00:00:00Z)") from None
            o = _price(fields[2], "open")
            h = _price(fields[3], "high")
            lo = _price(fields[4], "low")
            c = _price(fields[5], "close")
            if h < lo:
                raise _BadLine(f"high {fields[3].strip()} is below low {fields[4].strip()}")
            v = _volume(fields[6])
        except (_BadLine, BqxError) as exc:
            raise _BadLine(str(exc.args[0]), lineno) from None
        cols = columns.get(name)
        if cols is None:
            cols = columns[name] = _Columns()
        if ts in cols.seen:
            raise _BadLine(f"duplicate {name} timestamp {fields[1].strip()} "
                           f"(also on line {cols.seen[ts]})", lineno)
        cols.seen[ts] = lineno
        cols.ts.append(ts)
        cols.open.append(o)
        cols.high.append(h)
        cols.low.append(lo)
        cols.close.append(c)
        cols.volume.append(v)
        rows += 1
        if rows % PROGRESS_EVERY == 0:
            progress(rows)
    return columns


def _first_line(handle: IO[str]) -> tuple[str, Iterator[str]]:
    """The first non-empty line and an iterator over all lines (including it)."""
    buffered: list[str] = []
    for line in handle:
        buffered.append(line)
        if line.strip():
            break
    first = buffered[-1] if buffered else ""

    def chain() -> Iterator[str]:
        yield from buffered
        yield from handle

    return first, chain()


def read_file(
    path: str | Path, pair: str | None = None, fmt: str = "auto", progress: Any = None
) -> tuple[str, dict[str, np.ndarray]]:
    """Parse and validate one file; return its format and the bars per pair.

    Raises BqxError naming the file (and line) at the first problem.
    """
    path = Path(path)
    label = str(path)
    progress = progress or (lambda n: None)
    if fmt not in FORMATS:
        raise BqxError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")
    if pair is not None:
        pair = check_pair(pair)
    try:
        handle = _open_text(path)
    except OSError as exc:
        raise BqxError(f"{label}: cannot read the file: {exc.strerror or exc}") from None
    try:
        with handle:
            first, lines = _first_line(handle)
            kind = fmt if fmt != "auto" else detect_format(first)
            if kind is None:
                if not first:
                    return "empty", {}
                raise BqxError(
                    f"{label} line 1: cannot tell the format: expected a HistData line such as "
                    f"'20171002 000000;1.17779;1.17781;1.17772;1.17781;0' or the CSV header "
                    f"'{','.join(CSV_HEADER)}' (or pass --format)"
                )
            if kind == "histdata":
                name_pair = _name_pair(path, label)
                if pair and name_pair and name_pair != pair:
                    raise BqxError(f"{label}: the file name says {name_pair} but --pair is {pair}")
                pair = pair or name_pair
                if pair is None:
                    raise BqxError(f"{label}: cannot tell the pair from the file name "
                                   "(expected DAT_ASCII_<PAIR>_M1_...): pass --pair")
                columns = _parse_histdata(lines, pair, progress)
            else:
                columns = _parse_csv(lines, pair, progress)
    except _BadLine as exc:
        raise BqxError(f"{label} line {exc.args[1]}: {exc.args[0]}") from None
    except (OSError, EOFError) as exc:
        raise BqxError(f"{label}: cannot read the file: {exc}") from None
    return kind, {p: c.to_bars() for p, c in columns.items()}


def _name_pair(path: Path, label: str) -> str | None:
    try:
        return pair_from_name(path)
    except BqxError as exc:
        raise BqxError(f"{label}: file name: {exc.message}") from None


# ----------------------------------------------------------------------------- files
def _say(message: str) -> None:
    print(f"bqx load: {message}", file=sys.stderr, flush=True)


def load_file(conn: Any, path: str | Path, pair: str | None = None, fmt: str = "auto",
              progress: bool = False) -> LoadResult:
    """Validate and store one file in one transaction (all-or-nothing)."""
    started = time.perf_counter()
    label = str(path)

    def tick(rows: int) -> None:
        if progress:
            _say(f"{label}: {rows:,} rows read")

    kind, bars = read_file(path, pair=pair, fmt=fmt, progress=tick)
    added = load_bars(conn, bars) if bars else {}
    return LoadResult(
        path=label,
        fmt=kind,
        pairs=tuple(sorted(bars)),
        rows_read=sum(len(b) for b in bars.values()),
        rows_added=sum(added.values()),
        seconds=time.perf_counter() - started,
    )


def load_files(
    paths: Iterable[str | Path],
    pair: str | None = None,
    fmt: str = "auto",
    conn: Any = None,
    progress: bool = False,
) -> list[LoadResult]:
    """Load files in order, one transaction each; return what each contributed.

    The first bad file raises LoadError (a BqxError) whose message names the file,
    line and problem and says which earlier files stay loaded; ``.results`` lists them.
    ``conn`` should be in autocommit mode (each file then commits on its own); without
    it a connection to the selected database is opened.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise BqxError("no files given: bqx load FILE [FILE ...]")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BqxError(f"no such file: {', '.join(missing)}")
    if pair is not None:
        pair = check_pair(pair)
    if conn is None:
        with db.connect(autocommit=True) as own:
            return load_files(paths, pair=pair, fmt=fmt, conn=own, progress=progress)
    ensure_raw_table(conn)
    results: list[LoadResult] = []
    for index, path in enumerate(paths):
        if progress:
            _say(f"[{index + 1}/{len(paths)}] {path}")
        try:
            results.append(load_file(conn, path, pair=pair, fmt=fmt, progress=progress))
        except BqxError as exc:
            message = f"{exc.message}; nothing of this file was stored"
            if results:
                message += f" ({len(results)} earlier file(s) loaded and kept"
                if index + 1 < len(paths):
                    message += f", {len(paths) - index - 1} later file(s) not loaded"
                message += ")"
            elif index + 1 < len(paths):
                message += f" ({len(paths) - index - 1} later file(s) not loaded)"
            raise LoadError(message, results) from None
    return results


# ----------------------------------------------------------------------------- CLI
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "load",
        help="load HistData or CSV 1-minute bar files into raw.m1_bars",
        description="Load HistData generic ASCII M1 files (EST, no DST; pair from the file "
        "name) or CSV files with the header pair,ts_utc,open,high,low,close,volume "
        "(optionally .gz) into raw.m1_bars. Each file is all-or-nothing; re-loading "
        "adds nothing; the first bad line stops with its file and line number.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--pair", help="pair of HistData files whose name does not say it")
    parser.add_argument("--format", choices=FORMATS, default="auto", dest="fmt",
                        help="file format (default: detected from the first line)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()

    def report(results: list[LoadResult]) -> None:
        for r in results:
            rate = r.rows_read / r.seconds if r.seconds > 0 else 0.0
            print(f"{r.path}: {','.join(r.pairs) or '-'} ({r.fmt}): {r.rows_read:,} read, "
                  f"{r.rows_added:,} added, {r.rows_present:,} already present "
                  f"({r.seconds:.2f} s, {rate:,.0f} rows/s)", flush=True)

    try:
        results = load_files(args.files, pair=args.pair, fmt=args.fmt, progress=True)
    except LoadError as exc:
        report(exc.results)
        raise
    report(results)
    total_read = sum(r.rows_read for r in results)
    total_added = sum(r.rows_added for r in results)
    print(f"{len(results)} file(s): {total_read:,} rows read, {total_added:,} added, "
          f"{total_read - total_added:,} already present in {time.perf_counter() - started:.1f} s")
    return 0
