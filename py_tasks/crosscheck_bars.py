"""The cross-check of ``bqx``, ``reg_rate`` and ``reg_bqx``: an independent numpy
recomputation from the raw bars.

For every selected family and pair whose table is built, the pair's bars are read once
from ``raw.m1_bars`` (ordered by ts_utc) and everything is recomputed from them in
numpy, straight from the SPEC formulas: the baseline (first bar at or after var
``rate_index_base_ts``, else the first bar), the rate index ``100 * (close /
baseline_close)``, the backward momentum (SPEC 2.2) and the rolling quadratic fits with
``numpy.polyfit(x, y, 2)`` (SPEC 2.3; ``y`` of reg_bqx is the BQX column recomputed
here, never read back). Only the sampled rows of the tables are read, and only to
compare them.

Rows checked per pair and family: ``sample`` random rows (0 = every row), and always
the rows around each warm-up boundary, rows right after the largest and some random
gaps, rows where a window becomes exactly flat or stops being flat, the first rows and
the last ``tail`` rows. Tolerances and decisions: ``docs/crosscheck.md``.

References (the registry's ``reference`` of rate_index, bqx, reg_rate, reg_bqx):
``rate_index``, ``bqx_stats``, ``reg_fit``. Entry point: ``check(run, families)``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from psycopg import sql

from . import families as registry
from .config import BQX_STATS, REG_STATS, all_pairs, dbt_var, raw_schema, schema
from .crosscheck_common import (
    _UNIX_EPOCH,
    FamilyResult,
    Report,
    Run,
    _Accumulator,
    _fetch_rows,
    _fmt_ts,
    _run_length,
    _sample_rows,
    _to_datetime,
    copy_floats,
    finished,
)
from .errors import BqxError

FAMILIES = registry.checked_by(__name__)  # bqx, reg_rate, reg_bqx: the registry's order
READS_RAW_BARS = True  # the dispatcher checks that raw.m1_bars exists

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
_CHUNK = 4096  # rows per vectorised block (bounds memory at 4096 x 630 floats)


# ----------------------------------------------------------------------------- numpy reference
def rate_index(ts: np.ndarray, close: np.ndarray, base_ts: np.datetime64) -> tuple[int, np.ndarray]:
    """Baseline bar position (first bar at or after ``base_ts``, else the first bar)
    and ``100 * (close / baseline_close)`` (SPEC 2.1)."""
    at = int(np.searchsorted(ts, base_ts, side="left"))
    base = at if at < len(ts) else 0
    return base, 100.0 * (close / close[base])



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


# ----------------------------------------------------------------------------- comparison

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


# ----------------------------------------------------------------------------- entry point
def check(run: Run, families: Sequence[str]) -> dict[str, FamilyResult]:
    """Cross-check the asked ``families`` (of FAMILIES) for ``run.pairs``: one read of
    each pair's bars, then every family of the pair whose table is built. Tables that
    are not built go to ``run.report.skipped`` (for a pair that has another of these
    families, or for pairs asked for by name)."""
    bqx_windows = [int(w) for w in dbt_var("bqx_windows")]
    reg_windows = [int(w) for w in dbt_var("reg_windows")]
    source_column = str(dbt_var("reg_bqx_source_column"))
    acc = {fam: _Accumulator(fam) for fam in FAMILIES if fam in families}
    for pair_no, pair in enumerate(all_pairs()):
        if pair not in run.pairs:
            continue
        present = [f for f in acc if f"{f}_{pair}" in run.tables]
        if present or run.explicit_pairs:  # unasked pairs without any table: not news
            run.report.skipped += [f"{f}_{pair}" for f in acc if f not in present]
        if not present:
            continue
        t0 = time.perf_counter()
        _check_pair(run.conn, pair, pair_no, present, run.tables, acc, run.report, bqx_windows,
                    reg_windows, source_column, run.base_ts, run.sample, run.tail, run.seed)
        run.say(f"{pair}: {', '.join(present)} checked in {time.perf_counter() - t0:.1f} s")
    return finished(acc)
