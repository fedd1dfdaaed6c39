"""``bqx crosscheck``: an independent numpy recomputation of sampled rows.

For every selected family (``bqx``, ``reg_rate``, ``reg_bqx``) and pair whose table
is built, the pair's bars are read once from ``raw.m1_bars`` (ordered by ts_utc)
and everything is recomputed from them in numpy, straight from the SPEC formulas:
the baseline (first bar at or after var ``rate_index_base_ts``, else the first
bar), the rate index ``100 * (close / baseline_close)``, the backward momentum
(SPEC 2.2) and the rolling quadratic fits with ``numpy.polyfit(x, y, 2)`` (SPEC
2.3; ``y`` of reg_bqx is the BQX column recomputed here, never read back). Only
the sampled rows of the tables are read, and only to compare them.

Rows checked per pair and family: ``sample`` random rows (0 = every row), and
always the rows around each warm-up boundary, rows right after the largest and
some random gaps, rows where a window becomes exactly flat or stops being flat,
the first rows and the last ``tail`` rows. A NULL where a value is expected (or a
value where NULL is expected), a missing row, a row count that differs from the
bars, or an error above its tolerance is a breach. Tolerances and decisions are
documented in ``docs/crosscheck.md``.

API: ``run_crosscheck(conn, families, pairs, sample, seed) -> Report``; the
``Report`` has ``.passed``, ``.breaches()``, ``summary_text()`` and ``to_dict()``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from psycopg import sql

from . import families
from .config import BQX_STATS, REG_STATS, all_pairs, dbt_var, parse_pairs, raw_schema, schema
from .errors import BqxError

# Which module checks which family is the registry's (py_tasks/families.py, `reference`).
# This module: the families recomputed from the raw bars (bqx, reg_rate, reg_bqx).
FAMILIES = families.checked_by("py_tasks.crosscheck")
# py_tasks.crosscheck_correlation: from their inputs (the reg_bqx and bqx tables)
CORRELATION_FAMILIES = families.checked_by("py_tasks.crosscheck_correlation")
# py_tasks.crosscheck_technical: against TA-Lib and ta, from the rate_index model's bar
# and the stored w15_bqx_return
INDICATOR_FAMILIES = families.checked_by("py_tasks.crosscheck_technical")
# every family with a reference, in registry order: the --family choices
ALL_FAMILIES = families.names(families.cross_checked())
DEFAULT_SAMPLE = 200
DEFAULT_SEED = 42
DEFAULT_TAIL = 10
DIAGNOSE_ROWS = 3  # reg_bqx breaches diagnosed per pair (fit of the table's own y)
BLOCK_ROWS = 50_000  # checked rows fetched and recomputed at a time (bounds memory)

EPS = float(np.finfo(np.float64).eps)
# "Exact": the tolerance used where the contract asks for equality (a window of
# zeros, r2 of a flat window). Any non-zero error divided by it is a huge ratio.
EXACT = float(np.finfo(np.float64).tiny)

# SPEC 2.2 / the issue: BQX tolerances.
BQX_ABS_TOL = 1e-12  # return and endpoint, absolute
BQX_REL_TOL = 1e-9  # max, min, avg, stdev, relative to |expected| ...
BQX_FLOOR_ULPS = 16.0  # ... but never below 16 ulps of r's own scale (max|p[t-i]| / p[t])
# SPEC 2.3: regression accuracy contract.
REG_REL_TOL = 1e-9  # terms, prediction, residual: 1e-9 * s, s = max |y| over the window
R2_TOL = 1e-6
RMSE_REL_TOL = 1e-6  # rmse: 1e-9 * s + 1e-6 * rmse
# The rate index the tables carry: 100 * (close / baseline) computed in float8; an
# equally valid evaluation order (100 * close / baseline) differs by an ulp or two.
INDEX_REL_TOL = 1e-12

PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CHUNK = 4096  # rows per vectorised block (bounds memory at 4096 x 630 floats)


# ----------------------------------------------------------------------------- report
@dataclass
class ColumnResult:
    """Largest error of one column (over all pairs) and where it happened."""

    column: str
    checked: int = 0  # values compared (both sides non-NULL)
    breaches: int = 0  # values above tolerance, NULL mismatches included
    null_mismatches: int = 0
    max_ratio: float = 0.0  # error / tolerance at the worst row (inf: NULL mismatch)
    max_error: float | None = None
    tolerance: float | None = None
    pair: str | None = None
    ts_utc: datetime | None = None
    expected: float | None = None  # None: NULL
    got: float | None = None  # None: NULL
    # technical and bollinger: knife-edge rows not compared (the reference's answer moves
    # by more than the tolerance under a one-ulp input move, or a tie broken the other
    # way matches), and rows compared with an exact value because the reference itself
    # is out of tolerance there (docs/crosscheck.md)
    skipped: int = 0
    imprecise: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "checked": self.checked,
            "breaches": self.breaches,
            "null_mismatches": self.null_mismatches,
            "skipped": self.skipped,
            "imprecise": self.imprecise,
            "max_ratio": _jsonable(self.max_ratio),
            "max_error": _jsonable(self.max_error),
            "tolerance": _jsonable(self.tolerance),
            "pair": self.pair,
            "ts_utc": self.ts_utc.isoformat() if self.ts_utc else None,
            "expected": _jsonable(self.expected),
            "got": _jsonable(self.got),
        }


@dataclass
class FamilyResult:
    family: str
    pairs: list[str] = field(default_factory=list)
    rows_checked: int = 0
    columns: dict[str, ColumnResult] = field(default_factory=dict)
    # max error ratio over all columns and pairs, per tenth of each pair's history
    # (row position / rows): shows whether precision falls with the row number
    ratio_by_decile: list[float] = field(default_factory=lambda: [0.0] * 10)
    problems: list[str] = field(default_factory=list)  # missing rows, counts, columns

    @property
    def max_ratio(self) -> float:
        return max((c.max_ratio for c in self.columns.values()), default=0.0)

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.breaches == 0 for c in self.columns.values())

    def worst(self) -> ColumnResult | None:
        return max(self.columns.values(), key=lambda c: c.max_ratio, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "passed": self.passed,
            "pairs": list(self.pairs),
            "rows_checked": self.rows_checked,
            "max_ratio": _jsonable(self.max_ratio),
            "ratio_by_decile": [_jsonable(r) for r in self.ratio_by_decile],
            "problems": list(self.problems),
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
        }


@dataclass
class Report:
    """The result of one cross-check: per family, per column, the largest error."""

    families: dict[str, FamilyResult] = field(default_factory=dict)
    sample: int = DEFAULT_SAMPLE
    seed: int = DEFAULT_SEED
    tail: int = DEFAULT_TAIL
    base_ts: str = ""
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # tables not built (not checked)
    problems: list[str] = field(default_factory=list)  # e.g. a baseline that differs
    notes: list[str] = field(default_factory=list)  # diagnoses of breaches (not verdicts)

    @property
    def passed(self) -> bool:
        return not self.problems and all(f.passed for f in self.families.values())

    @property
    def rows_checked(self) -> int:
        return sum(f.rows_checked for f in self.families.values())

    def breaches(self) -> list[str]:
        """One message per failing column or problem (family, column, pair, ts)."""
        out = list(self.problems)
        for fam in self.families.values():
            out += [f"{fam.family}: {p}" for p in fam.problems]
            for col in sorted(fam.columns.values(), key=lambda c: -c.max_ratio):
                if col.breaches:
                    out.append(_breach_message(fam.family, col))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "sample": self.sample,
            "seed": self.seed,
            "tail": self.tail,
            "base_ts": self.base_ts,
            "seconds": round(self.seconds, 3),
            "rows_checked": self.rows_checked,
            "skipped": list(self.skipped),
            "problems": list(self.problems),
            "breaches": self.breaches(),
            "notes": list(self.notes),
            "families": {name: f.to_dict() for name, f in self.families.items()},
        }

    def summary_text(self, verbose: bool = False) -> str:
        """Per family: rows checked and the largest error ratio per column (per kind
        of column, the worst window, unless ``verbose``); then PASS or FAIL."""
        lines = []
        sample = "every row" if self.sample == 0 else f"{self.sample} random rows"
        lines.append(f"cross-check ({sample} per pair and family + warm-up, gap, flat and "
                     f"last {self.tail} rows; seed {self.seed}; {self.seconds:.1f} s)")
        for fam in self.families.values():
            lines.append(f"{fam.family}: {len(fam.pairs)} pair(s), {fam.rows_checked:,} rows "
                         f"checked, max ratio {_fmt_ratio(fam.max_ratio)}")
            lines.append(f"  {'column':<22} {'max ratio':>10} {'error':>10} {'tolerance':>10}"
                         f"  {'pair':<6}  ts_utc")
            for col in _summary_columns(fam, verbose):
                where = f"{col.pair or '-':<6}  {_fmt_ts(col.ts_utc)}"
                lines.append(
                    f"  {col.column:<22} {_fmt_ratio(col.max_ratio):>10} "
                    f"{_fmt_num(col.max_error):>10} {_fmt_num(col.tolerance):>10}  {where}"
                    + (f"  [{col.breaches} breach(es)]" if col.breaches else "")
                    + (f"  [{col.skipped} knife-edge row(s) skipped]" if col.skipped else "")
                    + (f"  [{col.imprecise} row(s) against the exact value: reference "
                       "imprecise]" if col.imprecise else "")
                )
            deciles = " ".join(_fmt_ratio(r) for r in fam.ratio_by_decile)
            lines.append(f"  max ratio per tenth of the history: {deciles}")
            for problem in fam.problems:
                lines.append(f"  PROBLEM: {problem}")
        for problem in self.problems:
            lines.append(f"PROBLEM: {problem}")
        for note in self.notes:
            lines.append(f"NOTE: {note}")
        if self.skipped:
            lines.append(f"not built (skipped): {', '.join(self.skipped)}")
        if self.passed:
            lines.append(f"PASS: {self.rows_checked:,} rows, every value within tolerance")
        else:
            breaches = self.breaches()
            lines.append(f"FAIL: {len(breaches)} breach(es); first: {breaches[0]}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary_text()


def _summary_columns(fam: FamilyResult, verbose: bool) -> list[ColumnResult]:
    if verbose:
        return list(fam.columns.values())
    groups: dict[str, ColumnResult] = {}
    for col in fam.columns.values():
        kind = re.sub(r"^w\d+_", "wW_", col.column)
        best = groups.get(kind)
        if best is None or col.max_ratio > best.max_ratio or (col.breaches and not best.breaches):
            groups[kind] = col
    return list(groups.values())


def _breach_message(family: str, col: ColumnResult) -> str:
    where = f"{family} {col.column} pair {col.pair} ts {_fmt_ts(col.ts_utc)}"
    if col.expected is None or col.got is None:
        what = ("NULL where a value is expected" if col.got is None
                else "a value where NULL is expected")
        return (f"{where}: {what} (expected {_fmt_num(col.expected)}, got {_fmt_num(col.got)}); "
                f"{col.breaches} breach(es) in this column, "
                f"{col.null_mismatches} NULL mismatch(es)")
    return (f"{where}: got {col.got!r}, expected {col.expected!r}, error "
            f"{_fmt_num(col.max_error)} > tolerance {_fmt_num(col.tolerance)} "
            f"(ratio {_fmt_ratio(col.max_ratio)}); {col.breaches} breach(es) in this column")


def _from_json(value: float | str | None) -> float | None:
    """The inverse of ``_jsonable``: "inf"/"nan" strings back to floats."""
    return None if value is None else float(value)


def _jsonable(value: float | None) -> float | str | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _fmt_ratio(r: float) -> str:
    return "inf" if not math.isfinite(r) else f"{r:.3g}"


def _fmt_num(v: float | None) -> str:
    return "NULL" if v is None else f"{v:.3g}"


def _fmt_ts(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC") if ts else "-"


# ----------------------------------------------------------------------------- numpy reference
def rate_index(ts: np.ndarray, close: np.ndarray, base_ts: np.datetime64) -> tuple[int, np.ndarray]:
    """Baseline bar position (first bar at or after ``base_ts``, else the first bar)
    and ``100 * (close / baseline_close)`` (SPEC 2.1)."""
    at = int(np.searchsorted(ts, base_ts, side="left"))
    base = at if at < len(ts) else 0
    return base, 100.0 * (close / close[base])


def _run_length(valid: np.ndarray) -> np.ndarray:
    """Number of consecutive True values ending at each position."""
    idx = np.arange(len(valid))
    last_bad = np.maximum.accumulate(np.where(valid, -1, idx))
    return idx - last_bad


def _equal_run(values: np.ndarray) -> np.ndarray:
    """Number of consecutive bars ending at each position that equal it exactly."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    same = np.empty(len(values), dtype=bool)
    same[0] = False
    same[1:] = values[1:] == values[:-1]
    return _run_length(same) + 1


def bqx_stats(p: np.ndarray, window: int, rows: np.ndarray) -> dict[str, np.ndarray]:
    """SPEC 2.2 at ``rows`` for one window: r_i = (p[t-i] - p[t]) / p[t], i = 1..W.

    Returns the six statistics (NaN for NULL) and ``scale`` = max_i |p[t-i]| / p[t]
    (the unit in which r is rounded; used for the floor of the relative tolerance).
    """
    out = {name: np.full(len(rows), np.nan) for name in (*BQX_STATS, "scale")}
    ok = np.flatnonzero(rows >= window)
    if len(ok) == 0:
        return out
    windows = sliding_window_view(p, window)
    for lo in range(0, len(ok), _CHUNK):
        pos = ok[lo:lo + _CHUNK]
        t = rows[pos]
        q = windows[t - window]  # p[t-W] .. p[t-1]
        pt = p[t][:, None]
        r = (q - pt) / pt
        out["return"][pos] = r.sum(axis=1)
        out["max"][pos] = r.max(axis=1)
        out["min"][pos] = r.min(axis=1)
        out["avg"][pos] = r.mean(axis=1)
        out["stdev"][pos] = r.std(axis=1, ddof=1)
        out["endpoint"][pos] = r[:, 0]
        out["scale"][pos] = np.abs(q).max(axis=1) / np.abs(pt[:, 0])
    return out


def bqx_tolerance(stat: str, expected: np.ndarray, scale: np.ndarray) -> np.ndarray:
    if stat in ("return", "endpoint"):
        return np.full(len(expected), BQX_ABS_TOL)
    return np.maximum(BQX_REL_TOL * np.abs(expected), BQX_FLOOR_ULPS * EPS * scale)


def reg_fit(y: np.ndarray, window: int, rows: np.ndarray, run: np.ndarray) -> dict[str, np.ndarray]:
    """SPEC 2.3 at ``rows`` for one window with ``numpy.polyfit(x, y, 2)``.

    ``run`` is the number of consecutive non-NULL y ending at each bar; a row is
    NULL while it is below ``window``. Returns the seven columns (NaN for NULL),
    ``s`` = max |y| over the window and ``ss_tot``.
    """
    names = (*REG_STATS, "s", "ss_tot")
    out = {name: np.full(len(rows), np.nan) for name in names}
    ok = np.flatnonzero(run[rows] >= window)
    if len(ok) == 0:
        return out
    x = np.arange(window, dtype=np.float64)
    x_end = float(window - 1)
    windows = sliding_window_view(y, window)
    for lo in range(0, len(ok), _CHUNK):
        pos = ok[lo:lo + _CHUNK]
        t = rows[pos]
        ys = windows[t - window + 1]  # (k, W): y[t-W+1] .. y[t]
        coef, ss_res, rank, _, _ = np.polyfit(x, ys.T, 2, full=True)
        if rank != 3 or ss_res.shape != (len(t),):
            raise BqxError(f"numpy.polyfit: unexpected rank {rank} for a window of {window} bars")
        a2, a1, a0 = coef
        quad = a2 * x_end**2
        lin = a1 * x_end
        const = a0
        pred = quad + lin + const
        # SS_tot from deviations against the window's first value: an exactly flat
        # window gives exactly 0 (np.mean of equal values can be off by an ulp)
        dev = ys - ys[:, :1]
        dev = dev - dev.mean(axis=1, keepdims=True)
        ss_tot = (dev * dev).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)
        out["quadratic_term"][pos] = quad
        out["linear_term"][pos] = lin
        out["constant_term"][pos] = const
        out["prediction"][pos] = pred
        out["residual"][pos] = y[t] - pred
        out["r2"][pos] = r2
        out["rmse"][pos] = np.sqrt(ss_res / window)
        out["s"][pos] = np.abs(ys).max(axis=1)
        out["ss_tot"][pos] = ss_tot
    return out


def reg_tolerance(stat: str, fit: dict[str, np.ndarray]) -> np.ndarray:
    s = fit["s"]
    if stat == "r2":
        return np.where(fit["ss_tot"] > 0, R2_TOL, EXACT)
    if stat == "rmse":
        tol = REG_REL_TOL * s + RMSE_REL_TOL * np.abs(fit["rmse"])
    else:
        tol = REG_REL_TOL * s
    return np.where(s > 0, tol, EXACT)


_BQX_COLUMN = re.compile(r"^w(\d+)_bqx_(return|max|min|avg|stdev|endpoint)$")


def _source_window(column: str) -> tuple[int, str]:
    match = _BQX_COLUMN.match(column)
    if not match:
        raise BqxError(f"var reg_bqx_source_column '{column}' is not a wW_bqx_<stat> column of "
                       "bqx_{pair}; the cross-check cannot recompute it")
    return int(match.group(1)), match.group(2)


def bqx_series(p: np.ndarray, column: str, needed: np.ndarray) -> np.ndarray:
    """The BQX column (e.g. w15_bqx_return) for every bar, computed only where
    ``needed`` (NaN elsewhere and during its warm-up)."""
    window, stat = _source_window(column)
    y = np.full(len(p), np.nan)
    rows = np.flatnonzero(needed)
    if len(rows):
        y[rows] = bqx_stats(p, window, rows)[stat]
    return y


# ----------------------------------------------------------------------------- row sampling
def _sample_rows(
    n: int, ts: np.ndarray, p: np.ndarray, first_full: Sequence[int], flat_lengths: Sequence[int],
    sample: int, tail: int, rng: np.random.Generator,
) -> np.ndarray:
    """Row positions to check: random rows plus the rows where mistakes hide."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if sample <= 0:
        return np.arange(n)
    picks = [rng.choice(n, size=min(sample, n), replace=False), np.arange(min(3, n))]
    picks.append(np.arange(max(0, n - tail), n))
    for first in first_full:  # warm-up boundaries: last NULL row, first rows with a value
        picks.append(np.arange(first - 1, first + 2))
    gaps = np.flatnonzero(np.diff(ts) > np.timedelta64(60, "s")) + 1  # first bar after a gap
    if len(gaps):
        largest = gaps[np.argsort(np.diff(ts)[gaps - 1], kind="stable")[-10:]]
        chosen = np.union1d(largest, rng.choice(gaps, size=min(10, len(gaps)), replace=False))
        picks += [chosen, chosen + 1]
    run = _equal_run(p)
    flat = []
    for length in flat_lengths:  # the window becomes exactly flat here
        flat.append(np.flatnonzero(run == length))
    ends = np.flatnonzero((run[:-1] >= min(flat_lengths, default=2)) & (run[1:] == 1)) + 1
    flat.append(ends)  # the first bar after a long flat stretch
    flat_rows = np.unique(np.concatenate(flat)) if flat else np.zeros(0, dtype=np.int64)
    if len(flat_rows):
        picks.append(rng.choice(flat_rows, size=min(40, len(flat_rows)), replace=False))
    rows = np.unique(np.concatenate([np.asarray(x, dtype=np.int64) for x in picks]))
    return rows[(rows >= 0) & (rows < n)]


# ----------------------------------------------------------------------------- database
def _read_bars(conn: Any, pair: str) -> tuple[np.ndarray, np.ndarray]:
    """(ts_utc as datetime64[us], close as float64) of one pair in bar order, through
    one binary COPY."""
    query = sql.SQL(
        "select ts_utc, close::double precision from {} where pair = {} order by ts_utc"
    ).format(sql.Identifier(raw_schema(), "m1_bars"), sql.Literal(pair))
    try:
        ts_us, values = copy_floats(conn, query, 1)
    except BqxError as exc:
        raise BqxError(f"{exc} while reading {pair} bars (raw.m1_bars)") from None
    return ts_us.astype("datetime64[us]"), values[:, 0]


def copy_floats(conn: Any, query: sql.Composable, ncols: int) -> tuple[np.ndarray, np.ndarray]:
    """Run ``copy (select ts_utc, <ncols float8 never NULL>) to stdout binary`` and
    return (ts in Unix µs, values rows x ncols)."""
    buf = bytearray()
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("copy ({}) to stdout (format binary)").format(query)) as copy:
            for block in copy:
                buf += block
    header = 19
    if len(buf) < header + 2 or buf[:11] != b"PGCOPY\n\xff\r\n\x00":
        raise BqxError("unexpected COPY output")
    fields = [("n", ">i2"), ("l0", ">i4"), ("ts", ">i8")]
    for k in range(ncols):
        fields += [(f"l{k + 1}", ">i4"), (f"v{k}", ">f8")]
    row = np.dtype(fields)
    count = (len(buf) - header - 2) // row.itemsize
    data = np.frombuffer(bytes(buf), dtype=row, count=count, offset=header)
    if count and any(np.any(data[f"l{k}"] != 8) for k in range(ncols + 1)):
        raise BqxError("unexpected NULL in COPY output")
    ts = data["ts"].astype(np.int64) + PG_EPOCH_US
    values = np.empty((count, ncols))
    for k in range(ncols):
        values[:, k] = data[f"v{k}"]
    return ts, values


def built_tables(conn: Any) -> dict[str, list[str]]:
    """Columns of every table (or view) in the models' schema."""
    rows = conn.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = %s order by table_name, ordinal_position",
        (schema(),),
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def _to_datetime(us: int) -> datetime:
    return _UNIX_EPOCH + timedelta(microseconds=int(us))


def _fetch_rows(conn: Any, table: str, columns: list[str], ts_us: np.ndarray, dense: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ts in Unix µs, values (rows x columns, NaN for NULL), NULL mask) of the rows
    of ``table`` at the given (ascending) timestamps; with ``dense`` every row between
    the first and the last of them (the caller drops the others)."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    ident = sql.Identifier(schema(), table)
    if dense:  # one index range scan instead of a long array of timestamps
        query = sql.SQL("select ts_utc, {} from {} where ts_utc between %s and %s "
                        "order by ts_utc").format(cols, ident)
        params: tuple = (_to_datetime(ts_us[0]), _to_datetime(ts_us[-1]))
    else:
        query = sql.SQL("select ts_utc, {} from {} where ts_utc = any(%s) order by ts_utc").format(
            cols, ident)
        params = ([_to_datetime(u) for u in ts_us],)
    with conn.cursor() as cur:
        cur.execute(query, params)
        fetched = cur.fetchall()
    got_ts = np.array([round((r[0] - _UNIX_EPOCH) / timedelta(microseconds=1)) for r in fetched],
                      dtype=np.int64)
    raw = np.array([r[1:] for r in fetched], dtype=object).reshape(len(fetched), len(columns))
    nulls = np.equal(raw, None)
    values = np.where(nulls, np.nan, raw).astype(np.float64)
    return got_ts, values, nulls


# ----------------------------------------------------------------------------- comparison
class _Accumulator:
    def __init__(self, family: str) -> None:
        self.result = FamilyResult(family)
        self.deciles = np.zeros(10)

    def compare(self, pair: str, column: str, ts_us: np.ndarray, decile: np.ndarray,
                expected: np.ndarray, tolerance: np.ndarray, got: np.ndarray,
                got_null: np.ndarray) -> np.ndarray:
        """Fold one column of one pair into the result; return the per-row ratios."""
        col = self.result.columns.get(column)
        if col is None:
            col = self.result.columns[column] = ColumnResult(column)
        exp_null = np.isnan(expected)
        mismatch = exp_null != got_null
        both = ~exp_null & ~got_null
        with np.errstate(invalid="ignore"):
            err = np.abs(got - expected)
            ratio = np.where(both, err / tolerance, 0.0)
        ratio = np.where(both & ~np.isfinite(ratio), np.inf, ratio)  # NaN stored, inf
        # an exact match is never a breach, even with a zero tolerance (a series that is
        # 0 on every row has scale 0)
        ratio = np.where(both & (err == 0), 0.0, ratio)
        ratio = np.where(mismatch, np.inf, ratio)
        col.checked += int(both.sum())
        col.null_mismatches += int(mismatch.sum())
        col.breaches += int((ratio > 1.0).sum())
        np.maximum.at(self.deciles, decile, ratio)
        if len(ratio) == 0:
            return ratio
        # the largest ratio; among equal ratios a row with values on both sides
        worst = int(np.lexsort((~both, -ratio))[0])
        if ratio[worst] > col.max_ratio or (col.pair is None and (both[worst] or mismatch[worst])):
            col.max_ratio = float(ratio[worst])
            col.max_error = float(err[worst]) if both[worst] else None
            col.tolerance = float(tolerance[worst]) if not exp_null[worst] else None
            col.pair = pair
            col.ts_utc = _to_datetime(ts_us[worst])
            col.expected = None if exp_null[worst] else float(expected[worst])
            col.got = None if got_null[worst] else float(got[worst])
        return ratio

    def finish(self) -> FamilyResult:
        self.result.ratio_by_decile = [float(r) for r in self.deciles]
        return self.result


def _family_columns(family: str, bqx_windows: list[int], reg_windows: list[int],
                    source_column: str) -> list[str]:
    if family == "bqx":
        return ["rate_index"] + [f"w{w}_bqx_{s}" for w in bqx_windows for s in BQX_STATS]
    first = "rate_index" if family == "reg_rate" else source_column
    return [first] + [f"w{w}_{s}" for w in reg_windows for s in REG_STATS]


def _check_pair(
    conn: Any, pair: str, pair_no: int, families: list[str], tables: dict[str, list[str]],
    acc: dict[str, _Accumulator], report: Report, bqx_windows: list[int],
    reg_windows: list[int], source_column: str, base_ts: np.datetime64, sample: int,
    tail: int, seed: int,
) -> None:
    ts, close = _read_bars(conn, pair)
    ts_us = ts.astype(np.int64)
    if len(ts):
        base, p = rate_index(ts, close, base_ts)
        _check_baseline(conn, pair, ts[base], close[base], tables, report)
    else:
        p = close
    src_window, _ = _source_window(source_column)
    for fam_no, family in enumerate(FAMILIES):
        if family not in families or f"{family}_{pair}" not in tables:
            continue
        table = f"{family}_{pair}"
        result = acc[family].result
        result.pairs.append(pair)
        columns = _family_columns(family, bqx_windows, reg_windows, source_column)
        missing = [c for c in columns if c not in tables[table]]
        if missing:
            result.problems.append(f"{pair}: table {schema()}.{table} lacks columns "
                                   f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
            continue
        # Compare the rows up to the table's last row (later bars are not built yet).
        stored_n, last = conn.execute(
            sql.SQL("select count(*), max(ts_utc) from {}").format(sql.Identifier(schema(), table))
        ).fetchone()
        if last is None:
            if len(ts):
                result.problems.append(f"{pair}: {schema()}.{table} is empty but raw.m1_bars "
                                       f"holds {len(ts):,} bars (run dbt build)")
            continue
        last_us = round((last - _UNIX_EPOCH) / timedelta(microseconds=1))
        n = int(np.searchsorted(ts_us, last_us, side="right"))
        if n != stored_n:
            result.problems.append(
                f"{pair}: {schema()}.{table} has {stored_n:,} rows up to {_fmt_ts(last)}, "
                f"raw.m1_bars has {n:,} bars up to then (one row per bar expected)")
        if family == "bqx":
            first_full = list(bqx_windows)
            flat_lengths = [w + 1 for w in bqx_windows]
        elif family == "reg_rate":
            first_full = [w - 1 for w in reg_windows]
            flat_lengths = list(reg_windows)
        else:
            first_full = [src_window + w - 1 for w in reg_windows]
            flat_lengths = [src_window + w for w in reg_windows]
        rng = np.random.default_rng([seed, fam_no, pair_no])
        rows = _sample_rows(n, ts[:n], p[:n], first_full, flat_lengths, sample, tail, rng)
        result.rows_checked += len(rows)
        decile = np.minimum(rows * 10 // max(n, 1), 9)
        lost: list[np.ndarray] = []
        breached: list[tuple[float, int]] = []  # reg_bqx rows above tolerance, to diagnose
        for lo in range(0, len(rows), BLOCK_ROWS):
            block = rows[lo:lo + BLOCK_ROWS]
            dense = len(block) > 1000 and 2 * len(block) >= block[-1] - block[0] + 1
            got_ts, got, got_null = _fetch_rows(conn, table, columns, ts_us[block], dense)
            found = np.isin(ts_us[block], got_ts)
            lost.append(block[~found])
            keep = np.flatnonzero(found)
            block = block[keep]
            where = np.searchsorted(got_ts, ts_us[block])
            got, got_null = got[where], got_null[where]
            expected = _expected(family, p, block, n, bqx_windows, reg_windows, source_column)
            row_ratio = np.zeros(len(block))
            for j, column in enumerate(columns):
                exp, tol = expected[column]
                ratio = acc[family].compare(pair, column, ts_us[block], decile[lo + keep], exp,
                                            tol, got[:, j], got_null[:, j])
                if j > 0:  # the wW_ columns (not the y column itself)
                    row_ratio = np.maximum(row_ratio, ratio)
            if family == "reg_bqx":
                bad = np.flatnonzero(np.isfinite(row_ratio) & (row_ratio > 1.0))
                breached += [(float(row_ratio[k]), int(block[k])) for k in bad]
        missing = np.concatenate(lost)
        if len(missing):
            result.problems.append(
                f"{pair}: {len(missing):,} checked bar(s) have no row in {schema()}.{table}, "
                f"first at {_fmt_ts(_to_datetime(ts_us[missing[0]]))}")
        for _, t in sorted(breached, reverse=True)[:DIAGNOSE_ROWS]:
            report.notes.append(_diagnose_reg_bqx(conn, pair, p, t, ts_us[t], reg_windows,
                                                  source_column, columns))


Expected = dict[str, tuple[np.ndarray, np.ndarray]]


def _expected(family: str, p: np.ndarray, rows: np.ndarray, n: int, bqx_windows: list[int],
              reg_windows: list[int], source_column: str) -> Expected:
    """Expected value and tolerance of every column at ``rows``."""
    out: Expected = {}
    p = p[:n]
    index = p[rows]
    out["rate_index"] = (index, INDEX_REL_TOL * np.abs(index))
    if family == "bqx":
        for w in bqx_windows:
            stats = bqx_stats(p, w, rows)
            for stat in BQX_STATS:
                out[f"w{w}_bqx_{stat}"] = (stats[stat], bqx_tolerance(stat, stats[stat],
                                                                       stats["scale"]))
        return out
    if family == "reg_rate":
        y = p
    else:
        # y only where some sampled window needs it: [t - max W + 1, t]
        need = np.zeros(n + 1, dtype=np.int64)
        np.add.at(need, np.maximum(rows - max(reg_windows) + 1, 0), 1)
        np.add.at(need, rows + 1, -1)
        y = bqx_series(p, source_column, np.cumsum(need[:n]) > 0)
        src_window, src_stat = _source_window(source_column)
        src = bqx_stats(p, src_window, rows)
        out[source_column] = (y[rows], bqx_tolerance(src_stat, src[src_stat], src["scale"]))
    valid = np.ones(n, dtype=bool)
    if family == "reg_bqx":
        valid = np.arange(n) >= _source_window(source_column)[0]  # the source's warm-up
    run = _run_length(valid)
    for w in reg_windows:
        fit = reg_fit(y, w, rows, run)
        for stat in REG_STATS:
            out[f"w{w}_{stat}"] = (fit[stat], reg_tolerance(stat, fit))
    return out


def _diagnose_reg_bqx(conn: Any, pair: str, p: np.ndarray, t: int, t_us: int,
                      reg_windows: list[int], source_column: str, columns: list[str]) -> str:
    """Tell apart a wrong fit from an imprecise y in a reg_bqx breach.

    Diagnosis only, never a verdict: fits numpy.polyfit to the y column stored in
    the reg_bqx table itself over the window ending at the breaching row, and
    compares the row with that fit and the stored y with the numpy y.
    """
    table = f"reg_bqx_{pair}"
    width = max(reg_windows)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    fetched = conn.execute(
        sql.SQL("select {} from {} where ts_utc <= %s order by ts_utc desc limit %s").format(
            cols, sql.Identifier(schema(), table)), (_to_datetime(t_us), width)).fetchall()[::-1]
    stored_y = np.array([np.nan if r[0] is None else float(r[0]) for r in fetched])
    last = fetched[-1]
    lo = t - len(stored_y) + 1
    mine = bqx_series(p, source_column, np.arange(len(p)) >= lo)[lo:t + 1]
    at = np.array([len(stored_y) - 1])
    worst = (-1.0, 0, 0.0)  # (ratio against the numpy y, window, ratio against the stored y)
    for w in reg_windows:
        ratios = []
        for y in (mine, stored_y):
            fit = reg_fit(y, w, at, _run_length(~np.isnan(y)))
            ratio = 0.0
            for stat in REG_STATS:
                value = last[columns.index(f"w{w}_{stat}")]
                if value is not None and not np.isnan(fit[stat][0]):
                    tol = reg_tolerance(stat, fit)[0]
                    ratio = max(ratio, abs(float(value) - fit[stat][0]) / tol)
            ratios.append(ratio)
        if ratios[0] > worst[0]:
            worst = (ratios[0], w, ratios[1])
    _, w, fit_ratio = worst
    y_err = float(np.nanmax(np.abs(mine[-w:] - stored_y[-w:])))
    y_s = float(np.nanmax(np.abs(mine[-w:])))
    where = f"reg_bqx {pair} {_fmt_ts(_to_datetime(t_us))} (worst window {w})"
    if fit_ratio <= 1.0:
        return (f"{where}: against numpy.polyfit of the table's own {source_column} the row is "
                f"within tolerance (ratio {fit_ratio:.3g}); over the window that "
                f"{source_column} differs from its numpy recomputation from the bars by up to "
                f"{y_err:.3g} while s = max |y| = {y_s:.3g} (1e-9 s = {1e-9 * y_s:.3g}): the "
                f"breach comes from the precision of {source_column} in bqx_{pair}, not from "
                "the fit")
    return (f"{where}: even against numpy.polyfit of the table's own {source_column} the row "
            f"is off (ratio {fit_ratio:.3g}): the regression itself is imprecise here")


def _check_baseline(conn: Any, pair: str, ts: np.datetime64, close: float,
                    tables: dict[str, list[str]], report: Report) -> None:
    if "baseline_rates" not in tables:
        return
    row = conn.execute(
        sql.SQL("select baseline_ts, baseline_close from {} where pair = %s").format(
            sql.Identifier(schema(), "baseline_rates")), (pair,)).fetchone()
    if row is None:
        report.problems.append(f"baseline: {pair} has bars but no row in {schema()}.baseline_rates")
        return
    mine = _to_datetime(int(ts.astype("datetime64[us]").astype(np.int64)))
    if row[0] != mine or float(row[1]) != float(close):
        report.problems.append(
            f"baseline: {pair} {schema()}.baseline_rates holds {_fmt_ts(row[0])} close {row[1]!r}, "
            f"the bars give {_fmt_ts(mine)} close {close!r} (base time {report.base_ts}; "
            "built with another rate_index_base_ts? pass --base-ts)")


# ----------------------------------------------------------------------------- API
def run_crosscheck(
    conn: Any,
    families: Sequence[str] | None = None,
    pairs: Sequence[str] | None = None,
    sample: int = DEFAULT_SAMPLE,
    seed: int = DEFAULT_SEED,
    *,
    tail: int = DEFAULT_TAIL,
    base_ts: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Recompute sampled rows of the built per-pair tables from the raw bars.

    ``families``/``pairs``: None means every family and pair whose table is built
    (tables that are not built are listed in ``Report.skipped``). ``sample``:
    random rows per pair and family (0: every row). ``tail``: the last rows always
    checked. ``base_ts``: the rate-index base time the tables were built with
    (default: var ``rate_index_base_ts`` of dbt_project.yml).
    """
    started = time.perf_counter()
    say = progress or (lambda message: None)
    wanted_families = list(ALL_FAMILIES) if families is None else list(families)
    for fam in wanted_families:
        if fam not in ALL_FAMILIES:
            raise BqxError(f"unknown family '{fam}': choose from {', '.join(ALL_FAMILIES)}")
    wanted_pairs = all_pairs() if pairs is None else list(pairs)
    if sample < 0:
        raise BqxError(f"--sample must be 0 (every row) or more, got {sample}")
    base = str(base_ts or dbt_var("rate_index_base_ts"))
    try:
        base_np = np.datetime64(_parse_ts(base).replace(tzinfo=None), "us")
    except ValueError:
        raise BqxError(f"bad rate_index_base_ts '{base}': expected e.g. 2024-07-01 00:00:00+00"
                       ) from None
    bqx_windows = [int(w) for w in dbt_var("bqx_windows")]
    reg_windows = [int(w) for w in dbt_var("reg_windows")]
    source_column = str(dbt_var("reg_bqx_source_column"))
    report = Report(sample=sample, seed=seed, tail=tail, base_ts=base)
    tables = built_tables(conn)
    numpy_families = [f for f in FAMILIES if f in wanted_families]
    if (numpy_families or not any(f in wanted_families for f in INDICATOR_FAMILIES)) and \
            not conn.execute("select 1 from pg_tables where schemaname = %s "
                             "and tablename = 'm1_bars'", (raw_schema(),)).fetchone():
        raise BqxError(f"table {raw_schema()}.m1_bars does not exist: the cross-check recomputes "
                       "from the raw bars; load them with `bqx load` or `bqx sample`")
    acc = {fam: _Accumulator(fam) for fam in FAMILIES if fam in wanted_families}
    for pair_no, pair in enumerate(all_pairs()):
        if pair not in wanted_pairs:
            continue
        present = [f for f in acc if f"{f}_{pair}" in tables]
        if present or pairs is not None:  # unasked pairs without any table: not news
            report.skipped += [f"{f}_{pair}" for f in acc if f not in present]
        if not present:
            continue
        t0 = time.perf_counter()
        _check_pair(conn, pair, pair_no, present, tables, acc, report, bqx_windows,
                    reg_windows, source_column, base_np, sample, tail, seed)
        say(f"{pair}: {', '.join(present)} checked in {time.perf_counter() - t0:.1f} s")
    for fam, a in acc.items():
        result = a.finish()
        if result.pairs:
            report.families[fam] = result
    for fam in CORRELATION_FAMILIES:
        if fam in wanted_families and any(t.startswith(fam + "_") for t in tables):
            say(f"{fam}: checking")
            result = _correlation_result(conn, fam, wanted_pairs, sample, seed, tail)
            if result.pairs:
                report.families[fam] = result
    indicators = [f for f in INDICATOR_FAMILIES if f in wanted_families]
    if indicators:
        from .crosscheck_technical import check_technical_families

        report.families.update(check_technical_families(
            conn, indicators, wanted_pairs, sample, seed, tail=tail, tables=tables,
            skipped=report.skipped, explicit_pairs=pairs is not None, progress=say))
    if not report.families:
        raise BqxError(
            f"nothing to cross-check: no table "
            f"{' or '.join(f + '_<pair>' for f in wanted_families)} "
            f"for {'the given pairs' if pairs is not None else 'any pair'} in schema "
            f"{schema()}; build them first, e.g. `bqx dbt -- build --select reg_bqx+`")
    report.seconds = time.perf_counter() - started
    return report


def _correlation_result(conn: Any, family: str, pairs: list[str], sample: int, seed: int,
                        tail: int) -> FamilyResult:
    """correlation_bqx, checked by crosscheck_correlation, in this module's shape."""
    from .crosscheck_correlation import check_correlation

    built = built_tables(conn)
    pairs = [p for p in pairs if f"{family}_{p}" in built]
    data = check_correlation(conn, pairs, sample=sample, seed=seed, tail=tail) if pairs else {}
    result = FamilyResult(family=family, pairs=list(data.get("pairs", [])),
                          rows_checked=int(data.get("rows_checked", 0)),
                          problems=list(data.get("problems", [])))
    for name, col in data.get("columns", {}).items():
        worst = col.get("worst") or {}
        result.columns[name] = ColumnResult(
            column=name, checked=int(col.get("checked", 0)), breaches=int(col.get("breaches", 0)),
            null_mismatches=int(col.get("null_mismatches", 0)),
            max_ratio=_from_json(col.get("max_ratio")) or 0.0,
            max_error=_from_json(col.get("max_error")), tolerance=_from_json(col.get("tolerance")),
            pair=worst.get("pair"),
            ts_utc=datetime.fromisoformat(worst["ts_utc"]) if worst.get("ts_utc") else None,
            expected=_from_json(worst.get("expected")), got=_from_json(worst.get("got")),
        )
    return result


def _parse_ts(text: str) -> datetime:
    value = text.strip().replace(" ", "T", 1)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if re.search(r"[+-]\d\d$", value):
        value += ":00"
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc)


# ----------------------------------------------------------------------------- CLI
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "crosscheck",
        help="recompute sampled rows of the built tables in numpy from the raw bars; "
        "non-zero exit on a breach",
        description="Independent numpy cross-check of bqx_{pair}, reg_rate_{pair} and "
        "reg_bqx_{pair}: reads each pair's bars from raw.m1_bars, recomputes the rate "
        "index, momentum and numpy.polyfit regressions, and compares sampled rows "
        "(random rows plus warm-up boundaries, gaps, flat windows and the last rows) "
        "against the tables; correlation_bqx_{pair} from the stored reg_bqx and bqx "
        "tables; technical_{pair} and bollinger_{pair} against TA-Lib and ta, fed the "
        "stored rate_index bar and w15_bqx_return. Tolerances: docs/crosscheck.md.",
    )
    parser.add_argument("--family", default=None,
                        help=f"comma-separated families (default: those built of "
                        f"{','.join(ALL_FAMILIES)})")
    parser.add_argument("--pairs", default=None, help="comma-separated pairs (default: all built)")
    parser.add_argument("--sample", default=str(DEFAULT_SAMPLE),
                        help=f"random rows per pair and family, or 'all' (or 0) for every "
                        f"row (default {DEFAULT_SAMPLE})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed of the sample (default {DEFAULT_SEED})")
    parser.add_argument("--tail", type=int, default=DEFAULT_TAIL,
                        help=f"last rows always checked (default {DEFAULT_TAIL})")
    parser.add_argument("--base-ts", default=None,
                        help="rate_index_base_ts the tables were built with "
                        "(default: the dbt_project.yml var)")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="also write the report as JSON to FILE ('-' for stdout)")
    parser.add_argument("--verbose", action="store_true", help="show every column")
    parser.set_defaults(func=run)


def _parse_families(value: str | None) -> list[str] | None:
    if value is None or value.strip().lower() in ("", "all"):
        return None
    names = [v for v in re.split(r"[,\s]+", value.strip()) if v]
    for name in names:
        if name not in ALL_FAMILIES:
            raise BqxError(f"unknown family '{name}': choose from {', '.join(ALL_FAMILIES)}")
    return names


def _parse_sample(value: str) -> int:
    if value.strip().lower() == "all":
        return 0
    try:
        number = int(value)
    except ValueError:
        raise BqxError(f"--sample must be a number of rows or 'all', got '{value}'") from None
    if number < 0:
        raise BqxError(f"--sample must be a number of rows (0 or 'all': every row), got {number}")
    return number


def run(args: argparse.Namespace) -> int:
    from . import db

    families = _parse_families(args.family)
    pairs = None if args.pairs is None else parse_pairs(args.pairs)
    sample = _parse_sample(args.sample)
    if args.tail < 0:
        raise BqxError(f"--tail must be 0 or more, got {args.tail}")

    def say(message: str) -> None:
        print(f"bqx crosscheck: {message}", file=sys.stderr, flush=True)

    with db.connect() as conn:
        report = run_crosscheck(conn, families, pairs, sample, args.seed, tail=args.tail,
                                base_ts=args.base_ts, progress=say)
    print(report.summary_text(verbose=args.verbose), flush=True)
    if args.json:
        text = json.dumps(report.to_dict(), indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    if not report.passed:
        breaches = report.breaches()
        more = f" (and {len(breaches) - 1} more, listed above)" if len(breaches) > 1 else ""
        raise BqxError(f"cross-check FAILED: {breaches[0]}{more}")
    return 0
