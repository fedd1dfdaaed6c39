"""``bqx sample``: deterministic, consistent synthetic bars."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from py_tasks.cli import main
from py_tasks.sample import append_days, generate, write_sample


@pytest.fixture(scope="module")
def week() -> dict[str, np.ndarray]:
    """Seven days of all 28 pairs from Monday 2024-07-01."""
    return generate(days=7)


@pytest.fixture()
def conn(bqx_env: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(bqx_env, autocommit=True) as c:
        yield c


def flat_runs(bars: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) bar ranges where open, high, low and close all equal one value."""
    c = bars["close"]
    same = (bars["open"] == c) & (bars["high"] == c) & (bars["low"] == c)
    same[1:] &= c[1:] == c[:-1]
    runs, start = [], None
    for i, flag in enumerate(np.append(same, False)):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    return runs


def test_same_seed_same_bars_other_seed_other_bars(week) -> None:
    again = generate(days=7)
    assert all(np.array_equal(again[p], week[p]) for p in week)
    other = generate(days=7, pairs=["eurusd"], seed=43)
    assert not np.array_equal(other["eurusd"]["close"][:100], week["eurusd"]["close"][:100])


def test_levels_and_bar_shape(week) -> None:
    first = {p: b["close"][0] for p, b in week.items()}
    for pair, level in {"eurusd": 1.08, "usdjpy": 160, "gbpusd": 1.27, "audusd": 0.67,
                        "usdchf": 0.9, "usdcad": 1.37, "nzdusd": 0.61}.items():
        assert first[pair] == pytest.approx(level, rel=1e-4)
    for bars in week.values():
        assert np.all(np.diff(bars["ts_utc"]) > np.timedelta64(0))
        assert np.all(bars["high"] >= np.maximum(bars["open"], bars["close"]))
        assert np.all(bars["low"] <= np.minimum(bars["open"], bars["close"]))
        assert np.all(bars["low"] > 0)
        assert np.array_equal(bars["open"][1:], bars["close"][:-1])
        assert bars["open"][0] == bars["close"][0]
        assert np.all(bars["volume"] >= 0)
    returns = np.diff(np.log(week["eurusd"]["close"]))
    assert 5e-5 < np.std(returns[returns != 0]) < 2e-4


def test_weekend_gap_and_missing_minutes(week) -> None:
    for bars in week.values():
        ts = bars["ts_utc"]
        assert not np.any((ts >= np.datetime64("2024-07-05T22:00")) &
                          (ts < np.datetime64("2024-07-07T22:00")))
        assert ts[0] < np.datetime64("2024-07-01T00:10")
        assert np.any((ts >= np.datetime64("2024-07-05T21:50")) &
                      (ts < np.datetime64("2024-07-05T22:00")))
        assert ts[-1] > np.datetime64("2024-07-07T23:50")
        trading_minutes = 5 * 1440  # Mon 00:00 .. Fri 22:00, then Sun 22:00 .. 24:00
        missing = 1 - len(ts) / trading_minutes
        assert 0.003 < missing < 0.02


def test_flat_stretches_are_bit_identical(week) -> None:
    long_runs = [e - s for s, e in flat_runs(week["audcad"]) if e - s >= 700]
    assert long_runs, "the first pair needs a flat stretch of 700+ bars"
    s, e = next((s, e) for s, e in flat_runs(week["audcad"]) if e - s >= 700)
    window = week["audcad"][s:s + 630]
    for name in ("open", "high", "low", "close"):
        assert np.all(window[name] == window["close"][0])  # bit-identical: SS_tot is 0
    for pair in ("eurusd", "usdjpy", "nzdcad"):
        runs = [e - s for s, e in flat_runs(week[pair]) if e - s >= 50]
        assert 1 <= len(runs) <= 10 and all(r <= 201 for r in runs), (pair, runs)


def test_triangles_hold_up_to_noise(week) -> None:
    def flat_mask(bars):
        mask = np.zeros(len(bars), dtype=bool)
        for s, e in flat_runs(bars):
            mask[s:e + 1] = True  # plus the bar that jumps back to the walk
        return mask

    legs = [week[p] for p in ("eurusd", "eurgbp", "gbpusd")]
    common = legs[0]["ts_utc"]
    for bars in legs[1:]:
        common = np.intersect1d(common, bars["ts_utc"])
    closes, ok = [], np.ones(len(common), dtype=bool)
    for bars in legs:
        idx = np.searchsorted(bars["ts_utc"], common)
        closes.append(bars["close"][idx])
        ok &= ~flat_mask(bars)[idx]
    assert ok.sum() > 0.8 * len(common)
    rel = np.abs(closes[0] / (closes[1] * closes[2]) - 1)[ok]
    assert rel.max() < 1e-4


def test_subset_and_prefix_equal_the_full_set(week) -> None:
    subset = generate(days=7, pairs=["usdjpy", "audcad"])
    assert list(subset) == ["usdjpy", "audcad"]
    assert all(np.array_equal(subset[p], week[p]) for p in subset)
    shorter = generate(days=3, pairs=["eurusd", "audcad"])
    for pair, bars in shorter.items():
        assert np.array_equal(bars, week[pair][: len(bars)])
        assert bars["ts_utc"][-1] < np.datetime64("2024-07-04T00:00")


def read_back(conn: psycopg.Connection, pair: str) -> np.ndarray:
    rows = conn.execute(
        "select ts_utc, open, high, low, close, volume from raw.m1_bars where pair = %s "
        "order by ts_utc", (pair,)).fetchall()
    out = np.empty(len(rows), dtype=generate(0, ["eurusd"])["eurusd"].dtype)
    out["ts_utc"] = [r[0].replace(tzinfo=None) for r in rows]
    for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        out[name] = [r[i] for r in rows]
    return out


def test_write_then_append_continues_the_walk(conn) -> None:
    pairs = ["eurusd", "usdjpy"]
    first = write_sample(conn, days=2, pairs=pairs)
    assert all(made == added > 2000 for made, added in first.values())
    assert write_sample(conn, days=2, pairs=pairs)["eurusd"][1] == 0  # idempotent
    more = append_days(conn, days=1, pairs=pairs)
    assert all(made == added > 1000 for made, added in more.values())
    full = generate(days=3, pairs=pairs)
    for pair in pairs:
        assert np.array_equal(read_back(conn, pair), full[pair])


def test_cli_sample_and_append(bqx_env, conn, capsys) -> None:
    assert main(["sample", "--days", "1", "--pairs", "eurusd,gbpusd", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "eurusd" in out and "2 pair(s)" in out
    assert main(["sample", "--days", "1", "--pairs", "eurusd,gbpusd", "--seed", "7",
                 "--append"]) == 0
    assert "2024-07-02 .. 2024-07-02" in capsys.readouterr().out
    full = generate(days=2, pairs=["gbpusd"], seed=7)["gbpusd"]
    assert np.array_equal(read_back(conn, "gbpusd"), full)
    assert main(["sample", "--pairs", "eurxyz"]) == 1
    assert "valid pairs:" in capsys.readouterr().err
