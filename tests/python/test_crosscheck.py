"""The numpy cross-check (py_tasks/crosscheck.py) against real builds.

Bars are written to a fresh database, the per-pair models are built with dbt, and
the cross-check recomputes them from the raw bars: a synthetic sample, adversarial
series written directly with load_bars, a corrupted value that must be caught, and
one pair of two million bars (precision must not fall with the row number).
"""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import psycopg
import pytest
from dbt_vars_target import run_dbt

from py_tasks import cli, sample
from py_tasks.crosscheck import run_crosscheck
from py_tasks.load import BAR_DTYPE, ensure_raw_table, load_bars


def _build(url: str, pairs: list[str], families: tuple[str, ...] = ("reg_bqx", "reg_rate"),
           method: str = "auto") -> None:
    select = " ".join(f"+{fam}_{p}" for p in pairs for fam in families)
    argv = ["build", "--select", select, "--exclude-resource-type", "test", "unit_test"]
    if method != "auto":
        # the default windows take the merge tree; var reg_method forces the other method
        argv += ["--vars", json.dumps({"reg_method": method})]
    result = run_dbt(argv, url)
    assert result.success, f"dbt {' '.join(argv)} failed: {result.exception}"


def _bars(ts: np.ndarray, close: np.ndarray) -> np.ndarray:
    assert np.all(close > 0) and np.all(np.diff(ts) > np.timedelta64(0, "us"))
    out = np.empty(len(ts), dtype=BAR_DTYPE)
    out["ts_utc"] = ts
    out["close"] = close
    out["open"] = np.concatenate([close[:1], close[:-1]])
    out["high"] = np.maximum(out["open"], close)
    out["low"] = np.minimum(out["open"], close)
    out["volume"] = 1
    return out


def _minutes(start: str, n: int) -> np.ndarray:
    return np.datetime64(start, "us") + np.arange(n).astype("timedelta64[m]")


def _walk(rng: np.random.Generator, n: int, level: float, step: float) -> np.ndarray:
    return level * np.exp(np.cumsum(rng.standard_normal(n) * step))


def adversarial_bars(n: int = 2500, seed: int = 3) -> dict[str, np.ndarray]:
    """Series chosen to break a careless implementation (one pair each). Every series
    starts before the default base time 2024-07-01 00:00 UTC except ``nzdjpy``, which
    ends before it (its baseline is then its first bar)."""
    rng = np.random.default_rng(seed)
    start = "2024-06-30T12:00"
    out = {}
    # exactly flat: SS_tot = 0 everywhere, r2 must be exactly 0, BQX exactly 0
    out["eurchf"] = _bars(_minutes(start, n), np.full(n, 0.95123))
    # rate index near 100 moving by ~1e-5 per bar (close moves of 1e-7 relative)
    out["eurusd"] = _bars(_minutes(start, n), _walk(rng, n, 1.1, 1e-7))
    # BQX values near 1e-4 (w15 return = sum of 15 relative moves of ~2.5e-6)
    out["gbpusd"] = _bars(_minutes(start, n), _walk(rng, n, 1.27, 2.5e-6))
    # gaps of minutes, hours and a weekend between bars
    gaps = rng.choice([1, 1, 1, 1, 2, 3, 7, 45, 180, 600], size=n)
    gaps[n // 2] = 2 * 1440 + 7
    ts = np.datetime64(start, "us") + np.cumsum(gaps).astype("timedelta64[m]")
    out["audusd"] = _bars(ts, _walk(rng, n, 0.67, 1e-4))
    # usdjpy-like level 150 with a 2% jump
    close = _walk(rng, n, 150.0, 1e-4)
    close[n // 3:] *= 1.02
    out["usdjpy"] = _bars(_minutes(start, n), close)
    # tiny prices (~1e-3), ending before the base time
    out["nzdjpy"] = _bars(_minutes("2024-06-25T00:00", n), _walk(rng, n, 1.1e-3, 1e-4))
    # large prices (~1e5)
    out["gbpnzd"] = _bars(_minutes(start, n), _walk(rng, n, 1.234e5, 1e-4))
    # spiky: normal moves, a 2% jump, then calm (moves of 1e-6)
    out["gbpaud"] = _bars(_minutes(start, n), _spike_then_calm(rng, n))
    return out


def _spike_then_calm(rng: np.random.Generator, n: int) -> np.ndarray:
    close = _walk(rng, n, 1.6, 1e-4)
    jump = n // 4
    close[jump:] = close[jump - 1] * 1.02 * np.exp(np.cumsum(rng.standard_normal(n - jump) * 1e-6))
    return close


def tiny_bqx_bars(n: int = 2500, seed: int = 3) -> dict[str, np.ndarray]:
    """Series whose BQX values are ~1e-7: below the precision the momentum model keeps
    for w15_bqx_return (absolute error ~1e-15, see docs/crosscheck.md)."""
    rng = np.random.default_rng(seed)
    start = "2024-06-30T12:00"
    out = {}
    for pair, level in (("eurgbp", 0.85), ("eurjpy", 171.3)):
        # noise of 1e-8 relative around a level (rate index 100 +- 1e-6)
        out[pair] = _bars(_minutes(start, n), level * (1 + 1e-8 * rng.standard_normal(n)))
    for pair in ("gbpaud", "nzdusd"):
        # a 2% jump, calm moves of 1e-6, then an exactly flat stretch: w15 returns of
        # ~1e-7 decay into zeros as the flat stretch enters the window
        calm = _spike_then_calm(rng, n)
        calm[3 * n // 4:] = calm[3 * n // 4 - 1]
        out[pair] = _bars(_minutes(start, n), calm)
    return out


def _assert_passed(report) -> None:
    assert report.passed, "\n".join(report.breaches()[:10]) + "\n" + report.summary_text()


# ----------------------------------------------------------------------------- 1
def test_synthetic_sample_passes(bqx_env: str, capsys: pytest.CaptureFixture) -> None:
    url = bqx_env
    pairs = ["audcad", "eurusd"]
    start = date(2024, 7, 1)  # a Monday: audcad's 760-minute stall starts 02:00 UTC that day
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        sample.write_sample(conn, days=2, pairs=pairs, seed=11, start=start)
        flat = conn.execute(
            "select count(*) from raw.m1_bars where pair = 'audcad' and ts_utc >= "
            "'2024-07-01 02:00+00' and ts_utc < '2024-07-01 14:40+00' and close = "
            "(select close from raw.m1_bars where pair = 'audcad' and ts_utc >= "
            "'2024-07-01 02:00+00' order by ts_utc limit 1)"
        ).fetchone()[0]
    assert flat >= 700  # the exactly flat stretch is inside the sample
    _build(url, pairs)
    with psycopg.connect(url) as conn:
        # the flat stretch gives fully flat 630-bar windows: r2 exactly 0 there
        assert conn.execute("select count(*) from bqx.reg_rate_audcad where w630_r2 = 0"
                            ).fetchone()[0] > 0
        report = run_crosscheck(conn, None, None, sample=0, seed=1)  # every row
    _assert_passed(report)
    assert set(report.families) == {"bqx", "reg_rate", "reg_bqx"}
    assert all(f.pairs == pairs for f in report.families.values())
    assert report.families["reg_rate"].rows_checked == sum(
        len(b) for b in sample.generate(days=2, pairs=pairs, seed=11, start=start).values())
    # the command with its defaults (200 random rows + boundary rows) passes too
    assert cli.main(["crosscheck", "--json", "-"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and '"passed": true' in out


# ----------------------------------------------------------------------------- 2
@pytest.mark.slow
@pytest.mark.parametrize("method", ["auto", "chunk"])
def test_adversarial_series_pass(bqx_env: str, method: str) -> None:
    url = bqx_env
    bars = adversarial_bars()
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        load_bars(conn, bars)
    _build(url, list(bars), method=method)
    with psycopg.connect(url) as conn:
        # the flat pair: r2 exactly 0 and rmse exactly 0 wherever defined
        r2 = conn.execute("select count(*), count(*) filter (where w60_r2 = 0 and w630_r2 = 0"
                          " and w630_rmse = 0) from bqx.reg_rate_eurchf where w630_r2 is not null"
                          ).fetchone()
        assert r2[0] > 0 and r2[0] == r2[1]
        report = run_crosscheck(conn, None, None, sample=0, seed=5)
    print(report.summary_text())
    _assert_passed(report)
    assert sorted(report.families["reg_bqx"].pairs) == sorted(bars)


@pytest.mark.parametrize("method", ["auto", "chunk"])
def test_reg_bqx_with_bqx_values_near_1e_7(bqx_env: str, method: str) -> None:
    url = bqx_env
    bars = tiny_bqx_bars()
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        load_bars(conn, bars)
    _build(url, list(bars), method=method)
    with psycopg.connect(url) as conn:
        report = run_crosscheck(conn, None, None, sample=0, seed=5)
    print(report.summary_text())
    # BQX values near 1e-7: the momentum's mean is carried relative to the newest bar
    # (so p[t-1] - p[t] is exact), which keeps w15_bqx_return -- and the reg_bqx fit
    # of it -- within 1e-9 * s of numpy
    _assert_passed(report)


# ----------------------------------------------------------------------------- 3
def test_corrupted_value_fails_and_is_named(bqx_env: str, capsys: pytest.CaptureFixture) -> None:
    url = bqx_env
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        sample.write_sample(conn, days=1, pairs=["eurusd"], seed=2)
    _build(url, ["eurusd"], ("reg_rate",))
    with psycopg.connect(url, autocommit=True) as conn:
        ts, = conn.execute("select max(ts_utc) from bqx.reg_rate_eurusd").fetchone()
        s, = conn.execute("select max(abs(rate_index)) from (select rate_index from "
                          "bqx.reg_rate_eurusd order by ts_utc desc limit 60) w").fetchone()
        conn.execute("update bqx.reg_rate_eurusd set w60_prediction = w60_prediction + %s "
                     "where ts_utc = %s", (1e-6 * s, ts))
        report = run_crosscheck(conn, ["reg_rate"], ["eurusd"], sample=50, seed=1)
    assert not report.passed
    col = report.families["reg_rate"].columns["w60_prediction"]
    assert col.breaches == 1 and col.pair == "eurusd" and col.ts_utc == ts
    assert 900 < col.max_ratio < 1100  # 1e-6 s against a tolerance of 1e-9 s
    others = [c for name, c in report.families["reg_rate"].columns.items() if c.breaches
              and name != "w60_prediction"]
    assert not others
    assert "reg_rate w60_prediction pair eurusd" in report.breaches()[0]
    as_json = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert as_json["passed"] is False
    assert as_json["families"]["reg_rate"]["columns"]["w60_prediction"]["breaches"] == 1
    # the command exits 1 and names family, column, pair and time
    assert cli.main(["crosscheck", "--family", "reg_rate", "--pairs", "eurusd"]) == 1
    err = capsys.readouterr().err
    assert "cross-check FAILED: reg_rate w60_prediction pair eurusd" in err
    assert ts.strftime("%Y-%m-%d %H:%M") in err
    # a NULL where a value is expected is a breach too
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("update bqx.reg_rate_eurusd set w630_r2 = null where ts_utc = %s", (ts,))
        report = run_crosscheck(conn, ["reg_rate"], ["eurusd"], sample=50, seed=1)
    col = report.families["reg_rate"].columns["w630_r2"]
    assert col.null_mismatches == 1 and col.got is None and col.ts_utc == ts
    assert any("w630_r2" in b and "NULL where a value is expected" in b for b in report.breaches())


# ----------------------------------------------------------------------------- 4
LONG_BARS = 2_000_000


@pytest.mark.scale
@pytest.mark.parametrize("method", ["auto", "chunk"])
def test_two_million_bars_keep_precision(bqx_env: str, method: str) -> None:
    url = bqx_env
    rng = np.random.default_rng(17)
    # one bar a minute from 2022-01-01: the base time 2024-07-01 falls inside
    bars = {"eurusd": _bars(_minutes("2022-01-01T00:00", LONG_BARS),
                            _walk(rng, LONG_BARS, 1.1, 1e-4))}
    timings = {}
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        assert load_bars(conn, bars) == {"eurusd": LONG_BARS}
    timings["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _build(url, ["eurusd"], ("reg_rate",), method=method)
    timings["build reg_rate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        report = run_crosscheck(conn, ["reg_rate"], ["eurusd"], sample=2000, seed=9, tail=1000)
    timings["cross-check"] = time.perf_counter() - t0
    fam = report.families["reg_rate"]
    first, last = fam.ratio_by_decile[0], fam.ratio_by_decile[-1]
    print(f"2M bars: {', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}; "
          f"rows checked {fam.rows_checked}; max ratio first 10% {first:.3g}, "
          f"last 10% {last:.3g}; by tenth {[f'{r:.2g}' for r in fam.ratio_by_decile]}")
    _assert_passed(report)
    assert fam.rows_checked >= 3000
    # precision does not fall with the row number: the last tenth is no worse than
    # the first by more than sampling noise (a running sum would be orders worse)
    assert last <= 4 * first + 1e-6, fam.ratio_by_decile
