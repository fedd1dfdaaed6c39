"""``bqx report``: a validation report of the built features, as HTML and Markdown.

What it holds (docs/report.md describes every number):

* coverage per pair and UTC calendar month: the source bars (``raw.m1_bars``), their
  first and last time, and per family the share of the bars beyond the family's
  warm-up that have a row with every feature column non-NULL. A family's share is
  that of its worst window; the windows below 100% are listed one by one;
* the dbt results of ``run_results.json`` (counts per node type and status, every
  failing, erroring or warning node with the first line of its message);
* the numpy cross-check on a small sample (``py_tasks.crosscheck``): its largest
  errors per family;
* PNG plots beside the report: the rate index of one day with the parabolas that
  reg_rate fitted, a pair x month coverage heat map and the r2 distribution.

SQL: coverage is one query per pair that scans the pair's bars and each of its
family tables once (a left join on ts_utc, aggregated per month with ``filter``);
the r2 histogram is one query per regression table (all windows in one pass). No
query runs per row, window or month.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from . import db
from . import families as registry
from .config import (
    dbt_var,
    dbt_vars,
    parse_pairs,
    project_dir,
    raw_schema,
    schema,
)
from .dbtcmd import first_line
from .errors import BqxError

# the family whose fit of the rate index the parabola plot draws (reg_rate): the registry's
PARABOLA_FAMILY = registry.one_with_flag(registry.PARABOLA)

FORMATS = ("html", "md")
DEFAULT_CROSSCHECK_SAMPLE = 50
R2_BINS = 40
PLOT_WINDOWS = (60, 240)  # parabola plot: these reg windows when configured
PARABOLAS_PER_WINDOW = {0: 6, 1: 3}  # short window: 6 fits; long window: 3 fits
PLOT_FILES = {
    "parabolas": "rate_index_parabolas.png",
    "coverage": "coverage_heatmap.png",
    "r2": "r2_histogram.png",
}


def _say(message: str) -> None:
    print(f"bqx report: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- families
@dataclass(frozen=True)
class Family:
    """A per-pair model family: its windows, warm-up and feature columns per window.

    ``warmup(W)`` is the number of leading bars of a pair (counted over its whole
    history, not per month) whose wW_ features are NULL by contract.
    """

    name: str
    windows: tuple[int, ...]
    warmup: Callable[[int], int]
    columns: Callable[[int], tuple[str, ...]]
    warmup_text: str

    def table(self, pair: str) -> str:
        return f"{self.name}_{pair}"


def _windows(name: str, fallback: str | None = None) -> tuple[int, ...]:
    vars_ = dbt_vars()
    value = vars_.get(name, vars_.get(fallback) if fallback else None)
    if value is None:
        value = dbt_var(name)  # raises the clear "missing var" error
    try:
        return tuple(int(w) for w in value)
    except (TypeError, ValueError):
        raise BqxError(f"dbt var '{name}' must be a list of bar counts, got {value!r}") from None


def _source_window() -> int:
    """Warm-up of reg_bqx's y: the bqx window of ``reg_bqx_source_column`` (w15_... -> 15)."""
    column = str(dbt_vars().get("reg_bqx_source_column", "w15_bqx_return"))
    match = re.match(r"^w(\d+)_", column)
    return int(match.group(1)) if match else 0


def families() -> list[Family]:
    """The per-pair families whose coverage the report counts (the registry's, those
    with a ``coverage``), with windows from the dbt vars."""
    s = _source_window()
    out = []
    for fam in registry.REGISTRY:
        cov = fam.coverage
        if cov is None:
            continue
        out.append(
            Family(
                fam.name,
                _windows(cov.windows_var, cov.fallback_var or None),
                lambda w, cov=cov: cov.warmup(w, s),
                cov.columns,
                cov.warmup_text.format(s=s),
            )
        )
    return out


# --------------------------------------------------------------------------- coverage
@dataclass
class WindowCoverage:
    due: int = 0  # source bars beyond the warm-up of this window
    ok: int = 0  # ... of which have a row with every wW_ column non-NULL


@dataclass
class FamilyMonth:
    """One family's coverage of one pair and month."""

    windows: dict[int, WindowCoverage]
    rows: int  # source bars that have a row in the family table
    missing_columns: tuple[str, ...] = ()

    @property
    def due(self) -> int:
        return max((c.due for c in self.windows.values()), default=0)

    @property
    def share(self) -> float | None:
        """Coverage of the worst window; None when no bar is beyond any warm-up."""
        shares = [c.ok / c.due for c in self.windows.values() if c.due]
        return min(shares) if shares else None


@dataclass
class MonthRow:
    pair: str
    month: str  # YYYY-MM (UTC)
    bars: int
    first_ts: dt.datetime | None
    last_ts: dt.datetime | None
    families: dict[str, FamilyMonth | None]  # None: the family table is not built


@dataclass
class Coverage:
    families: list[Family]
    rows: list[MonthRow]
    built: dict[str, list[str]]  # family -> pairs whose table exists
    no_bars: list[str]  # selected pairs without source bars

    def family_share(self, family: str) -> float | None:
        """Worst window over all pairs and months (bars summed per window)."""
        totals: dict[int, WindowCoverage] = {}
        for row in self.rows:
            fm = row.families.get(family)
            if fm is None:
                continue
            for w, c in fm.windows.items():
                t = totals.setdefault(w, WindowCoverage())
                t.due += c.due
                t.ok += c.ok
        shares = [t.ok / t.due for t in totals.values() if t.due]
        return min(shares) if shares else None

    def missing_columns(self) -> dict[str, list[str]]:
        """Family tables that lack configured feature columns -> those columns."""
        out: dict[str, list[str]] = {}
        for row in self.rows:
            for fam, fm in row.families.items():
                if fm is not None and fm.missing_columns:
                    out.setdefault(f"{fam}_{row.pair}", list(fm.missing_columns))
        return out

    def gaps(self) -> list[tuple[str, str, str, int, WindowCoverage]]:
        """(pair, month, family, window, coverage) for every window below 100%."""
        out = []
        for row in self.rows:
            for fam, fm in row.families.items():
                if fm is None:
                    continue
                for w, c in fm.windows.items():
                    if c.ok < c.due:
                        out.append((row.pair, row.month, fam, w, c))
        return out


def _relations(conn: Any, schema_name: str) -> dict[str, set[str]]:
    """Tables and views of a schema with their column names (one catalog query)."""
    rows = conn.execute(
        """
        select c.relname, a.attname
        from pg_class as c
        inner join pg_namespace as n on n.oid = c.relnamespace
        inner join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'p', 'f')
        """,
        (schema_name,),
    ).fetchall()
    out: dict[str, set[str]] = {}
    for rel, col in rows:
        out.setdefault(rel, set()).add(col)
    return out


def _coverage_query(
    pair_tables: Sequence[tuple[Family, str, set[str]]],
) -> tuple[sql.Composed, list]:
    """The per-pair coverage query and, per family, [(window, present columns)] to read it."""
    selects: list[sql.Composable] = [
        sql.SQL("to_char(source.ts_utc at time zone 'UTC', 'YYYY-MM') as month"),
        sql.SQL("count(*) as bars"),
        sql.SQL("min(source.ts_utc) as first_ts"),
        sql.SQL("max(source.ts_utc) as last_ts"),
    ]
    joins: list[sql.Composable] = []
    layout = []
    for i, (fam, table, columns) in enumerate(pair_tables):
        alias = sql.Identifier(f"f{i}")
        joins.append(
            sql.SQL("left join {}.{} as {} on {}.ts_utc = source.ts_utc").format(
                sql.Identifier(schema()), sql.Identifier(table), alias, alias
            )
        )
        selects.append(sql.SQL("count({}.ts_utc)").format(alias))
        fam_layout = []
        for w in fam.windows:
            wanted = fam.columns(w)
            present = [c for c in wanted if c in columns]
            beyond = sql.SQL("source.bar_no > {}").format(sql.Literal(fam.warmup(w)))
            selects.append(sql.SQL("count(*) filter (where {})").format(beyond))
            if present and len(present) == len(wanted):
                not_null = sql.SQL(" and ").join(
                    sql.SQL("{}.{} is not null").format(alias, sql.Identifier(c)) for c in present
                )
                selects.append(
                    sql.SQL("count(*) filter (where {} and {})").format(beyond, not_null)
                )
            else:
                selects.append(sql.SQL("0"))
            fam_layout.append((w, tuple(c for c in wanted if c not in columns)))
        layout.append((fam, fam_layout))
    query = sql.SQL(
        """
        with source as (
            select ts_utc, row_number() over (order by ts_utc) as bar_no
            from {raw}
            where pair = %s
        )
        select {selects}
        from source
        {joins}
        group by 1
        order by 1
        """
    ).format(
        raw=sql.Identifier(raw_schema(), "m1_bars"),
        selects=sql.SQL(",\n            ").join(selects),
        joins=sql.SQL("\n        ").join(joins),
    )
    return query, layout


def collect_coverage(
    conn: Any, pairs: Sequence[str], fams: Sequence[Family] | None = None, progress: bool = False
) -> Coverage:
    fams = list(fams or families())
    if "m1_bars" not in _relations(conn, raw_schema()):
        raise BqxError(
            f"the source table {raw_schema()}.m1_bars does not exist: load bars first "
            "(`bqx sample` or `bqx load`)"
        )
    relations = _relations(conn, schema())
    built = {f.name: [p for p in pairs if f.table(p) in relations] for f in fams}
    rows: list[MonthRow] = []
    no_bars: list[str] = []
    for n, pair in enumerate(pairs, 1):
        if progress:
            _say(f"coverage {n}/{len(pairs)}: {pair}")
        pair_tables = [
            (f, f.table(pair), relations[f.table(pair)]) for f in fams if f.table(pair) in relations
        ]
        query, layout = _coverage_query(pair_tables)
        result = conn.execute(query, (pair,)).fetchall()
        if not result:
            no_bars.append(pair)
        for rec in result:
            month, bars, first_ts, last_ts, *counts = rec
            per_family: dict[str, FamilyMonth | None] = {f.name: None for f in fams}
            it = iter(counts)
            for fam, fam_layout in layout:
                present_rows = next(it)
                windows: dict[int, WindowCoverage] = {}
                missing: list[str] = []
                for w, miss in fam_layout:
                    windows[w] = WindowCoverage(due=next(it), ok=next(it))
                    missing.extend(miss)
                per_family[fam.name] = FamilyMonth(windows, present_rows, tuple(missing))
            rows.append(MonthRow(pair, month, bars, first_ts, last_ts, per_family))
    return Coverage(fams, rows, built, no_bars)


# --------------------------------------------------------------------------- dbt results
@dataclass
class FailedNode:
    unique_id: str
    resource_type: str
    status: str
    failures: int | None
    message: str


@dataclass
class DbtResults:
    path: Path
    found: bool
    problem: str = ""  # why it could not be read
    command: str = ""
    invocation_id: str = ""
    started_at: str = ""
    generated_at: str = ""
    elapsed_s: float | None = None
    counts: dict[str, Counter] = field(default_factory=dict)  # resource type -> status counts
    failed: list[FailedNode] = field(default_factory=list)

    @property
    def tests(self) -> Counter:
        total: Counter = Counter()
        for kind in ("test", "unit_test"):
            total.update(self.counts.get(kind, Counter()))
        return total


def default_run_results() -> Path:
    from .airtable import default_run_results_path

    return default_run_results_path()




def read_run_results(path: str | Path | None = None) -> DbtResults:
    """Counts and failures of a dbt ``run_results.json``; a missing file is reported, not raised."""
    path = Path(path) if path else default_run_results()
    if not path.exists():
        return DbtResults(path, found=False, problem="not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return DbtResults(path, found=False, problem=f"unreadable: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        return DbtResults(
            path, found=False, problem="not a dbt run_results.json (no 'results' list)"
        )
    meta = doc.get("metadata") or {}
    out = DbtResults(
        path,
        found=True,
        command=str((doc.get("args") or {}).get("which") or ""),
        invocation_id=str(meta.get("invocation_id") or ""),
        started_at=str(meta.get("invocation_started_at") or ""),
        generated_at=str(meta.get("generated_at") or ""),
        elapsed_s=doc.get("elapsed_time"),
    )
    for res in doc["results"]:
        uid = str(res.get("unique_id") or "?")
        kind = uid.split(".", 1)[0]
        status = str(res.get("status") or "unknown")
        out.counts.setdefault(kind, Counter())[status] += 1
        if status in ("fail", "error", "warn", "runtime error"):
            failures = res.get("failures")
            out.failed.append(
                FailedNode(
                    uid,
                    kind,
                    status,
                    failures if isinstance(failures, int) else None,
                    first_line(res.get("message")),
                )
            )
    order = {"error": 0, "runtime error": 0, "fail": 1, "warn": 2}
    out.failed.sort(key=lambda f: (order.get(f.status, 3), f.unique_id))
    return out


# --------------------------------------------------------------------------- cross-check
CROSSCHECK_TOP = 5  # largest errors shown per family


@dataclass
class CrossCheck:
    status: str  # passed | failed | skipped | unavailable | error
    message: str = ""
    sample: int = 0
    families: list[dict[str, Any]] = field(default_factory=list)  # family summaries
    rows: list[dict[str, Any]] = field(default_factory=list)  # largest errors per family
    breaches: list[str] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)  # built families it does not check


def _float(value: Any) -> float | None:
    """A number from the cross-check's JSON (which writes inf as the string 'inf')."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def crosscheck_rows(
    doc: dict[str, Any], top: int = CROSSCHECK_TOP
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(family summaries, the ``top`` columns of each family with the largest error
    relative to its tolerance) from ``crosscheck.Report.to_dict()``.

    Read with ``.get`` throughout: a field the cross-check does not provide shows as
    a dash instead of failing the report.
    """
    fams = doc.get("families")
    entries = list(fams.items()) if isinstance(fams, dict) else []
    summaries: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for name, fam in entries:
        if not isinstance(fam, dict):
            continue
        summaries.append(
            {
                "family": str(fam.get("family") or name),
                "passed": fam.get("passed"),
                "pairs": len(fam.get("pairs") or []),
                "rows_checked": fam.get("rows_checked"),
                "max_ratio": _float(fam.get("max_ratio")),
                "problems": [str(p) for p in fam.get("problems") or []],
            }
        )
        columns = fam.get("columns")
        cols = [
            c
            for c in (columns.values() if isinstance(columns, dict) else columns or [])
            if isinstance(c, dict)
        ]
        cols.sort(
            key=lambda c: (_float(c.get("max_ratio")) or 0.0, _float(c.get("max_error")) or 0.0),
            reverse=True,
        )
        for c in cols[:top]:
            rows.append(
                {
                    "family": str(fam.get("family") or name),
                    "column": str(c.get("column") or "?"),
                    "ratio": _float(c.get("max_ratio")),
                    "error": _float(c.get("max_error")),
                    "tolerance": _float(c.get("tolerance")),
                    "pair": c.get("pair"),
                    "ts_utc": c.get("ts_utc"),
                    "checked": c.get("checked"),
                    "breaches": c.get("breaches"),
                }
            )
    return summaries, rows


def run_crosscheck_section(
    conn: Any, pairs: Sequence[str], built: Sequence[str], sample: int
) -> CrossCheck:
    """Run ``py_tasks.crosscheck`` on the built families it knows; never raises a BqxError."""
    try:
        from . import crosscheck
    except ImportError as exc:
        return CrossCheck("unavailable", f"py_tasks.crosscheck cannot be imported ({exc})", sample)
    known = getattr(crosscheck, "FAMILIES", None)
    fams = [f for f in built if known is None or f in known]
    if not fams:
        return CrossCheck("skipped", "no family the cross-check covers is built", sample)
    try:
        result = crosscheck.run_crosscheck(conn, families=fams, pairs=list(pairs), sample=sample)
    except BqxError as exc:
        return CrossCheck("error", exc.message, sample)
    doc = result.to_dict() if hasattr(result, "to_dict") else {}
    doc = doc if isinstance(doc, dict) else {}
    passed = bool(getattr(result, "passed", doc.get("passed")))
    summaries, rows = crosscheck_rows(doc)
    breaches = [str(b) for b in doc.get("breaches") or []]
    status = "passed" if passed else "failed"
    other = [f for f in built if f not in fams]
    return CrossCheck(status, "", sample, summaries, rows, breaches, other)


# --------------------------------------------------------------------------- plots
@dataclass
class Plot:
    key: str
    file: str | None  # None: not drawn
    title: str
    caption: str
    note: str = ""  # why it was not drawn
    table: list[dict[str, Any]] = field(default_factory=list)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # Agg canvas; no pyplot global state

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _pick_windows(reg_windows: Sequence[int]) -> tuple[int, int]:
    wanted = [w for w in PLOT_WINDOWS if w in reg_windows]
    if len(wanted) == 2:
        return wanted[0], wanted[1]
    ordered = sorted(reg_windows)
    return ordered[0], ordered[len(ordered) // 2] if len(ordered) > 1 else ordered[0]


def _pick_ends(fitted: Sequence[int], window: int, count: int) -> list[int]:
    """Indices t (within the day) whose whole window lies in the day, spread evenly."""
    usable = [i for i in fitted if i >= window - 1]
    if not usable:
        return []
    if count == 1 or len(usable) == 1:
        return [usable[-1]]
    step = (len(usable) - 1) / (count - 1)
    return sorted({usable[round(k * step)] for k in range(count)})


def plot_parabolas(conn: Any, pair: str, out: Path, reg_windows: Sequence[int]) -> Plot:
    """One day of ``pair``'s rate index with reg_rate's fitted parabolas for two windows."""
    title = "Rate index and fitted parabolas"
    relations = _relations(conn, schema())
    table = PARABOLA_FAMILY.model(pair)
    if "rate_index" not in relations or table not in relations:
        missing = "rate_index" if "rate_index" not in relations else table
        return Plot("parabolas", None, title, "", note=f"not drawn: {missing} is not built")
    w_short, w_long = _pick_windows(reg_windows)
    cols = relations[table]
    terms = ("quadratic_term", "linear_term", "constant_term", "prediction", "rmse")
    if any(f"w{w}_{t}" not in cols for w in (w_short, w_long) for t in terms):
        return Plot(
            "parabolas",
            None,
            title,
            "",
            note=f"not drawn: {table} lacks w{w_short}_/w{w_long}_ terms",
        )
    day = conn.execute(
        sql.SQL(
            """
            select (ts_utc at time zone 'UTC')::date as day, count(*) as bars
            from {}
            where w{}_prediction is not null
            group by 1
            order by 2 desc, 1 desc
            limit 1
            """
        ).format(sql.Identifier(schema(), table), sql.SQL(str(w_long))),
    ).fetchone()
    if day is None:
        return Plot("parabolas", None, title, "", note=f"not drawn: {table} has no fitted rows")
    start = dt.datetime.combine(day[0], dt.time(), tzinfo=dt.timezone.utc)
    term_cols = sql.SQL(", ").join(
        sql.SQL("g.{}").format(sql.Identifier(f"w{w}_{t}"))
        for w in (w_short, w_long)
        for t in terms
    )
    data = conn.execute(
        sql.SQL(
            """
            select r.ts_utc, r.rate_index, {terms}
            from {rate_index} as r
            left join {reg} as g on g.ts_utc = r.ts_utc
            where r.pair = %s and r.ts_utc >= %s and r.ts_utc < %s
            order by r.ts_utc
            """
        ).format(
            terms=term_cols,
            rate_index=sql.Identifier(schema(), "rate_index"),
            reg=sql.Identifier(schema(), table),
        ),
        (pair, start, start + dt.timedelta(days=1)),
    ).fetchall()
    import matplotlib.dates as mdates
    import numpy as np

    ts = [r[0] for r in data]
    y = np.array([r[1] for r in data], dtype=float)
    colors = {w_short: "tab:orange", w_long: "tab:blue"}
    offsets = {w_short: 2, w_long: 7}  # first term column of each window in ``data``
    rows: dict[tuple[int, int], dict[str, Any]] = {}

    def draw(ax: Any, t: int, w: int, label: bool) -> bool:
        """Draw the parabola stored at bar t for window w; False when it is NULL."""
        base = offsets[w]
        if t - w + 1 < 0 or data[t][base] is None:
            return False
        quad, lin, const, pred, rmse = (float(v) for v in data[t][base : base + 5])
        x = np.arange(w, dtype=float)
        curve = quad / (w - 1) ** 2 * x * x + lin / (w - 1) * x + const
        window_ts = ts[t - w + 1 : t + 1]
        ax.plot(
            window_ts,
            curve,
            color=colors[w],
            lw=2.4 if w == w_long else 1.9,
            alpha=0.9,
            zorder=3,
            label=f"W={w}: fitted parabola over its {w} bars" if label else None,
        )
        ax.plot(
            [ts[t]],
            [pred],
            "o",
            color=colors[w],
            ms=5,
            zorder=4,
            mec="black",
            mew=0.5,
            label=f"W={w}: stored prediction at t" if label else None,
        )
        resid = y[t - w + 1 : t + 1] - curve
        rows[w, t] = {
            "window": w,
            "t": ts[t].strftime("%Y-%m-%d %H:%M"),
            "stored_rmse": rmse,
            "redrawn_rmse": float(np.sqrt(np.mean(resid * resid))),
            "prediction_gap": abs(float(curve[-1]) - pred),
        }
        return True

    fig = _figure(11, 8.4)
    top, bottom = fig.subplots(2, 1, height_ratios=[1.15, 1])
    top.plot(ts, y, color="0.25", lw=0.8, label="rate index (1-minute bars)", zorder=2)
    ends = {}
    for k, w in enumerate((w_short, w_long)):
        fitted = [i for i, r in enumerate(data) if r[offsets[w]] is not None]
        ends[w] = _pick_ends(fitted, w, PARABOLAS_PER_WINDOW[k])
        for j, t in enumerate(ends[w]):
            draw(top, t, w, label=j == 0)
    # The zoom: the middle W_long window, with W_short parabolas tiling it.
    t_zoom = ends[w_long][len(ends[w_long]) // 2] if ends[w_long] else None
    if t_zoom is not None:
        lo = t_zoom - w_long + 1
        top.axvspan(
            ts[lo],
            ts[t_zoom],
            color=colors[w_long],
            alpha=0.10,
            zorder=1,
            label="window shown below",
        )
        bottom.plot(
            ts[lo : t_zoom + 1],
            y[lo : t_zoom + 1],
            color="0.25",
            lw=0.8,
            marker=".",
            ms=2.5,
            label="rate index (1-minute bars)",
            zorder=2,
        )
        draw(bottom, t_zoom, w_long, label=True)
        first = True
        for t in range(t_zoom, lo + w_short - 2, -w_short):
            if draw(bottom, t, w_short, label=first):
                first = False
        bottom.set_title(
            f"zoom: the {w_long} bars ending {ts[t_zoom]:%H:%M} UTC, with the "
            f"W={w_short} parabolas ending every {w_short} bars inside it",
            fontsize=10,
        )
    else:
        bottom.text(
            0.5, 0.5, f"no W={w_long} fit on this day", ha="center", transform=bottom.transAxes
        )
    for ax in (top, bottom):
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=dt.timezone.utc))
        ax.set_xlabel(f"time of bar (UTC), {day[0]:%Y-%m-%d}")
        ax.set_ylabel("rate index\n(100 × close / baseline close)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    top.set_xlim(start, start + dt.timedelta(days=1))
    top.set_title(
        f"{pair}: the rate index of one day ({len(ts)} bars) with the parabolas "
        f"stored in {PARABOLA_FAMILY.model(pair)} (W={w_short} and W={w_long})",
        fontsize=11,
    )
    fig.savefig(out / PLOT_FILES["parabolas"])
    caption = (
        f"{pair} on {day[0]:%Y-%m-%d} (UTC). Top: the rate index (grey) and, at a few bars t, "
        "the parabola a2·x² + a1·x + a0 over the W bars ending at t (x = 0..W−1), rebuilt "
        f"from the stored terms of {PARABOLA_FAMILY.model(pair)} (a2 = quadratic_term/(W−1)², "
        "a1 = linear_term/(W−1), a0 = constant_term); dots: the stored prediction at t. "
        f"Bottom: the shaded W={w_long} window bar by bar, with its parabola and the "
        f"W={w_short} parabolas inside it. The table compares each drawn curve's RMSE "
        "against the data with the stored rmse, and its end with the stored prediction."
    )
    table_rows = [rows[key] for key in sorted(rows)]
    return Plot("parabolas", PLOT_FILES["parabolas"], title, caption, table=table_rows)


def plot_coverage(coverage: Coverage, out: Path) -> Plot:
    """Pair x month heat map of each family's coverage beyond the warm-up."""
    import numpy as np
    from matplotlib.colors import BoundaryNorm, ListedColormap

    title = "Coverage beyond the warm-up, pair × month"
    pairs = list(dict.fromkeys([*(r.pair for r in coverage.rows), *coverage.no_bars]))
    months = sorted({r.month for r in coverage.rows})
    fams = [f.name for f in coverage.families]
    if not coverage.rows:
        return Plot(
            "coverage", None, title, "", note="not drawn: no source bars for the selected pairs"
        )
    index = {(r.pair, r.month): r for r in coverage.rows}
    bounds = [0.0, 0.9, 0.99, 0.999, 1.0 - 1e-12, 1.0 + 1e-12]
    cmap = ListedColormap(["#d73027", "#fc8d59", "#fee08b", "#a6d96a", "#1a9850"]).with_extremes(
        bad="#d9d9d9"
    )
    norm = BoundaryNorm(bounds, cmap.N)
    panel_w = max(1.6, 0.9 * len(months) + 0.8)
    fig = _figure(1.4 + panel_w * len(fams), max(3.2, 1.6 + 0.24 * len(pairs)))
    axes = fig.subplots(1, len(fams), sharey=True, squeeze=False)[0]
    image = None
    for ax, fam in zip(axes, fams, strict=True):
        grid = np.full((len(pairs), len(months)), np.nan)
        text: dict[tuple[int, int], str] = {}
        for i, pair in enumerate(pairs):
            for j, month in enumerate(months):
                row = index.get((pair, month))
                fm = row.families.get(fam) if row else None
                if row is None:
                    text[i, j] = "no bars"
                elif fm is None:
                    text[i, j] = "not built"
                elif fm.share is None:
                    text[i, j] = "warm-up"
                else:
                    grid[i, j] = fm.share
                    text[i, j] = format_share(fm.share)
        image = ax.imshow(
            np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
        )
        for (i, j), label in text.items():
            ax.text(
                j,
                i,
                label,
                ha="center",
                va="center",
                fontsize=6.5,
                color="white" if not np.isnan(grid[i, j]) and grid[i, j] < 0.9 else "black",
            )
        ax.set_xticks(range(len(months)), months, rotation=0 if len(months) < 4 else 45)
        ax.set_yticks(range(len(pairs)), pairs, fontsize=7)
        ax.set_title(fam, fontsize=10)
        ax.set_xlabel("month (UTC)")
    axes[0].set_ylabel("pair")
    cbar = fig.colorbar(
        image, ax=list(axes), ticks=[0.45, 0.945, 0.9945, 0.9995, 1.0], shrink=0.6, pad=0.01
    )
    cbar.ax.set_yticklabels(["< 90%", "90–99%", "99–99.9%", "≥ 99.9%", "100%"], fontsize=7)
    cbar.set_label("coverage", fontsize=9)
    fig.suptitle("Feature coverage beyond the warm-up (worst window), per pair and month")
    fig.savefig(out / PLOT_FILES["coverage"])
    caption = (
        "Each cell: the share of the pair's source bars in that month, beyond the family's "
        "warm-up, that have a row with every feature column non-NULL (the worst window). "
        "Grey: the cell says why: the table is not built, the pair has no bars, or every "
        "bar of the month is within the warm-up."
    )
    return Plot("coverage", PLOT_FILES["coverage"], title, caption)


def r2_histograms(
    conn: Any, pairs: Sequence[str], fams: Sequence[Family], built: dict[str, list[str]]
) -> dict[str, dict[int, list[int]]]:
    """family -> window -> counts in R2_BINS equal bins over [0, 1] (one scan per table)."""
    out: dict[str, dict[int, list[int]]] = {}
    relations = _relations(conn, schema())
    for fam in fams:
        has_r2 = any(f"w{w}_r2" in fam.columns(w) for w in fam.windows)  # the regressions
        if not has_r2 or not built.get(fam.name):
            continue
        counts = {w: [0] * R2_BINS for w in fam.windows}
        for pair in built[fam.name]:
            cols = relations.get(fam.table(pair), set())
            windows = [w for w in fam.windows if f"w{w}_r2" in cols]
            if not windows:
                continue
            values = sql.SQL(", ").join(
                sql.SQL("({}, t.{})").format(sql.Literal(w), sql.Identifier(f"w{w}_r2"))
                for w in windows
            )
            query = sql.SQL(
                """
                select
                    v.w,
                    least(greatest(width_bucket(v.r2, 0.0, 1.0, {bins}), 1), {bins}) as bin,
                    count(*) as n
                from {table} as t
                cross join lateral (values {values}) as v (w, r2)
                where v.r2 is not null
                group by 1, 2
                """
            ).format(
                bins=sql.Literal(R2_BINS),
                table=sql.Identifier(schema(), fam.table(pair)),
                values=values,
            )
            for w, b, n in conn.execute(query).fetchall():
                counts[w][b - 1] += n
        out[fam.name] = counts
    return out


def plot_r2(hist: dict[str, dict[int, list[int]]], out: Path) -> Plot:
    import numpy as np
    from matplotlib import colormaps

    title = "Distribution of r2 per window"
    cmap = colormaps["viridis"]
    if not hist:
        return Plot("r2", None, title, "", note="not drawn: no regression family is built")
    fig = _figure(5.2 * len(hist), 4.0)
    axes = fig.subplots(1, len(hist), squeeze=False)[0]
    edges = np.linspace(0.0, 1.0, R2_BINS + 1)
    for ax, (fam, per_window) in zip(axes, hist.items(), strict=True):
        ws = sorted(per_window)
        for k, w in enumerate(ws):
            counts = np.array(per_window[w], dtype=float)
            total = counts.sum()
            if not total:
                continue
            ax.stairs(
                counts / total,
                edges,
                color=cmap(k / max(1, len(ws) - 1)),
                lw=1.5,
                label=f"W={w} ({int(total):,} rows)",
            )
        ax.set_xlim(0, 1)
        ax.set_xlabel("r2 of the rolling quadratic fit")
        ax.set_ylabel("share of rows per bin (bin width 0.025)")
        ax.set_title(f"{fam}: r2 per window")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.savefig(out / PLOT_FILES["r2"])
    caption = (
        "Share of non-NULL rows of the selected pairs per r2 bin, one line per window "
        "(r2 = 1 − SS_res/SS_tot; 0 in flat windows)."
    )
    return Plot("r2", PLOT_FILES["r2"], title, caption)


# --------------------------------------------------------------------------- report
@dataclass
class ReportData:
    generated_at: dt.datetime
    database: str
    schema: str
    pairs: list[str]
    coverage: Coverage
    dbt: DbtResults
    crosscheck: CrossCheck
    plots: list[Plot]

    def verdicts(self) -> list[tuple[str, str]]:
        """(status, text) lines for the summary: ok | issue | info."""
        out = []
        gaps = self.coverage.gaps()
        built = [f.name for f in self.coverage.families if self.coverage.built.get(f.name)]
        not_built = [f.name for f in self.coverage.families if not self.coverage.built.get(f.name)]
        partial = {
            f: len(self.pairs) - len(ps)
            for f, ps in self.coverage.built.items()
            if ps and len(ps) < len(self.pairs)
        }
        if gaps:
            out.append(
                (
                    "issue",
                    f"coverage below 100% beyond the warm-up in {len(gaps)} "
                    "pair/month/family/window combinations (listed below)",
                )
            )
        elif built:
            out.append(("ok", f"coverage beyond the warm-up is 100% for {', '.join(built)}"))
        if not_built:
            out.append(("info", f"not built: {', '.join(not_built)}"))
        for fam, n in partial.items():
            out.append(
                ("info", f"{fam}: not built for {n} of the {len(self.pairs)} selected pairs")
            )
        for table, missing in self.coverage.missing_columns().items():
            out.append(
                (
                    "issue",
                    f"{table} lacks {len(missing)} feature columns ({', '.join(missing[:3])}"
                    f"{', ...' if len(missing) > 3 else ''}): windows changed since it was "
                    "built? Rebuild it with --full-refresh",
                )
            )
        if self.coverage.no_bars:
            out.append(("issue", f"no source bars for {', '.join(self.coverage.no_bars)}"))
        if not self.dbt.found:
            out.append(("info", f"no dbt results: {self.dbt.path} {self.dbt.problem}"))
        else:
            t = self.dbt.tests
            bad = sum(v for k, v in t.items() if k not in ("pass", "success", "skipped"))
            command = f"dbt `{self.dbt.command or '?'}` ({self.dbt.started_at[:19] or '?'})"
            if not t:
                tests = "ran no tests"
            else:
                tests = f"{t.get('pass', 0)} tests passed, {bad} failed/errored/warned"
            out.append(
                (
                    "issue" if self.dbt.failed else ("ok" if t else "info"),
                    f"{command}: {tests}; {len(self.dbt.failed)} nodes not ok",
                )
            )
        cc = self.crosscheck
        out.append(
            (
                {"passed": "ok", "failed": "issue"}.get(cc.status, "info"),
                f"cross-check: {cc.status}"
                + (f" ({cc.message})" if cc.message else "")
                + (
                    f", {cc.sample} sampled rows per pair and family"
                    if cc.status in ("passed", "failed")
                    else ""
                ),
            )
        )
        return out


def format_share(share: float | None) -> str:
    """100% only when exact; otherwise two decimals, never rounded up to 100%."""
    if share is None:
        return "—"
    if share >= 1.0:
        return "100%"
    return f"{math.floor(share * 10000) / 100:.2f}%"


def _ts(value: dt.datetime | None) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M") if value else "—"


def _cell(fm: FamilyMonth | None) -> str:
    return "not built" if fm is None else format_share(fm.share)


def coverage_table(data: ReportData) -> tuple[list[str], list[list[str]]]:
    fams = [f.name for f in data.coverage.families]
    head = ["pair", "month", "bars", "first ts (UTC)", "last ts (UTC)", *fams]
    body = []
    for r in data.coverage.rows:
        body.append(
            [
                r.pair,
                r.month,
                f"{r.bars:,}",
                _ts(r.first_ts),
                _ts(r.last_ts),
                *(_cell(r.families.get(f)) for f in fams),
            ]
        )
    for pair in data.coverage.no_bars:
        body.append([pair, "—", "0", "—", "—", *("no bars" for _ in fams)])
    return head, body


def family_table(data: ReportData) -> tuple[list[str], list[list[str]]]:
    head = [
        "family",
        "windows",
        "warm-up (leading NULL bars)",
        "pairs built",
        "coverage (worst window)",
    ]
    body = []
    for f in data.coverage.families:
        n = len(data.coverage.built.get(f.name, []))
        share = data.coverage.family_share(f.name) if n else None
        body.append(
            [
                f.name,
                ", ".join(map(str, f.windows)),
                f.warmup_text,
                f"{n} of {len(data.pairs)}",
                format_share(share) if n else "not built",
            ]
        )
    return head, body


def gaps_table(data: ReportData, limit: int = 200) -> tuple[list[str], list[list[str]]]:
    head = ["pair", "month", "family", "window", "bars beyond warm-up", "with features", "coverage"]
    body = [
        [p, m, f, str(w), f"{c.due:,}", f"{c.ok:,}", format_share(c.ok / c.due)]
        for p, m, f, w, c in data.coverage.gaps()[:limit]
    ]
    return head, body


Table = tuple[list[str], list[list[str]]]
DBT_STATUSES = ("pass", "fail", "error", "warn", "skipped")


def dbt_tables(data: ReportData) -> tuple[Table, Table]:
    """(counts per node type and status, nodes not ok). ``pass`` counts dbt's ``success``
    of models and seeds too, so one column holds every good outcome."""
    counts = {
        k: Counter({("pass" if s == "success" else s): n for s, n in c.items()})
        for k, c in data.dbt.counts.items()
    }
    seen = {s for c in counts.values() for s in c}
    statuses = [s for s in DBT_STATUSES if s in seen or s in ("pass", "fail", "error")]
    statuses += sorted(seen - set(statuses))
    head = ["node type", *statuses, "total"]
    order = ["test", "unit_test", "model", "seed", "snapshot"]
    kinds = sorted(counts, key=lambda k: (order.index(k) if k in order else 9, k))
    body = [
        [k, *(str(counts[k].get(s, 0)) for s in statuses), str(sum(counts[k].values()))]
        for k in kinds
    ]
    fail_head = ["node", "status", "failures", "message (first line)"]
    fail_body = [
        [f.unique_id, f.status, "" if f.failures is None else str(f.failures), f.message]
        for f in data.dbt.failed
    ]
    return (head, body), (fail_head, fail_body)


def _g(value: float | None) -> str:
    if value is None:
        return "—"
    return "inf" if math.isinf(value) else f"{value:.3g}"


def crosscheck_tables(data: ReportData) -> tuple[Table, Table]:
    """(per family: result, rows, largest ratio; per family: its largest errors)."""
    cc = data.crosscheck
    fam_head = [
        "family",
        "result",
        "pairs",
        "rows checked",
        "largest error / tolerance",
        "problems",
    ]
    fam_body = [
        [
            f["family"],
            {True: "pass", False: "FAIL"}.get(f["passed"], "—"),
            str(f["pairs"]),
            f"{f['rows_checked']:,}" if isinstance(f["rows_checked"], int) else "—",
            _g(f["max_ratio"]),
            "; ".join(f["problems"]) or "—",
        ]
        for f in cc.families
    ]
    head = [
        "family",
        "column",
        "error / tolerance",
        "largest error",
        "tolerance",
        "pair",
        "ts_utc",
        "values checked",
        "breaches",
    ]
    body = [
        [
            r["family"],
            r["column"],
            _g(r["ratio"]),
            _g(r["error"]),
            _g(r["tolerance"]),
            str(r["pair"] or "—"),
            str(r["ts_utc"] or "—"),
            str(r["checked"] or 0),
            str(r["breaches"] or 0),
        ]
        for r in cc.rows
    ]
    return (fam_head, fam_body), (head, body)


def parabola_table(plot: Plot) -> tuple[list[str], list[list[str]]]:
    head = [
        "window",
        "bar t (UTC)",
        "stored rmse",
        "rmse of the drawn curve vs data",
        "|curve(t) − stored prediction|",
    ]
    body = [
        [
            str(r["window"]),
            r["t"],
            f"{r['stored_rmse']:.6g}",
            f"{r['redrawn_rmse']:.6g}",
            f"{r['prediction_gap']:.2g}",
        ]
        for r in plot.table
    ]
    return head, body


def _dbt_header(data: ReportData) -> str:
    d = data.dbt
    if not d.found:
        return f"No dbt results: `{d.path}` {d.problem}. Run `bqx dbt -- build` (or `test`) first."
    elapsed = f", {d.elapsed_s:.1f} s" if isinstance(d.elapsed_s, (int, float)) else ""
    text = (
        f"From `{d.path}`: `dbt {d.command or '?'}` started {d.started_at or '?'}, "
        f"written {d.generated_at or '?'}{elapsed} (invocation {d.invocation_id or '?'})."
    )
    if not d.tests:
        text += " This invocation ran no tests."
    return text


def _crosscheck_header(data: ReportData) -> str:
    cc = data.crosscheck
    if cc.status in ("passed", "failed"):
        return (
            f"numpy cross-check (`py_tasks.crosscheck`) of {cc.sample} random rows per pair "
            "and family, plus the rows around warm-up boundaries, gaps and flat windows: "
            f"**{cc.status.upper()}**."
            + (
                f" Not covered by the cross-check: {', '.join(cc.not_covered)}."
                if cc.not_covered
                else ""
            )
        )
    return f"Cross-check {cc.status}" + (f": {cc.message}" if cc.message else ".")


# --------------------------------------------------------------------------- markdown
def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(_md_escape(h) for h in head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def render_markdown(data: ReportData) -> str:
    mark = {"ok": "✅", "issue": "❌", "info": "ℹ️"}
    parts = [
        "# bqx validation report",
        "",
        f"Generated {data.generated_at:%Y-%m-%d %H:%M:%S} UTC from `{data.database}`, schema "
        f"`{data.schema}`, {len(data.pairs)} pairs.",
        "",
        "## Summary",
        "",
        *(f"- {mark[s]} {t}" for s, t in data.verdicts()),
        "",
        "## Families",
        "",
        _md_table(*family_table(data)),
        "",
        "## Coverage per pair and month",
        "",
        "Share of the source bars beyond each family's warm-up that have every feature "
        "column non-NULL (worst window). `not built`: no table for that pair; `—`: every bar "
        "of the month is within the warm-up.",
        "",
        _md_table(*coverage_table(data)),
        "",
    ]
    gaps = gaps_table(data)
    if gaps[1]:
        parts += ["### Windows below 100%", "", _md_table(*gaps), ""]
    parts += ["## dbt results", "", _dbt_header(data), ""]
    if data.dbt.found:
        counts, failed = dbt_tables(data)
        parts += [_md_table(*counts), ""]
        if failed[1]:
            parts += ["### Nodes not ok", "", _md_table(*failed), ""]
        else:
            parts += ["No node failed, errored or warned.", ""]
    parts += ["## Cross-check", "", _crosscheck_header(data), ""]
    if data.crosscheck.families:
        fams, largest = crosscheck_tables(data)
        parts += [
            _md_table(*fams),
            "",
            f"Largest errors per family (the {CROSSCHECK_TOP} "
            "columns with the largest error relative to their tolerance):",
            "",
            _md_table(*largest),
            "",
        ]
    if data.crosscheck.breaches:
        parts += ["Breaches:", "", *(f"- {b}" for b in data.crosscheck.breaches[:50]), ""]
    parts += ["## Plots", ""]
    for plot in data.plots:
        parts += [f"### {plot.title}", ""]
        if plot.file:
            parts += [f"![{plot.title}]({plot.file})", "", plot.caption, ""]
            if plot.table:
                parts += [_md_table(*parabola_table(plot)), ""]
        else:
            parts += [f"_{plot.note}_", ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- html
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;line-height:1.4}
h1{border-bottom:2px solid #333}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0;position:sticky;top:0}tr:nth-child(even) td{background:#fafafa}
td.ok{background:#e3f4e1!important}td.bad{background:#fbe0dc!important}td.na{color:#888}
ul.verdicts{list-style:none;padding-left:0}
ul.verdicts li{padding:2px 6px;margin:2px 0;border-radius:3px}
li.ok{background:#e3f4e1}li.issue{background:#fbe0dc}li.info{background:#eef2f8}
img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0}figcaption{font-size:13px;color:#444}
code{background:#f3f3f3;padding:0 3px}.scroll{max-height:600px;overflow:auto;display:inline-block}
"""


def _html_cell(text: str) -> str:
    cls = ""
    if text == "100%":
        cls = "ok"
    elif re.fullmatch(r"\d+\.\d\d%", text):
        cls = "bad"
    elif text in ("not built", "—", "no bars"):
        cls = "na"
    return f'<td class="{cls}">{html.escape(text)}</td>' if cls else f"<td>{html.escape(text)}</td>"


def _html_table(head: Sequence[str], body: Sequence[Sequence[str]], scroll: bool = False) -> str:
    rows = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in body)
    table = (
        "<table><thead><tr>"
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    return f'<div class="scroll">{table}</div>' if scroll else table


def _html_text(text: str) -> str:
    """Escape, then render `code` and **bold** as in the Markdown version."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def render_html(data: ReportData) -> str:
    p: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>bqx validation report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>bqx validation report</h1>",
        f"<p>Generated {data.generated_at:%Y-%m-%d %H:%M:%S} UTC from "
        f"<code>{html.escape(data.database)}</code>, "
        f"schema <code>{html.escape(data.schema)}</code>, "
        f"{len(data.pairs)} pairs.</p>",
        "<h2>Summary</h2><ul class='verdicts'>",
        *(f'<li class="{s}">{_html_text(t)}</li>' for s, t in data.verdicts()),
        "</ul>",
        "<h2>Families</h2>",
        _html_table(*family_table(data)),
        "<h2>Coverage per pair and month</h2>",
        "<p>Share of the source bars beyond each family's warm-up that have every feature column "
        "non-NULL (worst window). <em>not built</em>: no table for that pair; —: every bar of the "
        "month is within the warm-up.</p>",
        _html_table(*coverage_table(data), scroll=True),
    ]
    gaps = gaps_table(data)
    if gaps[1]:
        p += ["<h3>Windows below 100%</h3>", _html_table(*gaps, scroll=True)]
    p += ["<h2>dbt results</h2>", f"<p>{_html_text(_dbt_header(data))}</p>"]
    if data.dbt.found:
        counts, failed = dbt_tables(data)
        p.append(_html_table(*counts))
        if failed[1]:
            p += ["<h3>Nodes not ok</h3>", _html_table(*failed, scroll=True)]
        else:
            p.append("<p>No node failed, errored or warned.</p>")
    p += ["<h2>Cross-check</h2>", f"<p>{_html_text(_crosscheck_header(data))}</p>"]
    if data.crosscheck.families:
        fams, largest = crosscheck_tables(data)
        p += [
            _html_table(*fams),
            f"<p>Largest errors per family (the {CROSSCHECK_TOP} columns "
            "with the largest error relative to their tolerance):</p>",
            _html_table(*largest),
        ]
    if data.crosscheck.breaches:
        p.append(
            "<p>Breaches:</p><ul>"
            + "".join(f"<li>{html.escape(b)}</li>" for b in data.crosscheck.breaches[:50])
            + "</ul>"
        )
    p.append("<h2>Plots</h2>")
    for plot in data.plots:
        p.append(f"<h3>{html.escape(plot.title)}</h3>")
        if plot.file:
            p.append(
                f'<figure><img src="{html.escape(plot.file)}" alt="{html.escape(plot.title)}">'
                f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>"
            )
            if plot.table:
                p.append(_html_table(*parabola_table(plot)))
        else:
            p.append(f"<p><em>{html.escape(plot.note)}</em></p>")
    p.append("</body></html>")
    return "\n".join(p) + "\n"


# --------------------------------------------------------------------------- entry points
def parse_formats(value: str | None) -> list[str]:
    names = [v for v in re.split(r"[,\s]+", (value or "").strip().lower()) if v]
    names = ["md" if n == "markdown" else n for n in names] or list(FORMATS)
    bad = [n for n in names if n not in FORMATS]
    if bad:
        raise BqxError(f"unknown report format '{bad[0]}': use html, md or html,md")
    return list(dict.fromkeys(names))


def default_out_dir() -> Path:
    return project_dir() / "reports"


def build_report(
    pairs: Sequence[str] | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] = FORMATS,
    run_results: str | Path | None = None,
    crosscheck_sample: int | None = DEFAULT_CROSSCHECK_SAMPLE,
    plot_pair: str | None = None,
    url: str | None = None,
    progress: bool = False,
) -> tuple[ReportData, dict[str, Path]]:
    """Collect everything, draw the plots and write the report files.

    ``crosscheck_sample=None`` skips the cross-check. Returns the data and the
    written paths by format.
    """
    pairs = list(pairs) if pairs else parse_pairs(None)
    out_dir = Path(out) if out else default_out_dir()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BqxError(f"cannot create the report directory {out_dir}: {exc}") from None
    url = url or db.database_url(start=True)
    with db.connect(url, autocommit=True) as conn:
        if progress:
            _say(f"coverage of {len(pairs)} pairs in schema {schema()}")
        coverage = collect_coverage(conn, pairs, progress=progress)
        dbt_results = read_run_results(run_results)
        built = [f.name for f in coverage.families if coverage.built.get(f.name)]
        if crosscheck_sample is None:
            cross = CrossCheck("skipped", "--no-crosscheck")
        else:
            if progress:
                _say(f"cross-check of {crosscheck_sample} sampled rows per pair and family")
            cross = run_crosscheck_section(conn, pairs, built, crosscheck_sample)
        if progress:
            _say("plots")
        reg_pairs = coverage.built.get(PARABOLA_FAMILY.name, [])
        chosen = plot_pair or (reg_pairs[0] if reg_pairs else pairs[0])
        reg_windows = next(f.windows for f in coverage.families if f.name == PARABOLA_FAMILY.name)
        plots = [
            plot_parabolas(conn, chosen, out_dir, reg_windows),
            plot_coverage(coverage, out_dir),
            plot_r2(r2_histograms(conn, pairs, coverage.families, coverage.built), out_dir),
        ]
    data = ReportData(
        generated_at=dt.datetime.now(dt.timezone.utc),
        database=db.redact(url),
        schema=schema(),
        pairs=pairs,
        coverage=coverage,
        dbt=dbt_results,
        crosscheck=cross,
        plots=plots,
    )
    written: dict[str, Path] = {}
    for fmt in formats:
        path = out_dir / f"report.{fmt}"
        path.write_text(
            render_html(data) if fmt == "html" else render_markdown(data), encoding="utf-8"
        )
        written[fmt] = path
    return data, written


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="validation report (coverage, dbt tests, cross-check, plots) as HTML and Markdown",
        description="Write a validation report: coverage per pair and month, the dbt results "
        "of run_results.json, the numpy cross-check's largest errors and PNG plots.",
    )
    parser.add_argument("--format", default="html,md", help="html, md or html,md (default: both)")
    parser.add_argument(
        "--out", default=None, help="output directory (default: reports/ in the project)"
    )
    parser.add_argument("--pairs", default=None, help="comma-separated pairs (default: all 28)")
    parser.add_argument(
        "--run-results",
        default=None,
        help="dbt run_results.json (default: <target-path>/run_results.json)",
    )
    parser.add_argument(
        "--crosscheck-sample",
        type=int,
        default=DEFAULT_CROSSCHECK_SAMPLE,
        metavar="N",
        help=f"cross-checked rows per pair and family (default {DEFAULT_CROSSCHECK_SAMPLE})",
    )
    parser.add_argument("--no-crosscheck", action="store_true", help="skip the numpy cross-check")
    parser.add_argument(
        "--plot-pair",
        default=None,
        help="pair of the parabola plot (default: the first selected pair with reg_rate)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .config import check_pair

    formats = parse_formats(args.format)
    if args.crosscheck_sample < 1 and not args.no_crosscheck:
        raise BqxError("--crosscheck-sample must be at least 1 (or use --no-crosscheck)")
    data, written = build_report(
        pairs=parse_pairs(args.pairs),
        out=args.out,
        formats=formats,
        run_results=args.run_results,
        crosscheck_sample=None if args.no_crosscheck else args.crosscheck_sample,
        plot_pair=check_pair(args.plot_pair) if args.plot_pair else None,
        progress=True,
    )
    for status, text in data.verdicts():
        print(f"  [{status}] {text}")
    for fmt, path in written.items():
        print(f"bqx report: wrote {path} ({fmt})")
    for plot in data.plots:
        if plot.file:
            print(f"bqx report: wrote {Path(written[formats[0]]).parent / plot.file}")
    return 0
