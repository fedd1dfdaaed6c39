"""``bqx demo``: the main job end to end on the selected database.

Starts the embedded PostgreSQL (unless ``BQX_DATABASE_URL`` is set), writes a
synthetic sample of all 28 pairs, runs ``dbt build`` (seeds, models, tests), runs
the numpy cross-check and prints a summary: rows per family, tests passed, time.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field

from . import db, families
from .config import parse_pairs, schema
from .errors import BqxError

# every per-pair family, in the registry's order: the summary lists each one that is built
FAMILIES = families.names(families.generated())


@dataclass
class DemoSummary:
    rows_per_family: dict[str, int] = field(default_factory=dict)
    tests: Counter = field(default_factory=Counter)
    crosscheck_passed: bool | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def _step(message: str) -> float:
    print(f"bqx demo: {message}", flush=True)
    return time.perf_counter()


def rows_per_family(conn) -> dict[str, int]:
    """Total rows of each built per-pair family (reltuples-free exact counts)."""
    out: dict[str, int] = {}
    tables = conn.execute(
        "select table_name from information_schema.tables where table_schema = %s",
        (schema(),),
    ).fetchall()
    names = {t[0] for t in tables}
    for fam in FAMILIES:
        members = sorted(n for n in names if n.startswith(fam + "_") and len(n) == len(fam) + 7)
        if members:
            union = " union all ".join(
                f'select count(*) as n from "{schema()}"."{m}"' for m in members
            )
            out[fam] = int(conn.execute(f"select sum(n) from ({union}) u").fetchone()[0])
    return out


def run_demo(days: int, pairs: list[str], seed: int, sample_rows: int) -> DemoSummary:
    from . import crosscheck, dbtcmd, sample
    from .load import ensure_raw_table

    summary = DemoSummary()
    started = _step("starting the database")
    url = db.database_url(start=True)
    print(f"bqx demo: database {db.redact(url)}", flush=True)

    t0 = _step(f"writing a synthetic sample: {len(pairs)} pairs x {days} days (seed {seed})")
    with db.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        written = sample.write_sample(conn, days=days, pairs=pairs, seed=seed)
    total = sum(g for g, _ in written.values())
    summary.seconds["sample"] = time.perf_counter() - t0
    print(f"bqx demo: {total:,} bars in {summary.seconds['sample']:.1f} s", flush=True)

    t0 = _step("dbt build (seeds, models, tests)")
    result = dbtcmd.run_dbt(["build"], url)
    summary.seconds["dbt build"] = time.perf_counter() - t0
    for node in result.result or []:
        kind = node.node.resource_type
        summary.tests[(str(kind), str(node.status))] += 1
    if not result.success:
        failed = [n.node.name for n in (result.result or []) if str(n.status) in ("error", "fail")]
        raise BqxError(
            "dbt build failed"
            + (f": {', '.join(failed[:5])}" if failed else "")
            + " (see the dbt output above and target/run_results.json)"
        )

    t0 = _step(f"numpy cross-check ({sample_rows} sampled rows per pair and family)")
    with db.connect(url) as conn:
        report = crosscheck.run_crosscheck(
            conn, families=None, pairs=pairs, sample=sample_rows, seed=seed
        )
        summary.rows_per_family = rows_per_family(conn)
    summary.seconds["cross-check"] = time.perf_counter() - t0
    print(report.summary_text() if hasattr(report, "summary_text") else str(report), flush=True)
    summary.crosscheck_passed = bool(report.passed)
    summary.seconds["total"] = time.perf_counter() - started
    return summary


def print_summary(summary: DemoSummary) -> None:
    print("\nbqx demo summary")
    print("  rows per family:")
    for fam, n in summary.rows_per_family.items():
        print(f"    {fam:<16} {n:>12,}")
    tests = {k: v for k, v in summary.tests.items() if k[0] in ("test", "unit_test")}
    passed = sum(v for (kind, status), v in tests.items() if status == "pass")
    others = sum(v for (kind, status), v in tests.items() if status != "pass")
    models = sum(
        v for (kind, status), v in summary.tests.items() if kind == "model" and status == "success"
    )
    print(f"  dbt: {models} models built, {passed} tests passed, {others} not passed")
    print(f"  cross-check: {'PASS' if summary.crosscheck_passed else 'FAIL'}")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in summary.seconds.items())
    print(f"  time: {timing}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="sample -> dbt build -> cross-check -> summary, on the embedded database by default",
    )
    parser.add_argument("--days", type=int, default=14, help="days of synthetic bars (default 14)")
    parser.add_argument("--pairs", default=None, help="comma-separated pairs (default: all 28)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--sample", type=int, default=50, help="cross-checked rows per pair and family"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise BqxError("--days must be at least 1")
    summary = run_demo(args.days, parse_pairs(args.pairs), args.seed, args.sample)
    print_summary(summary)
    return 0 if summary.crosscheck_passed else 1
