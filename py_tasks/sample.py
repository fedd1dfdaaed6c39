"""``bqx sample``: synthetic, mutually consistent 1-minute bars for the 28 pairs.

How the bars are made (deterministic for a seed):

* Eight currency values (EUR GBP USD JPY CHF AUD CAD NZD, in USD at realistic
  levels) follow geometric random walks per minute from ``start`` 00:00 UTC
  (per-minute log volatility 1e-4/sqrt(2) each, so a pair moves about 1e-4).
* A pair's close is value(base) / value(quote) x (1 + 2e-6 noise): triangles hold
  up to that noise, except while a pair is in a flat stretch (below).
* Weekends have no bars (Friday 22:00 to Sunday 22:00 UTC; the walk goes on, so
  Monday opens with a gap); about 1% of the other minutes are dropped per pair.
* Flat stretches (a stalled quote): about three per pair per week, 60-200
  minutes each, during which open = high = low = close repeat the last close
  bit for bit and volume is 0. The first pair of the seed (audcad) also stalls
  for 760 minutes from 02:00 UTC on the first weekday on or after ``start``, so
  a 630-bar window can be entirely flat.
* open = the previous bar's close (the very first bar: its close); high and low
  add small positive wicks; volume is a random integer.

Every random draw comes from a generator seeded with (seed, stream, day), where
the stream is 0 for the currency walk and 1 + the pair's position in the seed
for a pair. So a day's bars depend only on the seed, ``start`` and the days
before it, never on ``days`` or ``pairs``: a subset of pairs equals the same rows
of the full set, and ``generate(days=N + 1)`` starts with ``generate(days=N)``.
Appending a day (``append_days`` / ``bqx sample --append``) therefore generates
N + 1 days and stores only the last one: it continues the same walk seamlessly,
as long as ``--seed`` and ``--start`` are those of the first sample.

The API functions take a psycopg connection; in autocommit mode each write
commits on its own, otherwise the caller commits.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
from psycopg import sql

from . import db
from .config import all_pairs, pair_rows, parse_pairs, raw_schema
from .errors import BqxError
from .load import BAR_DTYPE, ensure_raw_table, load_bars

DEFAULT_DAYS = 14
DEFAULT_SEED = 42
DEFAULT_START = date(2024, 7, 1)  # a Monday; the rate index baseline defaults to it
MINUTES = 1440
# Value of one unit of each currency in USD at the start.
LEVELS = {
    "EUR": 1.08,
    "GBP": 1.27,
    "USD": 1.0,
    "JPY": 1 / 160.0,
    "CHF": 1 / 0.9,
    "AUD": 0.67,
    "CAD": 1 / 1.37,
    "NZD": 0.61,
}
CURRENCIES = tuple(LEVELS)
CURRENCY_VOL = 1e-4 / np.sqrt(2.0)  # per minute, so a pair's log return has vol ~1e-4
CLOSE_NOISE = 2e-6
WICK = 3e-5
MISSING_RATE = 0.01
FLAT_PER_DAY = 0.6  # chance per pair and day that a flat stretch starts (~3 per week)
FLAT_MIN, FLAT_MAX = 60, 200
LONG_FLAT_START_MIN, LONG_FLAT_MINUTES = 120, 760


def _rng(seed: int, stream: int, day: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, day])


def _start_date(start: date | str | None) -> date:
    if start is None:
        return DEFAULT_START
    if isinstance(start, datetime):
        return start.date()
    if isinstance(start, date):
        return start
    try:
        return date.fromisoformat(str(start).strip())
    except ValueError:
        raise BqxError(f"bad --start '{start}': expected a date such as 2024-07-01") from None


def _minute_times(start: date, days: int) -> np.ndarray:
    origin = np.datetime64(start.isoformat(), "m")
    return origin + np.arange(days * MINUTES, dtype=np.int64).astype("timedelta64[m]")


def _trading(minutes: np.ndarray) -> np.ndarray:
    """True outside the weekend gap (Friday 22:00 to Sunday 22:00 UTC)."""
    m = minutes.astype(np.int64)
    weekday = (m // MINUTES + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    hour = (m % MINUTES) // 60
    closed = ((weekday == 4) & (hour >= 22)) | (weekday == 5) | ((weekday == 6) & (hour < 22))
    return ~closed


def _currency_values(seed: int, days: int) -> np.ndarray:
    """(minutes, 8) values in USD: geometric random walks from LEVELS."""
    steps = np.concatenate(
        [_rng(seed, 0, d).standard_normal((MINUTES, len(CURRENCIES))) for d in range(days)]
    )
    log_walk = np.cumsum(steps * CURRENCY_VOL, axis=0)
    log_walk -= log_walk[0]  # the first minute is exactly at LEVELS
    return np.exp(log_walk) * np.array([LEVELS[c] for c in CURRENCIES])


def _long_stall(stream: int, first_weekday: int) -> list[tuple[int, int]]:
    """The extra 760-minute stall of the first pair of the seed (none for others)."""
    if stream != 1:
        return []
    s = first_weekday * MINUTES + LONG_FLAT_START_MIN
    return [(s, s + LONG_FLAT_MINUTES)]


def _pair_bars(
    seed: int, stream: int, ratio: np.ndarray, minutes: np.ndarray, trading: np.ndarray,
    first_weekday: int,
) -> np.ndarray:
    days = len(minutes) // MINUTES
    noise = np.empty(len(minutes))
    keep = np.empty(len(minutes), dtype=bool)
    wicks = np.empty((2, len(minutes)))
    volume = np.empty(len(minutes), dtype=np.int64)
    stretches = _long_stall(stream, first_weekday)  # [start, end) minutes
    for d in range(days):
        rng = _rng(seed, stream, d)
        day = slice(d * MINUTES, (d + 1) * MINUTES)
        noise[day] = rng.standard_normal(MINUTES)
        keep[day] = rng.random(MINUTES) >= MISSING_RATE
        wicks[:, day] = rng.standard_exponential((2, MINUTES))
        volume[day] = rng.integers(1, 500, MINUTES)
        chance, where, length = rng.random(3)
        if chance < FLAT_PER_DAY:
            s = d * MINUTES + int(where * MINUTES)
            stretches.append((s, s + FLAT_MIN + int(length * (FLAT_MAX - FLAT_MIN + 1))))
    close_all = ratio * (1.0 + CLOSE_NOISE * noise)
    idx = np.flatnonzero(keep & trading)  # minute index of each bar
    close = close_all[idx]
    flat = np.zeros(len(idx), dtype=bool)
    for s, e in sorted(stretches):
        lo, hi = np.searchsorted(idx, [s, e])
        if hi > lo:
            close[lo:hi] = close[lo - 1] if lo > 0 else close[lo]
            flat[lo:hi] = True
    bars = np.empty(len(idx), dtype=BAR_DTYPE)
    bars["ts_utc"] = minutes[idx]
    bars["close"] = close
    opens = np.empty_like(close)
    opens[1:] = close[:-1]
    opens[:1] = close[:1]
    bars["open"] = opens
    up = np.where(flat, 0.0, wicks[0, idx] * WICK)
    down = np.where(flat, 0.0, wicks[1, idx] * WICK)
    bars["high"] = np.maximum(opens, close) * (1.0 + up)
    bars["low"] = np.minimum(opens, close) * (1.0 - down)
    bars["volume"] = np.where(flat, 0, volume[idx])
    return bars


def generate(
    days: int = DEFAULT_DAYS,
    pairs: Sequence[str] | None = None,
    seed: int = DEFAULT_SEED,
    start: date | str | None = DEFAULT_START,
) -> dict[str, np.ndarray]:
    """Bars per pair (arrays of ``load.BAR_DTYPE``, ts_utc ascending) for ``days``
    days from ``start`` 00:00 UTC. See the module docstring for the model."""
    if days < 0:
        raise BqxError(f"--days must be 0 or more, got {days}")
    first = _start_date(start)
    wanted = list(pairs) if pairs is not None else all_pairs()
    rows = {p: (i + 1, base, quote) for i, (p, base, quote) in enumerate(pair_rows())}
    unknown = [p for p in wanted if p not in rows]
    if unknown:
        parse_pairs(",".join(unknown))  # raises with the list of valid pairs
    if days == 0:
        return {p: np.empty(0, dtype=BAR_DTYPE) for p in wanted}
    minutes = _minute_times(first, days)
    trading = _trading(minutes)
    first_weekday = next(d for d in range(7) if (first + timedelta(days=d)).weekday() < 5)
    values = _currency_values(seed, days)
    col = {c: i for i, c in enumerate(CURRENCIES)}
    out = {}
    for pair in wanted:
        stream, base, quote = rows[pair]
        ratio = values[:, col[base.upper()]] / values[:, col[quote.upper()]]
        out[pair] = _pair_bars(seed, stream, ratio, minutes, trading, first_weekday)
    return out


def write_sample(
    conn: Any,
    days: int = DEFAULT_DAYS,
    pairs: Sequence[str] | None = None,
    seed: int = DEFAULT_SEED,
    start: date | str | None = DEFAULT_START,
    skip_days: int = 0,
) -> dict[str, tuple[int, int]]:
    """Generate ``days`` days and store those from day ``skip_days`` on through the
    loader's COPY path (rows already present are left alone).

    Returns (rows generated, rows added) per pair.
    """
    bars = generate(days, pairs, seed, start)
    if skip_days:
        cut = np.datetime64(_start_date(start).isoformat(), "us") + np.timedelta64(skip_days, "D")
        bars = {p: b[b["ts_utc"] >= cut] for p, b in bars.items()}
    ensure_raw_table(conn)
    added = load_bars(conn, bars)
    return {p: (len(b), added.get(p, 0)) for p, b in bars.items()}


def days_present(conn: Any, pairs: Sequence[str] | None = None,
                 start: date | str | None = DEFAULT_START) -> int:
    """Days from ``start`` up to and including the day of the last stored bar of
    ``pairs`` (0 when none is stored)."""
    first = _start_date(start)
    wanted = list(pairs) if pairs is not None else all_pairs()
    ensure_raw_table(conn)
    last = conn.execute(
        sql.SQL("select max(ts_utc) from {} where pair = any(%s)").format(
            sql.Identifier(raw_schema(), "m1_bars")
        ),
        (wanted,),
    ).fetchone()[0]
    if last is None:
        return 0
    origin = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    if last < origin:
        raise BqxError(
            f"the stored bars end at {last:%Y-%m-%d %H:%M} UTC, before --start {first}: "
            "append with the --start (and --seed) of the first sample"
        )
    return (last - origin).days + 1


def append_days(
    conn: Any,
    days: int = 1,
    pairs: Sequence[str] | None = None,
    seed: int = DEFAULT_SEED,
    start: date | str | None = DEFAULT_START,
) -> dict[str, tuple[int, int]]:
    """Store the ``days`` days after the day of the last stored bar, continuing the
    same walk (generates everything from ``start`` and stores only the new days)."""
    done = days_present(conn, pairs, start)
    return write_sample(conn, done + days, pairs, seed, start, skip_days=done)


# ----------------------------------------------------------------------------- CLI
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="write synthetic, mutually consistent bars for the pairs into raw.m1_bars",
        description="Generate deterministic synthetic 1-minute bars (eight currency random "
        "walks, cross rates consistent, weekend gaps, missing minutes, flat stretches) and "
        "store them in raw.m1_bars. Rows already present are left alone.",
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS,
                        help=f"days to generate (default {DEFAULT_DAYS})")
    parser.add_argument("--pairs", help="comma-separated pairs to store (default: all 28)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--start", default=DEFAULT_START.isoformat(),
                        help=f"first day, UTC (default {DEFAULT_START.isoformat()}, a Monday)")
    parser.add_argument("--append", action="store_true",
                        help="add --days days after the last stored bar, continuing the same "
                        "walk (use the --seed and --start of the first sample)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    pairs = parse_pairs(args.pairs)
    start = _start_date(args.start)
    if args.days < 0:
        raise BqxError(f"--days must be 0 or more, got {args.days}")
    with db.connect(autocommit=True) as conn:
        if args.append:
            done = days_present(conn, pairs, start)
            counts = write_sample(conn, done + args.days, pairs, args.seed, start, skip_days=done)
            first_day = start + timedelta(days=done)
        else:
            counts = write_sample(conn, args.days, pairs, args.seed, start)
            first_day = start
    last_day = first_day + timedelta(days=max(args.days - 1, 0))
    print(f"sample seed {args.seed}, {args.days} day(s) {first_day} .. {last_day} UTC:")
    for pair, (made, added) in counts.items():
        print(f"  {pair}  {made:>9,} rows  {added:>9,} added")
    made = sum(m for m, _ in counts.values())
    added = sum(a for _, a in counts.values())
    print(f"{len(counts)} pair(s): {made:,} rows, {added:,} added, "
          f"{made - added:,} already present in {time.perf_counter() - started:.1f} s")
    return 0
