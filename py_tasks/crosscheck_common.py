"""Shared machinery of the cross-check (``bqx crosscheck``), imported by every family
module and by the dispatcher, importing none of them.

Here: the result types (``Report``, ``FamilyResult``, ``ColumnResult``) and their
printing, the accumulation of the worst error per column (``_Accumulator``), the
sampling of rows from a pair's bars (``_sample_rows``), reading rows and whole columns
from the database (``built_tables``, ``copy_floats``, ``_fetch_rows``), the time
conversions, and ``Run``: what one ``run_crosscheck`` call asks of every family module.

A family module (``crosscheck_bars``, ``crosscheck_correlation``,
``crosscheck_technical``; which one checks which family is the registry's
``reference``, py_tasks/families.py) exposes ``check(run, families) -> {family:
FamilyResult}`` and ``READS_RAW_BARS``; the dispatcher, ``py_tasks.crosscheck``, imports
it by the name the registry gives.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from psycopg import sql

from .config import schema
from .errors import BqxError

DEFAULT_SAMPLE = 200
DEFAULT_SEED = 42
DEFAULT_TAIL = 10

PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# ----------------------------------------------------------------------------- one run
@dataclass
class Run:
    """One ``run_crosscheck`` call, as every family module's ``check`` sees it."""

    conn: Any
    pairs: list[str]  # the pairs asked for (all pairs when none are named)
    explicit_pairs: bool  # pairs named by the caller: their unbuilt tables are news
    sample: int
    seed: int
    tail: int
    base_ts: np.datetime64  # the rate-index base time, datetime64[us], naive UTC
    tables: dict[str, list[str]]  # built_tables(conn)
    report: Report  # skipped, problems, notes are appended to
    say: Callable[[str], None] = lambda message: None


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



# ----------------------------------------------------------------------------- runs of bars
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


def finished(acc: dict[str, _Accumulator]) -> dict[str, FamilyResult]:
    """The results of the families that checked at least one pair."""
    results = {fam: a.finish() for fam, a in acc.items()}
    return {fam: r for fam, r in results.items() if r.pairs}
