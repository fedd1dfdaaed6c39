"""Cross-check of the ``technical`` and ``bollinger`` families against TA-Lib and ``ta``.

The references are fed the inputs as stored in the database: the pair's bar from the
``rate_index`` model (open_index, high_index, low_index, rate_index and volume, a NULL
volume read as 0) in ts_utc order, and ``w15_bqx_return`` of ``bqx_{pair}``. Every
indicator is computed over the pair's whole history with TA-Lib (``ta-lib`` 0.8.2,
unstable period 0) or, for the two it does not have (the ulcer index and ease of
movement), the ``ta`` package 0.11.0, and compared with the table on the checked rows
(``sample`` random rows plus warm-ups, gaps, flat stretches and the last rows; or every
row). ``ta``'s ulcer index, too slow on millions of rows, is replaced by a vectorised
equivalent that follows ta 0.11.0 exactly; a test proves them equal.

Tolerance classes (see ``docs/crosscheck.md``): price-scale outputs within
``1e-9 * s`` (s = max |input| over the pair's history), bounded oscillators within
``1e-7``, unbounded ratios within ``1e-7 * max(1, |value|)``, cumulative and
volume-scaled outputs within ``1e-9 * max(1, largest |value| so far)``; bollinger bands
``1e-9 * s``, ``_pct_b`` ``1e-6``, ``_width`` ``1e-6 * max(1, |value|)``. Every
tolerance is at least ``1e-15 * s``.

Three kinds of rows are not judged against the plain reference, and are counted:

* knife-edge rows (``ColumnResult.skipped``), only when the table differs from the
  reference there: rows whose reference value moves by more than the tolerance when
  an input moves by one unit in the last place (a near-zero denominator, a range or
  a Wilder sum near TA-Lib's zero threshold, a near tie of typical prices), or where
  the table matches the reference recomputed with the tie broken the other way
  (ADX/DI up-move = down-move ties, equal highs or lows in AROON's window);
* reference-imprecise rows (``ColumnResult.imprecise``): where TA-Lib's BBANDS, whose
  variance is mean(x^2) - mean^2 from running sums, is itself further than the
  tolerance from an exact centred numpy computation; the table is compared with the
  exact value there.

API: ``check_technical_families(conn, families, pairs, sample, seed, tail=..., tables=...)
-> dict[family, FamilyResult]``; the reference builders ``technical_references`` and
``bollinger_references`` yield ``{column: Reference}`` groups for given ``Inputs``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from psycopg import sql

from . import families
from .config import all_pairs, dbt_vars, schema
from .crosscheck_common import (
    _UNIX_EPOCH,
    ColumnResult,
    FamilyResult,
    Run,
    _Accumulator,
    _fetch_rows,
    _fmt_ts,
    _to_datetime,
    built_tables,
    copy_floats,
    finished,
)
from .errors import BqxError

TECHNICAL = "technical"
BOLLINGER = "bollinger"
FAMILIES = families.checked_by(__name__)  # (TECHNICAL, BOLLINGER): the registry's order
READS_RAW_BARS = False  # reads the rate_index model and bqx_{pair}
RETURN_COLUMN = "w15_bqx_return"
DEFAULT_MA_WINDOWS = (10, 20, 50, 100, 200)
DEFAULT_BOLLINGER_WINDOWS = (20, 30, 60, 120)
BB_STATS = ("upper", "middle", "lower", "width", "pct_b")
BB_SOURCES = ("rate", "bqx")

PRICE_TOL = 1e-9  # x s
BOUNDED_TOL = 1e-7  # absolute
RATIO_TOL = 1e-7  # x max(1, |value|)
CUMULATIVE_TOL = 1e-9  # x max(1, largest |value| so far)
BAND_TOL = 1e-9  # x s
PCT_B_TOL = 1e-6
WIDTH_TOL = 1e-6  # x max(1, |value|)
FLOOR_TOL = 1e-15  # x s, the floor of every tolerance
TA_ZERO = 1e-14  # TA-Lib 0.8.2's TA_IS_ZERO threshold (found empirically, see the tests)
_CHUNK = 1 << 16  # windows per vectorised block
BATCH_COLUMNS = 12  # columns read per COPY of a whole table (--sample all)


# ----------------------------------------------------------------------------- inputs
@dataclass
class Inputs:
    """One pair's stored inputs in bar order (float64; NaN where the return is NULL)."""

    ts_us: np.ndarray  # Unix microseconds
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # NULL read as 0
    bqx: np.ndarray  # w15_bqx_return aligned to the bars (NaN: NULL or no row)

    @property
    def n(self) -> int:
        return len(self.close)

    @property
    def scale(self) -> float:
        """s of the price-scale outputs: max |open, high, low, close| over the history."""
        if self.n == 0:
            return 0.0
        return float(max(np.abs(a).max() for a in (self.open, self.high, self.low, self.close)))

    @property
    def bqx_scale(self) -> float:
        finite = self.bqx[np.isfinite(self.bqx)]
        return float(np.abs(finite).max()) if len(finite) else 0.0

    def first_bqx(self) -> int:
        """Position of the first non-NULL w15_bqx_return (n if none)."""
        ok = np.flatnonzero(~np.isnan(self.bqx))
        return int(ok[0]) if len(ok) else self.n


@dataclass
class Reference:
    """The reference of one column over the whole history, and how to judge it."""

    expected: np.ndarray  # NaN: NULL expected (the reference gave NaN or +-inf)
    tolerance: np.ndarray
    # rows whose answer moves by more than the tolerance under a one-ulp input move:
    # a row there that differs from ``expected`` is skipped (counted), not a breach
    knife_edge: np.ndarray | None = None
    # the reference with a tie broken the other way: a row that differs from
    # ``expected`` but matches one of these is skipped (counted)
    alternatives: list[np.ndarray] = field(default_factory=list)
    # where the reference itself is imprecise: compare with ``exact`` there (counted)
    imprecise: np.ndarray | None = None
    exact: np.ndarray | None = None


def _finite(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(np.isfinite(x), x, np.nan)


# ----------------------------------------------------------------------------- tolerances
def price_tol(n: int, s: float) -> np.ndarray:
    return np.full(n, max(PRICE_TOL * s, FLOOR_TOL * s))


def bounded_tol(n: int, s: float) -> np.ndarray:
    return np.full(n, max(BOUNDED_TOL, FLOOR_TOL * s))


def ratio_tol(values: np.ndarray, s: float, rel: float = RATIO_TOL) -> np.ndarray:
    mag = np.where(np.isfinite(values), np.abs(values), 0.0)
    return np.maximum(rel * np.maximum(1.0, mag), FLOOR_TOL * s)


def cumulative_tol(values: np.ndarray, s: float) -> np.ndarray:
    """1e-9 * max(1, largest |reference value| up to and including the row)."""
    mag = np.where(np.isfinite(values), np.abs(values), 0.0)
    so_far = np.maximum.accumulate(mag) if len(mag) else mag
    return np.maximum(CUMULATIVE_TOL * np.maximum(1.0, so_far), FLOOR_TOL * s)


def knife_edge(denominator: np.ndarray, numerator_step: Any, tolerance: Any,
               threshold: float = 0.0, denominator_step: Any = 0.0) -> np.ndarray:
    """Rows where ``numerator_step / denominator`` (how far the value moves when an
    input moves by one ulp) exceeds ``tolerance``. An exactly zero denominator is not
    a knife edge (the answer is fixed: 0 or NULL), nor is one that stays below the
    reference's zero ``threshold`` after the move (the answer stays 0)."""
    den = np.abs(np.asarray(denominator, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = np.asarray(numerator_step, dtype=np.float64) / den
    edge = (den > 0) & (moves > tolerance)
    if threshold > 0:
        edge &= ~(den + denominator_step < threshold * (1 - 1e-9))
    return np.where(np.isnan(den), False, edge)


def _spread(mask: np.ndarray, after: int) -> np.ndarray:
    """``mask`` extended to the ``after`` rows that follow each True row."""
    if after <= 0 or not mask.any():
        return mask
    idx = np.arange(len(mask))
    last = np.maximum.accumulate(np.where(mask, idx, -after - 1))
    return idx - last <= after


def _from_first(mask: np.ndarray) -> np.ndarray:
    """True from the first True row on."""
    return np.logical_or.accumulate(mask) if len(mask) else mask


# ----------------------------------------------------------------------------- ta equivalents
def ulcer_index(close: np.ndarray, window: int = 14) -> np.ndarray:
    """ta 0.11.0 UlcerIndex(close, window).ulcer_index(), vectorised: r = 100 * (close -
    max) / max with max the rolling max over up to ``window`` bars; then
    sqrt(sum(r**2 / window)) over each full window (NaN before)."""
    n = len(close)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    run_max = _rolling_max(close, window, min_periods=1)
    r = 100 * (close - run_max) / run_max
    sq = r**2 / window
    if n >= window:
        view = sliding_window_view(sq, window)
        for lo in range(0, len(view), _CHUNK):
            out[window - 1 + lo:window - 1 + lo + _CHUNK] = np.sqrt(
                view[lo:lo + _CHUNK].sum(axis=1))
    return out


def _rolling_max(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    import pandas as pd

    return pd.Series(x).rolling(window, min_periods=min_periods).max().to_numpy()


def aroon_earliest(high: np.ndarray, low: np.ndarray, period: int = 25
                   ) -> tuple[np.ndarray, np.ndarray]:
    """AROON (down, up) with ties broken the other way from TA-Lib (which takes the most
    recent extreme): the earliest highest high and lowest low of the window."""
    n = len(high)
    down, up = np.full(n, np.nan), np.full(n, np.nan)
    if n <= period:
        return down, up
    hv, lv = sliding_window_view(high, period + 1), sliding_window_view(low, period + 1)
    for lo in range(0, len(hv), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        at = slice(period + lo, period + lo + len(hv[sl]))
        up[at] = 100.0 * hv[sl].argmax(axis=1) / period
        down[at] = 100.0 * lv[sl].argmin(axis=1) / period
    return down, up


def _wilder(x: np.ndarray, period: int) -> np.ndarray:
    """Wilder's average of x[1:] seeded with the mean of the first ``period`` values
    (RSI's smoothing), at positions period.. of x (approximate: for sensitivity only)."""
    from scipy.signal import lfilter

    out = np.full(len(x), np.nan)
    if len(x) <= period:
        return out
    seed = x[1:period + 1].mean()
    out[period] = seed
    if len(x) > period + 1:
        y, _ = lfilter([1.0 / period], [1.0, -(period - 1.0) / period], x[period + 1:],
                       zi=[seed * (period - 1.0) / period])
        out[period + 1:] = y
    return out


def _rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    import pandas as pd

    return pd.Series(x).rolling(window).sum().to_numpy()


def _mean_deviation(tp: np.ndarray, window: int) -> np.ndarray:
    """Mean absolute deviation of each full window (centred after a shift by the
    window's newest value)."""
    out = np.full(len(tp), np.nan)
    if len(tp) < window:
        return out
    view = sliding_window_view(tp, window)
    for lo in range(0, len(view), _CHUNK):
        v = view[lo:lo + _CHUNK]
        d = v - v[:, -1:]
        d = d - d.mean(axis=1, keepdims=True)
        out[window - 1 + lo:window - 1 + lo + len(v)] = np.abs(d).mean(axis=1)
    return out


def exact_mean_std(y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and population standard deviation (ddof 0) of each full window,
    centred: after a shift by the window's newest value, two-pass. A flat window gives
    exactly its value and exactly 0; a NaN in the window gives NaN."""
    n = len(y)
    mean, std = np.full(n, np.nan), np.full(n, np.nan)
    if n < window:
        return mean, std
    view = sliding_window_view(y, window)
    for lo in range(0, len(view), _CHUNK):
        v = view[lo:lo + _CHUNK]
        last = v[:, -1:]
        d = v - last
        m = d.mean(axis=1, keepdims=True)
        at = slice(window - 1 + lo, window - 1 + lo + len(v))
        mean[at] = last[:, 0] + m[:, 0]
        std[at] = np.sqrt(((d - m) ** 2).mean(axis=1))
    return mean, std


# ----------------------------------------------------------------------------- columns
def ma_windows() -> list[int]:
    return [int(w) for w in dbt_vars().get("ma_windows", DEFAULT_MA_WINDOWS)]


def bollinger_windows() -> list[int]:
    return [int(w) for w in dbt_vars().get("bollinger_windows", DEFAULT_BOLLINGER_WINDOWS)]


def technical_columns(windows: Sequence[int] | None = None) -> list[str]:
    """The columns of technical_{pair} in the order assumed (53 with the default windows)."""
    w = list(ma_windows() if windows is None else windows)
    return (
        [f"sma_{k}" for k in w] + [f"ema_{k}" for k in w]
        + ["rsi_14", "macd", "macd_signal", "macd_hist", "stoch_k", "stoch_d", "cci_20",
           "willr_14", "roc_12", "mom_10", "mom_20", "trix_15", "ultosc", "adx_14",
           "plus_di_14", "minus_di_14", "aroon_up_25", "aroon_down_25", "atr_14", "natr_14",
           "trange", "donchian_high_20", "donchian_low_20", "keltner_upper_20",
           "keltner_lower_20", "awesome_osc", "mass_index", "vortex_pos_14", "vortex_neg_14",
           "ulcer_14", "obv", "ad", "adosc", "mfi_14", "cmf_20", "force_13", "vpt", "nvi",
           "eom_14", "bqx_rsi_14", "bqx_macd", "bqx_macd_signal", "bqx_macd_hist"]
    )


def bollinger_columns(windows: Sequence[int] | None = None) -> list[str]:
    """The columns of bollinger_{pair}: per window, per source (rate, bqx), the five
    statistics upper, middle, lower, width, pct_b (40 with the default windows)."""
    w = list(bollinger_windows() if windows is None else windows)
    return [f"bb_{src}_{k}_{stat}" for k in w for src in BB_SOURCES for stat in BB_STATS]


# ----------------------------------------------------------------------------- references
Group = dict[str, Reference]


def _from(first: int, n: int, values: np.ndarray) -> np.ndarray:
    """A series computed on x[first:], placed back at its bars (NaN before)."""
    out = np.full(n, np.nan)
    out[first:] = values
    return out


def technical_references(inp: Inputs, windows: Sequence[int] | None = None
                         ) -> Iterator[Group]:
    """The reference of every technical column, a few related columns at a time."""
    import pandas as pd
    import talib
    from ta.volume import EaseOfMovementIndicator

    w = list(ma_windows() if windows is None else windows)
    n, s = inp.n, inp.scale
    h, lo, c, v = inp.high, inp.low, inp.close, inp.volume
    u = float(np.spacing(s)) if s > 0 else 0.0  # one ulp of the price scale
    ptol, btol = price_tol(n, s), bounded_tol(n, s)

    def price(x: Any) -> Reference:
        return Reference(_finite(x), ptol)

    def bounded(x: Any, edge: np.ndarray | None = None) -> Reference:
        return Reference(_finite(x), btol, edge)

    def ratio(x: Any, edge: np.ndarray | None = None) -> Reference:
        x = _finite(x)
        return Reference(x, ratio_tol(x, s), edge)

    def cumulative(x: Any, edge: np.ndarray | None = None) -> Reference:
        x = _finite(x)
        return Reference(x, cumulative_tol(x, s), edge)

    group: Group = {}
    for k in w:
        group[f"sma_{k}"] = price(talib.SMA(c, k))
    for k in w:
        group[f"ema_{k}"] = price(talib.EMA(c, k))
    yield group

    # RSI: 100 * G / (G + L) of Wilder averages; a one-ulp move of the newest close moves
    # G or L by u / 14
    yield {"rsi_14": bounded(talib.RSI(c, 14), _rsi_edge(c, 14, u))}
    macd = talib.MACD(c, 12, 26, 9)
    yield {name: price(x) for name, x in zip(("macd", "macd_signal", "macd_hist"), macd, strict=True)}

    hh, ll = _rolling_max(h, 14, 14), -_rolling_max(-lo, 14, 14)
    rng14 = hh - ll
    # fastK = (c - LL) / ((HH - LL) / 100), 0 below TA-Lib's zero threshold
    edge = knife_edge(rng14 / 100.0, 2 * u, BOUNDED_TOL, TA_ZERO, 2 * u / 100.0)
    slow_k, slow_d = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    yield {"stoch_k": bounded(slow_k, _spread(edge, 2)),
           "stoch_d": bounded(slow_d, _spread(edge, 4))}

    tp = (h + lo + c) / 3.0
    md = _mean_deviation(tp, 20)
    cci = _finite(talib.CCI(h, lo, c, 20))
    cci_edge = knife_edge(0.015 * md, 4 * u, RATIO_TOL * np.maximum(1, np.abs(np.nan_to_num(cci))),
                          TA_ZERO, 0.015 * 2 * u)
    yield {"cci_20": ratio(cci, cci_edge)}
    yield {"willr_14": bounded(talib.WILLR(h, lo, c, 14), edge)}
    yield {"roc_12": ratio(talib.ROC(c, 12)), "mom_10": price(talib.MOM(c, 10)),
           "mom_20": price(talib.MOM(c, 20)), "trix_15": ratio(talib.TRIX(c, 15))}

    prev_c = np.concatenate([[np.nan], c[:-1]])
    with np.errstate(invalid="ignore"):
        tr = np.fmax(h, prev_c) - np.fmin(lo, prev_c)
    tr7 = _rolling_sum(tr, 7)
    # ULTOSC = 100 * (4 a7 + 2 a14 + a28) / 7, a = sum(bp) / sum(tr); a7 is the most sensitive
    ult_edge = _spread(knife_edge(tr7, 100 * 4 / 7 * 2 * u * 2, BOUNDED_TOL, TA_ZERO, 2 * u), 0)
    yield {"ultosc": bounded(talib.ULTOSC(h, lo, c, 7, 14, 28), ult_edge)}

    yield _adx_group(h, lo, c, u, btol)
    yield _aroon_group(h, lo, btol)

    atr14 = talib.ATR(h, lo, c, 14)
    yield {"atr_14": price(atr14), "natr_14": ratio(talib.NATR(h, lo, c, 14)),
           "trange": price(talib.TRANGE(h, lo, c))}
    yield {"donchian_high_20": price(talib.MAX(h, 20)),
           "donchian_low_20": price(talib.MIN(lo, 20))}
    ema20, atr20 = talib.EMA(c, 20), talib.ATR(h, lo, c, 20)
    yield {"keltner_upper_20": price(ema20 + 2 * atr20),
           "keltner_lower_20": price(ema20 - 2 * atr20)}

    yield {"awesome_osc": ratio(talib.AO(h, lo, 5, 34))}
    # MASSI: 25-bar sum of EMA1/EMA2 (EMA(9) of high - low, EMA(9) of that, each seeded
    # with the SMA of its first 9 inputs; a ratio is 1 where EMA2 is exactly 0)
    mass = talib.MASSI(h, lo, 9, 25)
    ema2 = talib.EMA(talib.EMA(h - lo, 9), 9)
    mass_edge = _spread(knife_edge(ema2, 25 * 2 * u, RATIO_TOL), 25)
    yield {"mass_index": ratio(mass, mass_edge)}
    # VORTEX: 0 where the 14 true ranges sum to 0; a tiny non-zero sum is a knife edge
    vip, vin = (_finite(x) for x in talib.VORTEX(h, lo, c, 14))
    trn = _rolling_sum(tr, 14)
    vmag = 1 + np.nan_to_num(np.fmax(vip, vin))
    vor_edge = knife_edge(trn, 14 * 2 * u * vmag, RATIO_TOL * vmag)
    yield {"vortex_pos_14": ratio(vip, vor_edge), "vortex_neg_14": ratio(vin, vor_edge)}
    yield {"ulcer_14": ratio(ulcer_index(c, 14))}

    # volume: the close-location value ((c - l) - (h - c)) / (h - l) moves by up to
    # 2 u / (h - l) under a one-ulp move; AD carries that into every later row
    group = {"obv": cumulative(talib.OBV(c, v))}
    ad = _finite(talib.AD(h, lo, c, v))
    ad_tol = cumulative_tol(ad, s)
    with np.errstate(invalid="ignore"):
        hl = h - lo
        clv_step = np.where(v > 0, v * 4 * u, 0.0)
    bar_edge = knife_edge(hl, clv_step, ad_tol)
    group["ad"] = Reference(ad, ad_tol, _from_first(bar_edge))
    adosc = _finite(talib.ADOSC(h, lo, c, v, 3, 10))
    group["adosc"] = cumulative(adosc, _spread(bar_edge, 60))
    # MFI: flows go to the positive or negative side by the sign of tp[t] - tp[t-1]
    # (a near tie that another evaluation order of (h + l + c) / 3 could flip; a bar
    # whose high, low and close all equal the previous bar's ties in every order)
    dtp = np.abs(np.diff(tp, prepend=np.nan))
    same_bar = np.zeros(n, dtype=bool)
    same_bar[1:] = (h[1:] == h[:-1]) & (lo[1:] == lo[:-1]) & (c[1:] == c[:-1])
    tie = (dtp <= 4 * u) & ~same_bar & (v > 0)
    group["mfi_14"] = bounded(talib.MFI(h, lo, c, v, 14), _spread(tie, 13))
    yield group

    # CMF: 0 where the 20 volumes sum to 0 (TA-Lib returns 0, not NaN)
    cmf = talib.CMF(h, lo, c, v, 20)
    vol20 = _rolling_sum(v, 20)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = _rolling_max(np.where(hl > 0, clv_step / hl, 0.0), 20, 1)
    cmf_edge = knife_edge(vol20, step, BOUNDED_TOL)
    yield {
        "cmf_20": bounded(cmf, cmf_edge),
        "force_13": cumulative(talib.EFI(c, v, 13)),
        "vpt": cumulative(talib.PVT(c, v)),
        "nvi": cumulative(talib.NVI(c, v)),
        "eom_14": cumulative(EaseOfMovementIndicator(
            pd.Series(h), pd.Series(lo), pd.Series(v), 14).sma_ease_of_movement().to_numpy()),
    }

    first = inp.first_bqx()
    y = inp.bqx[first:]
    sb = inp.bqx_scale
    ub = float(np.spacing(sb)) if sb > 0 else 0.0
    if len(y):
        rsi = _from(first, n, talib.RSI(y, 14))
        rsi_edge = _from(first, n, _rsi_edge(y, 14, ub).astype(float)) == 1
        bmacd = [_from(first, n, x) for x in talib.MACD(y, 12, 26, 9)]
    else:
        rsi, rsi_edge = np.full(n, np.nan), np.zeros(n, dtype=bool)
        bmacd = [np.full(n, np.nan)] * 3
    yield {"bqx_rsi_14": Reference(_finite(rsi), bounded_tol(n, sb), rsi_edge)}
    yield {name: Reference(_finite(x), price_tol(n, sb))
           for name, x in zip(("bqx_macd", "bqx_macd_signal", "bqx_macd_hist"), bmacd, strict=True)}


def _rsi_edge(x: np.ndarray, period: int, u: float) -> np.ndarray:
    d = np.diff(x, prepend=np.nan)
    gain, loss = np.where(d > 0, d, 0.0), np.where(d < 0, -d, 0.0)
    total = _wilder(gain, period) + _wilder(loss, period)
    return knife_edge(total, 100 * 2 * u / period, BOUNDED_TOL, TA_ZERO, 2 * u / period)


def _adx_group(h: np.ndarray, lo: np.ndarray, c: np.ndarray, u: float, btol: np.ndarray
               ) -> Group:
    """ADX, +DI, -DI; the up-move/down-move ties (TA-Lib gives neither DM) are broken
    both ways by a one-ulp move of the high (up) or the low (down) for the alternatives."""
    import talib

    def three(hh: np.ndarray, ll: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(_finite(f(hh, ll, c, 14)) for f in (talib.ADX, talib.PLUS_DI,
                                                         talib.MINUS_DI))

    adx, pdi, mdi = three(h, lo)
    up = np.diff(h, prepend=np.nan)
    down = -np.diff(lo, prepend=np.nan)
    ties = np.flatnonzero((up == down) & (up > 0))
    alternatives: list[tuple[np.ndarray, ...]] = []
    if len(ties):
        h2 = h.copy()
        h2[ties] = np.nextafter(h[ties], np.inf)
        l2 = lo.copy()
        l2[ties] = np.nextafter(lo[ties], -np.inf)
        alternatives = [three(h2, lo), three(h, l2)]
    tr14 = 14 * talib.ATR(h, lo, c, 14)
    di_step = 100 * 2 * u
    di_edge = knife_edge(tr14, di_step, BOUNDED_TOL, TA_ZERO, 2 * u)
    with np.errstate(divide="ignore", invalid="ignore"):
        dx_step = 2 * 100 * di_step / tr14
    dx_edge = knife_edge(pdi + mdi, dx_step, BOUNDED_TOL)
    adx_edge = _spread(di_edge | dx_edge, 3 * 14)
    out = {}
    for k, (name, x, edge) in enumerate((("adx_14", adx, adx_edge), ("plus_di_14", pdi, di_edge),
                                         ("minus_di_14", mdi, di_edge))):
        out[name] = Reference(x, btol, edge, [alt[k] for alt in alternatives])
    return out


def _aroon_group(h: np.ndarray, lo: np.ndarray, btol: np.ndarray) -> Group:
    import talib

    down, up = (_finite(x) for x in talib.AROON(h, lo, 25))
    e_down, e_up = aroon_earliest(h, lo, 25)
    return {
        "aroon_up_25": Reference(up, btol, alternatives=[e_up] if (e_up != up).any() else []),
        "aroon_down_25": Reference(down, btol,
                                   alternatives=[e_down] if (e_down != down).any() else []),
    }


def bollinger_references(inp: Inputs, windows: Sequence[int] | None = None
                         ) -> Iterator[Group]:
    """The reference of every bollinger column, one (window, source) at a time: TA-Lib
    BBANDS(y, W, 2, 2, SMA); where TA-Lib's own error (against an exact centred
    rolling mean and population stdev) exceeds the tolerance, the exact value."""
    import talib

    n = inp.n
    for w in list(bollinger_windows() if windows is None else windows):
        for src in BB_SOURCES:
            if src == "rate":
                first, y, s = 0, inp.close, inp.scale
            else:
                first = inp.first_bqx()
                y, s = inp.bqx[first:], inp.bqx_scale
            if len(y):
                upper, middle, lower = (_from(first, n, x)
                                        for x in talib.BBANDS(y, w, 2.0, 2.0, 0))
                mean, std = (_from(first, n, x) for x in exact_mean_std(y, w))
            else:
                upper = middle = lower = mean = std = np.full(n, np.nan)
            yy = _from(first, n, y) if len(y) else np.full(n, np.nan)
            yield _bands(f"bb_{src}_{w}", yy, upper, middle, lower, mean + 2 * std, mean,
                         mean - 2 * std, s)


def _width_pct(y: np.ndarray, upper: np.ndarray, middle: np.ndarray, lower: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(middle != 0, (upper - lower) / np.abs(middle), np.nan)
        pct = np.where(upper != lower, (y - lower) / (upper - lower), np.nan)
    return _finite(width), _finite(pct)


def _bands(stem: str, y: np.ndarray, upper: np.ndarray, middle: np.ndarray, lower: np.ndarray,
           e_upper: np.ndarray, e_middle: np.ndarray, e_lower: np.ndarray, s: float) -> Group:
    n = len(y)
    u = float(np.spacing(s)) if s > 0 else 0.0
    width, pct = _width_pct(y, upper, middle, lower)
    e_width, e_pct = _width_pct(y, e_upper, e_middle, e_lower)
    btol = np.full(n, max(BAND_TOL * s, FLOOR_TOL * s))
    out: Group = {}
    for stat, ref, exact in (("upper", upper, e_upper), ("middle", middle, e_middle),
                             ("lower", lower, e_lower)):
        out[f"{stem}_{stat}"] = _with_exact(_finite(ref), _finite(exact), btol)
    # pct_b = (y - lower) / (upper - lower): a one-ulp move of y moves it by ~2u / (4 sd)
    spread = e_upper - e_lower
    pct_tol = np.full(n, max(PCT_B_TOL, FLOOR_TOL * s))
    mag = 1 + np.abs(np.nan_to_num(e_pct))
    pct_edge = knife_edge(spread, 4 * u * mag, PCT_B_TOL)
    wmag = np.maximum(1.0, np.abs(np.nan_to_num(e_width)))
    width_tol = np.maximum(WIDTH_TOL * np.maximum(wmag, np.abs(np.nan_to_num(width))),
                           FLOOR_TOL * s)
    width_edge = knife_edge(e_middle, 2 * u * (4 + wmag), WIDTH_TOL * wmag)
    out[f"{stem}_width"] = _with_exact(width, e_width, width_tol, width_edge)
    out[f"{stem}_pct_b"] = _with_exact(pct, e_pct, pct_tol, pct_edge)
    return out


def _with_exact(ref: np.ndarray, exact: np.ndarray, tol: np.ndarray,
                edge: np.ndarray | None = None) -> Reference:
    """A reference that falls back to ``exact`` where it is itself out of tolerance
    (or NULL on one side only)."""
    with np.errstate(invalid="ignore"):
        off = np.abs(ref - exact) > tol
    off |= np.isnan(ref) != np.isnan(exact)
    return Reference(ref, tol, edge, imprecise=off, exact=exact)


# ----------------------------------------------------------------------------- judging
def _ratio(expected: np.ndarray, tolerance: np.ndarray, got: np.ndarray, got_null: np.ndarray
           ) -> np.ndarray:
    exp_null = np.isnan(expected)
    err = np.abs(got - expected)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = err / tolerance
    r = np.where(err == 0, 0.0, r)  # as the report: an exact match is never a breach
    r = np.where(exp_null | got_null, 0.0, np.where(np.isnan(r), np.inf, r))
    return np.where(exp_null != got_null, np.inf, r)


@dataclass
class Judged:
    expected: np.ndarray  # what the row is compared with (exact where imprecise)
    tolerance: np.ndarray
    skipped: np.ndarray  # knife-edge rows left out of the comparison
    imprecise: np.ndarray  # rows compared with the exact value


def judge(ref: Reference, rows: np.ndarray, got: np.ndarray, got_null: np.ndarray) -> Judged:
    """Decide per checked row what the table value is compared with."""
    expected, tol = ref.expected[rows], ref.tolerance[rows]
    imprecise = np.zeros(len(rows), dtype=bool)
    if ref.exact is not None and ref.imprecise is not None:
        imprecise = ref.imprecise[rows]
        expected = np.where(imprecise, ref.exact[rows], expected)
    bad = _ratio(expected, tol, got, got_null) > 1.0
    skipped = np.zeros(len(rows), dtype=bool)
    if bad.any():
        if ref.knife_edge is not None:
            skipped |= bad & ref.knife_edge[rows]
        for alt in ref.alternatives:
            skipped |= bad & (_ratio(alt[rows], tol, got, got_null) <= 1.0)
    return Judged(expected, tol, skipped, imprecise & ~skipped)


# ----------------------------------------------------------------------------- database
def _nan_if_null(column: str) -> sql.Composable:
    return sql.SQL("coalesce({}::double precision, 'NaN'::double precision)").format(
        sql.Identifier(column))


def read_inputs(conn: Any, pair: str, tables: dict[str, list[str]]) -> tuple[Inputs, list[str]]:
    """The pair's stored bar from the rate_index model and its w15_bqx_return; the
    problems found (a missing bqx table)."""
    problems: list[str] = []
    if "rate_index" not in tables:
        raise BqxError(f"{schema()}.rate_index does not exist: build it first "
                       "(`bqx dbt -- build --select rate_index`)")
    query = sql.SQL(
        "select ts_utc, open_index::double precision, high_index::double precision, "
        "low_index::double precision, rate_index::double precision, "
        "coalesce(volume, 0)::double precision from {} where pair = {} order by ts_utc"
    ).format(sql.Identifier(schema(), "rate_index"), sql.Literal(pair))
    ts, bar = copy_floats(conn, query, 5)
    bqx = np.full(len(ts), np.nan)
    table = f"bqx_{pair}"
    if RETURN_COLUMN in tables.get(table, []):
        q = sql.SQL("select ts_utc, {} from {} order by ts_utc").format(
            _nan_if_null(RETURN_COLUMN), sql.Identifier(schema(), table))
        b_ts, b_val = copy_floats(conn, q, 1)
        pos = np.searchsorted(ts, b_ts)
        ok = (pos < len(ts)) & (ts[np.minimum(pos, max(len(ts) - 1, 0))] == b_ts) \
            if len(ts) else np.zeros(len(b_ts), dtype=bool)
        bqx[pos[ok]] = b_val[ok, 0]
    else:
        problems.append(f"{pair}: {schema()}.{table} ({RETURN_COLUMN}) does not exist; the "
                        "bqx_ columns are compared with NULL")
    return Inputs(ts, bar[:, 0], bar[:, 1], bar[:, 2], bar[:, 3], bar[:, 4], bqx), problems


def sample_rows(inp: Inputs, n: int, sample: int, tail: int, rng: np.random.Generator,
                warmup: int) -> np.ndarray:
    """Rows to check: ``sample`` random rows (0: every row) plus the warm-ups of the bar
    and of the return, the first bars after the largest gaps, the ends of flat
    stretches and of zero-volume stretches, ADX ties and the last ``tail`` rows."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if sample <= 0:
        return np.arange(n)
    first = min(inp.first_bqx(), n)
    picks = [rng.choice(n, size=min(sample, n), replace=False), np.arange(min(warmup, n)),
             first + np.arange(warmup), np.arange(max(0, n - tail), n)]
    ts, c = inp.ts_us[:n], inp.close[:n]
    if n > 1:
        gaps = np.flatnonzero(np.diff(ts) > 60_000_000) + 1
        if len(gaps):
            largest = gaps[np.argsort(np.diff(ts)[gaps - 1], kind="stable")[-10:]]
            picks += [largest + d for d in (0, 1, 14, 26)]
        same = np.concatenate([[False], c[1:] == c[:-1]])
        idx = np.arange(n)
        run = idx - np.maximum.accumulate(np.where(same, -1, idx))
        ends = np.flatnonzero((run[:-1] >= 14) & (run[1:] == 0)) + 1
        flat = np.flatnonzero(np.isin(run, (13, 19, 25, 29, 59, 119)))
        for rows in (ends, flat):
            if len(rows):
                chosen = rng.choice(rows, size=min(20, len(rows)), replace=False)
                picks += [chosen, chosen + 1, chosen + 14]
        v = inp.volume[:n]
        switch = np.flatnonzero((v[1:] == 0) != (v[:-1] == 0)) + 1
        if len(switch):
            picks.append(rng.choice(switch, size=min(20, len(switch)), replace=False))
        up, down = np.diff(inp.high[:n]), -np.diff(inp.low[:n])
        ties = np.flatnonzero((up == down) & (up > 0)) + 1
        if len(ties):
            chosen = rng.choice(ties, size=min(20, len(ties)), replace=False)
            picks += [chosen, chosen + 1, chosen + 14]
    rows = np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in picks]))
    return rows[(rows >= 0) & (rows < n)]


class _TableRows:
    """The checked rows of one table: fetched once (sampled), or column by column with
    COPY (every row)."""

    def __init__(self, conn: Any, table: str, columns: list[str], ts_us: np.ndarray,
                 rows: np.ndarray, every_row: bool) -> None:
        self.conn, self.table, self.every_row = conn, table, every_row
        self.columns = list(columns)
        self._read: set[str] = set()
        self.rows = rows
        self.lost = np.zeros(0, dtype=np.int64)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if every_row:
            q = sql.SQL("select ts_utc, 0::double precision from {} order by ts_utc").format(
                sql.Identifier(schema(), table))
            got_ts, _ = copy_floats(conn, q, 1)
            self._where, found = _align(ts_us[rows], got_ts)
        else:
            got_ts, values, nulls = _fetch_rows(conn, table, columns, ts_us[rows], dense=False)
            where, found = _align(ts_us[rows], got_ts)
            for j, col in enumerate(columns):
                self._cache[col] = (values[where[found], j], nulls[where[found], j])
        self.lost = rows[~found]
        self.rows = rows[found]
        self._where = where[found] if not every_row else self._where[found]

    def get(self, columns: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The checked rows of ``columns`` (values with NaN for NULL, NULL mask). Every
        row: one COPY reads them together with the next unread columns of the table
        (up to ``BATCH_COLUMNS``), so a family takes a few scans of the table."""
        if self.every_row:
            todo = [c for c in columns if c not in self._cache]
            if todo:
                later = [c for c in self.columns[self.columns.index(todo[-1]) + 1:]
                         if c not in self._cache and c not in self._read]
                todo += later[:max(0, BATCH_COLUMNS - len(todo))]
                q = sql.SQL("select ts_utc, {} from {} order by ts_utc").format(
                    sql.SQL(", ").join(_nan_if_null(c) for c in todo),
                    sql.Identifier(schema(), self.table))
                _, values = copy_floats(self.conn, q, len(todo))
                values = values[self._where]
                for j, c in enumerate(todo):
                    self._cache[c] = (values[:, j].copy(), np.isnan(values[:, j]))
                    self._read.add(c)
            return {c: self._cache.pop(c) for c in columns}
        return {c: self._cache[c] for c in columns}


def _align(want: np.ndarray, got: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position in ``got`` (ascending) of each ``want`` and whether it is there."""
    where = np.searchsorted(got, want)
    found = np.zeros(len(want), dtype=bool)
    inside = where < len(got)
    found[inside] = got[where[inside]] == want[inside]
    return np.minimum(where, max(len(got) - 1, 0)), found


def _stored_non_finite(conn: Any, table: str, columns: list[str]) -> list[str]:
    """Columns holding a stored NaN or infinity (read as NULL by the COPY)."""
    parts = sql.SQL(", ").join(
        sql.SQL("count(*) filter (where {c}::double precision in "
                "('NaN', 'Infinity', '-Infinity'))").format(c=sql.Identifier(c))
        for c in columns)
    row = conn.execute(sql.SQL("select {} from {}").format(
        parts, sql.Identifier(schema(), table))).fetchone()
    return [c for c, k in zip(columns, row, strict=True) if k]


# ----------------------------------------------------------------------------- check
def check(run: Run, families: Sequence[str]) -> dict[str, FamilyResult]:
    """``bqx crosscheck``'s entry: :func:`check_technical_families` for one run."""
    return check_technical_families(
        run.conn, families, run.pairs, run.sample, run.seed, tail=run.tail, tables=run.tables,
        skipped=run.report.skipped, explicit_pairs=run.explicit_pairs, progress=run.say)


def check_technical_families(
    conn: Any,
    families: Sequence[str],
    pairs: Sequence[str] | None = None,
    sample: int = 200,
    seed: int = 42,
    *,
    tail: int = 10,
    tables: dict[str, list[str]] | None = None,
    skipped: list[str] | None = None,
    explicit_pairs: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, FamilyResult]:
    """Cross-check ``technical_{pair}`` and/or ``bollinger_{pair}`` for ``pairs``
    (default all). Tables that are not built are appended to ``skipped`` (for a pair
    that has the other family, or for pairs asked for by name). ``sample``: random
    rows per pair and family, 0 for every row."""
    say = progress or (lambda message: None)
    for fam in families:
        if fam not in FAMILIES:
            raise BqxError(f"unknown family '{fam}' for the technical cross-check")
    tables = built_tables(conn) if tables is None else tables
    wanted = list(all_pairs() if pairs is None else pairs)
    windows = {TECHNICAL: ma_windows(), BOLLINGER: bollinger_windows()}
    acc = {fam: _Accumulator(fam) for fam in families}
    for pair_no, pair in enumerate(all_pairs()):
        if pair not in wanted:
            continue
        present = [f for f in families if f"{f}_{pair}" in tables]
        if skipped is not None and (present or explicit_pairs):
            skipped += [f"{f}_{pair}" for f in families if f not in present]
        if not present:
            continue
        t0 = time.perf_counter()
        inp, problems = read_inputs(conn, pair, tables)
        for fam in present:
            _check_table(conn, pair, pair_no, fam, inp, problems, tables, acc[fam],
                         windows[fam], sample, seed, tail)
        say(f"{pair}: {', '.join(present)} checked in {time.perf_counter() - t0:.1f} s")
    return finished(acc)


def _check_table(conn: Any, pair: str, pair_no: int, family: str, inp: Inputs,
                 problems: list[str], tables: dict[str, list[str]], acc: _Accumulator,
                 windows: list[int], sample: int, seed: int, tail: int) -> None:
    table = f"{family}_{pair}"
    result = acc.result
    result.pairs.append(pair)
    columns = technical_columns(windows) if family == TECHNICAL else bollinger_columns(windows)
    missing = [c for c in columns if c not in tables[table]]
    if missing:
        result.problems.append(f"{pair}: table {schema()}.{table} lacks columns "
                               f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        return
    if family == TECHNICAL or any(c.startswith("bb_bqx") for c in columns):
        result.problems += [p for p in problems if p not in result.problems]
    stored_n, last = conn.execute(
        sql.SQL("select count(*), max(ts_utc) from {}").format(sql.Identifier(schema(), table))
    ).fetchone()
    if last is None:
        if inp.n:
            result.problems.append(f"{pair}: {schema()}.{table} is empty but rate_index holds "
                                   f"{inp.n:,} bars (run dbt build)")
        return
    last_us = round((last - _UNIX_EPOCH) / timedelta(microseconds=1))
    n = int(np.searchsorted(inp.ts_us, last_us, side="right"))
    if n != stored_n:
        result.problems.append(f"{pair}: {schema()}.{table} has {stored_n:,} rows up to "
                               f"{_fmt_ts(last)}, rate_index has {n:,} bars up to then "
                               "(one row per bar expected)")
    warmup = (max(windows, default=0) + 60) if family == TECHNICAL else max(windows) + 40
    rng = np.random.default_rng([seed, FAMILIES.index(family) + 10, pair_no])
    rows = sample_rows(inp, n, sample, tail, rng, max(warmup, 260 if family == TECHNICAL else 0))
    rows_of = _TableRows(conn, table, columns, inp.ts_us, rows, every_row=sample <= 0)
    if len(rows_of.lost):
        result.problems.append(f"{pair}: {len(rows_of.lost):,} checked bar(s) have no row in "
                               f"{schema()}.{table}, first at "
                               f"{_fmt_ts(_to_datetime(inp.ts_us[rows_of.lost[0]]))}")
    rows = rows_of.rows
    result.rows_checked += len(rows)
    if sample <= 0:
        bad = _stored_non_finite(conn, table, columns)
        if bad:
            result.problems.append(f"{pair}: {schema()}.{table} stores NaN or infinity in "
                                   f"{', '.join(bad[:5])} (NULL expected there)")
    decile = np.minimum(rows * 10 // max(n, 1), 9)
    refs = technical_references(inp, windows) if family == TECHNICAL else \
        bollinger_references(inp, windows)
    ts = inp.ts_us[rows]
    for group in refs:
        got = rows_of.get(list(group))
        for column, ref in group.items():
            g, g_null = got[column]
            j = judge(ref, rows, g, g_null)
            keep = ~j.skipped
            acc.compare(pair, column, ts[keep], decile[keep], j.expected[keep],
                        j.tolerance[keep], g[keep], g_null[keep])
            col: ColumnResult = result.columns[column]
            col.skipped += int(j.skipped.sum())
            col.imprecise += int(j.imprecise.sum())
