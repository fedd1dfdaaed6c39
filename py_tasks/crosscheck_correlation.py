"""Numpy cross-check of the ``correlation_bqx`` family (SPEC 2.4).

``check_correlation(conn, pairs, sample, seed) -> dict`` recomputes sampled rows of
``correlation_bqx_{pair}`` from the family's inputs as stored in the database: the
pair's ``reg_bqx_{pair}`` terms, and the ``w15_bqx_return`` of ``bqx_{pair}`` and of
its twelve related pairs' ``bqx_{R}`` tables. Everything is recomputed from the SPEC
text, independently of the SQL (no block sums, no lag tricks):

* term covariances: for window W and row t, the last W rows must all have non-NULL
  ``wW_`` terms; covariance with ddof 1 and Pearson correlation computed the way
  ``np.cov(x, y, ddof=1)`` and ``np.corrcoef`` do (mean-centred, two-pass, after a
  shift by the window's newest value), on a whole batch of windows at once; a series
  that is exactly constant over the window has correlation NULL;
* cross-pair: related pairs and their sign from the ``currency_pairs`` seed (same
  side of the shared currency: +1, else -1); joined rows = the timestamps where both
  the pair and R have a non-NULL return (``np.intersect1d`` on ts_utc); R is left out
  with fewer than W joined rows or a constant series; means over the related pairs
  that have a bar at t; relative strengths at t.

Rows checked per pair: ``sample`` random rows (0 = every row), plus the rows where
mistakes hide: warm-up boundaries, the first rows after gaps in the pair's bars,
rows where a related pair has no bar (and rows soon after, whose windows span the
hole), the edges of the SQL's 4096-row sum blocks, windows that become flat or stop
being flat, the first rows and the last ``tail`` rows.

Tolerances: covariances within ``1e-9 * max|x| * max|y|`` over the window (the
product of the inputs' magnitudes, so a window of zeros must give exactly 0),
correlations within ``1e-7`` absolute, relative strengths within
``1e-9 * (|pair| + max |related|)`` at t, the copied return exactly. A NULL where a
value is expected (or the reverse) is a breach.

The result is a JSON-friendly dict: ``passed``, ``rows_checked``, per-column
``max_ratio`` (error / tolerance at the worst row) with that row, the ten worst
rows overall and any ``problems`` (missing tables, rows or columns).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from psycopg import sql

from .config import all_pairs, pair_rows, schema
from .crosscheck_common import (
    ColumnResult,
    FamilyResult,
    Run,
    _from_json,
    _jsonable,
    _to_datetime,
    built_tables,
)
from .errors import BqxError

FAMILY = "correlation_bqx"
READS_RAW_BARS = False  # reads the reg_bqx and bqx tables
RETURN_COLUMN = "w15_bqx_return"
COV_REL_TOL = 1e-9
CORR_ABS_TOL = 1e-7
REL_STRENGTH_REL_TOL = 1e-9
DEFAULT_SAMPLE = 200
DEFAULT_SEED = 42
DEFAULT_TAIL = 10
BLOCK_ROWS = 4096  # the SQL's block length (var term_cov_block_rows): its edges are checked
# (column stem, x term, y term) of the term covariances, in the SPEC's order
PRODUCTS = (
    ("quad_lin", "quadratic_term", "linear_term"),
    ("resid_quad", "residual", "quadratic_term"),
    ("resid_lin", "residual", "linear_term"),
)
TERMS = ("quadratic_term", "linear_term", "residual")
SIDES = ("base", "quote")
_CHUNK = 2048  # windows per vectorised batch (bounds memory at 2048 x 630 floats)


# ----------------------------------------------------------------------------- pairs
def related_pairs(pair: str) -> dict[str, list[tuple[str, int]]]:
    """Base- and quote-related pairs of ``pair`` with their sign, from the seed: R is
    base-related when it contains the pair's base currency; the sign is +1 when that
    currency is on the same side (base/base or quote/quote) of both pairs, else -1."""
    rows = {p: (b, q) for p, b, q in pair_rows()}
    if pair not in rows:
        raise BqxError(f"unknown pair '{pair}'")
    base, quote = rows[pair]
    out: dict[str, list[tuple[str, int]]] = {"base": [], "quote": []}
    for other, (b, q) in rows.items():
        if other == pair:
            continue
        if base in (b, q):
            out["base"].append((other, 1 if b == base else -1))
        if quote in (b, q):
            out["quote"].append((other, 1 if q == quote else -1))
    return out


# ----------------------------------------------------------------------------- result
@dataclass
class _Column:
    checked: int = 0
    breaches: int = 0
    null_mismatches: int = 0
    max_ratio: float = 0.0
    max_error: float | None = None
    tolerance: float | None = None
    worst: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "breaches": self.breaches,
            "null_mismatches": self.null_mismatches,
            "max_ratio": _jsonable(self.max_ratio),
            "max_error": _jsonable(self.max_error),
            "tolerance": _jsonable(self.tolerance),
            "worst": self.worst,
        }


@dataclass
class _Result:
    pairs: list[str] = field(default_factory=list)
    rows_checked: int = 0
    columns: dict[str, _Column] = field(default_factory=dict)
    worst_rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def compare(
        self,
        pair: str,
        column: str,
        ts_us: np.ndarray,
        expected: np.ndarray,
        tolerance: np.ndarray,
        got: np.ndarray,
    ) -> None:
        """Fold one column of one pair in; NaN means NULL on either side."""
        col = self.columns.setdefault(column, _Column())
        exp_null, got_null = np.isnan(expected), np.isnan(got)
        both = ~exp_null & ~got_null
        error = np.where(both, np.abs(got - expected), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(error == 0, 0.0, error / tolerance)
        ratio = np.where(exp_null != got_null, np.inf, ratio)
        col.checked += int(both.sum())
        col.null_mismatches += int((exp_null != got_null).sum())
        col.breaches += int((ratio > 1.0).sum())
        if len(ratio) == 0:
            return
        i = int(np.argmax(ratio))
        for j in np.flatnonzero(ratio > 1.0)[:3].tolist() + [i]:
            self._note_row(pair, column, ts_us[j], expected[j], got[j], ratio[j])
        if ratio[i] > col.max_ratio or col.worst is None:
            col.max_ratio = float(ratio[i])
            col.max_error = float(error[i])
            col.tolerance = float(tolerance[i])
            col.worst = self._row(pair, column, ts_us[i], expected[i], got[i], ratio[i])

    @staticmethod
    def _row(
        pair: str, column: str, ts_us: int, expected: float, got: float, ratio: float
    ) -> dict[str, Any]:
        return {
            "pair": pair,
            "column": column,
            "ts_utc": _to_datetime(int(ts_us)).isoformat(),
            "expected": None if math.isnan(expected) else float(expected),
            "got": None if math.isnan(got) else float(got),
            "ratio": _jsonable(float(ratio)),
        }

    def _note_row(
        self, pair: str, column: str, ts_us: int, expected: float, got: float, ratio: float
    ) -> None:
        if ratio <= 0:
            return
        self.worst_rows.append(self._row(pair, column, ts_us, expected, got, ratio))
        self.worst_rows.sort(key=lambda r: -_ratio_value(r["ratio"]))
        del self.worst_rows[10:]

    def to_dict(self) -> dict[str, Any]:
        max_ratio = max((c.max_ratio for c in self.columns.values()), default=0.0)
        return {
            "family": FAMILY,
            "passed": not self.problems and all(c.breaches == 0 for c in self.columns.values()),
            "pairs": list(self.pairs),
            "rows_checked": self.rows_checked,
            "max_ratio": _jsonable(max_ratio),
            "tolerances": {
                "cov_rel": COV_REL_TOL,
                "corr_abs": CORR_ABS_TOL,
                "rel_strength_rel": REL_STRENGTH_REL_TOL,
            },
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
            "worst_rows": list(self.worst_rows),
            "problems": list(self.problems),
        }


def _ratio_value(value: float | str | None) -> float:
    return math.inf if value == "inf" else float(value or 0.0)


# ----------------------------------------------------------------------------- numpy
def cov_corr(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample covariance (ddof 1) and Pearson correlation of each row of ``x`` and
    ``y`` (windows x W): what ``np.cov(x[i], y[i], ddof=1)[0, 1]`` and
    ``np.corrcoef(x[i], y[i])[0, 1]`` compute (mean-centred two-pass sums; the
    correlation clipped to [-1, 1] like corrcoef), vectorised. A row where x or y is
    exactly constant has covariance 0 and correlation NaN (NULL).

    Both series are first shifted by their newest value (covariances are
    shift-invariant): a window whose values differ only in the last bits around a
    non-zero level then keeps its differences exact, where plain two-pass sums
    would lose them to the rounding of the mean."""
    w = x.shape[1]
    x = x - x[:, -1:]
    y = y - y[:, -1:]
    xm = x - x.mean(axis=1, keepdims=True)
    ym = y - y.mean(axis=1, keepdims=True)
    cov = np.einsum("ij,ij->i", xm, ym) / (w - 1)
    vx = np.einsum("ij,ij->i", xm, xm) / (w - 1)
    vy = np.einsum("ij,ij->i", ym, ym) / (w - 1)
    flat = (x == x[:, :1]).all(axis=1) | (y == y[:, :1]).all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.clip(cov / np.sqrt(vx * vy), -1.0, 1.0)
    return np.where(flat, 0.0, cov), np.where(flat, np.nan, corr)


def _run_length(valid: np.ndarray) -> np.ndarray:
    """Number of consecutive True values ending at each position."""
    idx = np.arange(len(valid))
    last_bad = np.maximum.accumulate(np.where(valid, -1, idx))
    return idx - last_bad


def term_expected(
    terms: dict[str, np.ndarray], window: int, rows: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Expected term covariances/correlations of one window at ``rows`` (positions in
    the pair's rows), each with its tolerance: column -> (expected, tolerance)."""
    n = len(rows)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for stem, _, _ in PRODUCTS:
        for kind in ("cov", "corr"):
            tol = np.full(n, CORR_ABS_TOL) if kind == "corr" else np.full(n, np.nan)
            out[f"{kind}_{stem}_bqx_{window}min"] = (np.full(n, np.nan), tol)
    valid = ~np.isnan(terms["quadratic_term"])
    for name in TERMS:
        valid &= ~np.isnan(terms[name])
    full = np.flatnonzero(_run_length(valid)[rows] >= window)
    if len(full) == 0:
        return out
    views = {name: sliding_window_view(terms[name], window) for name in TERMS}
    for lo in range(0, len(full), _CHUNK):
        pos = full[lo : lo + _CHUNK]
        start = rows[pos] - window + 1
        for stem, xname, yname in PRODUCTS:
            x, y = views[xname][start], views[yname][start]
            cov, corr = cov_corr(x, y)
            c_exp, c_tol = out[f"cov_{stem}_bqx_{window}min"]
            c_exp[pos] = cov
            c_tol[pos] = COV_REL_TOL * np.abs(x).max(axis=1) * np.abs(y).max(axis=1)
            out[f"corr_{stem}_bqx_{window}min"][0][pos] = corr
    return out


@dataclass
class _Joined:
    """The joined rows of the pair and one related pair R (sign applied to R)."""

    side: str
    ts: np.ndarray  # Unix µs of the joined rows
    pair_values: np.ndarray
    related_values: np.ndarray


def _join(
    pair_ts: np.ndarray,
    pair_y: np.ndarray,
    rel_ts: np.ndarray,
    rel_y: np.ndarray,
    sign: int,
    side: str,
) -> _Joined:
    p_ok, r_ok = ~np.isnan(pair_y), ~np.isnan(rel_y)
    ts, ip, ir = np.intersect1d(
        pair_ts[p_ok], rel_ts[r_ok], assume_unique=True, return_indices=True
    )
    return _Joined(side, ts, pair_y[p_ok][ip], sign * rel_y[r_ok][ir])


def pair_expected(
    pair_ts: np.ndarray,
    pair_y: np.ndarray,
    joined: Sequence[_Joined],
    related_at: dict[str, list[np.ndarray]],
    windows: Sequence[int],
    rows: np.ndarray,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Expected cross-pair columns at ``rows``: column -> (expected, tolerance).
    ``related_at[side]`` holds, per related pair, its signed return at each of the
    pair's rows (NaN where it has no bar or a NULL return)."""
    n = len(rows)
    ts = pair_ts[rows]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for w in windows:
        for side in SIDES:
            total, count = np.zeros(n), np.zeros(n)
            for j in (j for j in joined if j.side == side):
                pos = np.searchsorted(j.ts, ts)
                inside = pos < len(j.ts)
                at_t = np.zeros(n, dtype=bool)
                at_t[inside] = j.ts[pos[inside]] == ts[inside]
                ok = np.flatnonzero(at_t & (pos >= w - 1))
                if len(ok) == 0:
                    continue
                start = pos[ok] - w + 1
                _, corr = cov_corr(
                    sliding_window_view(j.pair_values, w)[start],
                    sliding_window_view(j.related_values, w)[start],
                )
                keep = ~np.isnan(corr)
                total[ok[keep]] += corr[keep]
                count[ok[keep]] += 1
            with np.errstate(invalid="ignore"):
                mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
            out[f"corr_{side}_pairs_{w}min"] = (mean, np.full(n, CORR_ABS_TOL))
    y = pair_y[rows]
    for side in SIDES:
        values = np.array([r[rows] for r in related_at[side]])  # related x rows
        have = ~np.isnan(values)
        count = have.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(values, axis=0) / np.maximum(count, 1), np.nan)
            scale = np.abs(y) + np.nanmax(np.where(have, np.abs(values), 0.0), axis=0)
        expected = np.where(np.isnan(y) | (count == 0), np.nan, y - mean)
        out[f"rel_strength_{side}"] = (expected, REL_STRENGTH_REL_TOL * scale)
    return out


# ----------------------------------------------------------------------------- database
def _table_columns(conn: Any, table: str) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        (schema(), table),
    ).fetchall()
    return [r[0] for r in rows]


def _read(
    conn: Any, table: str, columns: Sequence[str], ts: Sequence[datetime] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(ts_utc in Unix µs, values rows x columns with NaN for NULL) of ``table`` in
    ts_utc order; only the rows at ``ts`` when given."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    ident = sql.Identifier(schema(), table)
    epoch = sql.SQL("(extract(epoch from ts_utc) * 1000000)::bigint")
    if ts is None:
        query = sql.SQL("select {}, {} from {} order by ts_utc").format(epoch, cols, ident)
        params: tuple = ()
    else:
        query = sql.SQL("select {}, {} from {} where ts_utc = any(%s) order by ts_utc").format(
            epoch, cols, ident
        )
        params = (list(ts),)
    fetched = conn.execute(query, params).fetchall()
    ts_us = np.array([r[0] for r in fetched], dtype=np.int64)
    values = np.array(
        [[np.nan if v is None else float(v) for v in r[1:]] for r in fetched], dtype=np.float64
    ).reshape(len(fetched), len(columns))
    return ts_us, values


def _windows(columns: Sequence[str]) -> tuple[list[int], list[int]]:
    """The term and pair windows the table was built with, from its column names."""
    term = [
        int(m.group(1)) for c in columns if (m := re.fullmatch(r"cov_quad_lin_bqx_(\d+)min", c))
    ]
    pair = [int(m.group(1)) for c in columns if (m := re.fullmatch(r"corr_base_pairs_(\d+)min", c))]
    return term, pair


# ----------------------------------------------------------------------------- sampling
def _sample_rows(
    n: int,
    ts: np.ndarray,
    terms: dict[int, dict[str, np.ndarray]],
    joined: Sequence[_Joined],
    pair_windows: Sequence[int],
    sample: int,
    tail: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Row positions to check: random rows plus the rows where mistakes hide."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if sample <= 0:
        return np.arange(n)
    picks: list[np.ndarray] = [
        rng.choice(n, size=min(sample, n), replace=False),
        np.arange(min(3, n)),
        np.arange(max(0, n - tail), n),
    ]
    # warm-up boundaries of the term windows
    for w, t in terms.items():
        first = np.flatnonzero(_run_length(~np.isnan(t["quadratic_term"])) >= w)
        if len(first):
            picks.append(np.arange(first[0] - 1, first[0] + 2))
        # the window of quadratic terms becomes exactly flat, or stops being flat
        q = t["quadratic_term"]
        same = np.zeros(n, dtype=bool)
        same[1:] = q[1:] == q[:-1]
        run = _run_length(same) + 1
        flat = np.flatnonzero(run == w)
        ends = np.flatnonzero((run[:-1] >= w) & (run[1:] == 1)) + 1
        for rows in (flat, ends):
            if len(rows):
                picks.append(rng.choice(rows, size=min(5, len(rows)), replace=False))
    # edges of the SQL's sum blocks
    for k in range(1, n // BLOCK_ROWS + 1):
        picks.append(np.arange(k * BLOCK_ROWS - 2, k * BLOCK_ROWS + 2))
    # first bars after gaps in the pair's bars
    gaps = np.flatnonzero(np.diff(ts) > 60_000_000) + 1
    if len(gaps):
        chosen = rng.choice(gaps, size=min(20, len(gaps)), replace=False)
        picks += [chosen, chosen + 1]
    # rows where a related pair has no joined row, and rows whose windows span the hole;
    # warm-up of the pair windows (the W-th joined row)
    for j in joined:
        at = np.searchsorted(ts, j.ts)
        missing = np.setdiff1d(np.arange(n), at)
        if len(missing):
            chosen = rng.choice(missing, size=min(10, len(missing)), replace=False)
            picks += [chosen] + [chosen + d for d in (1, 7, 20, 70)]
        for w in pair_windows:
            if len(j.ts) >= w:
                picks.append(at[w - 1] + np.arange(-1, 2))
    rows = np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in picks]))
    return rows[(rows >= 0) & (rows < n)]


# ----------------------------------------------------------------------------- check
def _check_pair(conn: Any, pair: str, result: _Result, sample: int, seed: int, tail: int) -> None:
    table = f"{FAMILY}_{pair}"
    columns = _table_columns(conn, table)
    if not columns:
        result.problems.append(f"{pair}: table {schema()}.{table} does not exist (build {FAMILY})")
        return
    term_windows, pair_windows = _windows(columns)
    if not term_windows or not pair_windows:
        result.problems.append(f"{pair}: {table} has no term or pair-window columns")
        return
    # the family's inputs
    reg_cols = [f"w{w}_{t}" for w in term_windows for t in TERMS]
    missing = sorted(set(reg_cols) - set(_table_columns(conn, f"reg_bqx_{pair}")))
    if missing:
        result.problems.append(f"{pair}: reg_bqx_{pair} lacks {', '.join(missing[:4])}")
        return
    ts, reg = _read(conn, f"reg_bqx_{pair}", reg_cols)
    terms = {
        w: {t: reg[:, i * len(TERMS) + k] for k, t in enumerate(TERMS)}
        for i, w in enumerate(term_windows)
    }
    p_ts, p_y = _read(conn, f"bqx_{pair}", [RETURN_COLUMN])
    p_y = p_y[:, 0]
    if not np.array_equal(p_ts, ts):
        result.problems.append(f"{pair}: reg_bqx_{pair} and bqx_{pair} cover different bars")
        return
    n = len(ts)
    joined: list[_Joined] = []
    related_at: dict[str, list[np.ndarray]] = {side: [] for side in SIDES}
    for side, related in related_pairs(pair).items():
        for other, sign in related:
            if not _table_columns(conn, f"bqx_{other}"):
                result.problems.append(f"{pair}: related table bqx_{other} does not exist")
                return
            r_ts, r_y = _read(conn, f"bqx_{other}", [RETURN_COLUMN])
            joined.append(_join(ts, p_y, r_ts, r_y[:, 0], sign, side))
            at = np.full(n, np.nan)  # signed return of R at each of the pair's bars
            pos = np.searchsorted(r_ts, ts)
            inside = pos < len(r_ts)
            hit = np.flatnonzero(inside)[r_ts[pos[inside]] == ts[inside]]
            at[hit] = sign * r_y[pos[hit], 0]
            related_at[side].append(at)
    rng = np.random.default_rng([seed, all_pairs().index(pair)])
    rows = _sample_rows(n, ts, terms, joined, pair_windows, sample, tail, rng)
    # the table's rows
    names = [RETURN_COLUMN]
    for w in term_windows:
        names += [f"{k}_{stem}_bqx_{w}min" for k in ("cov", "corr") for stem, _, _ in PRODUCTS]
    names += [f"corr_{s}_pairs_{w}min" for w in pair_windows for s in SIDES]
    names += [f"rel_strength_{s}" for s in SIDES]
    absent = [c for c in names if c not in columns]
    if absent:
        result.problems.append(f"{pair}: {table} lacks {', '.join(absent[:4])}")
        return
    count = conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(schema(), table))
    ).fetchone()[0]
    if count != n:
        result.problems.append(f"{pair}: {table} has {count} rows, reg_bqx_{pair} {n}")
    got_ts, got = _read(
        conn, table, names, None if len(rows) == n else [_to_datetime(u) for u in ts[rows]]
    )
    if not np.array_equal(got_ts, ts[rows]):
        lost = np.setdiff1d(ts[rows], got_ts)
        result.problems.append(
            f"{pair}: {table} lacks {len(lost)} sampled rows, first "
            f"{_to_datetime(int(lost[0])).isoformat() if len(lost) else '?'}"
        )
        keep = np.isin(ts[rows], got_ts)
        rows = rows[keep]
        got = got[np.isin(got_ts, ts[rows])]
    index = {c: i for i, c in enumerate(names)}
    expected: dict[str, tuple[np.ndarray, np.ndarray]] = {
        RETURN_COLUMN: (p_y[rows], np.zeros(len(rows)))
    }
    for w in term_windows:
        expected.update(term_expected(terms[w], w, rows))
    expected.update(pair_expected(ts, p_y, joined, related_at, pair_windows, rows))
    for column, (exp, tol) in expected.items():
        result.compare(pair, column, ts[rows], exp, tol, got[:, index[column]])
    result.rows_checked += len(rows)
    result.pairs.append(pair)


def check_correlation(
    conn: Any,
    pairs: Sequence[str] | None = None,
    sample: int = DEFAULT_SAMPLE,
    seed: int = DEFAULT_SEED,
    tail: int = DEFAULT_TAIL,
) -> dict[str, Any]:
    """Recompute sampled rows of ``correlation_bqx_{pair}`` for ``pairs`` (default all
    28) with numpy from the database's reg_bqx and bqx tables and compare them.

    ``sample`` random rows per pair (0: every row) plus the rows where mistakes hide
    (see the module docstring). Returns a dict with ``passed``, ``rows_checked``,
    per-column ``max_ratio`` (error / tolerance) with the worst row, the ten worst
    rows overall and ``problems``."""
    result = _Result()
    for pair in list(pairs) if pairs is not None else all_pairs():
        if pair not in all_pairs():
            raise BqxError(f"unknown pair '{pair}'; valid pairs: {' '.join(all_pairs())}")
        _check_pair(conn, pair, result, sample, seed, tail)
    return result.to_dict()


# ----------------------------------------------------------------------------- entry point
def check(run: Run, families: Sequence[str]) -> dict[str, FamilyResult]:
    """``bqx crosscheck``'s entry: correlation_bqx for ``run.pairs`` whose table is built,
    as a ``FamilyResult`` (empty when none is built)."""
    out = {}
    for family in families:
        if any(t.startswith(family + "_") for t in run.tables):
            run.say(f"{family}: checking")
            result = _family_result(run.conn, family, run.pairs, run.sample, run.seed, run.tail)
            if result.pairs:
                out[family] = result
    return out


def _family_result(conn: Any, family: str, pairs: list[str], sample: int, seed: int,
                   tail: int) -> FamilyResult:
    """check_correlation's dict in the shape of the other families' results."""
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
