"""The correlation_bqx family (SPEC 2.4): build, validate, cross-check, incremental.

Small on purpose (the machine is shared): one pair, eurusd, and its twelve related
pairs, two or three days of synthetic bars. The related pairs miss bars (an hour of
one, every 20th minute of another, a whole morning of a third) so that joins on
ts_utc, exclusions and means over "the related pairs that have a bar at t" are
exercised; the numpy cross-check must pass on every row and catch a corrupted value.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
from dbt_vars_target import run_dbt

from py_tasks import codegen, crosscheck_correlation, sample
from py_tasks.config import pair_rows
from py_tasks.crosscheck_correlation import check_correlation, cov_corr, related_pairs
from py_tasks.load import ensure_raw_table

PAIR = "eurusd"
RELATED = [r for side in related_pairs(PAIR).values() for r, _ in side]
PAIRS = [PAIR, *RELATED]
MODEL = f"correlation_bqx_{PAIR}"


# ----------------------------------------------------------------------------- no database
def test_related_pairs_and_signs() -> None:
    rel = related_pairs(PAIR)
    assert rel["base"] == [
        ("euraud", 1),
        ("eurcad", 1),
        ("eurchf", 1),
        ("eurgbp", 1),
        ("eurjpy", 1),
        ("eurnzd", 1),
    ]
    assert rel["quote"] == [
        ("audusd", 1),
        ("gbpusd", 1),
        ("nzdusd", 1),
        ("usdcad", -1),
        ("usdchf", -1),
        ("usdjpy", -1),
    ]
    # gbpaud: GBP is quote in eurgbp (other side: -1), AUD is base in audusd (other side: -1)
    g = related_pairs("gbpaud")
    assert ("eurgbp", -1) in g["base"] and ("gbpusd", 1) in g["base"]
    assert ("audusd", -1) in g["quote"] and ("euraud", 1) in g["quote"]
    for pair, _, _ in pair_rows():
        mine = related_pairs(pair)
        assert len(mine["base"]) == len(mine["quote"]) == 6
        # codegen (which writes the thin files) and the cross-check agree
        assert codegen.related_pairs(pair) == mine


def test_generated_model_passes_refs_and_signs() -> None:
    text = codegen.render()[Path("models/correlation_bqx") / f"{MODEL}.sql"]
    assert "source=ref('reg_bqx_eurusd')" in text and "momentum=ref('bqx_eurusd')" in text
    assert "{'pair': 'usdjpy', 'momentum': ref('bqx_usdjpy'), 'sign': -1}" in text
    assert text.count("ref('bqx_") == 13


def test_cov_corr_is_numpy_cov_and_corrcoef() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 60)) * 1e-4 + 0.3
    y = rng.standard_normal((50, 60)) * 1e-4 + 0.5 * x
    y[7] = 0.25  # constant: covariance 0, correlation NULL
    cov, corr = cov_corr(x, y)
    for i in range(50):
        assert cov[i] == pytest.approx(np.cov(x[i], y[i], ddof=1)[0, 1], rel=1e-12, abs=1e-30)
        if i == 7:
            assert cov[i] == 0.0 and np.isnan(corr[i])
        else:
            assert corr[i] == pytest.approx(np.corrcoef(x[i], y[i])[0, 1], abs=1e-13)


# ----------------------------------------------------------------------------- database
def _dbt(url: str, *args: str, vars_: dict | None = None) -> None:
    argv = ["build", "--select", f"+{MODEL}", "--exclude-resource-type", "test", "unit_test", *args]
    if vars_:
        argv += ["--vars", json.dumps(vars_)]
    result = run_dbt(argv, url)
    assert result.success, f"dbt {' '.join(argv)} failed: {result.exception}"


def _write(url: str, days: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        sample.write_sample(conn, days=days, pairs=PAIRS)


def _punch_holes(url: str, day: str) -> None:
    """Related pairs miss bars the pair has: an hour of gbpusd, every 20th minute of
    usdjpy, a morning of eurchf, and the pair itself misses a few minutes that usdcad has."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "delete from raw.m1_bars where pair = 'gbpusd'"
            " and ts_utc >= %(d)s::timestamptz + interval '10 hours' and ts_utc < %(d)s::timestamptz + interval '11 hours'"
            " or pair = 'usdjpy' and ts_utc >= %(d)s::timestamptz and ts_utc < %(d)s::timestamptz + interval '1 day'"
            " and extract(minute from ts_utc)::int %% 20 = 7"
            " or pair = 'eurchf' and ts_utc >= %(d)s::timestamptz + interval '6 hours'"
            " and ts_utc < %(d)s::timestamptz + interval '12 hours'"
            " or pair = 'eurusd' and ts_utc >= %(d)s::timestamptz + interval '15 hours'"
            " and ts_utc < %(d)s::timestamptz + interval '15 hours 4 minutes'",
            {"d": f"{day} 00:00:00+00"},
        )


def _snapshot(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        conn.execute("set extra_float_digits = 3")
        return conn.execute(f"select t::text from bqx.{MODEL} as t order by ts_utc").fetchall()


@pytest.mark.slow
def test_build_contract_crosscheck_and_corruption(bqx_env: str) -> None:
    url = bqx_env
    _write(url, days=2)
    _punch_holes(url, "2024-07-02")
    _dbt(url)
    tested = run_dbt(["test", "--select", MODEL], url)  # contract, grain and row tests
    assert tested.success and len(tested.result) == 4

    with psycopg.connect(url) as conn:
        # PostgreSQL's corr() is NULL only for a constant series of zeros; constant
        # non-zero series give rounding noise, hence the exact change counts
        noise = conn.execute(
            "select corr(y, x) from (select 0.1::float8 as y, g::float8 as x"
            " from generate_series(1, 120) as g) as s"
        ).fetchone()[0]
        zeros = conn.execute(
            "select corr(y, x) from (select 0.0::float8 as y, g::float8 as x"
            " from generate_series(1, 120) as g) as s"
        ).fetchone()[0]
        assert zeros is None
        flat = conn.execute(
            f"select count(*) filter (where corr_quad_lin_bqx_60min is null"
            f"     and cov_quad_lin_bqx_60min = 0),"
            f" count(*) filter (where corr_base_pairs_15min is not null),"
            f" count(*) filter (where rel_strength_quote is not null)"
            f" from bqx.{MODEL}"
        ).fetchone()
        assert flat[0] > 0 and flat[1] > 0 and flat[2] > 0

        report = check_correlation(conn, [PAIR], sample=0)
        assert report["problems"] == []
        assert report["passed"], json.dumps(report["worst_rows"][:3], indent=1)
        assert report["rows_checked"] > 2500
        assert report["columns"]["corr_quote_pairs_120min"]["checked"] > 1000
        print(f"corr() of 120 x 0.1: {noise!r}; max ratio {report['max_ratio']}")

    # corrupt one correlation by 1e-6 and one covariance to NULL: both are caught
    with psycopg.connect(url, autocommit=True) as conn:
        ts = conn.execute(
            f"select ts_utc from bqx.{MODEL} where corr_base_pairs_60min is not null"
            f" order by ts_utc offset 1000 limit 1"
        ).fetchone()[0]
        conn.execute(
            f"update bqx.{MODEL} set corr_base_pairs_60min = corr_base_pairs_60min"
            f" + 1e-6 where ts_utc = %s",
            (ts,),
        )
        ts2 = conn.execute(
            f"select ts_utc from bqx.{MODEL} where cov_resid_lin_bqx_630min is not null"
            f" order by ts_utc desc limit 1"
        ).fetchone()[0]
        conn.execute(
            f"update bqx.{MODEL} set cov_resid_lin_bqx_630min = null where ts_utc = %s", (ts2,)
        )
        report = check_correlation(conn, [PAIR], sample=0)
    assert not report["passed"]
    bad = report["columns"]["corr_base_pairs_60min"]
    assert bad["breaches"] == 1 and bad["worst"]["ts_utc"] == ts.isoformat()
    assert 5 < bad["max_ratio"] < 20  # 1e-6 against a tolerance of 1e-7
    assert report["columns"]["cov_resid_lin_bqx_630min"]["null_mismatches"] == 1
    assert report["columns"]["cov_resid_lin_bqx_60min"]["breaches"] == 0


@pytest.mark.slow
def test_incremental_append_equals_full_refresh(bqx_env: str) -> None:
    url = bqx_env
    _write(url, days=2)
    _punch_holes(url, "2024-07-02")
    _dbt(url)
    before = _snapshot(url)
    with psycopg.connect(url, autocommit=True) as conn:
        added = sample.append_days(conn, days=1, pairs=PAIRS)
    assert sum(a for _, a in added.values()) > 10_000
    _punch_holes(url, "2024-07-03")
    _dbt(url)
    incremental = _snapshot(url)
    assert incremental[: len(before)] == before  # stored rows untouched
    assert len(incremental) > len(before) + 1000
    _dbt(url, "--full-refresh")
    full = _snapshot(url)
    assert len(full) == len(incremental)
    diff = [i for i, (a, b) in enumerate(zip(incremental, full, strict=True)) if a != b]
    assert not diff, f"{len(diff)} rows differ from a full refresh, first {full[diff[0]]}"
    # reprocess_from recomputes the tail the same way
    _dbt(url, vars_={"reprocess_from": "2024-07-03 09:00:00+00"})
    assert _snapshot(url) == full


@pytest.mark.slow
def test_compile_time_checks(bqx_env: str, capfd: pytest.CaptureFixture[str]) -> None:
    def inline(base: str, windows: str = "[60]") -> str:
        quote = ", ".join(
            f"{{'pair': '{r}', 'momentum': ref('bqx_{r}'), 'sign': {s}}}"
            for r, s in related_pairs(PAIR)["quote"]
        )
        return (
            f"{{{{ bqx_correlations(source=ref('reg_bqx_{PAIR}'), momentum=ref('bqx_{PAIR}'),"
            f" pair='{PAIR}', base_related=[{base}], quote_related=[{quote}],"
            f" term_windows={windows}, pair_windows=[15]) }}}}"
        )

    def fails_with(query: str, message: str) -> None:
        capfd.readouterr()
        result = run_dbt(["compile", "--inline", query], bqx_env)
        out = capfd.readouterr().out
        assert not result.success and message in out, out[-2000:]

    fails_with(
        inline("{'pair': 'euraud', 'momentum': ref('bqx_euraud'), 'sign': -1}"),
        "the sign of euraud for eurusd must be 1",
    )
    fails_with(
        inline("{'pair': 'gbpusd', 'momentum': ref('bqx_gbpusd'), 'sign': 1}"),
        "gbpusd is not base-related to eurusd",
    )
    fails_with(
        inline("{'pair': 'euraud', 'momentum': ref('bqx_euraud'), 'sign': 1}", "[60, 1]"),
        "must be an integer >= 2",
    )


def test_crosscheck_module_documents_tolerances() -> None:
    doc = crosscheck_correlation.__doc__ or ""
    assert "1e-9 * max|x| * max|y|" in doc and "1e-7" in doc
