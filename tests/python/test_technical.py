"""The technical and bollinger families against TA-Lib and ``ta``, on real builds.

Whole bars (open, high, low, close, volume) are written to a fresh database, the
families are built and tested with dbt, and ``bqx crosscheck --family
technical,bollinger`` compares every row with the references: adversarial bars
(flat stretches, zero and NULL volume, gaps, prices near 1e-3 and 1e5, a jump),
incremental runs against a full refresh with the recursions' truncation inside the
data, and one pair of two million bars (the recursions must not drift).
"""

from __future__ import annotations

import json
import time

import numpy as np
import psycopg
import pytest
from dbt_vars_target import run_dbt
from test_crosscheck import _assert_passed, _walk

from py_tasks import sample
from py_tasks.crosscheck import run_crosscheck
from py_tasks.load import BAR_DTYPE, ensure_raw_table, load_bars

FAMILIES = ("technical", "bollinger")


def _build(url: str, pairs: list[str], *args: str, tests: bool = False) -> None:
    select = " ".join(f"+{fam}_{p}" for p in pairs for fam in FAMILIES)
    argv = ["build", "--select", select, *args]
    if not tests:
        argv += ["--exclude-resource-type", "test", "unit_test"]
    result = run_dbt(argv, url)
    assert result.success, f"dbt {' '.join(argv)} failed: {result.exception}"


def _minutes(start: str, n: int, gaps: np.ndarray | None = None) -> np.ndarray:
    step = np.ones(n, dtype=np.int64) if gaps is None else gaps
    return np.datetime64(start, "us") + np.cumsum(step).astype("timedelta64[m]")


def whole_bars(rng: np.random.Generator, ts: np.ndarray, close: np.ndarray,
               wick: float = 0.3, volume: np.ndarray | None = None) -> np.ndarray:
    """Bars around a close path: open = previous close, wicks a random fraction of the
    bar's move (at least of a typical move), random volume unless given."""
    n = len(ts)
    out = np.empty(n, dtype=BAR_DTYPE)
    out["ts_utc"] = ts
    out["close"] = close
    out["open"] = np.concatenate([close[:1], close[:-1]])
    move = np.abs(close - out["open"])
    typical = np.median(move[move > 0]) if (move > 0).any() else 0.0
    span = np.maximum(move, typical) * wick
    out["high"] = np.maximum(out["open"], close) + span * rng.random(n)
    out["low"] = np.minimum(out["open"], close) - span * rng.random(n)
    out["volume"] = rng.integers(1, 1000, n) if volume is None else volume
    return out


def adversarial_bars(n: int = 2500, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = "2024-06-30T12:00"
    out = {}
    # flat stretches: whole bars equal (zero ranges, zero changes) for 300 bars, twice,
    # and zero volume inside them
    close = _walk(rng, n, 1.1, 1e-4)
    for lo in (400, 1500):
        close[lo:lo + 300] = close[lo - 1]
    bars = whole_bars(rng, _minutes(start, n), close)
    for lo in (400, 1500):
        flat = slice(lo, lo + 300)
        bars["open"][flat] = bars["high"][flat] = bars["low"][flat] = close[lo - 1]
        bars["volume"][flat] = 0
    out["eurusd"] = bars
    # the whole history exactly flat, zero volume
    flat = np.full(n, 0.95123)
    out["eurchf"] = whole_bars(rng, _minutes(start, n), flat, wick=0.0, volume=np.zeros(n, np.int64))
    # zero volume throughout (as HistData), real moves
    out["gbpusd"] = whole_bars(rng, _minutes(start, n), _walk(rng, n, 1.27, 2e-4),
                               volume=np.zeros(n, np.int64))
    # NULL volume on a stretch (a negative volume is stored as NULL), constant volume elsewhere
    vol = np.full(n, 100, dtype=np.int64)
    vol[700:900] = -1
    out["audusd"] = whole_bars(rng, _minutes(start, n), _walk(rng, n, 0.67, 1e-4), volume=vol)
    # gaps of minutes, hours and a weekend between bars
    gaps = rng.choice([1, 1, 1, 1, 2, 3, 7, 45, 180, 600], size=n)
    gaps[n // 2] = 2 * 1440 + 7
    out["nzdusd"] = whole_bars(rng, _minutes(start, n, gaps), _walk(rng, n, 0.61, 1e-4))
    # tiny prices (~1e-3) and large prices (~1e5)
    out["nzdjpy"] = whole_bars(rng, _minutes(start, n), _walk(rng, n, 1.1e-3, 1e-4))
    out["gbpnzd"] = whole_bars(rng, _minutes(start, n), _walk(rng, n, 1.234e5, 1e-4))
    # a 2% jump, then calm moves of 1e-6
    close = _walk(rng, n, 150.0, 1e-4)
    jump = n // 3
    close[jump:] = close[jump - 1] * 1.02 * np.exp(np.cumsum(rng.standard_normal(n - jump) * 1e-6))
    out["usdjpy"] = whole_bars(rng, _minutes(start, n), close)
    return out


@pytest.mark.slow
def test_adversarial_bars_match_talib_every_row(bqx_env: str) -> None:
    url = bqx_env
    bars = adversarial_bars()
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        load_bars(conn, bars)
    # dbt's own tests too: grain, warm-up NULLs, bounds, band order
    _build(url, list(bars), tests=True)
    with psycopg.connect(url) as conn:
        nulls = conn.execute(
            "select count(*) filter (where volume is null) from bqx.rate_index where pair = 'audusd'"
        ).fetchone()[0]
        assert nulls == 200
        report = run_crosscheck(conn, list(FAMILIES), list(bars), sample=0, seed=1)
    _assert_passed(report)
    assert set(report.families) == set(FAMILIES)
    for fam in FAMILIES:
        assert report.families[fam].rows_checked == sum(len(b) for b in bars.values())


@pytest.mark.slow
def test_incremental_runs_equal_a_full_refresh(bqx_env: str) -> None:
    """Enough history that the recursions' truncated sums and the seeds lie before the
    rows an incremental run reads back: an appended day and a reprocessed hour must
    give the full refresh's rows bit for bit."""
    url = bqx_env
    pairs = ["eurusd"]
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        # 9 days from a Monday: ~10k bars, more than the recursions read back (8.4k)
        sample.write_sample(conn, days=9, pairs=pairs, seed=3)
    _build(url, pairs)

    def snapshot() -> dict[str, list[tuple]]:
        with psycopg.connect(url) as conn:
            conn.execute("set extra_float_digits = 3")
            return {
                fam: conn.execute(f"select t::text from bqx.{fam}_eurusd as t order by ts_utc").fetchall()
                for fam in FAMILIES
            }

    def equals_full_refresh() -> None:
        incremental = snapshot()
        _build(url, pairs, "--full-refresh")
        full = snapshot()
        for fam in FAMILIES:
            diff = [i for i, (a, b) in enumerate(zip(incremental[fam], full[fam], strict=True)) if a != b]
            assert not diff, f"{fam}: {len(diff)} rows differ from a full refresh, first {full[fam][diff[0]]}"

    before = snapshot()
    with psycopg.connect(url, autocommit=True) as conn:
        sample.append_days(conn, days=1, pairs=pairs)
    _build(url, pairs)
    after = snapshot()
    for fam in FAMILIES:
        assert after[fam][: len(before[fam])] == before[fam]
        assert len(after[fam]) > len(before[fam]) + 1000
    equals_full_refresh()

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "update raw.m1_bars set close = close * 1.001, high = greatest(high, close * 1.001)"
            " where ts_utc >= '2024-07-09 12:00+00' and ts_utc < '2024-07-09 12:05+00'"
        )
    _build(url, pairs, "--vars", json.dumps({"reprocess_from": "2024-07-09 12:00:00+00"}))
    equals_full_refresh()


LONG_BARS = 2_000_000


@pytest.mark.scale
def test_two_million_bars_do_not_drift(bqx_env: str) -> None:
    url = bqx_env
    rng = np.random.default_rng(23)
    bars = {"eurusd": whole_bars(rng, _minutes("2022-01-01T00:00", LONG_BARS),
                                 _walk(rng, LONG_BARS, 1.1, 1e-4))}
    timings = {}
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        assert load_bars(conn, bars) == {"eurusd": LONG_BARS}
    timings["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _build(url, ["eurusd"])
    timings["build"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        report = run_crosscheck(conn, list(FAMILIES), ["eurusd"], sample=3000, seed=9, tail=1000)
    timings["cross-check"] = time.perf_counter() - t0
    print("2M bars: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    _assert_passed(report)
    for fam in FAMILIES:
        result = report.families[fam]
        assert result.rows_checked >= 3000
        print(f"{fam}: max ratio by tenth {[f'{r:.2g}' for r in result.ratio_by_decile]}")
