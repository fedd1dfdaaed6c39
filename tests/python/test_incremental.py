"""Incremental builds equal a full refresh, every row and column (SPEC 2.5).

Builds the per-pair families for two pairs on a synthetic sample, changes the bars
(append a day, back-fill history, move the rate-index baseline, correct a bar with
var reprocess_from), runs the incremental build, snapshots every table, runs a full
refresh and compares the snapshots exactly (bit for bit, NULLs included).

Under the default reg_method the tests start from a copy of the session's built
database (conftest.py: two days of eurusd and usdjpy, every family here built).
Var reg_method changes only the regression families (reg_terms), so the runs that
force the chunk method build and compare reg_rate and reg_bqx (and the bqx tables
they read) on their own; technical and bollinger are compared under the default.
"""

from __future__ import annotations

import json
from datetime import date

import psycopg
import pytest
from conftest import BUILT_DAYS, BUILT_FAMILIES, BUILT_PAIRS
from dbt_vars_target import run_dbt

from py_tasks import sample
from py_tasks.load import ensure_raw_table

PAIRS = list(BUILT_PAIRS)
FAMILIES = list(BUILT_FAMILIES)
# the families var reg_method changes (and bqx, which reg_bqx reads)
REG_FAMILIES = ["bqx", "reg_rate", "reg_bqx"]


def _families(vars_: dict | None) -> list[str]:
    return REG_FAMILIES if vars_ and "reg_method" in vars_ else FAMILIES


def _dbt(url: str, *args: str, vars_: dict | None = None) -> None:
    leaves = [f for f in _families(vars_) if f != "bqx"]
    select = " ".join(f"+{fam}_{p}" for p in PAIRS for fam in leaves)
    argv = ["build", "--select", select, "--exclude-resource-type", "test", "unit_test", *args]
    if vars_:
        argv += ["--vars", json.dumps(vars_)]
    result = run_dbt(argv, url)
    assert result.success, f"dbt {' '.join(argv)} failed: {result.exception}"


def _snapshot(url: str, families: list[str] = FAMILIES) -> dict[str, list[tuple]]:
    """Every row of every per-pair table, as exact text (float8 printed round-trip)."""
    out = {}
    with psycopg.connect(url) as conn:
        conn.execute("set extra_float_digits = 3")
        for fam in families:
            for pair in PAIRS:
                table = f"bqx.{fam}_{pair}"
                rows = conn.execute(f"select t::text from {table} as t order by ts_utc").fetchall()
                out[table] = rows
    return out


def _assert_equal_to_full_refresh(url: str, vars_: dict | None = None) -> dict:
    incremental = _snapshot(url, _families(vars_))
    _dbt(url, "--full-refresh", vars_=vars_)
    full = _snapshot(url, _families(vars_))
    for table, rows in full.items():
        assert len(incremental[table]) == len(rows), f"{table}: row counts differ"
        diff = [i for i, (a, b) in enumerate(zip(incremental[table], rows, strict=True)) if a != b]
        assert not diff, (
            f"{table}: {len(diff)} rows differ from a full refresh, first {rows[diff[0]]}"
        )
    return full


def _write(url: str, **kwargs) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        sample.write_sample(conn, pairs=PAIRS, **kwargs)


@pytest.fixture(params=[{}, {"reg_method": "chunk"}], ids=["auto", "chunk"])
def built_with_method(request: pytest.FixtureRequest) -> tuple[str, dict]:
    """The default windows take reg_terms' merge tree; var reg_method = chunk forces the
    chunk method, whose chunks are aligned on the row number in the whole history.
    (URL, vars) of BUILT_DAYS days of both pairs built with the method: the session's
    built copy for the default, a build of its own for chunk."""
    method_vars = request.param
    if not method_vars:
        return request.getfixturevalue("built_env"), method_vars
    url = request.getfixturevalue("bqx_env")
    _write(url, days=BUILT_DAYS)
    _dbt(url, vars_=method_vars)
    return url, method_vars


def test_append_a_day_equals_full_refresh(built_with_method: tuple[str, dict]) -> None:
    url, method_vars = built_with_method
    before = _snapshot(url, _families(method_vars))
    with psycopg.connect(url, autocommit=True) as conn:
        added = sample.append_days(conn, days=1, pairs=PAIRS)
    assert sum(a for _, a in added.values()) > 1000
    _dbt(url, vars_=method_vars)
    after = _snapshot(url, _families(method_vars))
    for table, rows in before.items():
        # rows that existed are untouched, new rows were added
        assert after[table][: len(rows)] == rows
        assert len(after[table]) > len(rows)
    _assert_equal_to_full_refresh(url, vars_=method_vars)


def test_backfill_and_baseline_change_recompute_the_pair(bqx_env: str) -> None:
    url = bqx_env
    # Bars of days 2-3 first; the base time is on day 3, so the baseline is the
    # first bar at or after it.
    base_ts = "2024-07-03 00:00:00+00"
    start = date(2024, 7, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        sample.write_sample(conn, days=2, pairs=PAIRS, start=start, skip_days=1)
    _dbt(url, vars_={"rate_index_base_ts": base_ts})
    # Back-fill day 1: history before the stored rows arrives.
    _write(url, days=1, start=start)
    _dbt(url, vars_={"rate_index_base_ts": base_ts})
    _assert_equal_to_full_refresh(url, vars_={"rate_index_base_ts": base_ts})
    # Move the base time to day 2: every pair's baseline changes.
    moved = {"rate_index_base_ts": "2024-07-02 00:00:00+00"}
    _dbt(url, vars_=moved)
    full = _assert_equal_to_full_refresh(url, vars_=moved)
    with psycopg.connect(url) as conn:
        at_base = conn.execute(
            "select r.rate_index from bqx.rate_index r join bqx.baseline_rates b"
            " on r.pair = b.pair and r.ts_utc = b.baseline_ts"
        ).fetchall()
    assert at_base and all(v == (100.0,) for v in at_base)
    assert full


def test_reprocess_from_after_a_correction(built_with_method: tuple[str, dict]) -> None:
    url, method_vars = built_with_method
    # a correction inside the stored history (day 2 of the sample, 2024-07-02)
    with psycopg.connect(url, autocommit=True) as conn:
        changed = conn.execute(
            "update raw.m1_bars set close = close * 1.001, high = greatest(high, close * 1.001)"
            " where ts_utc >= '2024-07-02 12:00+00' and ts_utc < '2024-07-02 12:05+00'"
        ).rowcount
    assert changed > 0
    vars_ = {"reprocess_from": "2024-07-02 12:00:00+00", **method_vars}
    _dbt(url, vars_=vars_)
    _assert_equal_to_full_refresh(url, vars_=method_vars)


def test_deleted_bars_stop_with_a_full_refresh_message(built_env: str) -> None:
    url = built_env
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from raw.m1_bars where ts_utc < '2024-07-01 01:00+00'")
    result = run_dbt(["build", "--select", "bqx_eurusd", "--exclude-resource-type", "test"], url)
    assert not result.success
    message = str(result.exception or "") + " ".join(
        str(getattr(r, "message", "")) for r in (result.result or [])
    )
    assert "full refresh" in message.lower() or "--full-refresh" in message
