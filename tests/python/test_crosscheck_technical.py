"""The technical/bollinger cross-check (py_tasks/crosscheck_technical.py).

Pure-Python tests of the reference helpers (the vectorised ta ulcer index against ta
itself, TA-Lib's behaviour on flat and near-flat inputs that the skip logic relies
on, the definitions of TA-Lib's AO, MASSI, VORTEX, CMF, EFI, PVT and NVI that the SQL
follows), the tolerance classes and the skip logic; then one end-to-end run against a
database where the two tables are written from the references (the SQL families
are checked the same way once they are built).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from ta.volatility import UlcerIndex

from py_tasks import crosscheck_technical as ct


def _bars(n: int = 3000, seed: int = 7) -> ct.Inputs:
    """Rate-index-like bars rounded to a pip grid (many equal prices, ties and flat
    bars), with a flat stretch, a stretch of zero volume and an isolated zero."""
    rng = np.random.default_rng(seed)
    c = np.round(100 * np.exp(np.cumsum(rng.standard_normal(n) * 2e-4)), 3)
    c[400:460] = c[400]  # flat
    o = np.concatenate([c[:1], c[:-1]])
    h = np.maximum(o, c) + np.round(rng.random(n) * 0.004, 3)
    lo = np.minimum(o, c) - np.round(rng.random(n) * 0.004, 3)
    h[400:460] = lo[400:460] = o[401:460 + 1] = c[400]
    o[400] = c[400]
    v = rng.integers(0, 40, n).astype(float)
    v[1000:1300] = 0.0
    bqx = np.full(n, np.nan)
    r = np.diff(c, prepend=c[0]) / c
    bqx[15:] = np.convolve(r, np.ones(15))[15:n]
    bqx[400 + 15:460] = 0.0
    return ct.Inputs(np.arange(n, dtype=np.int64) * 60_000_000, o, h, lo, c, v, bqx)


# ----------------------------------------------------------------------------- ta equivalents
@pytest.mark.parametrize("window", [14, 5])
def test_ulcer_index_equals_ta(window: int) -> None:
    inp = _bars(4000)
    expected = UlcerIndex(pd.Series(inp.close), window).ulcer_index().to_numpy()
    got = ct.ulcer_index(inp.close, window)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)
    assert np.all(got[400 + 2 * window:460] == 0.0)  # flat long enough: exactly 0


def test_aroon_earliest_equals_talib_without_ties() -> None:
    rng = np.random.default_rng(1)
    h = 100 + np.cumsum(rng.standard_normal(2000))
    lo = h - rng.random(2000) - 0.01
    down, up = talib.AROON(h, lo, 25)
    e_down, e_up = ct.aroon_earliest(h, lo, 25)
    np.testing.assert_allclose(e_up, up, rtol=0, atol=1e-12)
    np.testing.assert_allclose(e_down, down, rtol=0, atol=1e-12)


def test_talib_aroon_takes_the_most_recent_extreme() -> None:
    h = np.array([1, 2, 3, 2, 3, 1, 1, 1.0])
    down, up = talib.AROON(h, h - 1, 3)
    e_down, e_up = ct.aroon_earliest(h, h - 1, 3)
    assert up[4] == 100.0 and e_up[4] == pytest.approx(100 / 3)  # highs equal at 2 and 4
    assert down[7] == 100.0 and e_down[7] == pytest.approx(100 / 3)


def test_exact_mean_std() -> None:
    rng = np.random.default_rng(2)
    y = 100 + rng.standard_normal(500)
    y[100:200] = 100.1234567
    mean, std = ct.exact_mean_std(y, 20)
    assert np.all(np.isnan(mean[:19]))
    for t in (19, 57, 250, 499):
        np.testing.assert_allclose(mean[t], y[t - 19:t + 1].mean(), rtol=1e-15)
        np.testing.assert_allclose(std[t], y[t - 19:t + 1].std(), rtol=1e-12)
    assert np.all(std[119:200] == 0.0) and np.all(mean[119:200] == 100.1234567)


# ----------------------------------------------------------------------------- TA-Lib behaviour
def test_talib_zero_threshold_is_1e_14() -> None:
    """The threshold behind TA_ZERO: RSI is 0 once G + L < 1e-14."""
    def rsi_last(step: float) -> float:
        x = 100 + np.cumsum(np.r_[0, np.tile([step, -step], 20)])
        return float(talib.RSI(x, 14)[-1])

    assert rsi_last(1e-15) == 0.0  # Wilder sums ~1e-15 < 1e-14
    assert rsi_last(1e-13) > 40.0
    assert ct.TA_ZERO == 1e-14


def test_talib_bbands_is_rounding_noise_on_a_flat_window() -> None:
    """BBANDS' mean(x^2) - mean^2: on a flat window the band differs from the value,
    the exact centred statistics do not; the reference then falls back to them."""
    x = np.full(40, 100.1234567)
    upper, middle, lower = talib.BBANDS(x, 20, 2, 2, 0)
    assert upper[-1] != x[-1]  # TA-Lib's running sums: not exactly the value
    inp = ct.Inputs(np.arange(40) * 60_000_000, x, x, x, x, np.zeros(40), np.full(40, np.nan))
    group = next(ct.bollinger_references(inp, [20]))
    ref = group["bb_rate_20_upper"]
    assert ref.exact[-1] == x[-1]
    rows = np.arange(19, 40)
    judged = ct.judge(ref, rows, x[rows], np.zeros(len(rows), dtype=bool))
    # within tolerance of TA-Lib here, so TA-Lib stays the reference; the exact answer passes
    assert not judged.imprecise.any() and not judged.skipped.any()
    assert ct._ratio(judged.expected, judged.tolerance, x[rows],
                     np.zeros(len(rows), dtype=bool)).max() < 1e-3
    # against a tolerance far below TA-Lib's rounding, its stdev is "imprecise"
    rng = np.random.default_rng(0)
    y = 1e-3 + np.round(rng.standard_normal(200), 1) * 1e-12
    noisy = ct._finite(talib.BBANDS(y, 20, 2, 2, 0)[0])
    mean, std = ct.exact_mean_std(y, 20)
    ref = ct._with_exact(noisy, mean + 2 * std, np.full(200, 1e-9 * 1e-3 * 1e-6))
    assert ref.imprecise[19:].any()
    # pct_b: upper == lower exactly, so NULL; TA-Lib's noise would give a value
    pct = group["bb_rate_20_pct_b"]
    assert np.all(np.isnan(pct.exact[rows]))
    null = np.ones(len(rows), dtype=bool)
    judged = ct.judge(pct, rows, np.full(len(rows), np.nan), null)
    assert np.all(np.isnan(judged.expected))


def test_talib_flat_windows_give_zero() -> None:
    x = np.full(60, 100.7)
    for f in (lambda: talib.RSI(x, 14), lambda: talib.CCI(x, x, x, 20),
              lambda: talib.WILLR(x, x, x, 14), lambda: talib.ADX(x, x, x, 14),
              lambda: talib.STOCH(x, x, x, 14, 3, 0, 3, 0)[0],
              lambda: talib.ULTOSC(x, x, x, 7, 14, 28), lambda: talib.MFI(x, x, x, x, 14)):
        out = f()
        assert out[-1] == 0.0


def _ema_sma_seeded(x: np.ndarray, period: int, first: int) -> np.ndarray:
    """TA-Lib's EMA of x[first:]: the SMA of its first ``period`` values (summed in bar
    order), then e + k * (x - e), k = 2 / (period + 1); NaN before the seed."""
    out = np.full(len(x), np.nan)
    seed = first + period - 1
    total = 0.0
    for i in range(first, seed + 1):
        total += x[i]
    e = total / period
    out[seed] = e
    k = 2.0 / (period + 1)
    for i in range(seed + 1, len(x)):
        e = e + k * (x[i] - e)
        out[i] = e
    return out


def test_talib_massi_efi_definitions() -> None:
    """What the SQL follows: MASSI's two EMA(9) each seeded with the SMA of its first 9
    inputs (EMA1 at bar 8, EMA2 at bar 16), the 25-bar sum of EMA1/EMA2 from bar 40;
    EFI = EMA(13) of (close - previous close) * volume seeded at bar 13 with the SMA of
    the first 13 terms (bars 1..13). Not `ta`'s seeding with the first value."""
    inp = _bars(600)
    h, lo, c, v = inp.high, inp.low, inp.close, inp.volume
    e1 = _ema_sma_seeded(h - lo, 9, 0)
    e2 = _ema_sma_seeded(e1, 9, 8)
    ratio = np.where(e2 == 0, 1.0, e1 / e2)
    mass = np.full(len(h), np.nan)
    mass[40:] = np.convolve(ratio[16:], np.ones(25), "valid")
    got = talib.MASSI(h, lo, 9, 25)
    assert np.isnan(got[:40]).all() and not np.isnan(got[40:]).any()
    np.testing.assert_allclose(got[40:], mass[40:], rtol=1e-13)
    force = np.r_[np.nan, np.diff(c) * v[1:]]
    got = talib.EFI(c, v, 13)
    assert np.isnan(got[:13]).all() and not np.isnan(got[13:]).any()
    np.testing.assert_allclose(got[13:], _ema_sma_seeded(force, 13, 1)[13:], rtol=1e-12,
                               atol=1e-12 * np.abs(force[1:]).max())


def test_talib_vortex_cmf_pvt_nvi_definitions() -> None:
    """VORTEX: sums over the 14 bars ending at t (from bar 14), 0 where the true ranges
    sum to 0; CMF: from bar 19, 0 where the 20 volumes sum to 0; PVT: 0 on the first
    bar, then + (c - cp) / cp * v; NVI: 1000, then x + (c - cp) / cp * x on a volume
    fall; AO: SMA5 - SMA34 of (h + l) / 2 from bar 33."""
    inp = _bars(800)
    h, lo, c, v = inp.high, inp.low, inp.close, inp.volume
    n = len(c)
    cp = np.r_[np.nan, c[:-1]]
    tr = np.fmax(h - lo, np.fmax(np.abs(h - cp), np.abs(lo - cp)))
    vmp, vmm = np.abs(h - np.r_[np.nan, lo[:-1]]), np.abs(lo - np.r_[np.nan, h[:-1]])
    s_tr, s_p, s_m = (np.convolve(x[1:], np.ones(14), "valid") for x in (tr, vmp, vmm))
    with np.errstate(divide="ignore", invalid="ignore"):
        vp, vm = (np.where(s_tr > 0, x / s_tr, 0.0) for x in (s_p, s_m))
    got_p, got_m = talib.VORTEX(h, lo, c, 14)
    assert np.isnan(got_p[:14]).all() and not np.isnan(got_p[14:]).any()
    np.testing.assert_allclose(got_p[14:], vp, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_m[14:], vm, rtol=1e-9, atol=1e-12)
    assert (got_p[400 + 14:460] == 0).all() and (got_m[400 + 14:460] == 0).all()  # flat
    with np.errstate(divide="ignore", invalid="ignore"):
        mfv = np.where(h - lo > 0, ((c - lo) - (h - c)) / (h - lo) * v, 0.0)
    s_mfv, s_v = np.convolve(mfv, np.ones(20), "valid"), np.convolve(v, np.ones(20), "valid")
    with np.errstate(divide="ignore", invalid="ignore"):
        cmf = np.where(s_v > 0, s_mfv / s_v, 0.0)
    got = talib.CMF(h, lo, c, v, 20)
    assert np.isnan(got[:19]).all()
    np.testing.assert_allclose(got[19:], cmf, rtol=1e-9, atol=1e-12)
    pvt = np.r_[0.0, np.cumsum((c[1:] - c[:-1]) / c[:-1] * v[1:])]
    np.testing.assert_allclose(talib.PVT(c, v), pvt, rtol=1e-12, atol=1e-12)
    nvi = np.empty(n)
    nvi[0] = 1000.0
    for i in range(1, n):
        r = (c[i] - c[i - 1]) / c[i - 1]
        nvi[i] = nvi[i - 1] + r * nvi[i - 1] if v[i] < v[i - 1] else nvi[i - 1]
    np.testing.assert_array_equal(talib.NVI(c, v), nvi)
    mid = (h + lo) / 2.0
    ao = np.convolve(mid, np.ones(5) / 5, "valid")[29:] - np.convolve(mid, np.ones(34) / 34,
                                                                       "valid")
    got = talib.AO(h, lo, 5, 34)
    assert np.isnan(got[:33]).all()
    np.testing.assert_allclose(got[33:], ao, rtol=0, atol=1e-12)


def test_talib_flat_history_and_zero_volume_give_numbers() -> None:
    """Where `ta` gave NaN, TA-Lib gives numbers: MASSI 25 (every ratio 1, EMA2 = 0) on
    a flat history, VORTEX 0, CMF 0 without volume, PVT 0 from the first bar."""
    x = np.full(80, 100.7)
    zero = np.zeros(80)
    assert (talib.MASSI(x, x, 9, 25)[40:] == 25.0).all()
    assert all((out[14:] == 0.0).all() for out in talib.VORTEX(x, x, x, 14))
    assert (talib.CMF(x + 1, x - 1, x, zero, 20)[19:] == 0.0).all()
    assert (talib.EFI(x, zero, 13)[13:] == 0.0).all()
    assert (talib.PVT(x, zero) == 0.0).all() and (talib.NVI(x, zero) == 1000.0).all()
    # AO: TA-Lib's running sums leave rounding noise on a flat window (the table: exactly 0)
    assert np.abs(talib.AO(x, x, 5, 34)[33:]).max() < 1e-12


# ----------------------------------------------------------------------------- columns
def test_column_lists() -> None:
    tech = ct.technical_columns([10, 20, 50, 100, 200])
    assert len(tech) == 53 == len(set(tech))
    assert tech[:3] == ["sma_10", "sma_20", "sma_50"] and tech[-1] == "bqx_macd_hist"
    bb = ct.bollinger_columns([20, 30, 60, 120])
    assert len(bb) == 40 == len(set(bb))
    assert bb[:6] == ["bb_rate_20_upper", "bb_rate_20_middle", "bb_rate_20_lower",
                      "bb_rate_20_width", "bb_rate_20_pct_b", "bb_bqx_20_upper"]


def test_references_cover_every_column_and_zero_volume() -> None:
    inp = _bars(1500)
    inp.volume[:] = 0.0  # HistData: no volume
    refs = {}
    for group in ct.technical_references(inp, [10, 20, 50, 100, 200]):
        refs.update(group)
    assert list(refs) == ct.technical_columns([10, 20, 50, 100, 200])
    for name, ref in refs.items():
        assert ref.expected.shape == ref.tolerance.shape == (1500,), name
        assert np.all(ref.tolerance > 0), name
    assert np.all(refs["obv"].expected == 0.0)
    assert np.all(refs["ad"].expected == 0.0)
    assert np.all(refs["mfi_14"].expected[14:] == 0.0)
    # no volume: TA-Lib's CMF is 0 (not NaN), force index and PVT 0, NVI 1000
    assert np.all(np.isnan(refs["cmf_20"].expected[:19]))
    assert np.all(refs["cmf_20"].expected[19:] == 0.0)
    assert np.all(refs["force_13"].expected[13:] == 0.0)
    assert np.all(refs["vpt"].expected == 0.0)
    assert np.all(refs["nvi"].expected == 1000.0)
    assert not np.isnan(refs["mass_index"].expected[40:]).any()
    assert not np.isnan(refs["vortex_pos_14"].expected[14:]).any()
    # the return's warm-up: bqx_ columns start after its first value
    first = inp.first_bqx()
    assert first == 15
    assert np.all(np.isnan(refs["bqx_rsi_14"].expected[:first + 14]))
    assert not np.isnan(refs["bqx_rsi_14"].expected[first + 14])
    assert np.all(np.isnan(refs["bqx_macd_signal"].expected[:first + 33]))
    bb = {}
    for group in ct.bollinger_references(inp, [20, 30, 60, 120]):
        bb.update(group)
    assert list(bb) == ct.bollinger_columns([20, 30, 60, 120])
    assert np.isnan(bb["bb_bqx_20_middle"].expected[first + 18])
    assert not np.isnan(bb["bb_bqx_20_middle"].expected[first + 19])


# ----------------------------------------------------------------------------- tolerances
def test_tolerance_classes() -> None:
    s = 150.0
    assert ct.price_tol(2, s)[0] == pytest.approx(1.5e-7)
    assert ct.bounded_tol(2, s)[0] == 1e-7
    np.testing.assert_allclose(ct.ratio_tol(np.array([0.0, 5.0, -300.0, np.nan]), s),
                               [1e-7, 5e-7, 3e-5, 1e-7])
    cum = ct.cumulative_tol(np.array([0.0, 10.0, np.nan, -5e3, 1.0]), s)
    np.testing.assert_allclose(cum, [1e-9, 1e-8, 1e-8, 5e-6, 5e-6])
    # the absolute floor 1e-15 * s
    assert ct.ratio_tol(np.array([0.0]), 1e10)[0] == pytest.approx(1e-5)


def test_knife_edge() -> None:
    den = np.array([0.0, 1e-3, 1e-9, 5e-15, 1.0000000000001e-14, np.nan])
    edge = ct.knife_edge(den, 2.8e-12, 1e-7, threshold=1e-14, denominator_step=2e-15)
    # exact zero: fixed answer; large denominator: stable; 1e-9: moves 2.8e-3 > 1e-7;
    # 5e-15 + 2e-15 stays below the zero threshold (answer stays 0); just above it: edge
    assert edge.tolist() == [False, False, True, False, True, False]


def test_spread_and_from_first() -> None:
    m = np.array([False, True, False, False, False, True, False])
    assert ct._spread(m, 2).tolist() == [False, True, True, True, False, True, True]
    assert ct._from_first(m).tolist() == [False] + [True] * 6


def _ref(expected: list[float], tol: float = 1e-7, **kw) -> ct.Reference:
    e = np.array(expected, dtype=float)
    return ct.Reference(e, np.full(len(e), tol), **kw)


def _judge(ref: ct.Reference, got: list[float | None]) -> ct.Judged:
    g = np.array([np.nan if x is None else x for x in got])
    return ct.judge(ref, np.arange(len(g)), g, np.isnan(g))


def test_judge_plain_and_null_rules() -> None:
    j = _judge(_ref([1.0, np.nan, 2.0]), [1.0 + 5e-8, None, 2.0])
    assert not j.skipped.any() and not j.imprecise.any()
    ratio = ct._ratio(j.expected, j.tolerance, np.array([1.0, np.nan, 3.0]),
                      np.array([False, True, False]))
    assert ratio[0] == 0 and ratio[1] == 0 and ratio[2] > 1
    # NULL on one side only is a breach (inf)
    assert np.isinf(ct._ratio(np.array([1.0]), np.array([1.0]), np.array([np.nan]),
                              np.array([True])))[0]
    assert np.isinf(ct._ratio(np.array([np.nan]), np.array([1.0]), np.array([1.0]),
                              np.array([False])))[0]


def test_judge_knife_edge_skips_only_breaching_rows() -> None:
    edge = np.array([True, True, False])
    j = _judge(_ref([10.0, 10.0, 10.0], knife_edge=edge), [10.0, 11.0, 11.0])
    assert j.skipped.tolist() == [False, True, False]  # row 2 is a real breach


def test_judge_alternatives() -> None:
    alt = np.array([50.0, 40.0, 20.0])
    j = _judge(_ref([50.0, 50.0, 50.0], alternatives=[alt]), [50.0, 40.0, 30.0])
    assert j.skipped.tolist() == [False, True, False]


def test_judge_imprecise_reference_uses_exact() -> None:
    exact = np.array([1.0, 2.0, np.nan])
    ref = ct._with_exact(np.array([1.0, 2.0 + 1e-3, 1e-17]), exact, np.full(3, 1e-9))
    assert ref.imprecise.tolist() == [False, True, True]
    j = _judge(ref, [1.0, 2.0, None])
    assert j.imprecise.tolist() == [False, True, True]
    assert ct._ratio(j.expected, j.tolerance, np.array([1.0, 2.0, np.nan]),
                     np.array([False, False, True])).max() == 0.0


def test_adx_ties_give_alternatives() -> None:
    inp = _bars(800)
    h, lo = inp.high, inp.low
    up, down = np.diff(h), -np.diff(lo)
    ties = np.flatnonzero((up == down) & (up > 0)) + 1
    assert len(ties), "the pip grid should produce up-move = down-move ties"
    group = ct._adx_group(h, lo, inp.close, float(np.spacing(inp.scale)),
                          ct.bounded_tol(inp.n, inp.scale))
    assert len(group["plus_di_14"].alternatives) == 2
    t = ties[ties > 30][0]
    pdi = group["plus_di_14"]
    # breaking the tie up gives +DM = the move: +DI rises at the tie
    assert pdi.alternatives[0][t] > pdi.expected[t]


# ----------------------------------------------------------------------------- end to end
def _write_table(conn, table: str, ts_us: np.ndarray, refs: dict[str, ct.Reference]) -> None:
    from psycopg import sql

    from py_tasks.config import schema

    cols = list(refs)
    conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema(), table)))
    conn.execute(sql.SQL("create table {} (ts_utc timestamptz primary key, {})").format(
        sql.Identifier(schema(), table),
        sql.SQL(", ").join(sql.SQL("{} double precision").format(sql.Identifier(c))
                           for c in cols)))
    values = np.column_stack([refs[c].expected if refs[c].exact is None else
                              np.where(refs[c].imprecise, refs[c].exact, refs[c].expected)
                              for c in cols])
    with conn.cursor().copy(sql.SQL("copy {} from stdin").format(
            sql.Identifier(schema(), table))) as copy:
        for i, us in enumerate(ts_us.tolist()):
            row = [ct._to_datetime(us)] + [None if np.isnan(x) else float(x)
                                           for x in values[i]]
            copy.write_row(row)


@pytest.mark.slow
def test_end_to_end_against_tables_written_from_the_references(bqx_env: str, capsys) -> None:
    """The DB path: inputs read from the built rate_index and bqx_{pair}, the tables
    compared every row and sampled; a corrupted value fails; a missing table is
    reported as not built."""
    import psycopg

    from py_tasks import cli
    from py_tasks.crosscheck import run_crosscheck
    from py_tasks.dbtcmd import run_dbt
    from py_tasks.load import BAR_DTYPE, ensure_raw_table, load_bars

    n = 1200
    rng = np.random.default_rng(5)
    close = np.round(1.1 * np.exp(np.cumsum(rng.standard_normal(n) * 2e-4)), 5)
    close[300:340] = close[300]  # a flat stretch
    data = np.empty(n, dtype=BAR_DTYPE)
    data["ts_utc"] = np.datetime64("2024-06-30T12:00", "us") + np.arange(n).astype(
        "timedelta64[m]")
    data["close"] = close
    data["open"] = np.concatenate([close[:1], close[:-1]])
    data["high"] = np.maximum(data["open"], close) + np.round(rng.random(n) * 3e-5, 5)
    data["low"] = np.minimum(data["open"], close) - np.round(rng.random(n) * 3e-5, 5)
    data["volume"] = rng.integers(0, 9, n)
    data["volume"][::50] = -1  # stored as NULL: read as 0
    with psycopg.connect(bqx_env, autocommit=True) as conn:
        ensure_raw_table(conn)
        load_bars(conn, {"eurusd": data})
    argv = ["build", "--select", "+bqx_eurusd", "--exclude-resource-type", "test", "unit_test"]
    result = run_dbt(argv, bqx_env)
    assert result.success, f"dbt {' '.join(argv)} failed: {result.exception}"
    with psycopg.connect(bqx_env, autocommit=True) as conn:
        from py_tasks.crosscheck_common import built_tables

        tables = built_tables(conn)
        inp, problems = ct.read_inputs(conn, "eurusd", tables)
        assert inp.n == n and not problems
        assert np.isnan(inp.bqx[:15]).all() and not np.isnan(inp.bqx[15:]).any()
        tech, bb = {}, {}
        for g in ct.technical_references(inp):
            tech.update(g)
        for g in ct.bollinger_references(inp):
            bb.update(g)
        _write_table(conn, "technical_eurusd", inp.ts_us, tech)
        _write_table(conn, "bollinger_eurusd", inp.ts_us, bb)
        for sample in (0, 50):
            report = run_crosscheck(conn, ["technical", "bollinger"], ["eurusd"], sample=sample)
            assert report.passed, report.summary_text()
            assert report.families["technical"].rows_checked == (n if sample == 0 else
                                                                 report.families[
                                                                     "technical"].rows_checked)
            assert len(report.families["bollinger"].columns) == 40
        conn.execute("update bqx.technical_eurusd set rsi_14 = rsi_14 + 1e-5 "
                     "where ts_utc = (select max(ts_utc) from bqx.technical_eurusd)")
        report = run_crosscheck(conn, ["technical"], ["eurusd"], sample=10)
        assert not report.passed and "rsi_14" in report.breaches()[0]
        conn.execute("drop table bqx.bollinger_eurusd")
    code = cli.main(["crosscheck", "--family", "technical,bollinger", "--pairs", "eurusd",
                     "--sample", "all"])
    out = capsys.readouterr()
    assert code != 0 and "rsi_14" in out.out + out.err
    assert "bollinger_eurusd" in out.out  # not built (skipped)
